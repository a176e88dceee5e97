"""The recipe's tables: backends, OS libraries, C libraries, pinned upstream defaults, CUDA options,
optional parts, components, sanitizers. conanfile.py's validate(), generate(), package() and
package_info() (through config.py and link.py) read these and nothing else. The CPU tables
(baselines, dispatch variants) are in cpu.py."""
import os

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
LIBCS = {  # the names are also llama_cpp_recipe/nifcheck.py's floors, which test_package applies
    "glibc2.28": {"glibc": "2.28"},
    "musl": {"glibc": None},
}
LIBC_BACKENDS = ["cpu"]  # what the Zig profiles can build: no CUDA toolkit or Vulkan SDK for them

# ggml-cpu uses vDSP/vForce from Accelerate on every Apple OS (GGML_ACCELERATE, upstream default),
# unless the option accelerate is off (an SDK-less build)
FRAMEWORKS = {"ggml-cpu": ["Accelerate"]}
OPENMP_RUNTIME = {"gcc": "gomp", "clang": "omp"}
CUDA_DRIVER_LIB = "cuda"  # libcuda.so.1, only linked with cuda_vmm=True


# Sanitizer builds (option `sanitize`, comma-separated): archives instrumented for a NIF author's
# own ASan/UBSan/libFuzzer runs (bench/fuzz.py builds its harnesses against one). Each sanitizer:
# the compilers that have it, and whether a consumer's link needs the flag (its runtime).
SANITIZERS = {
    "address": {"compilers": ["gcc", "clang", "apple-clang"], "link": True},
    "undefined": {"compilers": ["gcc", "clang", "apple-clang"], "link": True},
    # coverage for libFuzzer; its callbacks live in the ASan runtime, so it needs address
    "fuzzer-no-link": {"compilers": ["clang"], "link": False, "needs": "address"},
}



# Upstream defaults pinned on every build, so nothing depends on upstream's choice or on what the
# build machine happens to have installed. cache_variables() (config.py) adds the backend, baseline
# and option rows.
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
