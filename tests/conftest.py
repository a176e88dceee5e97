"""Shared fixtures: one temporary CONAN_HOME per test session (never ~/.conan2), no remotes,
sources from the local mirror, and each package variant built once per session. The plain helpers
live in bench/harness.py (the bench scripts use them too; pytest.ini puts bench/ on sys.path) and
are re-exported here for the tests."""
import ast
import os
import re
import shutil
import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from llama_cpp_recipe.cpu import CPU_VARIANTS
from harness import (ARCHIVE, BACKEND_OPS, LAVAPIPE_OPS, PARTS, PROFILES, REF, ROOT, SHA256, UPSTREAM, VERSION, Conan,  # noqa: F401
                     Packages, build_consumer, build_package, build_programs, cpu_info, cuda_create_args,
                     debian11_root, declared_cpu_functions, erl_nif_include, extract_upstream, instructions_by_variant,
                     load_call_unload, make_cuda_toolkit, package_node, plain_definitions, private_conan,
                     profile, run_loader, run_logits, runnable_variants, source_mirror, variant_prefixes)


XDG_DIRS = {"XDG_CACHE_HOME": "xdg-cache", "XDG_CONFIG_HOME": "xdg-config", "XDG_DATA_HOME": "xdg-data"}


@pytest.fixture(scope="session", autouse=True)
def private_user_dirs(tmp_path_factory):
    """The XDG cache, config and data folders of every process the tests start point into the
    session's temporary folder: mesa's lavapipe writes its shader cache to ~/.cache (a warm cache
    also hid the real cost of compiling shaders from CI's timings), wine its menus to ~/.config
    and ~/.local/share. Tests never write the user's home."""
    with pytest.MonkeyPatch.context() as env:
        for name, folder in XDG_DIRS.items():
            env.setenv(name, str(tmp_path_factory.mktemp(folder)))
        yield


# Work a test module registers at import (fixture name -> function(tmp_path_factory)) to start
# when the session starts, in a thread, if a collected test uses that fixture. Its commands
# (background_popen) run at the lowest CPU priority: they take what the tests leave idle (a core
# while qemu, wine, erl or Python run single-threaded, configure steps, links) and yield the CPU
# to the tests' own builds. The fixture of that name returns the function's result, waiting for
# it there (background[name].result()); what still runs when the session ends is killed.
BACKGROUND = {}
_BACKGROUND_PROCS = []
_BACKGROUND_LOCK = threading.Lock()
_SESSION_ENDED = threading.Event()


def background_popen(args, **kwargs):
    """subprocess.Popen for background work: at nice 19, in its own process group (for killpg)
    but not in a new session (setsid); none starts once the test session has ended. With the
    kernel's autogroup scheduling (Debian's default) a new session gets its own scheduling group,
    which takes a fair share of the CPU whatever its nice value (measured: two foreground
    processes got 5.6 of 16 CPU-seconds against two at nice 19 in a new session, 15.8 of 16
    against the same in their own process group)."""
    with _BACKGROUND_LOCK:
        if _SESSION_ENDED.is_set():
            raise RuntimeError("the test session has ended")
        proc = subprocess.Popen(["nice", "-n", "19", *args], process_group=0, **kwargs)
        _BACKGROUND_PROCS.append(proc)
    return proc


# Warm-up work (trigger fixture name -> function(tmp_path_factory)): started with the session, in a
# thread, if a collected test uses the trigger fixture, and never waited for. It fills a cache the
# tests share (Zig's: tests/test_libc_targets.py) with what their own steps would otherwise build
# one process at a time, leaving a core idle. Its commands (warmup_run) run at the lowest CPU
# priority like BACKGROUND's; stop_warmups() kills what still runs, so that no test waits for a
# cache lock held by a process that gets no CPU.
WARMUPS = {}
_WARMUP_PROCS = []
_WARMUPS_STOPPED = threading.Event()


def warmup_run(args, **kwargs):
    """Runs one warm-up command (background_popen) to its end; returns its exit status, or None
    once stop_warmups() has been called (then nothing more starts)."""
    with _BACKGROUND_LOCK:
        if _WARMUPS_STOPPED.is_set():
            return None
    proc = background_popen(args, **kwargs)
    with _BACKGROUND_LOCK:
        _WARMUP_PROCS.append(proc)
        if _WARMUPS_STOPPED.is_set():
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait()


def stop_warmups():
    """Kills the warm-up commands that still run; none starts after this."""
    with _BACKGROUND_LOCK:
        _WARMUPS_STOPPED.set()
        running = [proc for proc in _WARMUP_PROCS if proc.poll() is None]
        for proc in running:
            os.killpg(proc.pid, signal.SIGKILL)
    return len(running)


def pytest_collection_modifyitems(items):
    """The tests that wait for background work run last (stable order otherwise): the work then has
    the whole session's idle CPU."""
    items.sort(key=lambda item: any(name in BACKGROUND for name in item.fixturenames))


@pytest.fixture(scope="session", autouse=True)
def background(request, tmp_path_factory, private_user_dirs):
    used = {name for item in request.session.items for name in item.fixturenames}
    pool = ThreadPoolExecutor(max_workers=max(1, len(BACKGROUND) + len(WARMUPS)))
    jobs = {name: pool.submit(work, tmp_path_factory) for name, work in BACKGROUND.items() if name in used}
    for trigger, work in WARMUPS.items():
        if trigger in used:
            pool.submit(work, tmp_path_factory)
    yield jobs
    stop_warmups()
    with _BACKGROUND_LOCK:
        _SESSION_ENDED.set()
        for proc in _BACKGROUND_PROCS:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    pool.shutdown(wait=True, cancel_futures=True)


def needs(available, what):
    """A prerequisite that .ci/run installs: missing under CI is a failure, elsewhere a skip."""
    if available:
        return
    message = f"{what} is not available (.ci/run installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def conan(tmp_path_factory):
    # LLAMA_CPP_TEST_HOME: a scratch home kept between runs, for development only (packages built
    # by an earlier run are reused); never the user's real ~/.conan2
    home = os.environ.get("LLAMA_CPP_TEST_HOME") or str(tmp_path_factory.mktemp("conan_home"))
    assert os.path.abspath(home) != os.path.abspath(os.path.expanduser("~/.conan2")), "not the real Conan home"
    return private_conan(home)


@pytest.fixture(scope="session")
def packages(conan):
    return Packages(conan)


@pytest.fixture(scope="session")
def ccache(conan, tmp_path_factory):
    """Environment that puts ccache in front of the C/C++ compilers, for the native gcc package
    builds, whose bytes no test compares (CI time): the default, the parts and the reduced cuda
    variants compile llama and ggml-base the same, and the parts and cuda ones the x86-64-v3
    ggml-cpu too. ccache's relative paths (base_dir) change the __FILE__ strings, so never for a
    package whose bytes a test compares: the reproducibility test's (tests/test_supply_chain.py)
    is built without it in both homes. Empty where ccache is not installed (it only saves time)."""
    if not shutil.which("ccache"):
        return {}
    return {"CMAKE_C_COMPILER_LAUNCHER": "ccache", "CMAKE_CXX_COMPILER_LAUNCHER": "ccache",
            "CCACHE_DIR": str(tmp_path_factory.mktemp("ccache")), "CCACHE_BASEDIR": conan.env["CONAN_HOME"],
            "CCACHE_NOHASHDIR": "1"}


@pytest.fixture(scope="session")
def parts_package(packages, ccache):
    # no test_package run: parts_nif builds and runs the tests' NIF, a superset, against it (CI time)
    return packages.get("parts", *PARTS, "-tf", "", env=ccache)


# The cross packages CI builds (tests/test_cross.py; tests/test_supply_chain.py builds the riscv64
# one a second time for the reproducibility proof). The armv8 and riscv64 ones leave llama-common
# out: what they prove is the CPU code, the link and the loader under emulation, and common costs
# 260-360 CPU-seconds of compiling per package (ninja logs, docs/ci.md). The MinGW one keeps it: it
# is also the Windows package of the precompiled set, CI's second release target
# (tests/test_release.py, the same options through release.py's -o). No test_package (CI time):
# the tests' own NIF and loader, a superset, run under the emulator; test_package under an
# emulator (the conf user.llama-cpp:emulator, README "Cross builds") is bench/libc_targets.py's,
# for aarch64 under qemu.
LEAN = ["-o", "*:with_common=False"]
# CI's x86_64 dispatch packages other than the default one, the glibc-2.28 Zig package (also the
# release test's) and the MinGW one, compile only the CPU_VARIANTS rows this machine's CPU runs (the
# cpu_variants option): no test here can run the others, and each costs about 65 CPU-seconds per
# package (on the AVX2 machines: alderlake, skylakex and icelake). The default package keeps every
# row (tests/test_cpu_dispatch.py checks each row's code in its archive, AVX-512 included);
# bench/release_set.py builds every target with every row.
CI_X86_VARIANTS = runnable_variants()
X86_ROWS = ([] if CI_X86_VARIANTS == [v["name"] for v in CPU_VARIANTS["x86_64"]]
            else ["-o", f"*:cpu_variants={','.join(CI_X86_VARIANTS)}"])
CROSS_OPTIONS = {"linux-armv8": LEAN, "linux-riscv64": LEAN, "windows-x86_64-mingw": X86_ROWS}


def variants_in_archive(nm, archive):
    """The x86_64 CPU_VARIANTS rows whose renamed code a cpu_baseline=dispatch archive holds (a
    function defined under the row's prefix), in table order."""
    listing = subprocess.run([nm, "--defined-only", "-P", archive], capture_output=True, text=True, check=True).stdout
    code = {row.split()[0] for row in listing.splitlines() if len(row.split()) >= 2 and row.split()[1] == "T"}
    return [name for prefix, name in variant_prefixes().items() if any(s.startswith(prefix) for s in code)]


def header_variants(package_folder):
    """The variant names a dispatch package's llama-cpp-cpu-variant.h lists."""
    with open(os.path.join(package_folder, "include", "llama-cpp-cpu-variant.h")) as f:
        return re.search(r"one of: ([^)]*)\)", f.read()).group(1).split(", ")


def cross_compiler(target):
    """The C++ compiler a cross target's profile names (tools.build:compiler_executables 'cpp')."""
    with open(profile(target)) as f:
        line = re.search(r"^tools\.build:compiler_executables=(.+)$", f.read(), re.M).group(1)
    return ast.literal_eval(line)["cpp"]


def cross_profiles(target):
    """The profile arguments of a cross target: built on linux-x86_64, for `target`."""
    return ["-pr:b", profile("linux-x86_64"), "-pr:h", profile(target)]


def cross_create_args(target):
    """`conan create` arguments of the CI package for a cross target."""
    return [*cross_profiles(target), *CROSS_OPTIONS[target], "-tf", ""]


@pytest.fixture(scope="session")
def cpu_package(packages, ccache):
    """The default cpu package, built once per session through the README's build command shape
    (test_package included; through ccache, which the parts and cuda builds then reuse)."""
    return packages.get("cpu", env=ccache)


def programs_run(conan, work, options):
    """tests/programs built against a package and its loader run once: the built paths plus
    model (the tiny GGUF the loader wrote) and report (the loader's JSON facts)."""
    programs = build_programs(conan, work, options, upstream_tests="*:with_mtmd=True" in options)
    proc, report = run_loader(programs, os.path.join(str(work), "run"))
    print(proc.stdout[-1500:])
    return {**programs, "model": os.path.join(str(work), "run", "tiny-llama.gguf"), "report": report}


@pytest.fixture(scope="session")
def cpu_nif(conan, cpu_package, tmp_path_factory):
    """The tests' NIF, loader and Erlang NIF built against the cpu package, and the loader's run."""
    return programs_run(conan, tmp_path_factory.mktemp("programs-cpu"), [])


@pytest.fixture(scope="session")
def parts_nif(conan, parts_package, tmp_path_factory):
    """The same against the parts package (vulkan + mtmd + rpc), with mtmd_nif, rpc_nif and
    upstream's test-mtmd-c-api."""
    return programs_run(conan, tmp_path_factory.mktemp("programs-parts"), PARTS)


def backend_ops_tool(conan, work, options):
    """bench/gpu_tool (upstream's test-backend-ops + a CPU-vs-GPU logits probe) linked like a NIF
    against the package of `options`."""
    upstream = extract_upstream(work, "tests/test-backend-ops.cpp")
    build = build_consumer(conan, work, os.path.join(ROOT, "bench", "gpu_tool"), options,
                           [f"-DUPSTREAM_TESTS_DIR={upstream}/tests", f"-DTEST_PACKAGE_SRC={ROOT}/test_package/src"])
    return {"tool": os.path.join(build, "gpu_tool"), "work": str(work)}


@pytest.fixture(scope="session")
def gpu_tool(conan, parts_package, tmp_path_factory):
    """The backend-ops tool against the parts package (tests/test_vulkan.py runs it on lavapipe)."""
    return backend_ops_tool(conan, tmp_path_factory.mktemp("gpu-tool"), PARTS)


@pytest.fixture(scope="session")
def cpu_tool(conan, cpu_package, tmp_path_factory):
    """The same against the default cpu package (tests/test_cpu_dispatch.py forces each variant)."""
    return backend_ops_tool(conan, tmp_path_factory.mktemp("cpu-tool"), [])


@pytest.fixture(scope="session")
def erlang_ebin(tmp_path_factory):
    """The tests' Erlang modules (tests/programs/nif/erlang) compiled once."""
    needs(shutil.which("erlc"), "Erlang (erlc)")
    ebin = str(tmp_path_factory.mktemp("ebin"))
    erl_dir = os.path.join(ROOT, "tests", "programs", "nif", "erlang")
    subprocess.run(["erlc", "-o", ebin, *(os.path.join(erl_dir, f) for f in sorted(os.listdir(erl_dir)))], check=True)
    return ebin


@pytest.fixture(scope="session")
def cuda_toolkit(tmp_path_factory):
    """A toolkit root of symlinks for this session (see make_cuda_toolkit)."""
    try:
        return make_cuda_toolkit(str(tmp_path_factory.mktemp("cuda-root")))
    except LookupError as missing:
        needs(False, str(missing))


@pytest.fixture(scope="session")
def vocab(tmp_path_factory):
    """Upstream's llama-spm vocabulary from the source archive (vocab-only models load fast)."""
    upstream = extract_upstream(tmp_path_factory.mktemp("vocab"), "models/ggml-vocab-llama-spm.gguf")
    return os.path.join(upstream, "models", "ggml-vocab-llama-spm.gguf")


@pytest.fixture(scope="session")
def oracle(tmp_path_factory):
    """tests/oracle.py's models (one GGUF per weight type of oracle.BOUNDS) and their reference
    logits for oracle.PROMPT, computed once per session in numpy from gguf-py's dequantization:
    reference (plain float64) and rounded (ggml's activation formats applied)."""
    try:
        import numpy as np
    except ImportError:
        needs(False, "numpy (requirements.txt)")
    import oracle as ref
    work = tmp_path_factory.mktemp("oracle")
    gguf = ref.import_gguf(os.path.join(extract_upstream(work, "gguf-py"), "gguf-py"))
    models, reference, rounded = {}, {}, {}
    for qtype in ref.BOUNDS:
        models[qtype] = ref.write_model(gguf, np, os.path.join(str(work), f"oracle-{qtype.lower()}.gguf"), qtype)
        w, types = ref.weights(gguf, np, models[qtype])
        reference[qtype] = ref.forward(np, w, ref.PROMPT)
        rounded[qtype] = ref.forward(np, w, ref.PROMPT, types)
    return {"models": models, "reference": reference, "rounded": rounded, "np": np, "gguf": gguf, "ref": ref,
            "work": str(work)}


def matches_oracle(oracle, programs, work, emulator=(), env=None, models=None):
    """run_logits of every oracle model (or `models`, {type: path}) against its references: returns
    (process, {type: (NMSE of all positions against the float reference, NMSE of the first
    position against the rounded one)}) and prints one line per type; asserts nothing."""
    np, ref = oracle["np"], oracle["ref"]
    models = models or oracle["models"]
    proc, logits = run_logits(programs, work, list(models.values()), ref.PROMPT, emulator=emulator, env=env)
    errors = {q: (ref.nmse(np, logits[path], oracle["reference"][q]),
                  ref.nmse(np, logits[path][0], oracle["rounded"][q][0])) for q, path in models.items()}
    info = re.search(r"cpu_variant: (.+)", proc.stdout)
    print(f"{' '.join(emulator) or 'native'} ({info.group(1) if info else '?'}), NMSE all positions / first: " +
          ", ".join(f"{q} {a:.1e} / {f:.1e}" for q, (a, f) in errors.items()))
    return proc, errors


def within_bounds(oracle, errors):
    """The types whose NMSE exceeds oracle.BOUNDS or oracle.FIRST_BOUNDS, as strings (empty: all kept)."""
    ref = oracle["ref"]
    return [f"{q}: {a:.2e} (bound {ref.BOUNDS[q]:.0e}), first position {f:.2e} (bound {ref.FIRST_BOUNDS[q]:.0e})"
            for q, (a, f) in errors.items() if not (a <= ref.BOUNDS[q] and f <= ref.FIRST_BOUNDS[q])]
