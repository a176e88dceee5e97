import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from conan import ConanFile
from conan.errors import ConanException, ConanInvalidConfiguration
from conan.tools.apple import is_apple_os
from conan.tools.build import check_min_cppstd, cross_building, stdcpp_library
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.tools.files import (apply_conandata_patches, copy, export_conandata_patches, get, load,
                               rename, rmdir, save)

required_conan_version = ">=2.4"


APPLE_OS = {"Macos", "iOS", "watchOS", "tvOS", "visionOS"}

# One table per axis. validate(), generate() and package_info() read these and nothing else, so a
# backend or a CPU baseline is described in exactly one place.
#
#   cmake       cache variables the backend turns on (the CPU backend is always built as fallback)
#   components  the extra ggml archives it produces, in link order (dependents first)
#   system_libs / frameworks  what those archives need from the OS, per Conan os setting
#   os          allowed host OSes (None: any), with the reason printed when refused
BACKENDS = {
    "cpu": {
        "cmake": {},
        "components": [],
        "os": None,
    },
    "metal": {
        # Embedding the shader library makes libggml-metal.a self-sufficient: no default.metallib or
        # ggml-metal.metal has to be shipped next to the consumer's binary.
        "cmake": {"GGML_METAL": True, "GGML_METAL_EMBED_LIBRARY": True,
                  "GGML_BLAS": True, "GGML_BLAS_VENDOR": "Apple"},
        "components": ["ggml-metal", "ggml-blas"],
        "frameworks": {"ggml-metal": ["Foundation", "Metal", "MetalKit"],
                       "ggml-blas": ["Accelerate"]},
        "os": sorted(APPLE_OS),
        "os_reason": "Metal exists only on Apple platforms; use backend=cpu (or cuda on Linux/Windows)",
    },
    "cuda": {
        "cmake": {"GGML_CUDA": True},
        "components": ["ggml-cuda"],
        # the CUDA runtime stays dynamic (ADR): every CUDA host has it; the driver only with VMM
        "system_libs": {"ggml-cuda": ["cudart", "cublas", "cublasLt"]},
        "os": ["Linux", "Windows"],
        "os_reason": "NVIDIA CUDA is not available on Apple platforms; use backend=metal or cpu",
    },
    "vulkan": {
        # patch 0007 opens the Vulkan loader at runtime: no libvulkan/vulkan-1 to declare, and the
        # consumer loads on machines without one (0 Vulkan devices, CPU only)
        "cmake": {"GGML_VULKAN": True},
        "components": ["ggml-vulkan"],
        "os": ["Linux", "Windows"],
        "os_reason": "Vulkan on Apple platforms needs MoltenVK, which this recipe does not build; "
                     "use backend=metal",
    },
}

# Shader compiler of backend=vulkan: conf user.llama-cpp:glslc (a path) or glslc on PATH. The
# recipe reports which of upstream's optional shader extensions it supports (the feature-test
# shaders of ggml-vulkan, probed the way upstream's CMake does); a missing one means slower
# fallback shaders, not a failed build.
GLSLC_CONF = "user.llama-cpp:glslc"
VULKAN_FEATURE_TESTS = os.path.join("ggml", "src", "ggml-vulkan", "vulkan-shaders", "feature-tests")

# What every build needs from the OS, per component, independent of the backend.
SYSTEM_LIBS = {
    "Linux": {"ggml-base": ["m", "pthread", "dl"], "ggml": ["dl"], "llama": ["m", "pthread"]},
    "FreeBSD": {"ggml-base": ["m", "pthread"], "llama": ["m", "pthread"]},
    "Windows": {},
}

# Consumers' shared libraries on ELF targets (GNU ld, gold, lld): symbols pulled from the package's
# archives are not exported from them (--exclude-libs, in ggml-base's sharedlinkflags), so even
# a plain `-shared` link exports no ggml/llama symbol and none of the std:: template statics whose
# STB_GNU_UNIQUE binding makes glibc refuse to dlclose the library (an Erlang NIF could then never
# be purged and reloaded). Hidden visibility alone does not do this: namespace std keeps default
# visibility in libstdc++'s headers.
EXCLUDE_LIBS_OS = {"Linux", "FreeBSD", "Android"}

# The C library a Linux package targets when its toolchain picks one: conf user.llama-cpp:libc, set
# by the Zig profiles (profiles/linux-<arch>-glibc2.28, linux-<arch>-musl) and part of the package
# id, so such a package and one of the build host's gcc (glibc 2.36 on Debian 12) never mix in a
# cache. Unset: the compiler's own libc. validate_build() asks the compiler whether it tells the
# truth (`glibc`: __GLIBC__.__GLIBC_MINOR__ it compiles against; None: no __GLIBC__, i.e. musl).
# Zig's linker refuses --exclude-libs (EXCLUDE_LIBS_OS): with these toolchains only the version
# script README's link line uses keeps the archives' symbols out of a consumer's exports.
LIBC_CONF = "user.llama-cpp:libc"
LIBCS = {  # the names are also tests/nifcheck.py's floors, which test_package applies
    "glibc2.28": {"glibc": "2.28"},
    "musl": {"glibc": None},
}
LIBC_BACKENDS = ["cpu"]  # what the Zig profiles can build: no CUDA toolkit or Vulkan SDK for them

# ggml-cpu uses vDSP/vForce from Accelerate on every Apple OS (GGML_ACCELERATE, upstream default)
FRAMEWORKS = {"ggml-cpu": ["Accelerate"]}
OPENMP_RUNTIME = {"gcc": "gomp", "clang": "omp"}
CUDA_DRIVER_LIB = "cuda"  # libcuda.so.1, only linked with cuda_vmm=True

# CPU baselines: the ISA the ggml-cpu archive may use. Every ISA variable is always set, so the
# result does not depend on upstream's defaults, which switch every x86 flag off when cross
# building or when SOURCE_DATE_EPOCH is set, and use -march=native otherwise.
_X86_FLAGS = ["GGML_SSE42", "GGML_AVX", "GGML_F16C", "GGML_FMA", "GGML_BMI2", "GGML_AVX2",
              "GGML_AVX_VNNI", "GGML_AVX512", "GGML_AVX512_VBMI", "GGML_AVX512_VNNI",
              "GGML_AVX512_BF16", "GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"]
_RV_FLAGS = ["GGML_RVV", "GGML_RV_ZFH", "GGML_RV_ZVFH", "GGML_RV_ZICBOP", "GGML_RV_ZIHINTPAUSE"]


def _x86(*on):
    return {flag: flag in on for flag in _X86_FLAGS}


def _rv(*on):
    return {flag: flag in on for flag in _RV_FLAGS}


CPU_BASELINES = {
    # x86-64 micro-architecture levels (psABI): v2 = SSE4.2/POPCNT, v3 = AVX2/FMA/F16C/BMI2,
    # v4 = v3 + AVX-512 F/CD/VL/DQ/BW (ggml's GGML_AVX512 turns on exactly those five).
    "x86-64-v2": {"arch": ["x86_64"], "cmake": _x86("GGML_SSE42")},
    "x86-64-v3": {"arch": ["x86_64"], "cmake": _x86("GGML_SSE42", "GGML_AVX", "GGML_F16C", "GGML_FMA",
                                                    "GGML_BMI2", "GGML_AVX2")},
    "x86-64-v4": {"arch": ["x86_64"], "cmake": _x86("GGML_SSE42", "GGML_AVX", "GGML_F16C", "GGML_FMA",
                                                    "GGML_BMI2", "GGML_AVX2", "GGML_AVX512")},
    # armv8: plain ARMv8.0-A (every 64-bit Arm), ARMv8.2-A with dot product and fp16 arithmetic
    # (Cortex-A55/A76 and later, all Apple Silicon, Graviton2+), ARMv8.6-A adding int8 matmul.
    "armv8-a": {"arch": ["armv8"], "cmake": {"GGML_CPU_ARM_ARCH": "armv8-a"}},
    "armv8.2-a+dotprod+fp16": {"arch": ["armv8"],
                               "cmake": {"GGML_CPU_ARM_ARCH": "armv8.2-a+dotprod+fp16"}},
    "armv8.6-a+dotprod+fp16+i8mm": {"arch": ["armv8"],
                                    "cmake": {"GGML_CPU_ARM_ARCH": "armv8.6-a+dotprod+fp16+i8mm"}},
    # riscv64: RV64GC only (any Linux-capable core; what Debian's gcc 12 can build), or upstream's
    # vector set (RVV 1.0 + Zfh/Zvfh/Zicbop/Zihintpause, needs gcc >= 14 for the intrinsics).
    "rv64gc": {"arch": ["riscv64"], "cmake": _rv()},
    "rv64gcv": {"arch": ["riscv64"], "cmake": _rv(*_RV_FLAGS)},
    # whatever the compiler targets by default, no ggml ISA flag at all (any arch)
    "generic": {"arch": None, "cmake": {**_x86(), **_rv(), "GGML_CPU_ARM_ARCH": ""}},
    # the build machine's CPU; never portable, refused when cross building
    "native": {"arch": None, "cmake": {"GGML_NATIVE": True}},
    # several ISA variants of ggml-cpu in one archive, the best one the running CPU (and OS) can
    # execute chosen at first use (CPU_VARIANTS below: the main build compiles their first row)
    "dispatch": {"arch": ["x86_64", "armv8"], "cmake": {}},
}
# the single level each arch defaults to where cpu_baseline=dispatch is not available (see
# default_baseline()), and the level error lines suggest
DEFAULT_BASELINE = {"x86_64": "x86-64-v3", "armv8": "armv8-a", "riscv64": "rv64gc"}

# cpu_baseline=dispatch: the variants compiled into libggml-cpu.a, lowest first. `isa` names the
# DISPATCH_FEATURES a variant needs: the generated dispatcher requires exactly those from the CPU
# and the OS and picks the last row the CPU can run. x86_64 rows are compiled with the ggml ISA
# flags of the same names (_X86_FLAGS without GGML_), with their XCR0 state checked for AVX and
# AVX-512; armv8 rows with their `march` (GGML_CPU_ARM_ARCH), features read from the kernel's
# HWCAP/HWCAP2. x86 names follow upstream's GGML_CPU_ALL_VARIANTS where one exists. Each row
# costs ~65 CPU-seconds of build and ~1.1 MB in a stripped NIF, so a row stays only for a reason:
#   x86-64     the floor: SSE2, every x86-64 CPU; nothing ever dies with SIGILL
#   haswell    x86-64-v3 (AVX2/FMA/F16C/BMI2): nearly every x86 CPU since 2013-2015; the AVX2
#              kernels of every quant type (the former default baseline)
#   alderlake  v3 + AVX-VNNI: Intel client CPUs from 12th gen have it but no AVX-512; ggml's
#              int8 dot products (Q4/Q8 x Q8) use VPDPBUSD there
#   skylakex   x86-64-v4 (AVX-512 F/CD/VL/DQ/BW): 512-bit kernels on Skylake-SP..Cascade Lake
#   icelake    v4 + AVX512-VBMI/VNNI: Ice Lake and later Xeons, AMD Zen 4/5 (VNNI int8 dot)
# Left out (no row): sse42/sandybridge/ivybridge (x86-64 covers them, slower), AVX512-BF16
# (zen4/cooperlake: only BF16 tensors gain) and AMX (sapphirerapids: its tiles need the process
# to ask the kernel for XTILEDATA state, and nothing here can run them; see README).
#   armv8.0      the floor: every 64-bit Arm (Cortex-A53/A72: Raspberry Pi 3/4, Graviton1)
#   armv8.2      dot product (SDOT: the Q4/Q8 x Q8 dot products) and fp16 vector arithmetic:
#                Cortex-A55/A76 (Raspberry Pi 5), Neoverse N1 (Graviton2, Ampere Altra);
#                upstream's armv8.2_2
#   armv8.6      + int8 matrix multiply (SMMLA: ggml's two-row Q4_0/Q8_0 kernels and the repacked
#                Q4_0 GEMM) without SVE: AmpereOne, Apple M2 and later under Linux; upstream's
#                android_armv8.6_1
#   armv8.6-sve  + SVE (ggml's SVE dot products for 128/256/512-bit vectors, the 256-bit SVE
#                GEMM of repacked Q4_0): Graviton3/4, Neoverse V1/V2/N2 (Grace); upstream's
#                armv8.6_1
# The armv8.6 rows also need BF16 (mandatory from ARMv8.6, enabled by -march=armv8.6-a) and every
# row above the floor LSE atomics (ARMv8.1, which GCC then inlines). Left out: a dot product row
# without fp16 (upstream's armv8.2_1: hardly any such CPU), SVE2 and SME rows (ggml has little
# SVE2/SME code outside KleidiAI, which the package does not build).
CPU_VARIANTS = {
    "x86_64": [
        {"name": "x86-64", "isa": []},
        {"name": "haswell", "isa": ["SSE42", "AVX", "F16C", "FMA", "BMI2", "AVX2"]},
        {"name": "alderlake", "isa": ["SSE42", "AVX", "F16C", "FMA", "BMI2", "AVX2", "AVX_VNNI"]},
        {"name": "skylakex", "isa": ["SSE42", "AVX", "F16C", "FMA", "BMI2", "AVX2", "AVX512"]},
        {"name": "icelake", "isa": ["SSE42", "AVX", "F16C", "FMA", "BMI2", "AVX2", "AVX512",
                                    "AVX512_VBMI", "AVX512_VNNI"]},
    ],
    "armv8": [
        {"name": "armv8.0", "isa": [], "march": "armv8-a"},
        {"name": "armv8.2", "isa": ["LSE", "DOTPROD", "FP16"], "march": "armv8.2-a+dotprod+fp16"},
        {"name": "armv8.6", "isa": ["LSE", "DOTPROD", "FP16", "I8MM", "BF16"],
         "march": "armv8.6-a+dotprod+fp16+i8mm"},
        {"name": "armv8.6-sve", "isa": ["LSE", "DOTPROD", "FP16", "I8MM", "BF16", "SVE"],
         "march": "armv8.6-a+dotprod+fp16+i8mm+sve"},
    ],
}
# the features the dispatcher probes per arch (DISPATCH_PROBE), named as CPU_VARIANTS' `isa`
DISPATCH_FEATURES = {
    "x86_64": [flag[len("GGML_"):] for flag in _X86_FLAGS],
    "armv8": ["LSE", "DOTPROD", "FP16", "I8MM", "BF16", "SVE"],
}
# where cpu_baseline=dispatch is supported, per OS: the arches with a DISPATCH_PROBE that works
# there (x86: GCC/Clang's <cpuid.h>; armv8: getauxval/elf_aux_info) and the compilers whose objects
# CpuDispatch can rename (ELF; on Windows MinGW-w64's PE/COFF, whose COMDAT sections are renamed
# too). Left out: MSVC (no <cpuid.h> or __typeof__, and no binutils for its objects), clang on
# Windows (clang-cl objects never tried), armv8 Windows (no HWCAP probe), macOS (Mach-O never tried).
DISPATCH_TARGETS = {
    "Linux": {"arch": ["x86_64", "armv8"], "compiler": ["gcc", "clang"]},
    "FreeBSD": {"arch": ["x86_64", "armv8"], "compiler": ["gcc", "clang"]},
    "Windows": {"arch": ["x86_64"], "compiler": ["gcc"]},
}


def dispatch_supported(os_, arch, compiler):
    row = DISPATCH_TARGETS.get(os_)
    return bool(row) and arch in row["arch"] and compiler in row["compiler"]


def default_baseline(os_, arch, compiler):
    """The cpu_baseline default: dispatch where it is supported (arch, OS and compiler), else the
    arch's single level."""
    if dispatch_supported(os_, arch, compiler):
        return "dispatch"
    return DEFAULT_BASELINE.get(arch, "generic")


# Sanitizer builds (option `sanitize`, comma-separated): archives instrumented for a NIF author's
# own ASan/UBSan/libFuzzer runs (bench/fuzz.py builds its harnesses against one). Each sanitizer:
# the compilers that have it, and whether a consumer's link needs the flag (its runtime).
SANITIZERS = {
    "address": {"compilers": ["gcc", "clang", "apple-clang"], "link": True},
    "undefined": {"compilers": ["gcc", "clang", "apple-clang"], "link": True},
    # coverage for libFuzzer; its callbacks live in the ASan runtime, so it needs address
    "fuzzer-no-link": {"compilers": ["clang"], "link": False, "needs": "address"},
}


def sanitize_problem(value, os_, compiler, libc):
    """Why `sanitize=value` cannot be built here (one line), or None. value None: not asked."""
    if value in (None, "None", ""):
        return None
    names = value.split(",")
    unknown = [n for n in names if n not in SANITIZERS]
    if unknown or len(set(names)) != len(names):
        return (f"sanitize={value}: {'unknown ' + ', '.join(unknown) if unknown else 'a sanitizer twice'}; "
                f"use a comma-separated subset of {', '.join(SANITIZERS)} (e.g. sanitize=address,undefined)")
    if os_ not in ("Linux", "Macos"):
        return f"sanitize={value} is supported on os=Linux and os=Macos only, not os={os_}"
    if libc is not None:
        return (f"sanitize={value} cannot be used with {LIBC_CONF}={libc} (the Zig profiles ship no "
                f"sanitizer runtimes): use the host's gcc or clang profile")
    for name in names:
        row = SANITIZERS[name]
        if compiler not in row["compilers"]:
            return (f"sanitize={value}: {name} needs compiler={'/'.join(row['compilers'])}, not "
                    f"compiler={compiler}")
        if row.get("needs") and row["needs"] not in names:
            return f"sanitize={value}: {name} needs {row['needs']} too (sanitize={row['needs']},{value})"
    return None


def sanitize_flags(value):
    """(compile flags, consumer link flags) of a valid `sanitize` value."""
    if value in (None, "None", ""):
        return [], []
    names = value.split(",")
    linked = [n for n in names if SANITIZERS[n]["link"]]
    return ([f"-fsanitize={value}", "-fno-omit-frame-pointer"],
            [f"-fsanitize={','.join(linked)}"] if linked else [])


CPU_VARIANT_ENV = "LLAMA_CPP_CPU_VARIANT"  # forces a variant at run time
CPU_VARIANT_HEADER = "llama-cpp-cpu-variant.h"  # declares llama_cpp_cpu_variant() (DISPATCH_HEADER)


def variant_cmake(arch, variant):
    """Cache variables of one CPU_VARIANTS row (every ISA flag set, as for CPU_BASELINES)."""
    if arch == "x86_64":
        return _x86(*[f"GGML_{flag}" for flag in variant["isa"]])
    if arch == "armv8":
        return {"GGML_CPU_ARM_ARCH": variant["march"]}
    raise ConanException(f"no CPU variants for arch={arch}")

# Upstream defaults pinned on every build, so nothing depends on upstream's choice or on what the
# build machine happens to have installed. generate() adds the backend, baseline and option rows.
PINNED = {
    # static archives for one shared object: nothing dlopens a backend at run time (it could pick
    # up a foreign libggml), no CPU variant modules (they need shared libs)
    "BUILD_SHARED_LIBS": False,
    "GGML_BACKEND_DL": False,
    "GGML_CPU_ALL_VARIANTS": False,
    "GGML_CPU": True,
    "GGML_NATIVE": False,
    # hidden visibility for our own symbols; std:: template instantiations keep libstdc++'s
    # default visibility whatever these say, which is why package_info() declares --exclude-libs
    # for consumers' shared libraries (EXCLUDE_LIBS_OS) and README tells NIF authors to use a
    # version script (docs/linking.md "C consumers" and "Linking a NIF")
    "CMAKE_C_VISIBILITY_PRESET": "hidden",
    "CMAKE_CXX_VISIBILITY_PRESET": "hidden",
    "CMAKE_OBJC_VISIBILITY_PRESET": "hidden",
    "CMAKE_CUDA_VISIBILITY_PRESET": "hidden",
    "CMAKE_VISIBILITY_INLINES_HIDDEN": True,
    # libraries only: no tests, tools, examples, server, app
    "LLAMA_BUILD_TESTS": False,
    "LLAMA_BUILD_TOOLS": False,
    "LLAMA_BUILD_EXAMPLES": False,
    "LLAMA_BUILD_SERVER": False,
    "LLAMA_BUILD_APP": False,
    "LLAMA_TOOLS_INSTALL": False,
    "LLAMA_TESTS_INSTALL": False,
    "LLAMA_OPENSSL": False,
    "LLAMA_USE_SYSTEM_GGML": False,
    "LLAMA_ALL_WARNINGS": False,
    "GGML_BUILD_TESTS": False,
    "GGML_BUILD_EXAMPLES": False,
    "GGML_ALL_WARNINGS": False,
    # GGML_STATIC only picks CUDA::cudart_static/cublas_static for upstream's own link interface;
    # package_info() declares ours. Off: the CUDA runtime stays shared (ADR), and static cuBLAS is
    # missing from many installs (the nvidia-cublas wheel)
    "GGML_STATIC": False,
    # no network, no tool picked from the environment
    "FETCHCONTENT_FULLY_DISCONNECTED": True,
    "GGML_OPENMP_FETCH": False,
    "GGML_CCACHE": False,
    # every accelerator backend off unless the backend table turns it on
    "GGML_METAL": False,
    "GGML_BLAS": False,
    "GGML_CUDA": False,
    "GGML_VULKAN": False,
    "GGML_HIP": False,
    "GGML_SYCL": False,
    "GGML_OPENCL": False,
}

# CUDA options -> cache variables (cuda only); NCCL and the driver are the two hard dependencies
# upstream's defaults would add
CUDA_CACHE = {
    "cuda_architectures": ("CMAKE_CUDA_ARCHITECTURES", str),
    "cuda_vmm": ("GGML_CUDA_NO_VMM", lambda on: not on),  # VMM links libcuda.so.1 (the driver)
    "cuda_fa": ("GGML_CUDA_FA", bool),
    "cuda_fa_all_quants": ("GGML_CUDA_FA_ALL_QUANTS", bool),
    "cuda_graphs": ("GGML_CUDA_GRAPHS", bool),
}
CUDA_PINNED = {"GGML_CUDA_NCCL": False}  # upstream default ON: a hard libnccl dependency

# Optional libraries beside llama + ggml, one row per boolean option, read by generate(),
# package() and (through link_components) package_info().
#   cmake       cache variables the option sets when on; `off` what it sets when off
#   components  the archives it adds (names in COMPONENTS below)
#   headers     (source folder, package include folder, patterns, excludes) copied by package(): upstream's
#               `cmake --install` installs neither common's headers nor nlohmann
#   licenses    notices of the vendored code the archives contain -> licenses/
OPTIONAL_PARTS = {
    # chat templates, JSON-schema grammars, speculative decoding, sampling helpers: what every
    # binding links. No OpenSSL (cpp-httplib without TLS: common's download helpers cannot fetch
    # https, and nothing downloads unless the caller asks) and no subprocess spawning (only the
    # server's router mode uses it; a fork inside the BEAM or a JVM is not ours to do).
    "with_common": {
        "cmake": {"LLAMA_BUILD_COMMON": True, "LLAMA_OPENSSL": False, "LLAMA_SUBPROCESS": False},
        "off": {"LLAMA_BUILD_COMMON": False},
        "components": ["llama-common", "llama-common-base", "cpp-httplib"],
        # http.h is internal (download/server code) and includes cpp-httplib's header: left out
        "headers": [("common", "include/llama-common", ("*.h", "*.hpp"), ("http.h",)),
                    ("vendor/nlohmann", "include/llama-common-vendor/nlohmann", ("*.hpp",), ())],
        "licenses": {"vendor/cpp-httplib/LICENSE": "LICENSE-cpp-httplib",
                     "licenses/LICENSE-jsonhpp": "LICENSE-nlohmann-json"},
    },
    # multimodal input (images, audio) through a projector GGUF. Video needs an ffmpeg binary at
    # run time (a subprocess), so it stays off.
    "with_mtmd": {
        "cmake": {"LLAMA_BUILD_MTMD": True, "MTMD_VIDEO": False},
        "off": {"LLAMA_BUILD_MTMD": False},
        "components": ["mtmd", "vendor-hash"],
        "headers": [],
        # stb_image, miniaudio and sha1 are public domain / MIT-0 with the notice in their headers
        "licenses": {"vendor/hash/xxhash/LICENSE": "LICENSE-xxhash",
                     "vendor/hash/sha256/LICENSE": "LICENSE-sha256",
                     "vendor/hash/rotate-bits/LICENSE.md": "LICENSE-rotate-bits"},
    },
    # upstream's RPC backend (offload to rpc-servers). RDMA is auto-detected upstream when
    # libibverbs happens to be installed on the build machine: pinned off, or it becomes NEEDED.
    "with_rpc": {
        "cmake": {"GGML_RPC": True, "GGML_RPC_RDMA": False},
        "off": {"GGML_RPC": False},
        "components": ["ggml-rpc"],
        "headers": [],
        "licenses": {},
    },
}

# Every archive the package can hold, and what it needs.
#   requires     other components it calls into (only those present are kept)
#   cmake_target upstream's CMake name where upstream has one; vendored helpers get a llama::
#                prefix so they cannot collide with a consumer's own cpp-httplib target
#   pkg_config   pkg-config name (default: the component name)
#   includedirs  extra include folders next to include/
#   system_libs  per Conan os setting
#   build_path   where the archive lies in the build folder when `cmake --install` skips it
COMPONENTS = {
    "mtmd": {"requires": ["vendor-hash", "llama", "ggml", "ggml-base"], "cmake_target": "mtmd"},
    "llama-common": {"requires": ["llama-common-base", "cpp-httplib", "llama", "ggml", "ggml-base"],
                     "cmake_target": "llama-common",
                     "includedirs": ["include/llama-common", "include/llama-common-vendor"],
                     "system_libs": {"Linux": ["pthread"], "FreeBSD": ["pthread"]}},
    "llama-common-base": {"requires": [], "cmake_target": "llama-common-base",
                          "includedirs": ["include/llama-common"], "build_path": "common"},
    "cpp-httplib": {"requires": [], "cmake_target": "llama::cpp-httplib", "pkg_config": "llama-cpp-httplib",
                    "system_libs": {"Linux": ["pthread"], "FreeBSD": ["pthread"], "Windows": ["ws2_32"]},
                    "build_path": "vendor/cpp-httplib"},
    "vendor-hash": {"requires": [], "cmake_target": "llama::vendor-hash", "pkg_config": "llama-vendor-hash",
                    "build_path": "vendor/hash"},
    "llama": {"requires": ["ggml", "ggml-base"], "cmake_target": "llama"},
    "ggml": {"requires": "every backend", "cmake_target": "ggml::ggml"},
    "ggml-rpc": {"requires": ["ggml-base"], "cmake_target": "ggml::ggml-rpc",
                 "system_libs": {"Linux": ["pthread"], "Windows": ["ws2_32"]}},
    "ggml-cpu": {"requires": ["ggml-base"], "cmake_target": "ggml::ggml-cpu"},
    "ggml-base": {"requires": [], "cmake_target": "ggml::ggml-base"},
}
# upstream's ggml-config.cmake also defines ggml::all (ggml and every backend): an interface
# component without an archive of its own
GGML_ALL = {"name": "ggml-all", "cmake_target": "ggml::all"}
# The C++ runtime the archives need (stdcpp_library(): stdc++ with libstdc++, c++ with libc++,
# none with MSVC), an interface component below ggml-base. A C consumer's link step (the C driver)
# would not add it; pkg-config and MakeDeps list it last (-lstdc++). For CMake the build module
# keeps it to C link steps only ($<LINK_LANGUAGE:C>): a C++ link step adds its runtime itself, and
# an explicit -lstdc++ there would link the shared libstdc++ whatever -static-libstdc++ says.
CXX_RUNTIME = {"name": "cxx-runtime", "cmake_target": "llama::cxx-runtime", "pkg_config": "llama-cxx-runtime",
               "build_module": os.path.join("lib", "cmake", "llama-cpp-cxx-runtime.cmake")}
CXX_RUNTIME_MODULE = """# Written by the llama-cpp recipe (CXX_RUNTIME in its conanfile.py): the C++ runtime only for
# C link steps; a C++ link step adds its own (and -static-libstdc++ can keep it out of NEEDED).
if(TARGET {target})
    set_property(TARGET {target} PROPERTY INTERFACE_LINK_LIBRARIES "$<$<LINK_LANGUAGE:C>:{lib}>")
endif()
"""


# cpu_features() per arch. x86_64: Intel SDM / AMD APM CPUID leaves 1 and 7; XCR0 bits 1-2
# (XMM/YMM), 5-7 (opmask/ZMM) and 17-18 (AMX tiles) say whether the OS saves that state.
# armv8: the kernel's AT_HWCAP/AT_HWCAP2 bits (Linux arch/arm64/include/uapi/asm/hwcap.h; FreeBSD
# uses the same values), which also mean the kernel enabled them (SVE state included).
DISPATCH_PROBE = {
    "x86_64": """#include <cpuid.h>

static unsigned cpu_features(void) {
    unsigned a, b, c, d, f = 0, c1, b7 = 0, c7 = 0, d7 = 0, a71 = 0;
    unsigned long long xcr0 = 0;
    unsigned max = __get_cpuid_max(0, 0);
    if (max < 1) return 0;
    __cpuid(1, a, b, c1, d);
    if (max >= 7) {
        __cpuid_count(7, 0, a, b7, c7, d7);
        __cpuid_count(7, 1, a71, b, c, d);
    }
    if (c1 & (1u << 27)) { /* OSXSAVE: XGETBV is usable */
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    const int ymm = (xcr0 & 0x6) == 0x6, zmm = ymm && (xcr0 & 0xe0) == 0xe0, tmm = (xcr0 & 0x60000) == 0x60000;
    const unsigned sse42 = (1u << 0) | (1u << 9) | (1u << 19) | (1u << 20) | (1u << 23); /* SSE3 SSSE3 SSE4.1/4.2 POPCNT */
    const unsigned avx512 = (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31); /* F DQ CD BW VL */
    if ((c1 & sse42) == sse42) f |= F_SSE42;
    if (ymm && (c1 & (1u << 28))) f |= F_AVX;
    if ((f & F_AVX) && (c1 & (1u << 29))) f |= F_F16C;
    if ((f & F_AVX) && (c1 & (1u << 12))) f |= F_FMA;
    if (b7 & (1u << 8)) f |= F_BMI2;
    if ((f & F_AVX) && (b7 & (1u << 5))) f |= F_AVX2;
    if ((f & F_AVX) && (a71 & (1u << 4))) f |= F_AVX_VNNI;
    if (zmm && (b7 & avx512) == avx512) f |= F_AVX512;
    if ((f & F_AVX512) && (c7 & (1u << 1))) f |= F_AVX512_VBMI;
    if ((f & F_AVX512) && (c7 & (1u << 11))) f |= F_AVX512_VNNI;
    if ((f & F_AVX512) && (a71 & (1u << 5))) f |= F_AVX512_BF16;
    if (tmm && (d7 & (1u << 24))) f |= F_AMX_TILE;
    if (tmm && (d7 & (1u << 25))) f |= F_AMX_INT8;
    if (tmm && (d7 & (1u << 22))) f |= F_AMX_BF16;
    return f;
}
""",
    "armv8": """#include <sys/auxv.h>

static unsigned cpu_features(void) {
    unsigned long hwcap = 0, hwcap2 = 0;
    unsigned f = 0;
#if defined(__linux__)
    hwcap = getauxval(AT_HWCAP);
    hwcap2 = getauxval(AT_HWCAP2);
#elif defined(__FreeBSD__)
    elf_aux_info(AT_HWCAP, &hwcap, sizeof hwcap);
    elf_aux_info(AT_HWCAP2, &hwcap2, sizeof hwcap2);
#endif
    if (hwcap & (1ul << 8)) f |= F_LSE;                           /* HWCAP_ATOMICS */
    if (hwcap & (1ul << 20)) f |= F_DOTPROD;                      /* HWCAP_ASIMDDP */
    if ((hwcap & (1ul << 9)) && (hwcap & (1ul << 10))) f |= F_FP16; /* HWCAP_FPHP, HWCAP_ASIMDHP */
    if (hwcap & (1ul << 22)) f |= F_SVE;                          /* HWCAP_SVE */
    if (hwcap2 & (1ul << 13)) f |= F_I8MM;                        /* HWCAP2_I8MM */
    if (hwcap2 & (1ul << 14)) f |= F_BF16;                        /* HWCAP2_BF16 */
    return f;
}
""",
}

# The dispatcher cpu_baseline=dispatch compiles next to the variants, filled in by CpuDispatch from
# ggml-cpu.h, CPU_VARIANTS and the arch's DISPATCH_PROBE (cpu_features(): one F_<feature> bit per
# DISPATCH_FEATURES entry the running CPU and OS support).
DISPATCH_C = """/* Generated by the llama-cpp Conan recipe (cpu_baseline=dispatch) from ggml-cpu.h and the
 * recipe's CPU_VARIANTS table: every ggml-cpu.h function forwards to the variant chosen at first use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ggml-cpu.h"

void ggml_log_internal(enum ggml_log_level level, const char * format, ...);

enum {{ {feature_enum} }};
static const char * const feature_names[] = {{ {feature_names} }};

{probe}
struct api {{
{api_members}
}};
{externs}
static const struct variant {{
    const char * name;
    unsigned needs;
    struct api api;
}} variants[] = {{
{variant_rows}
}};
#define N_VARIANTS (sizeof(variants) / sizeof(variants[0]))

static void names(char * out, size_t size, unsigned bits, int of_variants) {{
    size_t used = 0;
    out[0] = 0;
    for (size_t i = 0; i < (of_variants ? N_VARIANTS : sizeof(feature_names) / sizeof(feature_names[0])); i++) {{
        int take = of_variants ? (variants[i].needs & bits) == variants[i].needs : (bits >> i) & 1;
        if (take && used < size) {{
            used += snprintf(out + used, size - used, "%s%s", used ? " " : "", of_variants ? variants[i].name : feature_names[i]);
        }}
    }}
}}

static const struct variant * choose(void) {{
    const unsigned have = cpu_features();
    const char * forced = getenv("{env}");
    char runnable[256], all[256], missing[256];
    names(runnable, sizeof runnable, have, 1);
    names(all, sizeof all, ~0u, 1);
    if (forced && *forced) {{
        for (size_t i = 0; i < N_VARIANTS; i++) {{
            if (strcmp(variants[i].name, forced) != 0) continue;
            if ((variants[i].needs & have) == variants[i].needs) {{
                ggml_log_internal(GGML_LOG_LEVEL_INFO, "ggml-cpu: variant %s, forced by {env} (this CPU can run: %s)\\n",
                                  forced, runnable);
                return &variants[i];
            }}
            names(missing, sizeof missing, variants[i].needs & ~have, 0);
            ggml_log_internal(GGML_LOG_LEVEL_ERROR, "ggml-cpu: {env}=%s cannot run here: this CPU or OS lacks %s; "
                              "it can run: %s. No CPU backend is registered\\n", forced, missing, runnable);
            return NULL;
        }}
        ggml_log_internal(GGML_LOG_LEVEL_ERROR, "ggml-cpu: {env}=%s is not a variant of this build; choose one of: "
                          "%s. No CPU backend is registered\\n", forced, all);
        return NULL;
    }}
    for (size_t i = N_VARIANTS; i-- > 0;) {{
        if ((variants[i].needs & have) == variants[i].needs) {{
            ggml_log_internal(GGML_LOG_LEVEL_INFO, "ggml-cpu: variant %s chosen for this CPU (variants: %s; {env} forces one)\\n",
                              variants[i].name, all);
            return &variants[i];
        }}
    }}
    ggml_log_internal(GGML_LOG_LEVEL_ERROR, "ggml-cpu: this CPU runs none of the variants %s\\n", all);
    return NULL;
}}

static const struct variant * chosen;
static int claimed, decided;

/* the variant for this process, chosen once; NULL if a forced one cannot run */
static const struct variant * selected(void) {{
    if (__atomic_load_n(&decided, __ATOMIC_ACQUIRE)) return chosen;
    if (__atomic_exchange_n(&claimed, 1, __ATOMIC_ACQ_REL) == 0) {{
        chosen = choose();
        __atomic_store_n(&decided, 1, __ATOMIC_RELEASE);
    }}
    while (!__atomic_load_n(&decided, __ATOMIC_ACQUIRE)) {{
    }}
    return chosen;
}}

/* what a forwarder calls when no variant was chosen: the floor, which every CPU runs */
static const struct variant * any(void) {{
    const struct variant * v = selected();
    return v ? v : &variants[0];
}}

const char * llama_cpp_cpu_variant(void) {{
    const struct variant * v = selected();
    return v ? v->name : NULL;
}}

{forwarders}
"""

DISPATCH_CMAKE = """cmake_minimum_required(VERSION 3.16)
project(llama_cpp_cpu_dispatch C)
add_library(ggml-cpu-dispatch STATIC dispatch.c)
target_include_directories(ggml-cpu-dispatch PRIVATE "{include}")
"""

DISPATCH_HEADER = """/* Written by the llama-cpp Conan recipe for packages built with cpu_baseline=dispatch. */
#pragma once
#ifdef __cplusplus
extern "C" {{
#endif
/* The ggml-cpu variant this process uses (one of: {names}), chosen at first use of the CPU
 * backend from CPUID and the OS's saved register state, or forced with the environment variable
 * {env}. NULL when the forced variant cannot run on this CPU (no CPU backend then). */
const char * llama_cpp_cpu_variant(void);
#ifdef __cplusplus
}}
#endif
"""

# ggml-cpu.h functions whose forwarder answers NULL (no CPU backend) when a forced variant cannot
# run; every other one uses the floor variant then, so a direct consumer never crashes on it
DISPATCH_REFUSABLE = {"ggml_backend_cpu_reg", "ggml_backend_cpu_init"}


def header_functions(text):
    """(return type, name, parameter list) of every GGML_BACKEND_API function declared in text,
    each parameter a (type text, name) pair with a name made up where the header has none."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.S)
    functions = []
    for decl in re.findall(r"GGML_BACKEND_API\s+([^;{}]*?\))\s*;", text):
        decl = " ".join(decl.split())
        match = re.fullmatch(r"(.*?[\s*])(\w+)\s*\((.*)\)", decl)
        ret, name, params = match.group(1).strip(), match.group(2), match.group(3).strip()
        args = []
        if params not in ("", "void"):
            for i, param in enumerate(p.strip() for p in params.split(",")):
                words = re.findall(r"\w+", param)
                unnamed = (param.endswith("*") or len(words) == 1
                           or (len(words) == 2 and words[0] in ("const", "struct", "enum", "unsigned", "signed")))
                args.append((param, f"a{i}") if unnamed else (param[:param.rfind(words[-1])].strip(), words[-1]))
        functions.append((ret, name, args))
    return functions


class CpuDispatch:
    """cpu_baseline=dispatch, run by build() after the main build, whose ggml-cpu objects are the
    first CPU_VARIANTS row. Every other row is a sub-build of the same source (same cache variables
    and toolchain, that row's ISA flags, only the ggml-cpu target: ggml's own project cannot be
    configured alone from llama.cpp's tree). Every symbol a
    variant's objects define is renamed with a per-variant prefix (objcopy --redefine-syms), COMDAT
    group signatures included: otherwise the linker would keep one copy of an inline or template
    function for all variants, possibly the AVX-512 one. A generated dispatcher defines every
    ggml-cpu.h function and forwards it to the chosen variant; build/cpu-dispatch/libggml-cpu.a
    (dispatcher + all renamed objects) replaces upstream's archive in package()."""

    def __init__(self, conanfile):
        self.cf = conanfile
        self.arch = str(conanfile.settings.arch)
        self.variants = CPU_VARIANTS[self.arch]
        self.folder = os.path.join(conanfile.build_folder, "cpu-dispatch")
        # PE/COFF (MinGW-w64) or ELF objects: what marks a COMDAT group differs (see _comdat)
        self.coff = conanfile.settings.os == "Windows"
        cache = load(conanfile, os.path.join(conanfile.build_folder, "CMakeCache.txt"))
        self.tools = {tool: re.search(rf"^CMAKE_{tool}:\w+=(.+)$", cache, re.M).group(1)
                      for tool in ("AR", "NM", "OBJCOPY", "OBJDUMP" if self.coff else "READELF")}

    @staticmethod
    def prefix(variant):
        return "cpuvar_" + re.sub(r"\W", "_", variant["name"]) + "__"

    def build(self):
        import subprocess
        objects, functions = [], None
        for index, variant in enumerate(self.variants):
            build = self.cf.build_folder if index == 0 else self._sub_build(variant)
            build = os.path.join(build, "ggml", "src")
            renamed, defined = self._renamed(variant, os.path.join(build, "CMakeFiles", "ggml-cpu.dir"))
            objects += renamed
            functions = defined if functions is None else functions & defined
        archive = os.path.join(self.folder, "libggml-cpu.a")
        if os.path.exists(archive):
            os.remove(archive)
        members = [self._dispatcher(functions)] + objects
        subprocess.run([self.tools["AR"], "qcD", archive] + [os.path.relpath(m, self.folder) for m in members],
                       cwd=self.folder, check=True)
        subprocess.run([self.tools["AR"], "sD", archive], check=True)
        self.cf.output.info(f"cpu_baseline=dispatch: {archive} holds the variants "
                            f"{', '.join(v['name'] for v in self.variants)} and the dispatcher")

    def _cmake(self, source, folder, variables):
        """Configure one CMake project with the main build's toolchain and generator."""
        lines = []
        for key, value in variables.items():
            kind = "BOOL" if isinstance(value, bool) else "STRING"
            value = ("ON" if value else "OFF") if isinstance(value, bool) else str(value)
            lines.append(f'set({key} "{value}" CACHE {kind} "")')
        save(self.cf, os.path.join(folder, "init-cache.cmake"), "\n".join(lines) + "\n")
        generator = self.cf.conf.get("tools.cmake.cmaketoolchain:generator") or "Ninja"
        toolchain = os.path.join(self.cf.generators_folder, "conan_toolchain.cmake")
        self.cf.run(f'cmake -G "{generator}" -C "{os.path.join(folder, "init-cache.cmake")}" '
                    f'-DCMAKE_TOOLCHAIN_FILE="{toolchain}" -DCMAKE_BUILD_TYPE={self.cf.settings.build_type} '
                    f'-S "{source}" -B "{folder}"')

    def _sub_build(self, variant):
        from conan.tools.build import build_jobs
        folder = os.path.join(self.folder, variant["name"])
        variables = self.cf._cache_variables()
        variables.update(variant_cmake(self.arch, variant))
        # only ggml-cpu: no other backend or library, and its objects need no ggml-base archive first
        variables.update({name: False for name in ("GGML_CUDA", "GGML_VULKAN", "GGML_METAL", "GGML_BLAS", "GGML_RPC",
                                                   "LLAMA_BUILD_COMMON", "LLAMA_BUILD_MTMD")})
        variables["CMAKE_OPTIMIZE_DEPENDENCIES"] = True
        self._cmake(self.cf.source_folder, folder, variables)
        self.cf.run(f'cmake --build "{folder}" --target ggml-cpu --parallel {build_jobs(self.cf)}')
        return folder

    def _comdat(self, objects):
        """COMDAT groups of the objects: the signature symbols of ELF groups (`readelf -g`; local
        ones too, such as GCC's ...D5Ev), which the symbol renaming covers; for PE/COFF
        {object: [link-once section]}, which get renamed as well: GNU ld folds PE link-once
        sections of the same name (.xdata$<function> and .pdata$<function> have no COMDAT symbol
        at all), and with renamed symbols alone the DLL failed to link (one variant's
        .rdata$.refptr.<table> kept, the others' renamed .refptr symbols undefined)."""
        import subprocess
        if not self.coff:
            groups = subprocess.run([self.tools["READELF"], "-gW"] + objects, check=True,
                                    capture_output=True, text=True).stdout
            return set(re.findall(r"\[([^\]\s]+)\] contains", groups)), {}
        sections = {}
        for obj in objects:
            listing = subprocess.run([self.tools["OBJDUMP"], "-h", "-w", obj], check=True,
                                     capture_output=True, text=True).stdout
            sections[obj] = re.findall(r"^\s*\d+\s+(\S+)\s.*\bLINK_ONCE_", listing, re.M)
        return set(), sections

    def _renamed(self, variant, objdir):
        """Copies of a variant's objects with every symbol they define renamed (and on PE/COFF
        their link-once sections), and the names of the functions they define globally."""
        import subprocess
        objects = sorted(str(p) for p in Path(objdir).rglob("*") if p.suffix in (".o", ".obj"))
        if not objects:
            raise ConanException(f"cpu_baseline=dispatch: no ggml-cpu objects in {objdir}")
        listing = subprocess.run([self.tools["NM"], "--defined-only", "-P"] + objects, check=True,
                                 capture_output=True, text=True).stdout
        rows = [line.split() for line in listing.splitlines()]
        rows = [row for row in rows if len(row) >= 2 and len(row[1]) == 1 and row[1] not in "NnUw"]
        signatures, sections = self._comdat(objects)
        prefix = self.prefix(variant)

        def section_name(section):  # .text$name -> .text$<prefix>name
            base, _, rest = section.partition("$")
            return f"{base}${prefix}{rest}"
        # COFF section symbols (local, named as their section: .text, .text$name) keep their
        # section's name: those of renamed sections get the same new name, the others none
        symbols = {row[0] for row in rows if not (self.coff and row[1].islower() and row[0].startswith("."))}
        renames = {s: prefix + s for s in symbols | signatures}
        renames.update({s: section_name(s) for names in sections.values() for s in names})
        mapping = os.path.join(self.folder, f"{variant['name']}.redefine")
        save(self.cf, mapping, "".join(f"{s} {renames[s]}\n" for s in sorted(renames)))
        renamed = []
        for obj in objects:
            out = os.path.join(self.folder, "objects", f"{variant['name']}__" +
                               os.path.relpath(obj, objdir).replace(os.sep, "_"))
            os.makedirs(os.path.dirname(out), exist_ok=True)
            options = [f"--redefine-syms={mapping}"]
            options += [f"--rename-section={section}={section_name(section)}" for section in sections.get(obj, [])]
            arguments = out + ".args"  # an options file: an object can have thousands of sections
            save(self.cf, arguments, "\n".join(options) + "\n")
            subprocess.run([self.tools["OBJCOPY"], f"@{arguments}", obj, out], check=True)
            os.remove(arguments)
            renamed.append(out)
        return renamed, {row[0] for row in rows if row[1] in "TW"}

    def _dispatcher(self, defined):
        """Writes, configures and builds the dispatcher forwarding every ggml-cpu.h function the
        variants define (upstream declares a few it defines nowhere: those are reported and left
        out, as a call to one fails to link without dispatch too); returns its object file."""
        header = os.path.join(self.cf.source_folder, "ggml", "include", "ggml-cpu.h")
        declared = header_functions(load(self.cf, header))
        functions = [f for f in declared if f[1] in defined]
        if not any(name == "ggml_backend_cpu_reg" for _, name, _ in functions):
            raise ConanException(f"cpu_baseline=dispatch: the variants define no ggml_backend_cpu_reg of {header}")
        undefined = sorted(name for _, name, _ in declared if name not in defined)
        self.cf.output.info(f"cpu_baseline=dispatch: {len(functions)} ggml-cpu.h functions forwarded; declared "
                            f"but defined by no variant (not forwarded): {', '.join(undefined) or 'none'}")
        flags = DISPATCH_FEATURES[self.arch]
        members = "\n".join(f"    __typeof__({name}) * {name};" for _, name, _ in functions)
        externs = "".join(f"extern __typeof__({name}) {self.prefix(v)}{name};\n"
                          for v in self.variants for _, name, _ in functions)
        rows = []
        for v in self.variants:
            needs = " | ".join(f"F_{flag}" for flag in v["isa"]) or "0"
            api = ", ".join(f"{self.prefix(v)}{name}" for _, name, _ in functions)
            rows.append(f'    {{"{v["name"]}", {needs}, {{{api}}}}},')
        forwarders = []
        for ret, name, args in functions:
            params = ", ".join(f"{t} {n}" for t, n in args) or "void"
            call = ", ".join(n for _, n in args)
            if name in DISPATCH_REFUSABLE:
                body = f"const struct variant * v = selected(); return v ? v->api.{name}({call}) : NULL;"
            else:
                body = f"{'' if ret == 'void' else 'return '}any()->api.{name}({call});"
            forwarders.append(f"{ret} {name}({params}) {{ {body} }}")
        source = DISPATCH_C.format(
            feature_enum=", ".join(f"F_{flag} = 1u << {i}" for i, flag in enumerate(flags)),
            feature_names=", ".join(f'"{flag}"' for flag in flags), probe=DISPATCH_PROBE[self.arch],
            api_members=members, externs=externs,
            variant_rows="\n".join(rows), env=CPU_VARIANT_ENV, forwarders="\n".join(forwarders))
        project = os.path.join(self.folder, "dispatcher")
        save(self.cf, os.path.join(project, "dispatch.c"), source)
        save(self.cf, os.path.join(project, "CMakeLists.txt"),
             DISPATCH_CMAKE.format(include=os.path.dirname(header).replace("\\", "/")))
        build = os.path.join(project, "build")
        self._cmake(project, build, {k: v for k, v in self.cf._cache_variables().items()
                                     if k.startswith("CMAKE_")})
        self.cf.run(f'cmake --build "{build}"')
        objects = [str(p) for p in Path(build).rglob("dispatch.c.o*")]
        return objects[0]


class LlamaCppConan(ConanFile):
    name = "llama-cpp"
    description = ("llama.cpp built as static archives per backend, meant to be linked into one "
                   "self-contained shared object (Erlang/Elixir NIF, Python/Ruby/Node/JNI module)")
    license = "MIT"
    url = "https://github.com/ggml-org/llama.cpp"
    homepage = "https://github.com/ggml-org/llama.cpp"
    topics = ("llama", "llm", "ggml", "gguf", "inference", "static", "nif")
    package_type = "static-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "backend": ["cpu", "metal", "cuda", "vulkan"],
        "fPIC": [True, False],
        "openmp": [True, False],
        "cpu_baseline": [None] + list(CPU_BASELINES),
        "with_common": [True, False],
        "with_mtmd": [True, False],
        "with_rpc": [True, False],
        "sanitize": [None, "ANY"],
        # CUDA only (removed for other backends)
        "cuda_architectures": ["ANY"],
        "cuda_vmm": [True, False],
        "cuda_fa": [True, False],
        "cuda_fa_all_quants": [True, False],
        "cuda_graphs": [True, False],
    }
    default_options = {
        "backend": "cpu",
        "fPIC": True,
        "openmp": False,
        "cpu_baseline": None,
        "with_common": True,
        "with_mtmd": False,
        "with_rpc": False,
        "sanitize": None,
        # SASS for every family CUDA 13 supports from Turing (sm_75, its oldest) to Hopper, so no
        # common GPU JIT-compiles ggml on first load; Blackwell consumer/workstation (120) and DGX
        # Spark (121) as the arch-specific 120a/121a that ggml's FP4 tensor-core paths need (upstream
        # rewrites a plain 12x to 12xa anyway, and 12xa code runs on that exact family only); and
        # portable compute_100 PTX, which the driver JIT-compiles for the GPUs with no SASS here
        # (B200/B300 at 10.x, Thor at 11.0).
        "cuda_architectures": "75-real;80-real;86-real;89-real;90-real;120a-real;121a-real;100-virtual",
        "cuda_vmm": False,
        "cuda_fa": True,
        "cuda_fa_all_quants": False,
        "cuda_graphs": True,
    }
    options_description = {
        "backend": "GPU backend linked next to the always-built CPU backend",
        "openmp": "use OpenMP for the CPU thread pool (adds libgomp/libomp to every consumer)",
        "cpu_baseline": "ISA the CPU backend may assume; default: dispatch where supported, else the arch's portable level",
        "with_common": "llama-common + llama-common-base: chat templates, JSON-schema grammars, sampling, speculative",
        "with_mtmd": "libmtmd: image/audio input through a projector GGUF",
        "with_rpc": "ggml-rpc backend: offload to upstream rpc-servers over TCP",
        "sanitize": "instrument the archives: comma-separated address, undefined, fuzzer-no-link (clang); "
                    "consumers link the runtime; one CPU variant (no dispatch)",
        "cuda_architectures": "CMAKE_CUDA_ARCHITECTURES for ggml-cuda (';'-separated)",
        "cuda_vmm": "use CUDA virtual memory management: links the driver (libcuda.so.1)",
        "cuda_fa": "compile the flash-attention kernels (most of the build time; off = slower long contexts)",
        "cuda_fa_all_quants": "compile flash-attention kernels for every KV quant type (slow build)",
        "cuda_graphs": "use CUDA graphs",
    }

    # ---------------------------------------------------------------- recipe plumbing

    def set_version(self):
        known = list(self.conan_data["sources"])
        if self.version is None:
            self.version = max(known, key=lambda v: int(v.lstrip("b")))
        elif str(self.version) not in known:
            raise ConanException(f"llama-cpp/{self.version}: unknown version; this recipe knows "
                                 f"{', '.join(known)} (pass one of them with --version)")

    def export_sources(self):
        export_conandata_patches(self)

    def config_options(self):
        if self.settings.os == "Windows":
            del self.options.fPIC
        if is_apple_os(self):
            self.options.backend = "metal"
        self.options.cpu_baseline = default_baseline(str(self.settings.os), str(self.settings.arch),
                                                     str(self.settings.compiler))

    def configure(self):
        if self.options.backend != "cuda":
            for opt in CUDA_CACHE:
                self.options.rm_safe(opt)

    def layout(self):
        cmake_layout(self, src_folder="src")

    @property
    def _backend(self):
        return BACKENDS[str(self.options.backend)]

    # ---------------------------------------------------------------- checks

    def validate(self):
        os_ = str(self.settings.os)
        backend = str(self.options.backend)
        allowed = self._backend["os"]
        if allowed is not None and os_ not in allowed:
            raise ConanInvalidConfiguration(
                f"backend={backend} is not supported on os={os_}: {self._backend['os_reason']}")

        baseline = str(self.options.cpu_baseline)
        arch = str(self.settings.arch)
        valid_arches = CPU_BASELINES[baseline]["arch"]
        if valid_arches is not None and arch not in valid_arches:
            choices = [b for b, d in CPU_BASELINES.items() if d["arch"] is None or arch in d["arch"]]
            raise ConanInvalidConfiguration(
                f"cpu_baseline={baseline} is not valid for arch={arch}; "
                f"choose one of: {', '.join(choices)}")
        compiler = str(self.settings.compiler)
        if baseline == "dispatch" and not dispatch_supported(os_, arch, compiler):
            where = "; ".join(f"{o} {'/'.join(r['arch'])} with {'/'.join(r['compiler'])}"
                              for o, r in DISPATCH_TARGETS.items())
            raise ConanInvalidConfiguration(
                f"cpu_baseline=dispatch is not supported for os={os_} arch={arch} compiler={compiler} "
                f"yet (only {where}): pick one level such as {DEFAULT_BASELINE.get(arch, 'generic')}")
        if baseline == "native" and cross_building(self):
            raise ConanInvalidConfiguration(
                f"cpu_baseline=native cannot be used when cross building for arch={arch}: "
                f"pick an explicit level such as {DEFAULT_BASELINE.get(arch, 'generic')}")

        libc = self.conf.get(LIBC_CONF)
        if libc is not None:
            if libc not in LIBCS:
                raise ConanInvalidConfiguration(
                    f"{LIBC_CONF}={libc} is unknown: use one of {', '.join(LIBCS)} (the profiles "
                    f"linux-<arch>-<libc>), or unset it for the compiler's own libc")
            if os_ != "Linux" or backend not in LIBC_BACKENDS:
                raise ConanInvalidConfiguration(
                    f"{LIBC_CONF}={libc} (the Zig profiles) supports os=Linux with backend="
                    f"{'/'.join(LIBC_BACKENDS)} only, not os={os_} backend={backend}: build GPU "
                    f"backends with the host's gcc profile (linux-x86_64, linux-x86_64-cuda)")
            if compiler != "clang" or self.settings.get_safe("compiler.libcxx") != "libc++":
                raise ConanInvalidConfiguration(
                    f"{LIBC_CONF}={libc} is for the Zig toolchain (compiler=clang, compiler.libcxx=libc++), "
                    f"not compiler={compiler} compiler.libcxx={self.settings.get_safe('compiler.libcxx')}: "
                    f"use the profiles linux-<arch>-{libc}")

        problem = sanitize_problem(str(self.options.sanitize) if self.options.sanitize else None, os_, compiler,
                                   self.conf.get(LIBC_CONF))
        if problem:
            raise ConanInvalidConfiguration(problem)
        if self.options.sanitize and baseline == "dispatch":
            # instrumented code in dispatch's renamed per-variant copies of ggml-cpu is untested
            raise ConanInvalidConfiguration(
                f"sanitize={self.options.sanitize} builds one CPU variant, not cpu_baseline=dispatch (the "
                f"default here): add -o cpu_baseline={DEFAULT_BASELINE.get(arch, 'generic')} or another level")

        if self.options.openmp and self.settings.compiler in ("apple-clang", "msvc"):
            raise ConanInvalidConfiguration(
                f"openmp=True is not supported with compiler={self.settings.compiler}: it ships no "
                f"OpenMP runtime ggml can link; use openmp=False (ggml's own thread pool)")

        if self.options.backend == "cuda":
            archs = str(self.options.cuda_architectures)
            if not re.fullmatch(r"(native|all|all-major|(\d{2,3}[af]?(-real|-virtual)?)(;\d{2,3}[af]?"
                                r"(-real|-virtual)?)*)", archs):
                raise ConanInvalidConfiguration(
                    f"cuda_architectures={archs!r} is malformed: use ';'-separated compute "
                    f"capabilities like '86-real;90-real;90-virtual', or 'all'/'all-major'/'native'")
            # upstream rewrites a plain 12x to 12xa: PTX for it then runs on that family only
            ptx_12x = [a for a in archs.split(";") if re.fullmatch(r"12\d(-virtual)?", a)]
            if ptx_12x:
                self.output.warning(
                    f"cuda_architectures: {';'.join(ptx_12x)} becomes arch-specific 12xa PTX in ggml, "
                    f"which newer GPUs cannot JIT-compile; add a plain virtual architecture such as "
                    f"100-virtual for forward compatibility")

        if self.options.get_safe("fPIC") is not None and not self.options.fPIC:
            self.output.warning(
                "fPIC=False: the archives are not position independent and cannot be linked into a "
                "shared object (NIF, Python/Ruby/Node module); keep fPIC=True unless you only link "
                "executables")

        if self.settings.compiler.get_safe("cppstd"):
            check_min_cppstd(self, 17)

    def validate_build(self):
        if self.options.backend == "cuda" and self.settings.os == "Linux":
            compiler = self.conf.get("tools.build:compiler_executables", default={},
                                     check_type=dict).get("cuda")
            if not compiler and not shutil.which("nvcc"):
                raise ConanInvalidConfiguration(
                    "backend=cuda needs the CUDA compiler: nvcc is not on PATH and "
                    "tools.build:compiler_executables has no 'cuda' entry; install the CUDA "
                    "toolkit or set -c tools.build:compiler_executables=\"{'cuda': '/path/to/nvcc'}\"")
        configured = self.conf.get(GLSLC_CONF)
        if self.options.backend == "vulkan" and configured and not os.path.isfile(configured):
            raise ConanInvalidConfiguration(
                f"backend=vulkan: {GLSLC_CONF}={configured} is not a file; point it at the glslc "
                f"executable (shaderc) or unset it to use glslc from PATH")
        if self.options.backend == "vulkan" and not self._glslc:
            raise ConanInvalidConfiguration(
                f"backend=vulkan needs the shader compiler glslc (shaderc): it is not on PATH and "
                f"{GLSLC_CONF} is not set; install it (Debian/Ubuntu: glslc, or the LunarG Vulkan "
                f"SDK) or set -c {GLSLC_CONF}=/path/to/glslc")

        if self.conf.get(LIBC_CONF) in LIBCS:
            self._check_libc()

    def _check_libc(self):
        """The libc the C compiler targets, asked of the compiler itself (one preprocessor run):
        the one conf user.llama-cpp:libc promises, or one clear line before anything compiles."""
        libc = self.conf.get(LIBC_CONF)
        cc = self.conf.get("tools.build:compiler_executables", default={}, check_type=dict).get("c") or "cc"
        probe = "#include <stdio.h>\n#ifdef __GLIBC__\nglibc __GLIBC__.__GLIBC_MINOR__\n#else\nnoglibc\n#endif\n"
        try:
            proc = subprocess.run([cc, "-E", "-P", "-x", "c", "-"], input=probe, capture_output=True, text=True,
                                  timeout=600)
        except OSError as error:
            raise ConanInvalidConfiguration(f"{LIBC_CONF}={libc}: the C compiler {cc} cannot run ({error})")
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise ConanInvalidConfiguration(f"{LIBC_CONF}={libc}: the C compiler {cc} failed: {reason}")
        found = re.search(r"^glibc\s+(\d+)\s*\.\s*(\d+)", proc.stdout, re.M)
        targets = f"{found.group(1)}.{found.group(2)}" if found else None
        if targets != LIBCS[libc]["glibc"]:
            raise ConanInvalidConfiguration(
                f"{LIBC_CONF}={libc}, but {cc} compiles against "
                f"{'glibc ' + targets if targets else 'a libc without __GLIBC__ (musl)'}: "
                f"use the matching profile linux-<arch>-<libc>")

    def package_id(self):
        libc = self.conf.get(LIBC_CONF)
        if libc is not None:
            self.info.conf.define(LIBC_CONF, libc)

    @property
    def _glslc(self):
        configured = self.conf.get(GLSLC_CONF)
        if configured:
            return configured if os.path.isfile(configured) else None
        return shutil.which("glslc")

    # ---------------------------------------------------------------- build

    def source(self):
        data = self.conan_data["sources"][self.version]
        urls = data["url"] if isinstance(data["url"], list) else [data["url"]]
        # Air-gapped builds: a folder holding llama.cpp-<version>.tar.gz (byte-identical to the
        # GitHub archive) goes first. The sha256 below is checked whichever URL served the file.
        mirror = self.conf.get("user.llama-cpp:source_mirror")
        if mirror:
            archive = os.path.join(os.path.abspath(mirror), f"llama.cpp-{self.version}.tar.gz")
            urls = [Path(archive).as_uri()] + urls
        get(self, url=urls, sha256=data["sha256"], strip_root=True)

    @property
    def _parts(self):
        return [part for part in OPTIONAL_PARTS if self.options.get_safe(part)]

    @property
    def _dispatch(self):
        return str(self.options.cpu_baseline) == "dispatch"

    def _cache_variables(self):
        """Every cache variable of the main build (the CPU variant sub-builds reuse them)."""
        info = self.conan_data["build_info"][self.version]
        variables = dict(PINNED)
        variables.update({
            "CMAKE_POSITION_INDEPENDENT_CODE": bool(self.options.get_safe("fPIC", True)),
            "GGML_OPENMP": bool(self.options.openmp),
            "GGML_ACCELERATE": is_apple_os(self),
            # the version reported by llama_print_system_info / build info
            "BUILD_NUMBER": str(info["number"]),
            "BUILD_COMMIT": info["commit"][:8],
        })
        for part, row in OPTIONAL_PARTS.items():
            variables.update(row["cmake"] if self.options.get_safe(part) else row["off"])
        if self._dispatch:
            variables.update(variant_cmake(str(self.settings.arch), CPU_VARIANTS[str(self.settings.arch)][0]))
        else:
            variables.update(CPU_BASELINES[str(self.options.cpu_baseline)]["cmake"])
        variables.update(self._backend["cmake"])
        if self.options.backend == "vulkan" and self._glslc:  # validate_build() refuses a build without
            variables["Vulkan_GLSLC_EXECUTABLE"] = self._glslc.replace("\\", "/")
        if self.options.backend == "cuda":
            variables.update(CUDA_PINNED)
            for option, (name, convert) in CUDA_CACHE.items():
                variables[name] = convert(self.options.get_safe(option))
        return variables

    def generate(self):
        generator = None if self.conf.get("tools.cmake.cmaketoolchain:generator") else "Ninja"
        tc = CMakeToolchain(self, generator=generator)
        for key, value in self._cache_variables().items():
            tc.cache_variables[key] = value
        if self.settings.compiler in ("gcc", "clang", "apple-clang"):
            flags = [
                # reproducible archives: no build path may end up in them (__FILE__ in GGML_ASSERT
                # messages, debug info), whatever CONAN_HOME or build folder is used
                f"-ffile-prefix-map={self.source_folder}=llama.cpp",
                f"-ffile-prefix-map={self.build_folder}=build",
                # one section per function/object, so a consumer's --gc-sections (-dead_strip on
                # Apple) drops what its module never reaches: 6.50 -> 5.22 MB for the stripped NIF
                "-ffunction-sections",
            ]
            if self.settings.os != "Windows":
                # not for PE/COFF: there gcc gives every zero-initialized global a file-backed
                # .data$<name> section (no .bss$), and ggml-cpu's 0.5 MB of tables per CPU
                # variant would be written into each DLL (tests/test_cross.py)
                flags.append("-fdata-sections")
            if self.options.sanitize:
                compile_flags, link_flags = sanitize_flags(str(self.options.sanitize))
                flags += compile_flags
                tc.extra_exelinkflags.extend(link_flags)
                tc.extra_sharedlinkflags.extend(link_flags)
            tc.extra_cflags.extend(flags)
            tc.extra_cxxflags.extend(flags)
        tc.generate()

    def build(self):
        apply_conandata_patches(self)
        if self.options.backend == "vulkan":
            self._report_shader_features()
        cmake = CMake(self)
        try:
            cmake.configure()
        except ConanException:
            self._explain_configure_failure()
            raise
        if self.options.openmp:
            cache = load(self, os.path.join(self.build_folder, "CMakeCache.txt"))
            if "GGML_OPENMP_ENABLED:INTERNAL=ON" not in cache:
                raise ConanException(
                    f"openmp=True but CMake found no OpenMP for compiler={self.settings.compiler}; "
                    f"install its OpenMP runtime (libgomp/libomp-dev) or use openmp=False")
        cmake.build()
        if self._dispatch:
            CpuDispatch(self).build()

    def _report_shader_features(self):
        """Which optional shader extensions of ggml-vulkan this glslc compiles, probed with
        upstream's own feature-test shaders before CMake runs, so a degraded build (plain shaders
        only: no cooperative matrix, integer dot product or bf16 paths) is visible in the log."""
        import subprocess
        glslc = self._glslc
        version = subprocess.run([glslc, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        supported, missing = [], []
        folder = os.path.join(self.source_folder, VULKAN_FEATURE_TESTS)
        for name in sorted(os.listdir(folder)):
            shader = os.path.join(folder, name)
            extension = re.search(r"#extension\s+(\w+)\s*:\s*require", load(self, shader))
            extension = extension.group(1) if extension else name
            proc = subprocess.run([glslc, "-o", os.devnull, "-fshader-stage=compute", "--target-env=vulkan1.3",
                                   shader], capture_output=True, text=True)
            (supported if proc.returncode == 0 else missing).append(extension)
        self.output.info(f"vulkan shader features of {glslc} ({version}): supported: "
                         f"{', '.join(supported) or 'none'}; unsupported: {', '.join(missing) or 'none'}")
        if missing:
            self.output.warning(
                f"backend=vulkan: this glslc lacks {', '.join(missing)}; ggml-vulkan uses its plain "
                f"shaders for those (slower on GPUs that have them). Point {GLSLC_CONF} at a newer "
                f"shaderc (e.g. the LunarG Vulkan SDK's glslc) for the full set")

    def _explain_configure_failure(self):
        """One line for the configure failures a user can fix, instead of only CMake's trace."""
        cache_file = os.path.join(self.build_folder, "CMakeCache.txt")
        cache = load(self, cache_file) if os.path.exists(cache_file) else ""
        if self.options.backend == "vulkan":
            for variable, package in (("Vulkan_INCLUDE_DIR", "the Vulkan headers and loader (libvulkan-dev)"),
                                      ("Vulkan_LIBRARY", "the Vulkan headers and loader (libvulkan-dev)"),
                                      ("SPIRV-Headers_DIR", "SPIRV-Headers (spirv-headers)")):
                if f"{variable}-NOTFOUND" in cache:
                    raise ConanException(f"backend=vulkan: CMake did not find {package} ({variable}); "
                                         f"install them or add their prefix to CMAKE_PREFIX_PATH")

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        self._package_vendored_licenses()
        self._package_sbom()
        cmake = CMake(self)
        cmake.install()
        for sub in ("lib/cmake", "lib/pkgconfig", "bin", "share"):
            rmdir(self, os.path.join(self.package_folder, sub))
        libdir = os.path.join(self.package_folder, "lib")
        # ggml names its archives ggml*.a for MinGW (no lib prefix); -lggml looks for libggml.a
        for name in os.listdir(libdir):
            if name.endswith(".a") and not name.startswith("lib"):
                rename(self, os.path.join(libdir, name), os.path.join(libdir, "lib" + name))
        self._package_optional_parts(libdir)
        if self._dispatch:
            shutil.copyfile(os.path.join(self.build_folder, "cpu-dispatch", "libggml-cpu.a"),
                            os.path.join(libdir, "libggml-cpu.a"))
            save(self, os.path.join(self.package_folder, "include", CPU_VARIANT_HEADER),
                 DISPATCH_HEADER.format(names=", ".join(v["name"] for v in CPU_VARIANTS[str(self.settings.arch)]),
                                        env=CPU_VARIANT_ENV))
        if stdcpp_library(self):
            save(self, os.path.join(self.package_folder, CXX_RUNTIME["build_module"]),
                 CXX_RUNTIME_MODULE.format(target=CXX_RUNTIME["cmake_target"], lib=stdcpp_library(self)))

    def _package_optional_parts(self, libdir):
        """What `cmake --install` leaves out of the optional parts: the archives llama-common and
        mtmd link privately (COMPONENTS' build_path), common's headers and the vendored nlohmann
        (OPTIONAL_PARTS' headers). Checked against link_components(), so a missing archive fails
        the build instead of a consumer's link."""
        for part in self._parts:
            row = OPTIONAL_PARTS[part]
            for src, dst, patterns, excludes in row["headers"]:
                for pattern in patterns:
                    copy(self, pattern, os.path.join(self.source_folder, src),
                         os.path.join(self.package_folder, dst), excludes=excludes)
            for name in row["components"]:
                archive = os.path.join(libdir, f"lib{name}.a")
                sub = COMPONENTS[name].get("build_path")
                if not os.path.exists(archive) and sub:
                    for built in (f"lib{name}.a", f"{name}.a", f"{name}.lib"):
                        if os.path.exists(os.path.join(self.build_folder, sub, built)):
                            copy(self, built, os.path.join(self.build_folder, sub), libdir)
                            if built != f"lib{name}.a":
                                rename(self, os.path.join(libdir, built), archive)
                            break
                if not os.path.exists(archive):
                    raise ConanException(f"{part}: lib{name}.a was not built; it is needed by the "
                                         f"{name} component")
            for license_file, name in row["licenses"].items():
                save(self, os.path.join(self.package_folder, "licenses", name),
                     load(self, os.path.join(self.source_folder, license_file)))

    def _package_sbom(self):
        # CycloneDX SBOM from Conan's own tooling (works offline). It carries a timestamp and a
        # serial number by design, so it goes to the package's metadata folder, not into the
        # package files that must be reproducible. `conan cache path --folder=metadata` finds it.
        try:
            from conan.tools.sbom import cyclonedx_1_6
        except ImportError:
            self.output.warning("this Conan has no conan.tools.sbom: no SBOM written")
            return
        sbom = cyclonedx_1_6(self, name=f"{self.name}/{self.version}")
        save(self, os.path.join(self.package_metadata_folder, "sbom.cdx.json"), json.dumps(sbom, indent=2))

    def _package_vendored_licenses(self):
        # llamafile's sgemm (compiled into ggml-cpu) carries its own MIT notice in its header
        sgemm = os.path.join(self.source_folder, "ggml", "src", "ggml-cpu", "llamafile", "sgemm.cpp")
        if os.path.exists(sgemm):
            lines = []
            for line in load(self, sgemm).splitlines():
                if not line.startswith("//"):
                    break
                lines.append(line[2:].strip())
            save(self, os.path.join(self.package_folder, "licenses", "LICENSE-llamafile-sgemm"),
                 "\n".join(lines).strip() + "\n")

    # ---------------------------------------------------------------- consumers

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "llama")
        self.cpp_info.set_property("cmake_target_name", "llama::all")
        self.cpp_info.set_property("pkg_config_name", "llama-cpp")
        if stdcpp_library(self):
            self.cpp_info.set_property("cmake_build_modules", [CXX_RUNTIME["build_module"]])
        components = link_components(str(self.settings.os), str(self.options.backend),
                                     bool(self.options.openmp), str(self.settings.compiler),
                                     bool(self.options.get_safe("cuda_vmm", False)), parts=self._parts,
                                     cxx_runtime=stdcpp_library(self),
                                     exclude_libs=self.conf.get(LIBC_CONF) is None)
        for name, spec in components.items():
            comp = self.cpp_info.components[name]
            comp.libs = spec["libs"]
            comp.requires = spec["requires"]
            comp.system_libs = spec["system_libs"]
            comp.sharedlinkflags = spec["sharedlinkflags"]
            comp.frameworks = spec["frameworks"]
            comp.includedirs = spec["includedirs"]
            comp.set_property("cmake_target_name", spec["cmake_target"])
            comp.set_property("pkg_config_name", spec["pkg_config"])
        if self.options.sanitize:
            # every link reaches ggml-base: the consumer's executable or module gets the runtime
            link_flags = sanitize_flags(str(self.options.sanitize))[1]
            base = self.cpp_info.components["ggml-base"]
            base.exelinkflags = base.exelinkflags + link_flags
            base.sharedlinkflags = base.sharedlinkflags + link_flags


def link_components(os_, backend, openmp=False, compiler=None, cuda_vmm=False, parts=(), cxx_runtime=None,
                    exclude_libs=True):
    """What package_info() declares, as data: components in static link order, each with its
    archives, requires, system libs, frameworks, include folders and CMake/pkg-config names.
    `parts` names the OPTIONAL_PARTS options that are on; `cxx_runtime` is the C++ standard
    library (stdcpp_library()), declared by the CXX_RUNTIME component below ggml-base.
    `exclude_libs` False leaves out --exclude-libs (the Zig profiles' linker refuses it: LIBCS).
    A plain function of the settings, so
    tests can check targets that cannot be built here (macOS) through the very code
    package_info() runs.

    Static link order, written down once. A single-pass linker (GNU ld, mingw's ld; lld and
    ld64 are order-insensitive) resolves an archive's undefined symbols only from archives that
    come after it, so dependents go first:

        mtmd, llama-common -> llama-common-base -> cpp-httplib, vendor-hash
          -> llama -> ggml (backend registry) -> ggml-<gpu backend>... -> ggml-rpc
          -> ggml-cpu -> ggml-base

    Each component `requires` the ones it calls, which is what makes CMakeDeps, PkgConfigDeps and
    MakeDeps all emit that order without --start-group. (Upstream's llama.pc says
    -lggml -lggml-base -lllama, which fails for static archives, and its `cmake --install` leaves
    out llama-common-base, cpp-httplib and vendor-hash, which llama-common and mtmd need.)
    """
    spec = BACKENDS[backend]
    present = {c for part in parts for c in OPTIONAL_PARTS[part]["components"]}
    gpu = list(spec["components"])
    order = [c for c in ("mtmd", "llama-common", "llama-common-base", "cpp-httplib", "vendor-hash")
             if c in present]
    order += ["llama", "ggml"] + gpu + [c for c in ("ggml-rpc",) if c in present] + ["ggml-cpu", "ggml-base"]
    frameworks = dict(FRAMEWORKS) if os_ in APPLE_OS else {}
    frameworks.update(spec.get("frameworks", {}))
    extra_libs = {}
    if openmp and compiler in OPENMP_RUNTIME:
        extra_libs.update({name: [OPENMP_RUNTIME[compiler]] for name in ("ggml-cpu", "ggml-base")})
    if backend == "cuda" and cuda_vmm:
        extra_libs["ggml-cuda"] = [CUDA_DRIVER_LIB]
    components = {}
    for index, name in enumerate(order):
        row = COMPONENTS.get(name, {"requires": ["ggml-base"], "cmake_target": f"ggml::{name}"})
        if row["requires"] == "every backend":
            requires = order[index + 1:]
        else:
            requires = [r for r in row["requires"] if r in order]
        components[name] = {
            "libs": [name],
            "requires": requires,
            "system_libs": (SYSTEM_LIBS.get(os_, {}).get(name, []) + row.get("system_libs", {}).get(os_, [])
                            + spec.get("system_libs", {}).get(name, []) + extra_libs.get(name, [])),
            "frameworks": list(frameworks.get(name, [])),
            "sharedlinkflags": [],
            "includedirs": ["include"] + row.get("includedirs", []),
            "cmake_target": row["cmake_target"],
            "pkg_config": row.get("pkg_config", name),
        }
    if cxx_runtime:
        components["ggml-base"]["requires"].append(CXX_RUNTIME["name"])
        components[CXX_RUNTIME["name"]] = {
            "libs": [], "requires": [], "system_libs": [cxx_runtime], "frameworks": [], "sharedlinkflags": [],
            "includedirs": [], "cmake_target": CXX_RUNTIME["cmake_target"], "pkg_config": CXX_RUNTIME["pkg_config"],
        }
    if os_ in EXCLUDE_LIBS_OS and exclude_libs:
        # one flag, on the archive every link reaches (one per component interleaves with the -l
        # flags and defeats pkg-config's de-duplication); the C++ runtime's archive is named too:
        # with -static-libstdc++ a plain -shared link would export all of libstdc++.a (~5,000
        # symbols, unique ones among them)
        hidden = [f"lib{name}.a" for name in order] + ([f"lib{cxx_runtime}.a"] if cxx_runtime else [])
        components["ggml-base"]["sharedlinkflags"] = ["-Wl,--exclude-libs," + ":".join(hidden)]
    components[GGML_ALL["name"]] = {
        "libs": [], "requires": ["ggml"] + order[order.index("ggml") + 1:], "system_libs": [], "frameworks": [],
        "sharedlinkflags": [],
        "includedirs": ["include"], "cmake_target": GGML_ALL["cmake_target"], "pkg_config": GGML_ALL["name"],
    }
    return components
