"""The test harness, shared by tests/ (through conftest.py's fixtures) and bench/: the version,
archive name and sha256 from conandata.yml, the source-mirror lookup, a Conan runner on a private
CONAN_HOME, variant builds, the test programs (tests/programs) built against a package and run,
and the CUDA toolkit scaffolding. It never reads test_package's log or build folder, and does not
import pytest, so bench/ scripts use it as plain Python.

Both import it as `harness`: a bench script run as `python3 bench/X.py` has bench/ as sys.path[0];
the tests get bench/ (and the repository root) from pytest.ini's `pythonpath`."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROFILES = os.path.join(ROOT, "profiles")


def _conandata_sources():
    import yaml
    with open(os.path.join(ROOT, "conandata.yml")) as f:
        return yaml.safe_load(f)["sources"]


# the version `conan create .` builds (conandata.yml's newest upstream tag, as set_version() picks)
VERSION = max(_conandata_sources(), key=lambda v: int(v.lstrip("b")))
SHA256 = _conandata_sources()[VERSION]["sha256"]  # of the source archive
REF = f"llama-cpp/{VERSION}"
UPSTREAM = f"llama.cpp-{VERSION}"  # top folder of the source archive
ARCHIVE = f"{UPSTREAM}.tar.gz"     # its name in the source mirror
# The one place that puts the repository root on sys.path, for bench scripts (python3 bench/X.py
# has only bench/ there) to import the recipe's package llama_cpp_recipe (its tables, nifcheck);
# under pytest, pytest.ini's `pythonpath` has put it there already.
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from llama_cpp_recipe.cpu import CPU_VARIANTS  # noqa: E402
from llama_cpp_recipe.dispatch import variant_prefix  # noqa: E402


def cpu_info():
    """(model name, set of flags) of this machine's CPU from /proc/cpuinfo (the kernel's view: CPU
    support and enabled OS state); ("unknown CPU", empty set) where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
    except OSError:
        return "unknown CPU", set()
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return fields.get("model name", "unknown CPU"), set(fields.get("flags", "").split())


# /proc/cpuinfo flags (what the kernel reports: CPU support and enabled OS state) per ggml x86 ISA
# flag: an account of what the dispatcher's CPUID/XCR0 probe must find that does not share its code
CPUINFO_X86 = {"SSE42": {"sse4_2", "ssse3", "sse4_1", "popcnt"}, "AVX": {"avx"}, "F16C": {"f16c"}, "FMA": {"fma"},
               "BMI2": {"bmi2"}, "AVX2": {"avx2"}, "AVX_VNNI": {"avx_vnni"},
               "AVX512": {"avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"},
               "AVX512_VBMI": {"avx512vbmi"}, "AVX512_VNNI": {"avx512_vnni"}}


def runnable_variants():
    """The recipe's x86_64 dispatch variants this machine's CPU can run, lowest first (by /proc/cpuinfo)."""
    flags = cpu_info()[1]
    return [v["name"] for v in CPU_VARIANTS["x86_64"] if all(CPUINFO_X86[isa] <= flags for isa in v["isa"])]


# upstream's test-backend-ops, mode test -b CPU (CPU backend vs ggml's reference path), per forced
# variant (tests/test_cpu_dispatch.py, bench/cross_backend_ops.py):
# the ops of a llama graph on small shapes, matrix products with the bench models' weight types
# and the K-quants (590 cases, ~15 s per variant here; the full suite of these ops took 465 s per
# variant, flash attention alone 311 s)
BACKEND_OPS = [
    ("MUL_MAT", r"^type_a=(f32|f16|q8_0|q4_0|q4_K|q6_K),type_b=f32,m=16,n=[0-9]+,k=256,bs=\[1,1\],nr=\[1,1\],"
                r"per=\[0,1,2,3\],"),
    ("FLASH_ATTN_EXT", r"hsk=64,hsv=64,nh=4,nr23=\[1,1\],kv=512,nb=(1|8),"),
    ("ROPE", r"^type=(f32|f16),ne_a=\[(64|128),[0-9]+,2,1\]"),
    ("CPY", r"^type_src=(f32|f16),type_dst=(f32|f16|q8_0|q4_0),ne_src=\[256,"),
    ("RMS_NORM", None), ("SOFT_MAX", r"^type=f32,ne=\[16,"),
    ("ADD", r"^type=f32,ne=\[(16|10|32),"), ("MUL", r"^type=f32,ne=\[(16|10|32),"),
]


# One variant carries every option the default leaves off, so CI builds it once (conftest's
# parts_package): mtmd and ggml-rpc (tests/test_optional_parts.py) and backend=vulkan
# (tests/test_vulkan.py; with no Vulkan device visible it runs exactly the CPU path the others test). Its CPU backend is one baseline,
# x86-64-v3, instead of the default runtime dispatch (tests/test_cpu_dispatch.py proves that on
# the cpu package): single-baseline builds stay proven, and CI skips four sub-builds. llama-common
# is left out: the default package proves it, and here it would only add build time.
PARTS = ["-o", "*:with_mtmd=True", "-o", "*:with_rpc=True", "-o", "*:with_common=False",
         "-o", "*:cpu_baseline=x86-64-v3", "-o", "*:backend=vulkan"]


# upstream's test-backend-ops, mode test -b Vulkan0 (Vulkan vs the CPU backend), on mesa's lavapipe
# (tests/test_vulkan.py, bench/lavapipe_ops.py). On lavapipe (a software device on 2 cores) the
# whole suite takes hours: GET_ROWS alone 305 s, large MUL_MAT shapes minutes per case. So: every
# case of the cheap ops; for the others the weight types of the bench models (F32/F16/Q8_0/Q4_0)
# on upstream's small shapes (a -p regex on the case parameters). MUL_MAT takes each of its shader
# families per type: mat-vec with one, two and three columns (n=1..3: the column loop, odd and
# even) and mat-mat (n=9, 16). n=4..8 run the same mat-vec SPIR-V with a larger NUM_COLS
# specialization constant, which llvmpipe compiles anew for each: 233 of the 267 s those 45 cases
# took with a cold shader cache; bench/lavapipe_ops.py runs them all (LAVAPIPE_MUL_MAT, n any).
LAVAPIPE_MUL_MAT = r"^type_a=(f32|f16|q8_0|q4_0),type_b=f32,m=16,n={n},k=256,bs=\[1,1\],nr=\[1,1\],per=\[0,1,2,3\],"
LAVAPIPE_OPS = [
    ("MUL_MAT", LAVAPIPE_MUL_MAT.format(n="(1|2|3|9|16)")),
    ("GET_ROWS", r"^type=(f32|f16|q8_0|q4_0),"),
    ("CPY", r"^type_src=(f32|f16),type_dst=(f32|f16|q8_0|q4_0),ne_src=\[256,"),
    ("ROPE", r"^type=(f32|f16),ne_a=\[(64|128),[0-9]+,2,1\]"),
    ("RMS_NORM", None), ("SOFT_MAX", None), ("ADD", None), ("MUL", None),
]


def variant_prefixes(arch="x86_64"):
    """{symbol prefix: variant name} of the recipe's cpu_baseline=dispatch variants (CpuDispatch.prefix)."""
    return {variant_prefix(v): v["name"] for v in CPU_VARIANTS[arch]}


def plain_definitions(nm, archive, kinds):
    """What a cpu_baseline=dispatch archive defines under a name without a variant prefix: the
    symbols `nm -P` lists with a type letter in `kinds`, a MinGW `.refptr.<name>` pointer judged
    by <name>. In a correct archive these are the forwarders and llama_cpp_cpu_variant."""
    prefixes = tuple(variant_prefixes())
    listing = subprocess.run([nm, "--defined-only", "-P", archive], capture_output=True, text=True,
                             check=True).stdout
    rows = [row.split() for row in listing.splitlines()]
    return {r[0] for r in rows if len(r) >= 2 and r[1] in kinds and not r[0].removeprefix(".refptr.").startswith(prefixes)}


def declared_cpu_functions(package_folder, cc="gcc"):
    """The functions the package's ggml-cpu.h declares, as the C compiler sees them: gcc's
    -aux-info lists every function prototype of a translation unit with the file it comes from.
    Independent of the recipe's header parser (header_functions()), which generates the
    forwarders: a declaration the parser missed is missing from the archive, not from both."""
    include = os.path.join(package_folder, "include")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "h.c"), "w") as f:
            f.write('#include "ggml-cpu.h"\n')
        info = os.path.join(tmp, "prototypes.txt")
        subprocess.run([cc, "-c", "-o", os.devnull, "-aux-info", info, "-I", include,
                        os.path.join(tmp, "h.c")], check=True, capture_output=True)
        with open(info) as f:
            lines = [line for line in f if "/ggml-cpu.h:" in line.split("*/")[0]]
    names = {re.search(r"(\w+)\s*\(", line.split("*/", 1)[1]).group(1) for line in lines}
    assert len(names) == len(lines) and len(names) > 30, lines[:5]
    return names


def instructions_by_variant(objdump, archive, patterns, arch="x86_64"):
    """`objdump -d` of a cpu_baseline=dispatch archive: per variant (function labels carry its
    symbol prefix; "-" is the dispatcher's own code) the number of instruction lines and of lines
    matching each regex of `patterns` ({name: regex})."""
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", archive], capture_output=True, text=True,
                         check=True).stdout
    prefixes = variant_prefixes(arch)
    counts = {name: dict.fromkeys([*patterns, "lines"], 0) for name in [*prefixes.values(), "-"]}
    current = "-"
    for line in out.splitlines():
        label = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if label:
            current = next((name for p, name in prefixes.items() if label.group(1).startswith(p)), "-")
            continue
        c = counts[current]
        c["lines"] += 1
        for name, pattern in patterns.items():
            c[name] += bool(re.search(pattern, line))
    return counts


def source_mirror():
    """Folder holding llama.cpp-<version>.tar.gz: $LLAMA_CPP_SOURCE_MIRROR or ../shared/sources."""
    return os.environ.get("LLAMA_CPP_SOURCE_MIRROR") or os.path.join(os.path.dirname(ROOT), "shared", "sources")


def profile(name):
    return os.path.join(PROFILES, name)


def _conan_executable():
    """The conan script installed next to this Python (so PATH can be changed freely in tests)."""
    beside = os.path.join(os.path.dirname(sys.executable), "conan")
    return beside if os.path.exists(beside) else shutil.which("conan")


class Conan:
    """Runs the conan CLI against the session's private CONAN_HOME."""
    executable = _conan_executable()

    def __init__(self, home):
        self.home = home
        self.env = dict(os.environ, CONAN_HOME=home)
        self.env.pop("SOURCE_DATE_EPOCH", None)

    def __call__(self, *args, check=True, env=None, cwd=ROOT, timeout=3600, graph=False):
        """Runs conan; proc.stdout is its log. graph=True adds --format=json and puts the parsed
        graph in proc.graph (Conan writes it to stdout, the log to stderr)."""
        started = time.time()
        proc = subprocess.run([self.executable, *args, *(["--format=json"] if graph else [])], cwd=cwd,
                              env={**self.env, **(env or {})}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE if graph else subprocess.STDOUT, text=True, timeout=timeout)
        proc.seconds = time.time() - started
        if graph:
            proc.graph = json.loads(proc.stdout) if proc.returncode == 0 else None
            proc.stdout = proc.stderr
        if check and proc.returncode != 0:
            raise AssertionError(f"conan {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
        return proc

    def install_recipe(self, out, *args, check=True, env=None):
        """`conan install` of the recipe itself: runs config/validate/generate, builds nothing.
        Returns (process, cache variables of the generated CMake preset or None)."""
        proc = self("install", ".", "-of", str(out), *args, check=check, env=env)
        presets = glob.glob(os.path.join(str(out), "**", "CMakePresets.json"), recursive=True)
        if proc.returncode != 0 or not presets:
            return proc, None
        with open(presets[0]) as f:
            return proc, json.load(f)["configurePresets"][0]["cacheVariables"]


def private_conan(home, mirror=None):
    """A Conan on the scratch home `home` (made if missing): the default profile linux-x86_64,
    sources from `mirror` (default: source_mirror()), no remotes."""
    os.makedirs(os.path.join(home, "profiles"), exist_ok=True)
    shutil.copy(profile("linux-x86_64"), os.path.join(home, "profiles", "default"))
    with open(os.path.join(home, "global.conf"), "w") as f:
        f.write(f"user.llama-cpp:source_mirror={mirror or source_mirror()}\n")
    conan = Conan(home)
    conan("remote", "remove", "*", check=False)
    return conan


def build_package(conan, *args, env=None, check=True, graph=False):
    """conan create for one variant, test_package included; returns the process (output, timing).
    Native by default; pass -pr:h PROFILE for a cross target (the build profile stays linux-x86_64)."""
    host = [] if "-pr:h" in args else ["-pr:h", profile("linux-x86_64")]
    return conan("create", ".", "--build=missing", "-pr:b", profile("linux-x86_64"), *host, *args, env=env,
                 check=check, graph=graph)


def package_node(graph):
    """The llama-cpp node of a `--format=json` graph from conan create/install: its
    package_folder, package_id, ..."""
    return next(n for n in graph["graph"]["nodes"].values() if str(n.get("ref", "")).startswith(REF))


class Packages:
    """Each package variant is built once per session, on first use, and shared by every test."""

    def __init__(self, conan):
        self.conan = conan
        self.built = {}

    def get(self, key, *args, env=None):
        if key not in self.built:
            proc = build_package(self.conan, *args, env=env, graph=True)
            node = package_node(proc.graph)
            self.built[key] = {"output": proc.stdout, "folder": node["package_folder"], "seconds": proc.seconds,
                               "pref": f"{REF}:{node['package_id']}"}
        return self.built[key]


def extract_upstream(dest, *members):
    """Files or folders (with everything in them) of the source archive, paths below its top
    folder, extracted into `dest`; returns the extracted top folder, dest/llama.cpp-<version>."""
    import tarfile
    with tarfile.open(os.path.join(source_mirror(), ARCHIVE)) as tar:
        names = [f"{UPSTREAM}/{m}" for m in members]
        chosen = [t for t in tar.getmembers() if any(t.name == n or t.name.startswith(n + "/") for n in names)]
        missing = [n for n in names if not any(t.name == n for t in chosen)]
        assert not missing, f"not in {ARCHIVE}: {missing}"
        tar.extractall(dest, members=chosen, filter="data")
    return os.path.join(str(dest), UPSTREAM)


def build_consumer(conan, work, source, options, defines=(), timeout=1800, profiles=None, env=None):
    """The CMake project `source` built against the package of `options` the way a consumer builds
    it: `conan install` (CMakeDeps + CMakeToolchain) into work/deps, then a Ninja Release configure
    with `defines` (-D arguments) and build into work/build. `profiles` replaces the native
    `-pr:a linux-x86_64` (a cross target: -pr:b/-pr:h). Returns the build folder."""
    deps = os.path.join(str(work), "deps")
    build = os.path.join(str(work), "build")
    conan("install", f"--requires={REF}", *(["-pr:a", profile("linux-x86_64")] if profiles is None else profiles), *options,
          "-g", "CMakeDeps", "-g", "CMakeToolchain", "-of", deps, env=env)
    for cmd in (["cmake", "-S", source, "-B", build, "-G", "Ninja", f"-DCMAKE_TOOLCHAIN_FILE={deps}/conan_toolchain.cmake",
                 "-DCMAKE_BUILD_TYPE=Release", *defines],
                ["cmake", "--build", build]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return build


PROGRAMS = os.path.join(ROOT, "tests", "programs")


def erl_nif_include():
    """The folder of erl_nif.h of the Erlang on this machine, or None."""
    if not shutil.which("erl") or not shutil.which("erlc"):
        return None
    root = subprocess.run(["erl", "-noshell", "-eval", 'io:format("~s", [code:root_dir()]), halt().'],
                          capture_output=True, text=True, timeout=120).stdout.strip()
    include = os.path.join(root, "usr", "include")
    return include if os.path.exists(os.path.join(include, "erl_nif.h")) else None


def build_programs(conan, work, options, profiles=None, env=None, upstream_tests=False):
    """tests/programs built against the package of `options` (native, or the target of `profiles`):
    the tests' NIF and its loader, the Erlang NIF where Erlang is installed (native only), mtmd_nif /
    rpc_nif / upstream's test-mtmd-c-api where the package has those parts. Returns the paths:
    path (the NIF), loader, erl_nif (or None), build, work."""
    work = str(work)
    cross = profiles is not None and "-pr:h" in profiles
    windows = cross and "windows" in profiles[profiles.index("-pr:h") + 1]
    defines = []
    include = None if cross else erl_nif_include()
    if include:
        defines.append(f"-DERL_NIF_INCLUDE_DIR={include}")
    if upstream_tests:
        upstream = extract_upstream(os.path.join(work, "upstream"), "tests/test-mtmd-c-api.c")
        defines.append(f"-DUPSTREAM_TESTS_DIR={upstream}/tests")
    build = build_consumer(conan, os.path.join(work, "programs"), PROGRAMS, options, defines, profiles=profiles, env=env)
    erl_nif = os.path.join(build, "priv", "llama_cpp_ex_nif.so")
    return {"path": os.path.join(build, "libllama_nif.dll" if windows else "libllama_nif.so"),
            "loader": os.path.join(build, "nif_loader.exe" if windows else "nif_loader"),
            "erl_nif": erl_nif if os.path.exists(erl_nif) else None, "build": build, "work": work}


def run_loader(programs, work, emulator=(), env=None, check=True, timeout=900):
    """The tests' loader on the tests' NIF (under `emulator`, a command list, for a cross target):
    it writes work/tiny-llama.gguf and work/report.json. Returns (process, report or None)."""
    os.makedirs(work, exist_ok=True)
    proc = subprocess.run([*emulator, programs["loader"], programs["path"], str(work)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})
    assert not check or proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = os.path.join(str(work), "report.json")
    if not os.path.exists(report):
        return proc, None
    with open(report, encoding="utf-8", errors="surrogateescape") as f:
        return proc, json.loads(f.read())


def run_logits(programs, work, models, tokens, emulator=(), env=None, timeout=900):
    """The tests' loader in --logits mode: each GGUF of `models` decodes `tokens` (ids) in one batch.
    Returns (process, {model path: float32 array of shape (len(tokens), vocab)}); the process's
    stdout has a "cpu_variant: NAME" line (the variant that ran)."""
    import numpy as np
    os.makedirs(work, exist_ok=True)
    proc = subprocess.run([*emulator, programs["loader"], programs["path"], str(work), "--logits",
                           ",".join(str(t) for t in tokens), *models], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = {}
    for model in models:
        values = np.fromfile(os.path.join(str(work), os.path.basename(model) + ".logits"), np.float32)
        out[model] = values.reshape(len(tokens), -1)
    return proc, out


_LOAD_CALL_UNLOAD = """import ctypes, sys
from _ctypes import dlclose
path, function, args = sys.argv[1], sys.argv[2], [a.encode() for a in sys.argv[3:]]
lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
result = getattr(lib, function)(*args) if function else None
dlclose(lib._handle)
print(result, "mapped" if path in open("/proc/self/maps").read() else "unmapped")
"""


def load_call_unload(path, function="", *args):
    """In a fresh process: dlopen `path` (RTLD_NOW), call `function` (C int, byte-string
    arguments) if one is named, dlclose it. Returns (its result or None, whether the library is
    still in the process's memory map)."""
    proc = subprocess.run([sys.executable, "-c", _LOAD_CALL_UNLOAD, path, function, *args], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result, mapped = proc.stdout.split()
    return (None if result == "None" else int(result)), mapped == "mapped"


def make_cuda_toolkit(root):
    """Test-time scaffolding only (the recipe never sees it): this machine has nvcc + cudart in
    /usr/local/cuda and cuBLAS only as the PyPI wheel nvidia-cublas (headers and .so.13, no
    unversioned links). Build one toolkit root of symlinks in the empty folder `root` that
    FindCUDAToolkit accepts as a normal install: nvcc resolves its TOP from the link's folder, so
    headers and libraries found under the root are what CMake and nvcc use. Returns the root;
    bin/nvcc is the CUDA compiler. Raises LookupError naming what is missing."""
    src = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    if not os.path.exists(os.path.join(src, "bin", "nvcc")):
        raise LookupError(f"nvcc under {src} (or set CUDA_HOME)")
    from importlib import metadata
    try:  # the nvidia-cublas wheel (.ci/run installs it): <site>/nvidia/cu13/{include,lib}
        dist = metadata.distribution("nvidia-cublas")
        header = next(f for f in dist.files if f.name == "cublas_v2.h")
        cublas = os.path.dirname(os.path.dirname(str(dist.locate_file(header))))
    except (metadata.PackageNotFoundError, StopIteration):
        raise LookupError("cuBLAS (pip install nvidia-cublas)") from None
    os.symlink(os.path.join(src, "bin"), os.path.join(root, "bin"))
    os.symlink(os.path.join(src, "nvvm"), os.path.join(root, "nvvm"))
    for sub, extra in (("include", os.path.join(cublas, "include")), ("lib", os.path.join(cublas, "lib"))):
        os.makedirs(os.path.join(root, sub))
        for folder in (os.path.join(src, sub), extra):
            for name in os.listdir(folder):
                link = os.path.join(root, sub, name)
                if not os.path.lexists(link):
                    os.symlink(os.path.join(folder, name), link)
    for lib in ("cublas", "cublasLt"):  # the wheel has libX.so.13 only; the linker wants libX.so
        versioned = sorted(n for n in os.listdir(os.path.join(root, "lib")) if n.startswith(f"lib{lib}.so."))[0]
        os.symlink(versioned, os.path.join(root, "lib", f"lib{lib}.so"))
    os.symlink("lib", os.path.join(root, "lib64"))
    os.makedirs(os.path.join(root, "targets", "x86_64-linux"))
    os.symlink("../../include", os.path.join(root, "targets", "x86_64-linux", "include"))
    os.symlink("../../lib", os.path.join(root, "targets", "x86_64-linux", "lib"))
    return root


def cuda_create_args(toolkit):
    """conan create arguments for backend=cuda against a toolkit root from make_cuda_toolkit(),
    and the environment to run it in: only the runtime libraries on the loader path, no driver."""
    lib = os.path.join(toolkit, "lib")
    nvcc = os.path.join(toolkit, "bin", "nvcc")
    # C and C++ through the same driver names CMake finds for every other build (cc, c++), not the
    # profile's gcc/g++: ccache hashes the driver's name, so only then can it serve this build the
    # objects the parts build compiled (conftest.ccache)
    args = ["-pr:h", profile("linux-x86_64-cuda"),
            "-c", f"tools.build:compiler_executables={{'c': 'cc', 'cpp': 'c++', 'cuda': '{nvcc}'}}",
            "-c", f"tools.build:sharedlinkflags=['-L{lib}']", "-c", f"tools.build:exelinkflags=['-L{lib}']"]
    return args, {"LD_LIBRARY_PATH": lib}


# Debian 11's C libraries, for running binaries with an old glibc floor on this newer host: glibc
# 2.31 (amd64, arm64) and musl 1.2.2 (arm64; the amd64 musl loader is Debian 12's `musl` package).
# Fetched from the Debian archive with apt's own download (a private apt state: nothing of the
# machine's apt configuration changes) and unpacked, not installed.
DEBIAN11 = "deb [arch=amd64,arm64] http://deb.debian.org/debian bullseye main"


def debian11_root(dest, packages):
    """`packages` (apt names with :arch, libc6:amd64) unpacked into dest/root; returns that root.
    Binaries run there through its loader: root/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path
    root/lib/x86_64-linux-gnu PROGRAM, or qemu-aarch64 -L root PROGRAM."""
    dest = str(dest)
    root = os.path.join(dest, "root")
    state = os.path.join(dest, "apt")
    for folder in ("lists/partial", "cache/archives/partial", "debs"):
        os.makedirs(os.path.join(state, folder), exist_ok=True)
    with open(os.path.join(state, "sources.list"), "w") as f:
        f.write(DEBIAN11 + "\n")
    open(os.path.join(state, "status"), "w").close()
    apt = ["apt-get", "-q", "-o", f"Dir::Etc::SourceList={state}/sources.list", "-o", "Dir::Etc::SourceParts=/nonexistent",
           "-o", f"Dir::State::Lists={state}/lists", "-o", f"Dir::Cache={state}/cache",
           "-o", f"Dir::State::status={state}/status", "-o", "APT::Architectures::=amd64",
           "-o", "APT::Architectures::=arm64", "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root"]
    subprocess.run([*apt, "update"], check=True, capture_output=True, timeout=600)
    debs = os.path.join(state, "debs")
    subprocess.run([*apt, "download", *packages], check=True, capture_output=True, timeout=600, cwd=debs)
    for deb in sorted(os.listdir(debs)):
        subprocess.run(["dpkg-deb", "-x", os.path.join(debs, deb), root], check=True)
    return root
