"""Unit tests of the recipe's cache variables (llama_cpp_recipe.config.cache_variables: what
generate() hands to CMake and cpu_baseline=dispatch's sub-builds start from), called directly:
milliseconds, no Conan run. test_recipe_config.py checks through `conan install` that generate()
passes exactly these."""
import pytest

from llama_cpp_recipe.config import cache_variables
from llama_cpp_recipe.cpu import CPU_VARIANTS, chosen_variants
from llama_cpp_recipe.dispatch import SUB_BUILD_OFF, dispatch_table
from llama_cpp_recipe.tables import BACKENDS, OPTIONAL_PARTS, PINNED

ISA = ["GGML_SSE42", "GGML_AVX", "GGML_F16C", "GGML_FMA", "GGML_BMI2", "GGML_AVX2", "GGML_AVX_VNNI",
       "GGML_AVX512", "GGML_AVX512_VBMI", "GGML_AVX512_VNNI", "GGML_AVX512_BF16"]
V3 = {"GGML_SSE42", "GGML_AVX", "GGML_F16C", "GGML_FMA", "GGML_BMI2", "GGML_AVX2"}
COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"


def variables(os_="Linux", arch="x86_64", backend="cpu", cpu_baseline="dispatch", **kwargs):
    kwargs.setdefault("parts", ["with_common"])  # the default options
    return cache_variables(os_, arch, backend, cpu_baseline, 11312, COMMIT, **kwargs)


def isa_on(cache):
    """The x86 ISA flags set True; each must be set (True or False), never left to upstream."""
    assert {flag for flag in ISA if not isinstance(cache.get(flag), bool)} == set(), "ISA flags not explicit"
    return {flag for flag in ISA if cache[flag]}


def test_default_build_is_portable_static_and_offline():
    c = variables()
    assert c["BUILD_SHARED_LIBS"] is False and c["CMAKE_POSITION_INDEPENDENT_CODE"] is True
    assert c["GGML_NATIVE"] is False
    assert isa_on(c) == set(), "dispatch: the main build is the floor variant"
    assert c["GGML_OPENMP"] is False and c["GGML_ACCELERATE"] is False
    for key in ("GGML_BACKEND_DL", "GGML_CPU_ALL_VARIANTS", "LLAMA_BUILD_TESTS", "LLAMA_BUILD_TOOLS",
                "LLAMA_BUILD_EXAMPLES", "LLAMA_BUILD_SERVER", "LLAMA_BUILD_APP", "LLAMA_OPENSSL",
                "LLAMA_SUBPROCESS", "LLAMA_BUILD_MTMD", "GGML_RPC", "GGML_CUDA", "GGML_METAL", "GGML_CCACHE",
                "GGML_OPENMP_FETCH", "GGML_VULKAN"):
        assert c[key] is False, key
    assert c["LLAMA_BUILD_COMMON"] is True and c["FETCHCONTENT_FULLY_DISCONNECTED"] is True
    for lang in ("C", "CXX", "OBJC", "CUDA"):
        assert c[f"CMAKE_{lang}_VISIBILITY_PRESET"] == "hidden"
    assert c["BUILD_NUMBER"] == "11312" and c["BUILD_COMMIT"] == COMMIT[:8]
    assert "Vulkan_GLSLC_EXECUTABLE" not in c and "CMAKE_CUDA_ARCHITECTURES" not in c


@pytest.mark.parametrize("baseline, expected", [
    ("x86-64-v2", {"GGML_SSE42"}), ("x86-64-v3", V3), ("x86-64-v4", V3 | {"GGML_AVX512"}), ("generic", set()),
])
def test_x86_baselines_set_every_isa_flag(baseline, expected):
    c = variables(cpu_baseline=baseline)
    assert isa_on(c) == expected and c["GGML_NATIVE"] is False


def test_native_is_opt_in():
    assert variables(cpu_baseline="native")["GGML_NATIVE"] is True


@pytest.mark.parametrize("arch", ["x86_64", "armv8"])
def test_dispatch_builds_the_floor_variant_first(arch):
    c = variables(arch=arch)
    floor = CPU_VARIANTS[arch][0]
    if arch == "x86_64":
        assert isa_on(c) == {f"GGML_{flag}" for flag in floor["isa"]} == set()
    else:
        assert c["GGML_CPU_ARM_ARCH"] == floor["march"] == "armv8-a"
    assert c["GGML_BACKEND_DL"] is False and c["GGML_CPU_ALL_VARIANTS"] is False


def test_cpu_variants_choose_rows_in_table_order():
    """The cpu_variants option: None is every row; a subset comes back in CPU_VARIANTS order (the
    dispatcher picks the last row the CPU runs, so the order is the table's, not the user's), and
    the generated dispatcher table lists exactly those rows."""
    assert chosen_variants("x86_64", None) == CPU_VARIANTS["x86_64"]
    rows = chosen_variants("x86_64", "skylakex, x86-64,haswell")
    assert [v["name"] for v in rows] == ["x86-64", "haswell", "skylakex"]
    assert [v["name"] for v in chosen_variants("armv8", "armv8.0,armv8.2")] == ["armv8.0", "armv8.2"]
    table = dispatch_table("x86_64", [("void", "ggml_cpu_init", [])], rows)
    listed = table.split("#define CPU_VARIANTS(X)")[1].split("/*")[0]
    assert '"haswell"' in listed and '"skylakex"' in listed and '"alderlake"' not in listed and '"icelake"' not in listed


@pytest.mark.parametrize("arch, value, words", [
    ("x86_64", "x86-64,zen4", ["'zen4' is not a dispatch variant of arch=x86_64", "x86-64,haswell,alderlake"]),
    ("x86_64", "haswell", ["leaves out x86-64, the floor of arch=x86_64"]),
    ("armv8", "armv8.0,haswell", ["'haswell' is not a dispatch variant of arch=armv8"]),
    ("x86_64", "", ["'' is not a dispatch variant"]),
])
def test_cpu_variants_refuse_unknown_rows_and_a_missing_floor(arch, value, words):
    with pytest.raises(ValueError) as error:
        chosen_variants(arch, value)
    assert all(w in str(error.value) for w in words), str(error.value)


@pytest.mark.parametrize("baseline", ["armv8-a", "armv8.2-a+dotprod+fp16", "armv8.6-a+dotprod+fp16+i8mm"])
def test_armv8_levels(baseline):
    assert variables(arch="armv8", cpu_baseline=baseline)["GGML_CPU_ARM_ARCH"] == baseline


def test_riscv64_levels():
    rv = ["GGML_RVV", "GGML_RV_ZFH", "GGML_RV_ZVFH", "GGML_RV_ZICBOP", "GGML_RV_ZIHINTPAUSE"]
    assert [variables(arch="riscv64", cpu_baseline="rv64gc")[f] for f in rv] == [False] * 5
    assert [variables(arch="riscv64", cpu_baseline="rv64gcv")[f] for f in rv] == [True] * 5


def test_apple_targets():
    metal = variables("Macos", "armv8", "metal", "armv8-a")
    assert {k: metal[k] for k in ("GGML_METAL", "GGML_METAL_EMBED_LIBRARY", "GGML_BLAS", "GGML_BLAS_VENDOR",
                                  "GGML_ACCELERATE", "GGML_CPU_ARM_ARCH")} == {
        "GGML_METAL": True, "GGML_METAL_EMBED_LIBRARY": True, "GGML_BLAS": True, "GGML_BLAS_VENDOR": "Apple",
        "GGML_ACCELERATE": True, "GGML_CPU_ARM_ARCH": "armv8-a"}
    intel = variables("Macos", "x86_64", "cpu", "x86-64-v3")
    assert intel["GGML_METAL"] is False and intel["GGML_ACCELERATE"] is True
    assert isa_on(intel) == V3
    # accelerate=False (an SDK-less Zig build: no framework headers); elsewhere Accelerate is off
    assert variables("Macos", "armv8", "cpu", "armv8-a", accelerate=False)["GGML_ACCELERATE"] is False
    assert variables(accelerate=True)["GGML_ACCELERATE"] is False


def test_cuda_options():
    cuda = {"cuda_architectures": "86-real;90-virtual", "cuda_vmm": False, "cuda_fa": True, "cuda_fa_all_quants": False,
            "cuda_graphs": True}
    c = variables(backend="cuda", cuda=cuda)
    assert {k: c[k] for k in ("GGML_CUDA", "GGML_CUDA_NCCL", "GGML_CUDA_NO_VMM", "GGML_CUDA_FA", "GGML_CUDA_FA_ALL_QUANTS",
                              "GGML_CUDA_GRAPHS", "CMAKE_CUDA_ARCHITECTURES")} == {
        "GGML_CUDA": True, "GGML_CUDA_NCCL": False, "GGML_CUDA_NO_VMM": True, "GGML_CUDA_FA": True,
        "GGML_CUDA_FA_ALL_QUANTS": False, "GGML_CUDA_GRAPHS": True, "CMAKE_CUDA_ARCHITECTURES": "86-real;90-virtual"}
    assert variables(backend="cuda", cuda={**cuda, "cuda_vmm": True})["GGML_CUDA_NO_VMM"] is False
    assert "GGML_CUDA_NO_VMM" not in variables(cuda=cuda), "CUDA options only for backend=cuda"


def test_vulkan_gets_its_glslc():
    c = variables(backend="vulkan", glslc="C:\\VulkanSDK\\Bin\\glslc.exe")
    assert c["GGML_VULKAN"] is True and c["GGML_CUDA"] is False
    assert c["Vulkan_GLSLC_EXECUTABLE"] == "C:/VulkanSDK/Bin/glslc.exe", "forward slashes for CMake"
    assert "Vulkan_GLSLC_EXECUTABLE" not in variables(glslc="/usr/bin/glslc"), "vulkan only"


def test_options_openmp_fpic_and_parts():
    assert variables(openmp=True)["GGML_OPENMP"] is True
    assert variables(fpic=False)["CMAKE_POSITION_INDEPENDENT_CODE"] is False
    every = variables(parts=list(OPTIONAL_PARTS))
    assert every["LLAMA_BUILD_MTMD"] is True and every["MTMD_VIDEO"] is False, "video would spawn ffmpeg"
    assert every["GGML_RPC"] is True and every["GGML_RPC_RDMA"] is False
    assert every["LLAMA_SUBPROCESS"] is False and every["LLAMA_OPENSSL"] is False
    none = variables(parts=[])
    assert none["LLAMA_BUILD_COMMON"] is False and none["LLAMA_BUILD_MTMD"] is False and none["GGML_RPC"] is False


def test_dispatch_sub_builds_turn_off_every_backend_and_part():
    """SUB_BUILD_OFF, derived from the backend and part tables: only ggml-cpu in a variant's build."""
    assert SUB_BUILD_OFF == {name: False for name in ("GGML_CUDA", "GGML_VULKAN", "GGML_METAL", "GGML_BLAS",
                                                      "GGML_RPC", "LLAMA_BUILD_COMMON", "LLAMA_BUILD_MTMD")}
    for backend, row in BACKENDS.items():
        for name, value in row["cmake"].items():
            assert value is not True or name not in PINNED or SUB_BUILD_OFF.get(name) is False, (backend, name)
