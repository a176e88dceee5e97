"""The cache variables of a build, as a plain function of settings, options and conf values:
generate() hands them to CMakeToolchain, and cpu_baseline=dispatch's sub-builds (dispatch.py) start
from the same ones. Unit tests call cache_variables() directly (tests/test_cache_variables.py)."""
import os
import shutil

from .cpu import CPU_BASELINES, CPU_VARIANTS, variant_cmake
from .tables import APPLE_OS, BACKENDS, CUDA_CACHE, CUDA_PINNED, GLSLC_CONF, OPTIONAL_PARTS, PINNED


def find_glslc(configured):
    """backend=vulkan's shader compiler: conf user.llama-cpp:glslc (None if that names no file), or
    glslc on PATH."""
    if configured:
        return configured if os.path.isfile(configured) else None
    return shutil.which("glslc")


def cache_variables(os_, arch, backend, cpu_baseline, build_number, build_commit, fpic=True, openmp=False,
                    parts=(), glslc=None, cuda=None, accelerate=True):
    """Every cache variable of the main build (the CPU variant sub-builds reuse them).
    `parts`: the OPTIONAL_PARTS options that are on; `glslc`: the shader compiler's path (vulkan);
    `cuda`: {CUDA_CACHE option: value} (cuda); `accelerate`: the option of Apple OSes (elsewhere
    Accelerate is off whatever it says). build_commit is the full commit hash."""
    variables = dict(PINNED)
    variables.update({
        "CMAKE_POSITION_INDEPENDENT_CODE": bool(fpic),
        "GGML_OPENMP": bool(openmp),
        "GGML_ACCELERATE": os_ in APPLE_OS and bool(accelerate),
        # the version reported by llama_print_system_info / build info
        "BUILD_NUMBER": str(build_number),
        "BUILD_COMMIT": build_commit[:8],
    })
    for part, row in OPTIONAL_PARTS.items():
        variables.update(row["cmake"] if part in parts else row["off"])
    if cpu_baseline == "dispatch":
        variables.update(variant_cmake(arch, CPU_VARIANTS[arch][0]))
    else:
        variables.update(CPU_BASELINES[cpu_baseline]["cmake"])
    variables.update(BACKENDS[backend]["cmake"])
    if backend == "vulkan" and glslc:  # validate_build() refuses a build without
        variables["Vulkan_GLSLC_EXECUTABLE"] = glslc.replace("\\", "/")
    if backend == "cuda":
        variables.update(CUDA_PINNED)
        for option, (name, convert) in CUDA_CACHE.items():
            variables[name] = convert((cuda or {}).get(option))
    return variables


def recipe_inputs(conanfile):
    """cache_variables()'s arguments for a recipe instance (its settings, options, conf and
    conandata), for generate() and the dispatch sub-builds."""
    info = conanfile.conan_data["build_info"][conanfile.version]
    options = conanfile.options
    backend = str(options.backend)
    return {
        "os_": str(conanfile.settings.os),
        "arch": str(conanfile.settings.arch),
        "backend": backend,
        "cpu_baseline": str(options.cpu_baseline),
        "build_number": info["number"],
        "build_commit": info["commit"],
        "fpic": bool(options.get_safe("fPIC", True)),
        "openmp": bool(options.openmp),
        "parts": [part for part in OPTIONAL_PARTS if options.get_safe(part)],
        "glslc": find_glslc(conanfile.conf.get(GLSLC_CONF)) if backend == "vulkan" else None,
        "cuda": {option: options.get_safe(option) for option in CUDA_CACHE} if backend == "cuda" else None,
        "accelerate": bool(options.get_safe("accelerate", True)),
    }
