"""C consumers of the cpu package, built the plainest way each generator allows (CMakeDeps,
pkg-config, MakeDeps; tests/programs/c_consumer): no flag of their own says that the archives are
C++ or which symbols to hide. Each library must link, load (ctypes, RTLD_NOW), call llama, export
only its own function (no ggml/llama symbol, no STB_GNU_UNIQUE std:: static) and leave the process's
memory map on dlclose. Each is built twice: with the C++ runtime the package declares (shared
libstdc++) and the way README tells NIF authors to keep libstdc++ out of NEEDED."""
import os
import shlex
import subprocess

import pytest

from llama_cpp_recipe import nifcheck
from conftest import REF, ROOT, erl_nif_include, load_call_unload, needs, profile

SOURCE = os.path.join(ROOT, "tests", "programs", "c_consumer")
RUNTIMES = ("shared-libstdc++", "static-libstdc++")



@pytest.fixture(scope="module")
def deps(conan, cpu_package, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("c_consumer_deps"))
    conan("install", f"--requires={REF}", "-pr:a", profile("linux-x86_64"), "-g", "CMakeDeps", "-g", "CMakeToolchain",
          "-g", "PkgConfigDeps", "-g", "MakeDeps", "-of", out)
    return out


def run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return proc.stdout


def build_cmake(deps, work, static):
    build = os.path.join(work, "build")
    run(["cmake", "-S", SOURCE, "-B", build, "-G", "Ninja", f"-DCMAKE_TOOLCHAIN_FILE={deps}/conan_toolchain.cmake",
         "-DCMAKE_BUILD_TYPE=Release", f"-DSTATIC_CXX_RUNTIME={'ON' if static else 'OFF'}"])
    run(["cmake", "--build", build])
    return os.path.join(build, "libconsumer.so")


def pkg_config(deps, static):
    """(cflags, libs) of llama from the PkgConfigDeps files in `deps`; for a static C++ runtime
    without the package's -lstdc++ (docs/linking.md "C consumers")."""
    env = {**os.environ, "PKG_CONFIG_PATH": deps}
    cflags = shlex.split(run(["pkg-config", "--cflags", "llama"], env=env))
    libs = shlex.split(run(["pkg-config", "--libs", "llama"], env=env))
    return cflags, [flag for flag in libs if not (static and flag == "-lstdc++")]


def build_pkgconfig(deps, work, static):
    """gcc -shared consumer.c $(pkg-config --cflags --libs llama), or for the static runtime g++
    with -static-libstdc++ and the package's -lstdc++ left out."""
    cflags, libs = pkg_config(deps, static)
    obj, out = os.path.join(work, "consumer.o"), os.path.join(work, "libconsumer.so")
    run(["gcc", "-O2", "-fPIC", *cflags, "-c", os.path.join(SOURCE, "consumer.c"), "-o", obj])
    if static:
        run(["g++", "-static-libstdc++", "-static-libgcc", "-shared", obj, "-o", out, *libs])
    else:
        run(["gcc", "-shared", obj, "-o", out, *libs])
    return out


def build_make(deps, work, static):
    out = os.path.join(work, "libconsumer.so")
    run(["make", "-C", SOURCE, f"CONAN_DEPS_DIR={deps}", f"OUT={out}", *(["STATIC_CXX_RUNTIME=1"] if static else [])])
    return out


BUILDERS = {"CMakeDeps": build_cmake, "pkg-config": build_pkgconfig, "MakeDeps": build_make}


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("generator", sorted(BUILDERS))
def test_plain_c_consumer_links_loads_and_unloads(deps, vocab, tmp_path, generator, runtime):
    static = runtime == "static-libstdc++"
    lib = BUILDERS[generator](deps, str(tmp_path), static)
    binary, problems = nifcheck.check(lib, exports=("consumer_",), cxx_runtime_dynamic=not static, hardening=False)
    print(f"{generator}, {runtime}: needs {', '.join(binary.needed)}; exports {binary.exports}")
    # a plain CMake build gives build-tree libraries a RUNPATH to every link directory (`cmake
    # --install` removes it); not the package's doing, and test_package's NIF link has none
    assert [p for p in problems if not p.startswith("has RUNPATH=")] == [], problems
    assert binary.unique == [] and not binary.nodelete
    assert nifcheck.leaked(binary) == []
    assert ("libstdc++.so.6" in binary.needed) is not static
    n_vocab, mapped = load_call_unload(lib, "consumer_vocab_size", vocab)
    assert n_vocab > 1000, "llama loaded the vocabulary through the C library"
    assert not mapped, "dlclose left the library in the process"


# ---------------------------------------------------------------- Erlang hot upgrade of a C NIF

RELOAD = os.path.join(ROOT, "tests", "programs", "reload_nif")


def build_reload_nif(deps, erts, out, version, *extra, compilers=("gcc", "g++")):
    """reload_nif.c linked as README tells NIF authors (pkg-config line, static C++ runtime, only
    nif_init exported, hardened) against erl_nif.h in `erts`; `extra` linker flags for the pinned
    control; `compilers` (C, C++) those of the package's profile."""
    cc, cxx = compilers
    cflags, libs = pkg_config(deps, static=True)
    obj = out + ".o"
    run([cc, "-O2", "-fPIC", "-fvisibility=hidden", "-fstack-protector-strong", f"-DRELOAD_NIF_VERSION={version}",
         f"-I{erts}", *cflags, "-c", os.path.join(RELOAD, "reload_nif.c"), "-o", obj])
    script = out + ".map"
    with open(script, "w") as f:
        f.write("{ global: nif_init; local: *; };\n")
    run([cxx, "-shared", "-static-libstdc++", "-static-libgcc", f"-Wl,--version-script={script}",
         "-Wl,-z,relro,-z,now,-z,noexecstack", obj, "-o", out, *libs, *extra])
    return out


def purge_and_reload(so, v2, vocab, work):
    """reload_test.erl in a real VM: version 1 at `so` loaded and asked for `vocab`'s size, the
    module purged, `v2` copied over `so`, loaded again. Returns its `key: value` lines."""
    ebin = os.path.join(str(work), "ebin-reload")
    os.makedirs(ebin, exist_ok=True)
    run(["erlc", "-o", ebin, os.path.join(RELOAD, "reload_nif.erl"), os.path.join(RELOAD, "reload_test.erl")])
    out = run(["erl", "-noshell", "-pa", ebin, "-s", "reload_test", "main", "-extra", so, v2, vocab],
              env={**os.environ, "RELOAD_NIF_DIR": os.path.dirname(so)}, timeout=300)
    print(out)
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


@pytest.mark.parametrize("link", ["unloadable", "pinned"])
def test_erlang_nif_purge_and_reload(deps, vocab, tmp_path, link):
    """Load the NIF module in a real VM, purge it, see the .so leave the memory map, put a rebuilt
    .so (version 2) at the same path, load again: version 2 answers. The control links version 1
    with -z nodelete (what a unique symbol does too): the checker flags it, it stays mapped and the
    reload silently gets version 1 back."""
    erts = erl_nif_include()
    needs(erts, "Erlang (erl, erlc, erl_nif.h)")
    priv = tmp_path / "priv"
    priv.mkdir()
    so = str(priv / "reload_nif.so")
    build_reload_nif(deps, erts, so, 1, *(["-Wl,-z,nodelete"] if link == "pinned" else []))
    v2 = build_reload_nif(deps, erts, str(tmp_path / "reload_nif-v2.so"), 2)
    problems = nifcheck.check(so, exports=("nif_init",), undefined=("enif_",))[1]
    assert problems == ([] if link == "unloadable" else ["cannot be unloaded: DF_1_NODELETE is set"])
    lines = purge_and_reload(so, v2, vocab, tmp_path)
    vocab_words = lines["before"].split()
    assert vocab_words[:2] == ["version", "1"] and int(vocab_words[3]) > 1000 and vocab_words[5] == "true"
    if link == "unloadable":
        assert lines["purged"] == "mapped false", "the VM unloaded the NIF: its .so left the process"
        assert lines["after"].split()[:2] == ["version", "2"], "the rebuilt NIF answers"
        assert int(lines["after"].split()[3]) == int(vocab_words[3])
    else:
        assert lines["purged"] == "mapped true"
        assert lines["after"].split()[:2] == ["version", "1"], "a pinned library is reused, not reloaded"
