"""CPU tables: the ISA levels a cpu_baseline names, the variants of cpu_baseline=dispatch, the
features the dispatcher probes, and where dispatch is supported."""
from conan.errors import ConanException

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


# The x86-64 and armv8 levels, written once: cpu_baseline's single levels (CPU_BASELINES) and the
# dispatch variants (CPU_VARIANTS) are built from them.
#   x86-64 micro-architecture levels (psABI), as ggml ISA flags without GGML_: v2 = SSE4.2/POPCNT,
#   v3 = AVX2/FMA/F16C/BMI2, v4 = v3 + AVX-512 F/CD/VL/DQ/BW (ggml's GGML_AVX512 turns on exactly those five).
X86_LEVELS = {
    "x86-64-v2": ["SSE42"],
    "x86-64-v3": ["SSE42", "AVX", "F16C", "FMA", "BMI2", "AVX2"],
}
X86_LEVELS["x86-64-v4"] = X86_LEVELS["x86-64-v3"] + ["AVX512"]
#   armv8 (GGML_CPU_ARM_ARCH): plain ARMv8.0-A (every 64-bit Arm), ARMv8.2-A with dot product and fp16
#   arithmetic (Cortex-A55/A76 and later, all Apple Silicon, Graviton2+), ARMv8.6-A adding int8 matmul.
ARMV8_LEVELS = ["armv8-a", "armv8.2-a+dotprod+fp16", "armv8.6-a+dotprod+fp16+i8mm"]

CPU_BASELINES = {
    **{level: {"arch": ["x86_64"], "cmake": _x86(*[f"GGML_{flag}" for flag in isa])} for level, isa in X86_LEVELS.items()},
    **{level: {"arch": ["armv8"], "cmake": {"GGML_CPU_ARM_ARCH": level}} for level in ARMV8_LEVELS},
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
_V3, _V4 = X86_LEVELS["x86-64-v3"], X86_LEVELS["x86-64-v4"]
_ARMV8_0, _ARMV8_2, _ARMV8_6 = ARMV8_LEVELS
CPU_VARIANTS = {
    "x86_64": [
        {"name": "x86-64", "isa": []},
        {"name": "haswell", "isa": list(_V3)},
        {"name": "alderlake", "isa": _V3 + ["AVX_VNNI"]},
        {"name": "skylakex", "isa": list(_V4)},
        {"name": "icelake", "isa": _V4 + ["AVX512_VBMI", "AVX512_VNNI"]},
    ],
    "armv8": [
        {"name": "armv8.0", "isa": [], "march": _ARMV8_0},
        {"name": "armv8.2", "isa": ["LSE", "DOTPROD", "FP16"], "march": _ARMV8_2},
        {"name": "armv8.6", "isa": ["LSE", "DOTPROD", "FP16", "I8MM", "BF16"], "march": _ARMV8_6},
        {"name": "armv8.6-sve", "isa": ["LSE", "DOTPROD", "FP16", "I8MM", "BF16", "SVE"], "march": _ARMV8_6 + "+sve"},
    ],
}
# the features the dispatcher probes per arch (recipe_src/dispatch/cpu-features-<arch>.h), named as
# CPU_VARIANTS' `isa`
DISPATCH_FEATURES = {
    "x86_64": [flag[len("GGML_"):] for flag in _X86_FLAGS],
    "armv8": ["LSE", "DOTPROD", "FP16", "I8MM", "BF16", "SVE"],
}
# where cpu_baseline=dispatch is supported, per OS: the arches with a CPU probe that works
# there (x86: GCC/Clang's <cpuid.h>; armv8: getauxval/elf_aux_info) and the compilers whose objects
# CpuDispatch can rename (ELF; on Windows MinGW-w64's PE/COFF, whose COMDAT sections are renamed
# too). Left out: MSVC (no <cpuid.h> or __typeof__, and no binutils for its objects), clang on
# Windows (clang-cl objects never tried), armv8 Windows (no HWCAP probe), macOS (Mach-O never tried).
DISPATCH_TARGETS = {
    "Linux": {"arch": ["x86_64", "armv8"], "compiler": ["gcc", "clang"]},
    "FreeBSD": {"arch": ["x86_64", "armv8"], "compiler": ["gcc", "clang"]},
    "Windows": {"arch": ["x86_64"], "compiler": ["gcc"]},
}


def chosen_variants(arch, value):
    """The CPU_VARIANTS rows of `arch` that the cpu_variants option `value` selects, in table order
    (None: every row). The first row, the floor, must be among them: the main build compiles it
    and it is what runs where no other row can. Raises ValueError with the line for the user."""
    rows = CPU_VARIANTS[arch]
    if value is None:
        return list(rows)
    names = [n.strip() for n in str(value).split(",")]
    known = [v["name"] for v in rows]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"cpu_variants={value}: {', '.join(repr(n) for n in unknown)} is not a dispatch "
                         f"variant of arch={arch}; choose a comma-separated subset of {','.join(known)}")
    if known[0] not in names:
        raise ValueError(f"cpu_variants={value} leaves out {known[0]}, the floor of arch={arch} (the main "
                         f"build compiles it; it runs where no other variant can): add it")
    return [v for v in rows if v["name"] in names]


def dispatch_supported(os_, arch, compiler):
    row = DISPATCH_TARGETS.get(os_)
    return bool(row) and arch in row["arch"] and compiler in row["compiler"]


def default_baseline(os_, arch, compiler):
    """The cpu_baseline default: dispatch where it is supported (arch, OS and compiler), else the
    arch's single level."""
    if dispatch_supported(os_, arch, compiler):
        return "dispatch"
    return DEFAULT_BASELINE.get(arch, "generic")



CPU_VARIANT_ENV = "LLAMA_CPP_CPU_VARIANT"  # forces a variant at run time
CPU_VARIANT_HEADER = "llama-cpp-cpu-variant.h"  # declares llama_cpp_cpu_variant() (DISPATCH_HEADER)


def variant_cmake(arch, variant):
    """Cache variables of one CPU_VARIANTS row (every ISA flag set, as for CPU_BASELINES)."""
    if arch == "x86_64":
        return _x86(*[f"GGML_{flag}" for flag in variant["isa"]])
    if arch == "armv8":
        return {"GGML_CPU_ARM_ARCH": variant["march"]}
    raise ConanException(f"no CPU variants for arch={arch}")

