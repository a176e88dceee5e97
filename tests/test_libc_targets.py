"""Linux targets with a chosen C library, built on this Debian 12 host by the Zig profiles
(profiles/linux-<arch>-glibc2.28 and linux-<arch>-musl; README "Where the binary loads"). CI builds
and runs the x86_64 ones: the glibc 2.28 floor natively, in Debian 11's userland (glibc 2.31) and
under qemu's older CPU models for the dispatch, musl through Debian's musl loader. The aarch64
targets, the musl dispatch under qemu and the speed pairs are bench/libc_targets.py's (figures in
docs/libc-targets.md)."""
import base64
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import time
import zipfile

import pytest

from llama_cpp_recipe import nifcheck
from conftest import (CI_X86_VARIANTS, REF, ROOT, WARMUPS, X86_ROWS, build_programs, debian11_root, erl_nif_include,
                      header_variants, needs, profile, run_loader, stop_warmups, variants_in_archive, warmup_run)

ZIG_TARGETS = {
    # profile: (nifcheck floor, Zig target, options in CI)
    # The glibc-2.28 package has the default options but for the dispatch rows, only those this
    # CPU runs (conftest's X86_ROWS): it is also the x86_64-linux-gnu package of the precompiled
    # set (tests/test_release.py passes the same option; same Conan home: built once). The musl one is
    # llama + ggml only (what the profile changes is the C library under it; llama-common adds
    # about 2 minutes of CI time) with one CPU baseline instead of the dispatch (four sub-builds,
    # about 2 minutes): the glibc-2.28 package proves the dispatch under Zig here,
    # bench/libc_targets.py and the release set on every target.
    "linux-x86_64-glibc2.28": ("glibc2.28", "x86_64-linux-gnu.2.28", X86_ROWS),
    "linux-x86_64-musl": ("musl", "x86_64-linux-musl", ["-o", "*:with_common=False", "-o", "*:cpu_baseline=x86-64-v3"]),
}
# conan create runs test_package (which applies the profile's floor to what it links) for the
# glibc-2.28 package, the release set's; for musl the tests' NIF below, checked for the same floor,
# is a superset (CI time)
TEST_PACKAGE = {"linux-x86_64-glibc2.28"}
DISPATCH_TARGETS = sorted(t for t, (_, _, options) in ZIG_TARGETS.items() if "*:cpu_baseline=x86-64-v3" not in options)
# qemu-user CPU models and the variant the dispatch must choose (tests/test_cpu_dispatch.py)
QEMU_MODELS = {"Nehalem": "x86-64", "Haswell": "haswell"}
MUSL_LOADER = "/lib/ld-musl-x86_64.so.1"  # Debian's musl package


def zig_tool(target, tool):
    return os.path.join(ROOT, "profiles", "zig", "bin", f"{ZIG_TARGETS[target][1]}-{tool}")


WARMED = {}  # Zig target -> seconds its warm-up took, for the ones that finished


def _zig_runtime(tmp_path_factory):
    """Warm-up (conftest's WARMUPS): Zig builds its runtime for a target (compiler-rt, libunwind,
    libc++ and libc++abi, the libc's stubs or musl itself) at the first link, one process at a
    time: 86 s (glibc 2.28) and 125 s (musl) of one core on a Zen 2 VM (AMD EPYC family 23 model
    49), the other core idle, inside the first configure of each package (its try-compiles link).
    The same two links here (a debug C++ executable, as CMake's checks link; an -O2 shared
    object, as the NIFs) fill the session's Zig cache with exactly those builds (the same cache
    hashes) while the tests before this module leave a core idle."""
    work = tmp_path_factory.mktemp("zig-warmup")
    source = work / "warm.cpp"
    source.write_text("#include <stdexcept>\n#include <string>\n#include <vector>\n"
                      "int f(int n) { std::vector<std::string> v(n, \"x\"); if (v.empty()) throw std::runtime_error(\"e\");"
                      " return (int) v.size(); }\nint main() { return f(1) - 1; }\n")
    for target in ZIG_TARGETS:
        started = time.time()
        for flags in ([], ["-O2", "-shared", "-fPIC"]):
            code = warmup_run([zig_tool(target, "c++"), *flags, str(source), "-o", str(work / f"{target}-{len(flags)}")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if code != 0:
                return  # stopped, or no Zig: the tests build the runtime themselves (and say why they fail)
        WARMED[target] = round(time.time() - started)


WARMUPS["zig_warmed"] = _zig_runtime


@pytest.fixture(scope="module", autouse=True)
def zig_warmed(request):
    """This module's tests start: the Zig warm-up stops if it still runs (its finished builds stay
    in the cache; a test never waits for a lock held by a lowest-priority process)."""
    killed = stop_warmups()
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print(f"\nZig runtime warm-up: finished {WARMED or 'none'} (seconds); {killed} command(s) still running killed")


def profiles(target):
    return ["-pr:b", profile("linux-x86_64"), "-pr:h", profile(target)]


@pytest.fixture(scope="module")
def zig_nif(conan, packages, tmp_path_factory):
    """zig_nif(target): the package of a Zig profile (conan create; for TEST_PACKAGE targets its
    test_package runs here, this host being x86_64), the tests' NIF and loader built with the same
    profile, and the loader's run on this host."""
    built = {}

    def get(target):
        if target not in built:
            needs(importlib.util.find_spec("ziglang"), "Zig (the PyPI wheel ziglang, requirements.txt)")
            options = ZIG_TARGETS[target][2]
            skip = [] if target in TEST_PACKAGE else ["-tf", ""]
            package = packages.get(target, *profiles(target), *options, *skip)
            work = tmp_path_factory.mktemp(target)
            programs = build_programs(conan, work, options, profiles=profiles(target))
            proc, report = run_loader(programs, os.path.join(str(work), "run"))
            built[target] = {**programs, "package": package, "report": report, "stdout": proc.stdout}
        return built[target]
    return get


@pytest.fixture(scope="module")
def debian11(tmp_path_factory):
    """Debian 11's glibc 2.31 for amd64, unpacked: (ld.so, library folder)."""
    try:
        root = debian11_root(tmp_path_factory.mktemp("debian11"), ["libc6:amd64"])
    except subprocess.CalledProcessError as error:
        needs(False, f"Debian 11 packages (bullseye) from deb.debian.org: {error.stderr[-300:]}")
    lib = os.path.join(root, "lib", "x86_64-linux-gnu")
    return os.path.join(lib, "ld-linux-x86-64.so.2"), lib


@pytest.fixture(scope="module")
def glibc228_deps(conan, zig_nif, tmp_path_factory):
    """PkgConfigDeps files of the glibc-2.28 package (built by zig_nif), for the NIFs and modules
    linked here with its compilers and pkg-config's line."""
    target = "linux-x86_64-glibc2.28"
    zig_nif(target)
    deps = str(tmp_path_factory.mktemp("glibc228-deps"))
    conan("install", f"--requires={REF}", *profiles(target), *ZIG_TARGETS[target][2], "-g", "PkgConfigDeps", "-of", deps)
    return deps


def test_zig_shared_objects_unload_without_a_crash(tmp_path):
    """The trap profiles/zig/dso_fini.c closes: a shared object zig 0.17 links (here: one static
    std::string) is dlopen()ed, dlclose()d, and the process exits. Linked by zig alone, the
    string's destructor stays registered and runs from unmapped memory at exit (SIGSEGV); through
    the profiles' wrapper the process exits 0. Both links pass -g0 (the wrapper does), so both use
    one build of Zig's runtime (compiler-rt, libunwind: built once per flag set; CI time)."""
    needs(importlib.util.find_spec("ziglang"), "Zig (the PyPI wheel ziglang, requirements.txt)")
    source = tmp_path / "lib.cpp"
    source.write_text('#include <string>\nstatic std::string s(100, \'x\');\nextern "C" int get() { return (int) s.size(); }\n')
    main = tmp_path / "main.c"
    main.write_text('#include <dlfcn.h>\n#include <stdio.h>\nint main(int c, char **v) {\n'
                    '    void *h = dlopen(v[1], RTLD_NOW); if (!h) return 2;\n'
                    '    int (*get)(void) = (int (*)(void)) dlsym(h, "get");\n'
                    '    printf("%d\\n", get()); fflush(stdout); dlclose(h); return 0;\n}\n')
    subprocess.run(["gcc", str(main), "-o", str(tmp_path / "main"), "-ldl"], check=True)
    zig = os.path.join(os.path.dirname(importlib.util.find_spec("ziglang").origin), "zig")
    target = ZIG_TARGETS["linux-x86_64-glibc2.28"][1]
    links = {"zig alone": [zig, "c++", "-target", target, "-g0"],
             "wrapper": [zig_tool("linux-x86_64-glibc2.28", "c++")]}
    codes = {}
    for name, compiler in links.items():
        lib = str(tmp_path / f"{name.replace(' ', '-')}.so")
        subprocess.run([*compiler, "-shared", "-fPIC", "-O2", str(source), "-o", lib], check=True)
        proc = subprocess.run([str(tmp_path / "main"), lib], capture_output=True, text=True, timeout=60)
        assert proc.stdout.strip() == "100", proc.stdout + proc.stderr
        codes[name] = proc.returncode
    print(codes)
    assert codes["zig alone"] == -11, "the trap this wrapper closes (if zig fixed it, dso_fini.c can go)"
    assert codes["wrapper"] == 0


@pytest.mark.parametrize("target", sorted(ZIG_TARGETS))
def test_the_nif_keeps_its_floor_and_generates_the_default_builds_tokens(zig_nif, cpu_nif, target):
    built = zig_nif(target)
    floor = ZIG_TARGETS[target][0]
    binary, problems = nifcheck.check(built["path"], exports=("lnif_",), floor=floor)
    print(nifcheck.report(binary))
    print(f"{target}: {os.path.getsize(built['path'])} bytes; built in {built['package']['seconds']:.0f} s")
    assert problems == [], problems
    if target in TEST_PACKAGE:
        assert f"floor {floor}: kept" in built["package"]["output"], "test_package applied the profile's floor"
    report = built["report"]
    # the loader exited 0 after dlclose (run_loader checks it); the unmapping itself is the Erlang
    # test's (the loader's own thread keeps the library mapped: nif_loader.cpp, unload())
    assert report["failures"] == 0 and report["generated"] == cpu_nif["report"]["generated"]


def test_the_floor_rule_fails_the_default_nif_and_passes_the_glibc228_one(zig_nif, cpu_nif):
    _, problems = nifcheck.check(cpu_nif["path"], exports=("lnif_",), floor="glibc2.28")
    print(problems)
    assert len(problems) == 1 and "the glibc2.28 floor" in problems[0] and "GLIBC_2.3" in problems[0]
    _, problems = nifcheck.check(zig_nif("linux-x86_64-glibc2.28")["path"], exports=("lnif_",), floor="glibc2.28")
    assert problems == []


def test_glibc228_nif_runs_in_debian11(zig_nif, cpu_nif, debian11, tmp_path):
    """The loader and NIF of the glibc 2.28 profile under Debian 11's glibc 2.31 (its own ld.so and
    libc); the default build's NIF, loaded by the same loader there, is refused."""
    built = zig_nif("linux-x86_64-glibc2.28")
    ld_so, lib = debian11
    proc, report = run_loader(built, str(tmp_path / "zig"), emulator=[ld_so, "--library-path", lib])
    print(proc.stdout[-600:])
    assert "system_info" in proc.stdout and report["failures"] == 0
    assert report["generated"] == cpu_nif["report"]["generated"]
    control, _ = run_loader({**built, "path": cpu_nif["path"]}, str(tmp_path / "gcc"), emulator=[ld_so, "--library-path", lib],
                            check=False)
    print(control.stderr[-300:])
    assert control.returncode != 0 and re.search(r"version `GLIBC_2\.3\d' not found", control.stderr)


def test_musl_nif_runs_through_the_musl_loader(zig_nif):
    """The musl loader is the program's interpreter (PT_INTERP): it ran (zig_nif), and the NIF it
    loaded needs musl's libc only."""
    needs(os.path.exists(MUSL_LOADER), f"Debian's musl package ({MUSL_LOADER})")
    built = zig_nif("linux-x86_64-musl")
    with open(built["loader"], "rb") as f:
        assert MUSL_LOADER.encode() in f.read(4096), "the loader is a dynamic musl program"
    binary = nifcheck.inspect(built["path"])
    print(binary.needed)
    assert binary.needed and all(n in ("libc.so",) or n.startswith("ld-musl") for n in binary.needed)


@pytest.mark.parametrize("target", DISPATCH_TARGETS)
def test_dispatch_package_holds_the_rows_asked_for(zig_nif, target):
    """CI builds the package with the dispatch rows this CPU runs (the cpu_variants option, set
    where the CPU lacks a row): the archive holds the code of exactly those, and the package's
    header names exactly those."""
    folder = zig_nif(target)["package"]["folder"]
    rows, listed = variants_in_archive("nm", os.path.join(folder, "lib", "libggml-cpu.a")), header_variants(folder)
    print(f"{target}: rows {rows}, header {listed}, asked {X86_ROWS or 'all'}")
    assert rows == listed == CI_X86_VARIANTS


@pytest.mark.parametrize("model", sorted(QEMU_MODELS))
@pytest.mark.parametrize("target", DISPATCH_TARGETS)
def test_dispatch_chooses_the_variant_under_qemu(zig_nif, cpu_nif, target, model, tmp_path):
    needs(shutil.which("qemu-x86_64"), "qemu-user (qemu-x86_64)")
    built = zig_nif(target)
    proc, report = run_loader(built, str(tmp_path), emulator=["qemu-x86_64", "-cpu", model], env={"LNIF_VERBOSE": "1"})
    chosen = re.search(r"ggml-cpu: variant .*", proc.stderr)
    print(f"{target}, qemu -cpu {model}: {chosen.group(0) if chosen else proc.stderr[-500:]}")
    assert report["cpu_variant"] == QEMU_MODELS[model] and chosen and "chosen for this CPU" in chosen.group(0)
    assert report["failures"] == 0 and report["generated"] == cpu_nif["report"]["generated"]


def test_erlang_purge_and_reload_with_the_glibc228_nif(glibc228_deps, vocab, tmp_path):
    """The hot-upgrade proof of test_c_consumers.py with both NIF versions linked by the glibc 2.28
    profile's compilers: the first leaves the VM's memory map on purge, the second answers."""
    from test_c_consumers import build_reload_nif, purge_and_reload
    erts = erl_nif_include()
    needs(erts, "Erlang (erl, erlc, erl_nif.h)")
    target = "linux-x86_64-glibc2.28"
    deps = glibc228_deps
    compilers = (zig_tool(target, "cc"), zig_tool(target, "c++"))
    priv = tmp_path / "priv"
    priv.mkdir()
    so = build_reload_nif(deps, erts, str(priv / "reload_nif.so"), 1, compilers=compilers)
    v2 = build_reload_nif(deps, erts, str(tmp_path / "reload_nif-v2.so"), 2, compilers=compilers)
    binary, problems = nifcheck.check(so, exports=("nif_init",), undefined=("enif_",), floor="glibc2.28")
    assert problems == [], problems
    lines = purge_and_reload(so, v2, vocab, tmp_path)
    before = lines["before"].split()
    assert before[:2] == ["version", "1"] and int(before[3]) > 1000
    assert lines["purged"] == "mapped false", "the VM unloaded the NIF: its .so left the process"
    assert lines["after"].split()[:2] == ["version", "2"]


PY_MODULE = r"""#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "llama.h"

static PyObject * system_info(PyObject * self, PyObject * args) {
    (void) self; (void) args;
    return PyUnicode_FromString(llama_print_system_info());
}
static PyMethodDef methods[] = {{"system_info", system_info, METH_NOARGS, "llama_print_system_info()"}, {0}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "llama_probe", 0, -1, methods};
PyMODINIT_FUNC PyInit_llama_probe(void) { return PyModule_Create(&module); }
"""


def test_wheel_with_the_glibc228_module_is_manylinux_2_28(glibc228_deps, tmp_path):
    """A Python extension module linked the README way by the glibc 2.28 profile, in a wheel:
    auditwheel (PyPI, the venv .ci/run makes) must call it manylinux_2_28 or older, with nothing
    to graft, and this Python must import it and call llama through it."""
    import sysconfig
    auditwheel = os.path.join(ROOT, ".venv-auditwheel", "bin", "auditwheel")
    needs(os.path.exists(auditwheel), "auditwheel (.ci/run's .venv-auditwheel)")
    from test_c_consumers import pkg_config
    target = "linux-x86_64-glibc2.28"
    cflags, libs = pkg_config(glibc228_deps, static=True)
    (tmp_path / "llama_probe.c").write_text(PY_MODULE)
    (tmp_path / "module.map").write_text("{ global: PyInit_llama_probe; local: *; };\n")
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    module = tmp_path / f"llama_probe{suffix}"
    subprocess.run([zig_tool(target, "c++"), "-x", "c", "-O2", "-fPIC", "-fvisibility=hidden", "-fstack-protector-strong",
                    f"-I{sysconfig.get_paths()['include']}", str(tmp_path / "llama_probe.c"), "-x", "none", "-shared",
                    f"-Wl,--version-script={tmp_path / 'module.map'}", "-Wl,-z,relro,-z,now,-z,noexecstack",
                    "-o", str(module), *cflags, *libs], check=True)
    probe = subprocess.run(["python3", "-c", "import llama_probe; print(llama_probe.system_info())"], cwd=str(tmp_path),
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0 and probe.stdout.startswith("CPU : "), probe.stdout + probe.stderr
    tag = f"cp{sysconfig.get_config_var('py_version_nodot')}"
    wheel = tmp_path / f"llama_probe-0.1-{tag}-{tag}-linux_x86_64.whl"
    files = {module.name: module.read_bytes(),
             "llama_probe-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: llama_probe\nVersion: 0.1\n",
             "llama_probe-0.1.dist-info/WHEEL": (f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: false\n"
                                                 f"Tag: {tag}-{tag}-linux_x86_64\n").encode()}
    record = "".join(f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
                     f"{len(data)}\n" for name, data in files.items()) + "llama_probe-0.1.dist-info/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as z:  # the wheel format (PEP 427): files, then RECORD
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr("llama_probe-0.1.dist-info/RECORD", record)
    # -v: past the tag, auditwheel also says whether any library would have to be grafted in
    show = subprocess.run([auditwheel, "-v", "show", str(wheel)], capture_output=True, text=True, timeout=300)
    text = " ".join(show.stdout.split())
    print(text)
    assert show.returncode == 0, show.stderr[-2000:]
    found = re.search(r'consistent with the following platform tag: "manylinux_2_(\d+)_x86_64"', text)
    assert found and int(found.group(1)) <= 28, text
    assert "The wheel requires no external shared libraries!" in text, text
