"""Slow tests on the default cpu package (built once per session by the cpu_package fixture)."""
import ctypes
import os
import re
import shutil
import subprocess
import tarfile

import pytest

import nifcheck
from conftest import REF, needs, profile, source_mirror

ARCHIVES = {"libllama.a", "libggml.a", "libggml-base.a", "libggml-cpu.a"}


def test_package_holds_archives_headers_and_licenses_only(cpu_package):
    root = cpu_package["folder"]
    assert set(os.listdir(os.path.join(root, "lib"))) == ARCHIVES
    headers = set(os.listdir(os.path.join(root, "include")))
    assert {"llama.h", "ggml.h", "gguf.h", "ggml-backend.h", "ggml-cpu.h"} <= headers
    assert {"LICENSE", "LICENSE-llamafile-sgemm"} <= set(os.listdir(os.path.join(root, "licenses")))
    every = [os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files]
    assert not [f for f in every if f.endswith((".gguf", ".cmake", ".pc", ".so", ".metallib"))], every
    assert sum(os.path.getsize(os.path.join(root, f)) for f in every) < 40 * 1024 * 1024


def test_archives_define_no_default_visibility_ggml_symbols(cpu_package):
    """Every ggml/gguf/llama symbol defined in the archives is hidden (patch 0001 covers the GCC
    template-specialization case). std:: instantiations keep libstdc++'s default visibility."""
    leaks = {}
    for name in ARCHIVES:
        out = subprocess.run(["readelf", "-sW", os.path.join(cpu_package["folder"], "lib", name)],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) == 8 and f[4] in ("GLOBAL", "WEAK") and f[5] == "DEFAULT" and f[6] != "UND" \
                    and nifcheck.leaked(nifcheck.Binary("", "ELF", "", exports=[f[7]])):
                leaks.setdefault(name, []).append(f[7])
    assert not leaks


def test_test_package_proved_the_nif(cpu_package):
    out = cpu_package["output"]
    assert "libllama_nif.so: self-contained" in out
    assert "ggml/gguf/llama exports: 0" in out
    assert "plain -shared link: 0 ggml/gguf/llama exports" in out
    assert "deterministic: yes, non-finite logits: 0" in out
    assert "LOADER OK" in out
    needs = re.search(r"libllama_nif\.so: ELF x86_64.*\n  needs: +(.*)", out).group(1).split(", ")
    assert set(needs) <= {"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2", "libpthread.so.0", "libdl.so.2"}


def test_erlang_nif_ran_in_a_real_vm(cpu_package):
    needs(shutil.which("erl"), "Erlang (erl)")
    out = cpu_package["output"]
    assert "llama_cpp_ex_nif.so: self-contained" in out
    assert "exports:   1 (nif_init)" in out
    assert "ERLANG NIF OK" in out


def _vocab_cases(tmp_path):
    """Upstream's tokenizer vectors: models/ggml-vocab-*.gguf with .inp/.out, from the source archive."""
    archive = os.path.join(source_mirror(), "llama.cpp-b11312.tar.gz")
    if not os.path.exists(archive):
        pytest.fail(f"source archive not found at {archive} (set LLAMA_CPP_SOURCE_MIRROR)")
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if re.search(r"/models/ggml-vocab-[^/]+\.gguf(\.inp|\.out)?$", m.name)]
        tar.extractall(tmp_path, members=members, filter="data")
    models = os.path.join(tmp_path, "llama.cpp-b11312", "models")
    vocabs = sorted(f for f in os.listdir(models) if f.endswith(".gguf") and os.path.exists(os.path.join(models, f + ".inp")))
    for vocab in vocabs:
        base = os.path.join(models, vocab)
        with open(base + ".inp", "rb") as f:
            inputs = f.read().split(b"\n__ggml_vocab_test__\n")
        with open(base + ".out", "rb") as f:
            outputs = f.read().decode().split("\n")
        outputs = outputs[:len(inputs)]
        assert len(inputs) == len(outputs), vocab
        yield vocab, base, [(i, [int(t) for t in o.split()]) for i, o in zip(inputs, outputs)]


def test_upstream_tokenizer_vectors_match_exactly(cpu_nif, tmp_path, record_property):
    lib = ctypes.CDLL(cpu_nif["path"], mode=os.RTLD_NOW | os.RTLD_LOCAL)
    lib.lnif_open.restype = ctypes.c_void_p
    lib.lnif_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    lib.lnif_close.argtypes = [ctypes.c_void_p]
    lib.lnif_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
                                  ctypes.POINTER(ctypes.c_int32), ctypes.c_int]
    lib.lnif_last_error.restype = ctypes.c_char_p
    compared, vocabs, mismatches = 0, 0, []
    for vocab, path, cases in _vocab_cases(tmp_path):
        model = lib.lnif_open(path.encode(), 1, 0)
        assert model, f"{vocab}: {lib.lnif_last_error().decode()}"
        vocabs += 1
        for text, expected in cases:
            buf = (ctypes.c_int32 * (len(text) * 4 + 16))()
            n = lib.lnif_tokenize(model, text, len(text), 0, buf, len(buf))
            got = list(buf[:n]) if n >= 0 else None
            compared += 1
            if got != expected:
                mismatches.append(f"{vocab}: {text[:40]!r}: expected {expected[:12]} got {got and got[:12]}")
        lib.lnif_close(model)
    print(f"tokenizer vectors: {compared} cases over {vocabs} vocabularies compared, {len(mismatches)} mismatches")
    record_property("tokenizer_cases", compared)
    assert vocabs >= 15 and compared > 300
    assert not mismatches, "\n".join(mismatches[:20])


def test_generated_link_line_has_static_order(conan, cpu_package, tmp_path):
    """PkgConfigDeps output links without --start-group: llama, ggml, backends, ggml-cpu, ggml-base."""
    conan("install", f"--requires={REF}", "-pr:a", profile("linux-x86_64"), "-g", "PkgConfigDeps",
          "-g", "CMakeDeps", "-of", str(tmp_path))
    env = dict(os.environ, PKG_CONFIG_PATH=str(tmp_path))
    libs = subprocess.run(["pkg-config", "--static", "--libs", "llama"], env=env, capture_output=True,
                          text=True, check=True).stdout.split()
    order = [f for f in libs if f in ("-lllama", "-lggml", "-lggml-cpu", "-lggml-base")]
    assert order == ["-lllama", "-lggml", "-lggml-cpu", "-lggml-base"], libs
    cflags = subprocess.run(["pkg-config", "--cflags", "llama"], env=env, capture_output=True, text=True,
                            check=True).stdout.split()
    src = tmp_path / "main.cpp"
    src.write_text('#include "llama.h"\nint main() { llama_backend_init(); '
                   'return llama_max_devices() > 0 ? 0 : 1; }\n')
    exe = tmp_path / "main"
    subprocess.run(["g++", str(src), "-o", str(exe), *cflags, *libs], check=True)
    subprocess.run([str(exe)], check=True)


def test_sbom_is_written_to_package_metadata(conan, cpu_package):
    import json
    ref = re.search(r"Full package reference: (\S+)", cpu_package["output"]).group(1)
    metadata = conan("cache", "path", ref.split("#")[0] + ":" + ref.split(":")[-1].split("#")[0],
                     "--folder=metadata").stdout.strip()
    with open(os.path.join(metadata, "sbom.cdx.json")) as f:
        sbom = json.load(f)
    component = sbom["metadata"]["component"]
    assert component["name"] == "llama-cpp/b11312"
    assert any(c["name"] == "llama-cpp" and c["licenses"][0]["license"]["id"] == "MIT" for c in sbom["components"])
