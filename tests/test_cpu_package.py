"""Slow tests on the default cpu package (built once per session by the cpu_package fixture)."""
import ctypes
import os
import re
import subprocess
import tarfile

import pytest

from llama_cpp_recipe import nifcheck
from conftest import ARCHIVE, REF, UPSTREAM, needs, profile, source_mirror

ARCHIVES = {"libllama.a", "libggml.a", "libggml-base.a", "libggml-cpu.a",
            "libllama-common.a", "libllama-common-base.a", "libcpp-httplib.a"}
# the schema the tests' loader uses (tests/programs/nif/nif_loader.cpp): bounded values only
SCHEMA = {"type": "object", "properties": {"color": {"enum": ["red", "green", "blue"]},
                                          "count": {"type": "integer", "minimum": 0, "maximum": 99},
                                          "ok": {"type": "boolean"}},
          "required": ["color", "count", "ok"], "additionalProperties": False}


def test_package_holds_archives_headers_and_licenses_only(cpu_package):
    root = cpu_package["folder"]
    assert set(os.listdir(os.path.join(root, "lib"))) == ARCHIVES | {"cmake"}
    headers = set(os.listdir(os.path.join(root, "include")))
    assert {"llama.h", "ggml.h", "gguf.h", "ggml-backend.h", "ggml-cpu.h"} <= headers
    assert {"chat.h", "common.h", "json-schema-to-grammar.h", "speculative.h", "sampling.h", "log.h"} <= \
        set(os.listdir(os.path.join(root, "include", "llama-common")))
    assert os.path.exists(os.path.join(root, "include", "llama-common", "jinja", "runtime.h"))
    assert sorted(os.listdir(os.path.join(root, "include", "llama-common-vendor", "nlohmann"))) == \
        ["json.hpp", "json_fwd.hpp"]
    assert {"LICENSE", "LICENSE-llamafile-sgemm", "LICENSE-cpp-httplib", "LICENSE-nlohmann-json"} <= \
        set(os.listdir(os.path.join(root, "licenses")))
    every = [os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files]
    # upstream's CMake config and .pc files are replaced by CMakeDeps/PkgConfigDeps; the one CMake
    # file is the recipe's C++ runtime module (docs/linking.md "C consumers")
    assert [f for f in every if f.endswith(".cmake")] == ["lib/cmake/llama-cpp-cxx-runtime.cmake"]
    assert not [f for f in every if f.endswith((".gguf", ".pc", ".so", ".metallib"))], every
    # nothing else ships: the archives of five CPU variants and llama-common are about 40 MiB
    # (40.004 MiB with patches 0008/0009, 2026-12-03)
    assert sum(os.path.getsize(os.path.join(root, f)) for f in every) < 44 * 1024 * 1024


def test_every_packaged_common_header_compiles(cpu_package, tmp_path):
    """A binding may include any header the package ships: each one compiles from the package
    alone (upstream's internal http.h, which needs cpp-httplib's header, is left out)."""
    root = os.path.join(cpu_package["folder"], "include")
    common = os.path.join(root, "llama-common")
    headers = sorted(os.path.relpath(os.path.join(d, f), common) for d, _, files in os.walk(common) for f in files)
    assert "http.h" not in headers and len(headers) > 30
    src = tmp_path / "all_headers.cpp"
    src.write_text("".join(f'#include "{h}"\n' for h in headers) + "#include <nlohmann/json.hpp>\n")
    subprocess.run(["g++", "-std=c++17", "-fsyntax-only", f"-I{root}", f"-I{common}",
                    f"-I{os.path.join(root, 'llama-common-vendor')}", str(src)], check=True)


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


def test_the_nif_is_self_contained_and_generates(cpu_nif):
    """The tests' NIF (llama-common linked in) as README tells NIF authors to link it: needs only
    the C library, exports only its entry points, can be unloaded; its loader generated twice the
    same tokens with finite logits, and a missing or garbage file was an error."""
    binary, problems = nifcheck.check(cpu_nif["path"], exports=("lnif_",))
    assert problems == []
    assert set(binary.needed) <= {"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"}, binary.needed
    assert nifcheck.leaked(binary) == [] and binary.unique == []
    report = cpu_nif["report"]
    assert report["failures"] == 0 and report["deterministic"] and report["nonfinite_logits"] == 0
    assert len(report["generated"]) == 16
    assert report["missing_file_error"] and report["garbage_file_error"]


def test_erlang_nif_runs_in_a_real_vm(cpu_nif, erlang_ebin):
    """The Erlang NIF (llama-common linked in) in a real erl: generation, errors as tuples, and
    grammar-constrained output that parses as JSON matching its schema ({"ok": boolean})."""
    import json
    needs(cpu_nif["erl_nif"], "Erlang (erl_nif.h)")
    binary, problems = nifcheck.check(cpu_nif["erl_nif"], exports=("nif_init",), undefined=("enif_",))
    assert problems == [] and binary.exports == ["nif_init"]
    proc = subprocess.run(["erl", "-noshell", "-pa", erlang_ebin, "-s", "llama_nif_selftest", "main", "-extra",
                           cpu_nif["model"]], env={**os.environ, "LLAMA_NIF_PRIV": os.path.dirname(cpu_nif["erl_nif"])},
                          capture_output=True, text=True, timeout=600)
    print(proc.stdout[-2000:])
    assert proc.returncode == 0 and "ERLANG NIF OK" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    generated = re.search(r"^generated: \[([\d,]+)\]$", proc.stdout, re.M).group(1)
    assert [int(t) for t in generated.split(",")] == cpu_nif["report"]["generated"], "same tokens as the loader"
    value = json.loads(bytes.fromhex(re.search(r"^erlang chat_json hex: ([0-9A-F]+)$", proc.stdout, re.M).group(1)))
    assert set(value) == {"ok"} and isinstance(value["ok"], bool), value


def test_common_chat_template_and_json_schema_grammar(cpu_nif, tmp_path):
    """llama-common inside the NIF: the built-in ChatML template (the tiny model has none) and
    generation constrained by the grammar common makes of a JSON schema. The random-weight model
    may say anything the grammar allows, so the output must parse and match the schema."""
    import json
    assert cpu_nif["report"]["chat_prompt"], "the loader applied the chat template"
    assert json.loads(cpu_nif["report"]["json"]).keys() == {"color", "count", "ok"}
    lib = ctypes.CDLL(cpu_nif["path"], mode=os.RTLD_NOW | os.RTLD_LOCAL)
    lib.lnif_open.restype = ctypes.c_void_p
    lib.lnif_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    lib.lnif_close.argtypes = [ctypes.c_void_p]
    lib.lnif_last_error.restype = ctypes.c_char_p
    lib.lnif_chat_format.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    lib.lnif_generate_json.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int,
                                       ctypes.c_char_p, ctypes.c_int]
    model_path = cpu_nif["model"]
    model = lib.lnif_open(model_path.encode(), 0, 512)
    assert model, lib.lnif_last_error()
    buf = ctypes.create_string_buffer(8192)
    assert lib.lnif_chat_format(model, b"hello", buf, len(buf)) > 0, lib.lnif_last_error()
    assert buf.value.decode() == "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
    for prompt in (b"hello", b"the llama", buf.value):
        n = lib.lnif_generate_json(model, prompt, json.dumps(SCHEMA).encode(), 400, buf, len(buf))
        assert n > 0, lib.lnif_last_error()
        value = json.loads(buf.value.decode())
        print(f"{prompt[:20]!r} -> {value}")
        assert set(value) == {"color", "count", "ok"}
        assert value["color"] in ("red", "green", "blue") and isinstance(value["ok"], bool)
        assert isinstance(value["count"], int) and 0 <= value["count"] <= 99
    bad = lib.lnif_generate_json(model, b"hello", b"{not json", 16, buf, len(buf))
    assert bad == -1 and lib.lnif_last_error(), "a malformed schema is an error, not an abort"
    lib.lnif_close(model)


def _vocab_cases(tmp_path):
    """Upstream's tokenizer vectors: models/ggml-vocab-*.gguf with .inp/.out, from the source archive."""
    archive = os.path.join(source_mirror(), ARCHIVE)
    if not os.path.exists(archive):
        pytest.fail(f"source archive not found at {archive} (set LLAMA_CPP_SOURCE_MIRROR)")
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if re.search(r"/models/ggml-vocab-[^/]+\.gguf(\.inp|\.out)?$", m.name)]
        tar.extractall(tmp_path, members=members, filter="data")
    models = os.path.join(tmp_path, UPSTREAM, "models")
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
    order = [f for f in libs if f in ("-lllama", "-lggml", "-lggml-cpu", "-lggml-base", "-lstdc++")]
    # pkg-config may repeat an archive next to itself (harmless); the order is what matters
    order = [f for i, f in enumerate(order) if i == 0 or order[i - 1] != f]
    assert order == ["-lllama", "-lggml", "-lggml-cpu", "-lggml-base", "-lstdc++"], libs
    common = subprocess.run(["pkg-config", "--static", "--libs", "llama-common"], env=env, capture_output=True,
                            text=True, check=True).stdout.split()
    order = [f for f in common if f.startswith("-l") and f[2:] in
             ("llama-common", "llama-common-base", "cpp-httplib", "llama", "ggml", "ggml-cpu", "ggml-base")]
    order = [f for i, f in enumerate(order) if i == 0 or order[i - 1] != f]
    assert order == ["-lllama-common", "-lllama-common-base", "-lcpp-httplib", "-lllama", "-lggml", "-lggml-cpu",
                     "-lggml-base"], common
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
    metadata = conan("cache", "path", cpu_package["pref"], "--folder=metadata").stdout.strip()
    with open(os.path.join(metadata, "sbom.cdx.json")) as f:
        sbom = json.load(f)
    component = sbom["metadata"]["component"]
    assert component["name"] == REF
    assert any(c["name"] == "llama-cpp" and c["licenses"][0]["license"]["id"] == "MIT" for c in sbom["components"])
