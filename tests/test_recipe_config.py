"""Fast tests: option -> CMake mapping and validation, through `conan install` of the recipe
(config_options/validate/generate run, nothing is built)."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ARCHIVE, ROOT, UPSTREAM, VERSION, needs, private_conan, profile, source_mirror
from llama_cpp_recipe import link, nifcheck
from llama_cpp_recipe.config import cache_variables
from llama_cpp_recipe.cpu import CPU_VARIANTS
from llama_cpp_recipe.templates import cxx_runtime_module

ISA = ["GGML_SSE42", "GGML_AVX", "GGML_F16C", "GGML_FMA", "GGML_BMI2", "GGML_AVX2", "GGML_AVX_VNNI",
       "GGML_AVX512", "GGML_AVX512_VBMI", "GGML_AVX512_VNNI", "GGML_AVX512_BF16"]
HOST = ["-pr:b", profile("linux-x86_64")]


def _isa_on(cache):
    """The ISA flags set ON; every one of them must be set explicitly (ON or OFF): an absent flag
    takes upstream's default, which SOURCE_DATE_EPOCH and cross building change."""
    assert {flag: cache.get(flag) for flag in ISA if cache.get(flag) not in ("ON", "OFF")} == {}, "ISA flags not explicit"
    return {flag for flag in ISA if cache[flag] == "ON"}


@pytest.fixture(scope="module")
def default_cache(conan, tmp_path_factory):
    _, cache = conan.install_recipe(tmp_path_factory.mktemp("default"), "-pr:a", profile("linux-x86_64"))
    return cache


def test_default_build_is_portable_static_and_offline(default_cache):
    c = default_cache
    assert c["BUILD_SHARED_LIBS"] == "OFF"
    assert c["CMAKE_POSITION_INDEPENDENT_CODE"] == "ON"
    assert c["GGML_NATIVE"] == "OFF", "never -march=native by default"
    # runtime CPU dispatch: the main build compiles the floor variant (SSE2), the others are
    # sub-builds (test_dispatch_builds_the_floor_variant_first)
    assert _isa_on(c) == set()
    assert c["GGML_OPENMP"] == "OFF", "libgomp must not reach consumers unless asked for"
    for key in ("GGML_BACKEND_DL", "GGML_CPU_ALL_VARIANTS", "LLAMA_BUILD_TESTS", "LLAMA_BUILD_TOOLS",
                "LLAMA_BUILD_EXAMPLES", "LLAMA_BUILD_SERVER", "LLAMA_BUILD_APP", "LLAMA_OPENSSL",
                "LLAMA_SUBPROCESS", "LLAMA_BUILD_MTMD", "GGML_RPC", "GGML_CUDA", "GGML_METAL", "GGML_CCACHE",
                "GGML_OPENMP_FETCH"):
        assert c[key] == "OFF", key
    assert c["LLAMA_BUILD_COMMON"] == "ON", "llama-common is part of the default package"
    assert c["FETCHCONTENT_FULLY_DISCONNECTED"] == "ON"
    for lang in ("C", "CXX", "OBJC", "CUDA"):
        assert c[f"CMAKE_{lang}_VISIBILITY_PRESET"] == "hidden"
    assert c["CMAKE_VISIBILITY_INLINES_HIDDEN"] == "ON"
    assert c["BUILD_NUMBER"] == "11312"


def test_generate_passes_exactly_cache_variables(default_cache):
    """generate() hands CMake llama_cpp_recipe.config.cache_variables() of the default options,
    every one of them with the same value (its mappings: test_cache_variables.py, without Conan)."""
    import yaml
    with open(os.path.join(ROOT, "conandata.yml")) as f:
        info = yaml.safe_load(f)["build_info"][VERSION]
    expected = cache_variables("Linux", "x86_64", "cpu", "dispatch", info["number"], info["commit"], parts=["with_common"])
    expected = {k: "ON" if v is True else "OFF" if v is False else v for k, v in expected.items()}
    assert {k: default_cache.get(k) for k in expected} == expected


@pytest.mark.parametrize("baseline, expected", [
    ("x86-64-v2", {"GGML_SSE42"}),
    ("x86-64-v3", {"GGML_SSE42", "GGML_AVX", "GGML_F16C", "GGML_FMA", "GGML_BMI2", "GGML_AVX2"}),
    ("x86-64-v4", {"GGML_SSE42", "GGML_AVX", "GGML_F16C", "GGML_FMA", "GGML_BMI2", "GGML_AVX2", "GGML_AVX512"}),
    ("generic", set()),
])
def test_x86_baselines_set_every_isa_flag(conan, tmp_path, baseline, expected):
    _, cache = conan.install_recipe(tmp_path, "-pr:a", profile("linux-x86_64"), "-o", f"*:cpu_baseline={baseline}")
    assert _isa_on(cache) == expected
    assert all(cache[flag] in ("ON", "OFF") for flag in ISA), "every ISA flag is explicit"
    assert cache["GGML_NATIVE"] == "OFF"


def test_dispatch_builds_the_floor_variant_first(conan, tmp_path):
    """cpu_baseline=dispatch (the x86_64 Linux default: the same toolchain as no option at all):
    the main build compiles ggml-cpu as the first CPU_VARIANTS row (the others are sub-builds in
    build()); nothing of upstream's DL variant machinery is used."""
    _, cache = conan.install_recipe(tmp_path, "-pr:a", profile("linux-x86_64"), "-o", "*:cpu_baseline=dispatch")
    assert _isa_on(cache) == {f"GGML_{flag}" for flag in CPU_VARIANTS["x86_64"][0]["isa"]} == set()
    assert cache["GGML_BACKEND_DL"] == "OFF" and cache["GGML_CPU_ALL_VARIANTS"] == "OFF"


def test_native_baseline_is_opt_in(conan, tmp_path):
    _, cache = conan.install_recipe(tmp_path, "-pr:a", profile("linux-x86_64"), "-o", "*:cpu_baseline=native")
    assert cache["GGML_NATIVE"] == "ON"


@pytest.fixture(scope="module")
def upstream_source(tmp_path_factory):
    """The whole source archive unpacked (upstream's CMake, configured by the test below)."""
    import tarfile
    dest = tmp_path_factory.mktemp("upstream-source")
    with tarfile.open(os.path.join(source_mirror(), ARCHIVE)) as tar:
        tar.extractall(dest, filter="data")
    return os.path.join(str(dest), UPSTREAM)


def _configure_upstream(conan, source, out, args, env=None, drop=()):
    """`conan install` of the recipe with `args`, then upstream's own CMake configured with the
    generated toolchain and cache variables (less those in `drop`), as the recipe's build does:
    returns (CMakeCache.txt as {name: value}, what upstream's CMake decided; its output)."""
    _, cache = conan.install_recipe(out, *args)
    with open(glob.glob(os.path.join(str(out), "**", "generators", "CMakePresets.json"), recursive=True)[0]) as f:
        preset = json.load(f)["configurePresets"][0]
    toolchain = os.path.join(preset["binaryDir"], preset["toolchainFile"])  # relative to binaryDir
    defines = [f"-D{k}={'ON' if v is True else 'OFF' if v is False else v}" for k, v in cache.items() if k not in drop]
    build = os.path.join(str(out), "upstream-build")
    proc = subprocess.run(["cmake", "-S", source, "-B", build, "-G", "Ninja", f"-DCMAKE_TOOLCHAIN_FILE={toolchain}",
                           *defines], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        return dict(re.findall(r"^(\w+):\w+=(.*)$", f.read(), re.M)), proc.stdout


@pytest.mark.parametrize("case", ["SOURCE_DATE_EPOCH", "cross building"])
def test_source_date_epoch_and_cross_building_keep_the_baseline(conan, upstream_source, tmp_path, case):
    """Upstream's CMake turns its x86 ISA defaults off under SOURCE_DATE_EPOCH or when cross
    building ("Setting GGML_NATIVE_DEFAULT to OFF"). The recipe sets every flag, so upstream's own
    configure (run here, with the recipe's toolchain and cache variables) keeps the x86-64-v3
    baseline. (Configured without the recipe's ISA flags, the same SOURCE_DATE_EPOCH run loses
    AVX2: _configure_upstream(..., drop=ISA), run once by hand.)"""
    args = ["-pr:h", profile("linux-x86_64"), "-o", "*:cpu_baseline=x86-64-v3"]
    args += ["-pr:b", profile("linux-x86_64")] + (["-s:b", "arch=armv8"] if case == "cross building" else [])
    env = {} if case == "cross building" else {"SOURCE_DATE_EPOCH": "1700000000"}
    cache, out = _configure_upstream(conan, upstream_source, tmp_path, args, env)
    on = {flag for flag in ISA if cache.get(flag) == "ON"}
    print(case, sorted(on))
    assert "Setting GGML_NATIVE_DEFAULT to OFF" in out, "upstream's switch must have fired"
    assert on == {"GGML_SSE42", "GGML_AVX", "GGML_F16C", "GGML_FMA", "GGML_BMI2", "GGML_AVX2"}
    assert cache["GGML_NATIVE"] == "OFF"


@pytest.mark.parametrize("prof, expected", [
    ("linux-armv8", {"GGML_CPU_ARM_ARCH": "armv8-a", "GGML_NATIVE": "OFF"}),
    ("linux-riscv64", {"GGML_RVV": "OFF", "GGML_RV_ZFH": "OFF", "GGML_RV_ZVFH": "OFF", "GGML_NATIVE": "OFF"}),
    # MinGW: runtime dispatch, whose main build is the floor variant (no AVX)
    ("windows-x86_64-mingw", {"GGML_AVX": "OFF", "GGML_AVX2": "OFF", "GGML_NATIVE": "OFF", "BUILD_SHARED_LIBS": "OFF"}),
    ("macos-armv8-metal", {"GGML_METAL": "ON", "GGML_METAL_EMBED_LIBRARY": "ON", "GGML_BLAS": "ON",
                           "GGML_BLAS_VENDOR": "Apple", "GGML_ACCELERATE": "ON", "GGML_CPU_ARM_ARCH": "armv8-a"}),
    ("macos-x86_64", {"GGML_METAL": "OFF", "GGML_ACCELERATE": "ON", "GGML_AVX2": "ON", "GGML_AVX512": "OFF"}),
    # Zig without an SDK: no framework, so neither Accelerate nor its BLAS
    ("macos-armv8-zig", {"GGML_METAL": "OFF", "GGML_ACCELERATE": "OFF", "GGML_BLAS": "OFF",
                         "GGML_CPU_ARM_ARCH": "armv8-a"}),
    ("macos-x86_64-zig", {"GGML_METAL": "OFF", "GGML_ACCELERATE": "OFF", "GGML_BLAS": "OFF", "GGML_AVX2": "ON"}),
    ("linux-x86_64-cuda", {"GGML_CUDA": "ON", "GGML_CUDA_NCCL": "OFF", "GGML_CUDA_NO_VMM": "ON",
                           "GGML_CUDA_FA": "ON"}),
])
def test_target_profiles_generate_the_expected_toolchain(conan, tmp_path, prof, expected):
    proc, cache = conan.install_recipe(tmp_path, "-pr:h", profile(prof), *HOST)
    assert cache is not None, proc.stdout[-3000:]
    assert {k: cache.get(k) for k in expected} == expected


@pytest.mark.parametrize("prof, expected", [
    ("linux-x86_64", "dispatch"), ("linux-armv8", "dispatch"), ("linux-riscv64", "rv64gc"),
    ("windows-x86_64-mingw", "dispatch"), ("macos-armv8-metal", "armv8-a"), ("macos-x86_64", "x86-64-v3"),
])
def test_default_cpu_baseline_per_target(conan, prof, expected):
    """Runtime dispatch where the recipe has it (x86_64 and armv8 Linux with gcc/clang, x86_64
    Windows with MinGW-w64 gcc), else the arch's one portable level. Read from the resolved graph:
    on armv8 the dispatch main build and a plain armv8-a build have the same toolchain."""
    options = conan("graph", "info", ".", "-pr:h", profile(prof), *HOST, graph=True).graph["graph"]["nodes"]["0"]["options"]
    assert options["cpu_baseline"] == expected


def test_accelerate_is_an_apple_option(conan, tmp_path):
    """accelerate exists on Apple OSes only (default on); off, GGML_ACCELERATE is OFF, which an
    SDK-less macOS build needs (Zig ships no framework headers: docs/release.md "macOS")."""
    def options(prof):
        return conan("graph", "info", ".", "-pr:h", profile(prof), *HOST, graph=True).graph["graph"]["nodes"]["0"]["options"]
    assert "accelerate" not in options("linux-x86_64") and options("macos-x86_64")["accelerate"] == "True"
    _, cache = conan.install_recipe(tmp_path, "-pr:h", profile("macos-armv8-metal"), *HOST, "-o", "*:backend=cpu",
                                    "-o", "*:accelerate=False")
    assert cache["GGML_ACCELERATE"] == "OFF" and cache["GGML_METAL"] == "OFF"


def test_cpu_variants_is_a_dispatch_arch_option_and_one_package_per_row_set(conan):
    """cpu_variants exists where CPU_VARIANTS has rows (x86_64, armv8), not on riscv64; the
    package id depends on the set of rows, not on how it is written, and naming every row is the
    default package."""
    def node(prof, *options):
        args = [a for o in options for a in ("-o", f"*:cpu_variants={o}")]
        return conan("graph", "info", ".", "-pr:h", profile(prof), *HOST, *args, graph=True).graph["graph"]["nodes"]["0"]
    arm = node("linux-armv8")["options"]
    assert "cpu_variants" not in node("linux-riscv64")["options"] and "cpu_variants" in arm and arm["cpu_variants"] is None
    default, every = node("linux-x86_64")["package_id"], node("linux-x86_64", "icelake,skylakex,alderlake,haswell,x86-64")
    two, reordered = node("linux-x86_64", "x86-64,haswell"), node("linux-x86_64", "haswell, x86-64")
    assert every["package_id"] == default and two["package_id"] == reordered["package_id"] != default
    assert two["info"]["options"]["cpu_variants"] == "x86-64,haswell"


def test_armv8_dispatch_builds_the_floor_variant_first(conan, tmp_path):
    _, cache = conan.install_recipe(tmp_path, "-pr:h", profile("linux-armv8"), *HOST, "-o", "*:cpu_baseline=dispatch")
    assert cache["GGML_CPU_ARM_ARCH"] == CPU_VARIANTS["armv8"][0]["march"] == "armv8-a"


def test_armv8_levels(conan, tmp_path):
    _, cache = conan.install_recipe(tmp_path, "-pr:h", profile("linux-armv8"), *HOST,
                                    "-o", "*:cpu_baseline=armv8.2-a+dotprod+fp16")
    assert cache["GGML_CPU_ARM_ARCH"] == "armv8.2-a+dotprod+fp16"


def test_openmp_and_cuda_options_reach_cmake(conan, tmp_path):
    _, cache = conan.install_recipe(tmp_path / "omp", "-pr:a", profile("linux-x86_64"), "-o", "*:openmp=True")
    assert cache["GGML_OPENMP"] == "ON"
    _, cache = conan.install_recipe(tmp_path / "vmm", "-pr:h", profile("linux-x86_64-cuda"), *HOST,
                                    "-o", "*:cuda_vmm=True", "-o", "*:cuda_architectures=86-real;90-virtual")
    assert cache["GGML_CUDA_NO_VMM"] == "OFF"
    assert cache["CMAKE_CUDA_ARCHITECTURES"] == "86-real;90-virtual"


def test_optional_parts_reach_cmake(conan, tmp_path):
    _, cache = conan.install_recipe(tmp_path / "all", "-pr:a", profile("linux-x86_64"), "-o", "*:with_mtmd=True",
                                    "-o", "*:with_rpc=True")
    assert cache["LLAMA_BUILD_MTMD"] == "ON" and cache["MTMD_VIDEO"] == "OFF", "video would spawn ffmpeg"
    assert cache["GGML_RPC"] == "ON"
    assert cache["GGML_RPC_RDMA"] == "OFF", "never auto-detect libibverbs on the build machine"
    _, cache = conan.install_recipe(tmp_path / "none", "-pr:a", profile("linux-x86_64"), "-o", "*:with_common=False")
    assert cache["LLAMA_BUILD_COMMON"] == "OFF" and cache["LLAMA_BUILD_MTMD"] == "OFF" and cache["GGML_RPC"] == "OFF"


def test_default_cuda_architectures_run_on_every_gpu_generation(conan, tmp_path):
    proc, cache = conan.install_recipe(tmp_path, "-pr:h", profile("linux-x86_64-cuda"), *HOST)
    archs = cache["CMAKE_CUDA_ARCHITECTURES"].split(";")
    real = {a.split("-")[0] for a in archs if a.endswith("-real")}
    # SASS for Turing, Ampere, Ada, Hopper: no JIT compile of ggml when a NIF first loads there
    assert {"75", "80", "86", "89", "90"} <= real, archs
    # Blackwell 12x already in the arch-specific form ggml would rewrite it to: configured == built
    assert [a for a in archs if a.startswith("12")] and all(a[3] == "a" for a in archs if a.startswith("12"))
    # forward compatibility: portable PTX (no a/f suffix) at least as new as the newest non-12x SASS
    ptx = [int(a.split("-")[0]) for a in archs if a.endswith("-virtual") and a.split("-")[0].isdigit()]
    assert ptx and max(ptx) >= max(int(r) for r in real if r.isdigit()), archs
    assert "becomes arch-specific" not in proc.stdout


def test_arch_specific_blackwell_ptx_is_warned_about(conan, tmp_path):
    proc, cache = conan.install_recipe(tmp_path, "-pr:h", profile("linux-x86_64-cuda"), *HOST,
                                       "-o", "*:cuda_architectures=90-real;120-virtual")
    assert cache["CMAKE_CUDA_ARCHITECTURES"] == "90-real;120-virtual"
    assert "cuda_architectures: 120-virtual becomes arch-specific 12xa PTX" in proc.stdout


INVALID = [
    # (id, conan install arguments, the one line the user must see)
    ("metal-on-linux", ["-pr:a", profile("linux-x86_64"), "-o", "*:backend=metal"],
     "backend=metal is not supported on os=Linux"),
    ("metal-on-windows", ["-pr:h", profile("windows-x86_64-mingw"), *HOST, "-o", "*:backend=metal"],
     "backend=metal is not supported on os=Windows"),
    ("cuda-on-macos", ["-pr:h", profile("macos-armv8-metal"), *HOST, "-o", "*:backend=cuda"],
     "backend=cuda is not supported on os=Macos"),
    ("vulkan-on-macos", ["-pr:h", profile("macos-armv8-metal"), *HOST, "-o", "*:backend=vulkan"],
     "backend=vulkan is not supported on os=Macos"),
    ("x86-baseline-on-armv8", ["-pr:h", profile("linux-armv8"), *HOST, "-o", "*:cpu_baseline=x86-64-v3"],
     "cpu_baseline=x86-64-v3 is not valid for arch=armv8"),
    ("arm-baseline-on-x86_64", ["-pr:a", profile("linux-x86_64"), "-o", "*:cpu_baseline=armv8-a"],
     "cpu_baseline=armv8-a is not valid for arch=x86_64"),
    ("dispatch-on-riscv64", ["-pr:h", profile("linux-riscv64"), *HOST, "-o", "*:cpu_baseline=dispatch"],
     "cpu_baseline=dispatch is not valid for arch=riscv64"),
    ("dispatch-on-macos", ["-pr:h", profile("macos-x86_64"), *HOST, "-o", "*:cpu_baseline=dispatch"],
     "cpu_baseline=dispatch is not supported for os=Macos arch=x86_64 compiler=apple-clang yet"),
    ("native-when-cross-building", ["-pr:h", profile("linux-armv8"), *HOST, "-o", "*:cpu_baseline=native"],
     "cpu_baseline=native cannot be used when cross building for arch=armv8"),
    ("unknown-cpu-variant", ["-pr:a", profile("linux-x86_64"), "-o", "*:cpu_variants=x86-64,zen4"],
     "cpu_variants=x86-64,zen4: 'zen4' is not a dispatch variant of arch=x86_64"),
    ("cpu-variants-without-the-floor", ["-pr:h", profile("linux-armv8"), *HOST, "-o", "*:cpu_variants=armv8.2"],
     "cpu_variants=armv8.2 leaves out armv8.0, the floor of arch=armv8"),
    ("cpu-variants-with-one-baseline", ["-pr:a", profile("linux-x86_64"), "-o", "*:cpu_baseline=x86-64-v3",
                                        "-o", "*:cpu_variants=x86-64"],
     "cpu_variants=x86-64 applies to cpu_baseline=dispatch only, not cpu_baseline=x86-64-v3"),
    ("malformed-cuda-architectures", ["-pr:h", profile("linux-x86_64-cuda"), *HOST,
                                      "-o", "*:cuda_architectures=sm_90,compute_90"],
     "cuda_architectures='sm_90,compute_90' is malformed"),
    ("metal-without-accelerate", ["-pr:h", profile("macos-armv8-metal"), *HOST, "-o", "*:accelerate=False"],
     "accelerate=False cannot be used with backend=metal"),
    ("openmp-without-runtime", ["-pr:h", profile("macos-armv8-metal"), *HOST, "-o", "*:openmp=True"],
     "openmp=True is not supported with compiler=apple-clang"),
    ("unknown-version", ["-pr:a", profile("linux-x86_64"), "--version", "b1"],
     f"llama-cpp/b1: unknown version; this recipe knows {VERSION}"),
    ("bad-with_mtmd-value", ["-pr:a", profile("linux-x86_64"), "-o", "*:with_mtmd=maybe"],
     "'maybe' is not a valid 'options.with_mtmd' value"),
    # the Zig profiles (libc chosen by user.llama-cpp:libc): CPU only, the libc must fit the compiler
    ("cuda-with-the-glibc2.28-profile", ["-pr:h", profile("linux-x86_64-glibc2.28"), *HOST, "-o", "*:backend=cuda"],
     "user.llama-cpp:libc=glibc2.28 (the Zig profiles) supports os=Linux with backend=cpu only, not os=Linux "
     "backend=cuda"),
    ("vulkan-with-the-musl-profile", ["-pr:h", profile("linux-armv8-musl"), *HOST, "-o", "*:backend=vulkan"],
     "user.llama-cpp:libc=musl (the Zig profiles) supports os=Linux with backend=cpu only"),
    ("libc-conf-with-gcc", ["-pr:a", profile("linux-x86_64"), "-c", "user.llama-cpp:libc=musl"],
     "user.llama-cpp:libc=musl is for the Zig toolchain (compiler=clang, compiler.libcxx=libc++), not compiler=gcc"),
    ("unknown-libc", ["-pr:h", profile("linux-x86_64-musl"), *HOST, "-c", "user.llama-cpp:libc=uclibc"],
     "user.llama-cpp:libc=uclibc is unknown: use one of glibc2.28, musl"),
    ("native-with-the-armv8-glibc2.28-profile", ["-pr:h", profile("linux-armv8-glibc2.28"), *HOST,
                                                 "-o", "*:cpu_baseline=native"],
     "cpu_baseline=native cannot be used when cross building for arch=armv8"),
    # sanitizer builds (option sanitize)
    ("unknown-sanitizer", ["-pr:a", profile("linux-x86_64"), "-o", "*:sanitize=address,memory"],
     "sanitize=address,memory: unknown memory; use a comma-separated subset of address, undefined, fuzzer-no-link"),
    ("fuzzer-coverage-with-gcc", ["-pr:a", profile("linux-x86_64"), "-o", "*:sanitize=address,fuzzer-no-link"],
     "sanitize=address,fuzzer-no-link: fuzzer-no-link needs compiler=clang, not compiler=gcc"),
    ("sanitizer-with-mingw", ["-pr:h", profile("windows-x86_64-mingw"), *HOST, "-o", "*:sanitize=address"],
     "sanitize=address is supported on os=Linux and os=Macos only, not os=Windows"),
    ("sanitizer-with-dispatch", ["-pr:a", profile("linux-x86_64"), "-o", "*:sanitize=address"],
     "sanitize=address builds one CPU variant, not cpu_baseline=dispatch (the default here): add -o "
     "cpu_baseline=x86-64-v3"),
    ("sanitizer-with-the-musl-profile", ["-pr:h", profile("linux-x86_64-musl"), *HOST, "-o", "*:sanitize=undefined"],
     "sanitize=undefined cannot be used with user.llama-cpp:libc=musl"),
]


@pytest.mark.parametrize("args, message", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_input_gives_one_clear_line(conan, tmp_path, args, message):
    proc, _ = conan.install_recipe(tmp_path, *args, check=False)
    assert proc.returncode != 0
    lines = [line for line in proc.stdout.splitlines() if message in line]
    assert len(lines) == 1, proc.stdout[-3000:]
    assert "Traceback" not in proc.stdout and "CMake Error" not in proc.stdout
    # an exception that escaped a recipe method (Conan wraps each so, the one set_version() raises too)
    assert not re.search(r"Error in (?!set_version)\w+\(\) method", proc.stdout), proc.stdout[-3000:]


def test_sanitize_instruments_one_cpu_variant(conan, tmp_path):
    """sanitize=address,undefined: the toolchain compiles everything with the sanitizers (and
    links CMake's own programs with their runtime), on the one CPU level asked for."""
    proc, cache = conan.install_recipe(tmp_path, "-pr:a", profile("linux-x86_64"), "-o", "*:sanitize=address,undefined",
                                       "-o", "*:cpu_baseline=x86-64-v3")
    assert _isa_on(cache) == {"GGML_SSE42", "GGML_AVX", "GGML_F16C", "GGML_FMA", "GGML_BMI2", "GGML_AVX2"}
    toolchain = glob.glob(os.path.join(str(tmp_path), "**", "conan_toolchain.cmake"), recursive=True)
    with open(toolchain[0]) as f:
        text = f.read()
    for variable in ("CMAKE_C_FLAGS", "CMAKE_CXX_FLAGS"):
        assert re.search(rf'string\(APPEND CONAN_{variable[6:]} " [^"]*-fsanitize=address,undefined -fno-omit-frame-pointer',
                         text), variable
    for variable in ("EXE_LINKER_FLAGS", "SHARED_LINKER_FLAGS"):
        assert re.search(rf'string\(APPEND CONAN_{variable} " -fsanitize=address,undefined"', text), variable


@pytest.mark.parametrize("case", ["zig-missing", "libc-mismatch"])
def test_zig_profile_problems_are_refused_before_building(conan, tmp_path, case):
    """validate_build() asks the profile's C compiler which libc it targets, before any compile:
    without Zig (the wrappers cannot find it) or when the compiler's libc is not the conf's, one
    line says so and nothing builds."""
    # --build for this recipe: the tests' glibc-2.28 package may be in the cache already, and a
    # binary found there is never validate_build()'s business
    args = ["-pr:h", profile("linux-x86_64-glibc2.28"), *HOST, "--build=llama-cpp/*", "-tf", ""]
    if case == "zig-missing":
        # a python3 without the ziglang wheel first on PATH: the profile and the wrappers find no Zig
        fake = tmp_path / "bin"
        fake.mkdir()
        (fake / "python3").write_text("#!/bin/sh\nexit 1\n")
        (fake / "python3").chmod(0o755)
        env, message = {"PATH": f"{fake}:{os.environ['PATH']}", "ZIG": ""}, "Zig not found: set ZIG="
    else:
        args += ["-c", "user.llama-cpp:libc=musl"]  # the glibc 2.28 compiler, told it is musl's
        env, message = None, "user.llama-cpp:libc=musl, but"
    proc = conan("create", ".", *args, check=False, env=env)
    assert proc.returncode != 0
    lines = [line for line in proc.stdout.splitlines() if message in line]
    assert len(lines) == 1, proc.stdout[-3000:]
    if case == "libc-mismatch":
        assert "compiles against glibc 2.28" in lines[0]
    assert "Calling build()" not in proc.stdout and "Traceback" not in proc.stdout


def test_cuda_without_a_cuda_compiler_is_refused_before_building(conan, tmp_path):
    """validate_build(): no nvcc on PATH and no compiler_executables['cuda'] -> one line, no build."""
    env = {"PATH": "/usr/bin:/bin"}  # the system compilers, no CUDA toolkit
    assert not shutil.which("nvcc", path=env["PATH"])
    proc = conan("create", ".", "-pr:a", profile("linux-x86_64"), "-o", "*:backend=cuda", "--build=missing",
                 "-tf", "", check=False, env=env)
    assert proc.returncode != 0
    assert sum("backend=cuda needs the CUDA compiler" in line for line in proc.stdout.splitlines()) == 1, \
        proc.stdout[-3000:]
    assert "Calling build()" not in proc.stdout


def test_vulkan_without_glslc_is_refused_before_building(conan, tmp_path):
    """validate_build(): no glslc on PATH, or user.llama-cpp:glslc naming no file -> one line each,
    nothing configured or compiled."""
    create = ["create", ".", "-pr:a", profile("linux-x86_64"), "-o", "*:backend=vulkan", "--build=missing", "-tf", ""]
    cases = [({"PATH": str(tmp_path)}, [], "backend=vulkan needs the shader compiler glslc"),
             (None, ["-c", "user.llama-cpp:glslc=/nonexistent/glslc"],
              "backend=vulkan: user.llama-cpp:glslc=/nonexistent/glslc is not a file")]
    for env, conf, message in cases:
        proc = conan(*create, *conf, check=False, env=env)
        assert proc.returncode != 0
        assert sum(message in line for line in proc.stdout.splitlines()) == 1, proc.stdout[-3000:]
        assert "Calling build()" not in proc.stdout


def test_vulkan_reaches_cmake(conan, tmp_path):
    """backend=vulkan: GGML_VULKAN on, glslc from the conf (or PATH) handed to FindVulkan."""
    glslc = shutil.which("glslc")
    needs(glslc, "glslc (the conf must name an existing file)")
    _, cache = conan.install_recipe(tmp_path, "-pr:a", profile("linux-x86_64"), "-o", "*:backend=vulkan",
                                    "-c", f"user.llama-cpp:glslc={glslc}")
    assert cache["GGML_VULKAN"] == "ON" and cache["GGML_CUDA"] == "OFF"
    assert cache["Vulkan_GLSLC_EXECUTABLE"] == glslc
    assert cache["GGML_BACKEND_DL"] == "OFF" and cache["BUILD_SHARED_LIBS"] == "OFF"


def test_fpic_false_warns(conan, tmp_path):
    proc, _ = conan.install_recipe(tmp_path, "-pr:a", profile("linux-x86_64"), "-o", "*:fPIC=False")
    assert proc.returncode == 0
    assert "fPIC=False: the archives are not position independent" in proc.stdout


# ------------------------------------------------- what package_info() declares (link_components)

def test_macos_metal_link_components():
    """What package_info() declares for macOS, from the same function it calls."""
    recipe = link
    model = recipe.link_components("Macos", "metal")
    assert list(model) == ["llama", "ggml", "ggml-metal", "ggml-blas", "ggml-cpu", "ggml-base", "ggml-all"]
    assert model["ggml-metal"]["frameworks"] == ["Foundation", "Metal", "MetalKit"]
    assert model["ggml-blas"]["frameworks"] == ["Accelerate"]
    assert model["ggml-cpu"]["frameworks"] == ["Accelerate"]
    assert all(not spec["system_libs"] for spec in model.values()), "libSystem covers libm/pthread/dl"
    assert model["ggml"]["requires"] == ["ggml-metal", "ggml-blas", "ggml-cpu", "ggml-base"]
    assert model["ggml-metal"]["cmake_target"] == "ggml::ggml-metal"
    cpu = recipe.link_components("Macos", "cpu")
    assert list(cpu) == ["llama", "ggml", "ggml-cpu", "ggml-base", "ggml-all"]
    assert not any(spec["frameworks"] for name, spec in cpu.items() if name != "ggml-cpu")
    # accelerate=False: no framework at all (libSystem and libc++ only)
    assert not any(spec["frameworks"] for spec in recipe.link_components("Macos", "cpu", accelerate=False).values())


def test_optional_parts_link_components():
    """Components, link order and names of llama-common, mtmd and ggml-rpc, per OS."""
    recipe = link
    parts = ("with_common", "with_mtmd", "with_rpc")
    model = recipe.link_components("Linux", "cuda", parts=parts)
    assert [n for n in model if n != "ggml-all"] == [
        "mtmd", "llama-common", "llama-common-base", "cpp-httplib", "vendor-hash", "llama", "ggml", "ggml-cuda",
        "ggml-rpc", "ggml-cpu", "ggml-base"]
    assert model["llama-common"]["requires"] == ["llama-common-base", "cpp-httplib", "llama", "ggml", "ggml-base"]
    assert model["mtmd"]["requires"] == ["vendor-hash", "llama", "ggml", "ggml-base"]
    assert model["ggml"]["requires"] == ["ggml-cuda", "ggml-rpc", "ggml-cpu", "ggml-base"]
    # upstream's CMake names; vendored helpers namespaced so they cannot clash with a consumer's
    names = {n: spec["cmake_target"] for n, spec in model.items()}
    assert names["llama-common"] == "llama-common" and names["mtmd"] == "mtmd" and names["llama"] == "llama"
    assert names["ggml-all"] == "ggml::all" and names["ggml-rpc"] == "ggml::ggml-rpc"
    assert names["cpp-httplib"] == "llama::cpp-httplib"
    assert model["ggml-all"]["libs"] == [] and model["ggml-all"]["requires"][0] == "ggml"
    # nlohmann/json on llama-common's include path only
    assert "include/llama-common-vendor" in model["llama-common"]["includedirs"]
    assert model["llama"]["includedirs"] == ["include"]
    windows = recipe.link_components("Windows", "cpu", parts=parts)
    assert windows["ggml-rpc"]["system_libs"] == ["ws2_32"] and windows["cpp-httplib"]["system_libs"] == ["ws2_32"]
    plain = recipe.link_components("Linux", "cpu")
    assert [n for n in plain if n != "ggml-all"] == ["llama", "ggml", "ggml-cpu", "ggml-base"]


def test_linux_link_components_declares_exact_runtime_libs():
    recipe = link
    libs = lambda model: sorted({lib for spec in model.values() for lib in spec["system_libs"]})  # noqa: E731
    assert libs(recipe.link_components("Linux", "cpu")) == ["dl", "m", "pthread"]
    assert libs(recipe.link_components("Linux", "cpu", openmp=True, compiler="gcc")) == ["dl", "gomp", "m", "pthread"]
    assert libs(recipe.link_components("Linux", "cuda")) == ["cublas", "cublasLt", "cudart", "dl", "m", "pthread"]
    assert "cuda" in libs(recipe.link_components("Linux", "cuda", cuda_vmm=True))
    assert libs(recipe.link_components("Windows", "cpu")) == []
    # patch 0007 opens the Vulkan loader at runtime: nothing to link, on Linux or Windows
    assert libs(recipe.link_components("Linux", "vulkan")) == ["dl", "m", "pthread"]
    assert libs(recipe.link_components("Windows", "vulkan")) == []
    assert list(recipe.link_components("Linux", "vulkan")) == ["llama", "ggml", "ggml-vulkan", "ggml-cpu", "ggml-base",
                                                               "ggml-all"]


def test_c_consumers_get_the_cxx_runtime_and_hidden_archives():
    """The archives are C++: a C consumer's link (C driver) needs the C++ runtime declared, after
    every archive; and its shared library must not re-export the archives' symbols."""
    recipe = link
    model = recipe.link_components("Linux", "cpu", parts=("with_common",), cxx_runtime="stdc++")
    runtime = model["cxx-runtime"]
    assert runtime["system_libs"] == ["stdc++"] and runtime["libs"] == []
    assert runtime["cmake_target"] == "llama::cxx-runtime" and runtime["pkg_config"] == "llama-cxx-runtime"
    assert model["ggml-base"]["requires"] == ["cxx-runtime"], "below the last archive"
    assert [n for n, spec in model.items() if "stdc++" in spec["system_libs"]] == ["cxx-runtime"]
    assert model["ggml-base"]["sharedlinkflags"] == [
        "-Wl,--exclude-libs,libllama-common.a:libllama-common-base.a:libcpp-httplib.a:libllama.a:libggml.a:"
        "libggml-cpu.a:libggml-base.a:libstdc++.a"], "every archive, and libstdc++.a for -static-libstdc++ links"
    assert [n for n, spec in model.items() if spec["sharedlinkflags"]] == ["ggml-base"]
    for os_ in ("Windows", "Macos"):  # no --exclude-libs in ld64 or for PE
        assert not any(spec["sharedlinkflags"] for spec in recipe.link_components(os_, "cpu").values())
    assert "cxx-runtime" not in recipe.link_components("Windows", "cpu", cxx_runtime=None)
    module = cxx_runtime_module(os.path.join(ROOT, "recipe_src"), "stdc++")
    assert '"$<$<LINK_LANGUAGE:C>:stdc++>"' in module


def test_the_libc_is_part_of_the_package_id(conan):
    """Two packages that differ only in their C library (the x86_64 glibc-2.28 and musl profiles:
    the same compiler settings) get different package ids, and neither is the gcc package's."""
    ids = {}
    for name, args in {"glibc2.28": ["-pr:h", profile("linux-x86_64-glibc2.28"), *HOST],
                       "musl": ["-pr:h", profile("linux-x86_64-musl"), *HOST],
                       "musl profile, libc conf glibc2.28": ["-pr:h", profile("linux-x86_64-musl"), *HOST,
                                                       "-c", "user.llama-cpp:libc=glibc2.28"],
                       "gcc": ["-pr:a", profile("linux-x86_64")]}.items():
        proc = conan("graph", "info", ".", *args, graph=True)
        node = next(n for n in proc.graph["graph"]["nodes"].values() if n.get("name") == "llama-cpp")
        ids[name] = node["package_id"]
    print(ids)
    assert len({ids["glibc2.28"], ids["musl"], ids["gcc"]}) == 3
    assert ids["musl profile, libc conf glibc2.28"] == ids["glibc2.28"], "the conf, not the profile file, decides"


# ------------------------------------------------- what `conan export` takes

RECIPE_FILES = ["conanfile.py", "conandata.yml", "llama_cpp_recipe", "recipe_src", "patches"]


def test_python_bytecode_does_not_change_the_recipe_revision(tmp_path):
    """The recipe's package is exported as its .py files only: the __pycache__ Python writes when
    anything imports llama_cpp_recipe (tests, bench, a Python run) leaves the recipe revision as it
    was. A copy of the recipe, exported into a scratch Conan home, before and after; then the
    exported recipe alone (as a consumer of a prebuilt binary has it) loads and resolves."""
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    for name in RECIPE_FILES:
        (shutil.copytree if os.path.isdir(os.path.join(ROOT, name)) else shutil.copy)(os.path.join(ROOT, name),
                                                                                     recipe / name)
    for cache in recipe.rglob("__pycache__"):
        shutil.rmtree(cache)
    conan = private_conan(str(tmp_path / "home"))

    def export():
        return conan("export", str(recipe), graph=True).graph["reference"]
    clean = export()
    subprocess.run([sys.executable, "-c", "import llama_cpp_recipe.dispatch, llama_cpp_recipe.link"], cwd=recipe,
                   check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})
    assert list((recipe / "llama_cpp_recipe" / "__pycache__").glob("*.pyc")), "Python wrote no bytecode"
    (recipe / "llama_cpp_recipe" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"not the recipe")
    (recipe / "llama_cpp_recipe" / "stray.pyc").write_bytes(b"nor this")
    assert export() == clean
    exported = conan("cache", "path", clean).stdout.strip()
    assert sorted(os.listdir(os.path.join(exported, "llama_cpp_recipe"))) == sorted(
        p.name for p in (recipe / "llama_cpp_recipe").glob("*.py"))
    # the checker travels with the recipe as a tool (conanfile.py never imports it): test_package
    # runs it from the export folder like this, and writes no bytecode into the cache
    proc = subprocess.run([sys.executable, "-B", "-m", "llama_cpp_recipe.nifcheck", "--floors", "--json"],
                          cwd=exported, env={**os.environ, "PYTHONPATH": exported}, capture_output=True, text=True)
    assert proc.returncode == 0 and json.loads(proc.stdout) == nifcheck.FLOORS, proc.stdout + proc.stderr
    assert "nifcheck" not in (recipe / "conanfile.py").read_text()
    assert not os.path.exists(os.path.join(exported, "llama_cpp_recipe", "__pycache__"))
    # what a consumer of a prebuilt binary has: the exported recipe (no sources) loads and resolves
    shutil.rmtree(recipe)
    graph = conan("graph", "info", "--requires", clean.split("#")[0], "-pr:a", profile("linux-x86_64"), cwd=tmp_path,
                  graph=True).graph
    assert any(n.get("name") == "llama-cpp" and n["options"]["cpu_baseline"] == "dispatch"
               for n in graph["graph"]["nodes"].values())
