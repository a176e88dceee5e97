import json
import os
import shutil
from pathlib import Path

from conan import ConanFile
from conan.errors import ConanException, ConanInvalidConfiguration
from conan.tools.apple import is_apple_os
from conan.tools.build import check_min_cppstd, cross_building, stdcpp_library
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.tools.files import (apply_conandata_patches, copy, export_conandata_patches, get, load,
                               rename, rmdir, save)

# The recipe's tables and helpers live in the package next to this file, exported with it (a
# consumer that only downloads a binary loads the recipe too); llama_cpp_recipe/__init__.py says
# which module holds what. Its C and CMake sources are in recipe_src/ (exports_sources).
from llama_cpp_recipe.checks import cuda_architectures_problem, cuda_ptx_12x, libc_problem, shader_features
from llama_cpp_recipe.config import cache_variables, find_glslc, recipe_inputs
from llama_cpp_recipe.cpu import (CPU_BASELINES, CPU_VARIANT_HEADER, CPU_VARIANTS, DEFAULT_BASELINE, DISPATCH_TARGETS,
                                  chosen_variants, default_baseline, dispatch_supported)
from llama_cpp_recipe.dispatch import CpuDispatch
from llama_cpp_recipe.link import link_components
from llama_cpp_recipe.sanitize import sanitize_flags, sanitize_problem
from llama_cpp_recipe.tables import (BACKENDS, COMPONENTS, CUDA_CACHE, CXX_RUNTIME, GLSLC_CONF, LIBC_BACKENDS,
                                     LIBC_CONF, LIBCS, OPTIONAL_PARTS, VULKAN_FEATURE_TESTS)
from llama_cpp_recipe.templates import cpu_variant_header, cxx_runtime_module

required_conan_version = ">=2.4"

RECIPE_SRC = "recipe_src"  # the recipe's C and CMake sources (export_sources)


class LlamaCppConan(ConanFile):
    name = "llama-cpp"
    description = ("llama.cpp built as static archives per backend, meant to be linked into one "
                   "self-contained shared object (Erlang/Elixir NIF, Python/Ruby/Node/JNI module)")
    license = "MIT"
    url = "https://github.com/ggml-org/llama.cpp"
    homepage = "https://github.com/ggml-org/llama.cpp"
    topics = ("llama", "llm", "ggml", "gguf", "inference", "static", "nif")
    package_type = "static-library"
    # the recipe's Python package travels with the recipe (no bytecode: the revision would then
    # depend on which Python ran it); its C/CMake sources only to builds
    exports = ("llama_cpp_recipe/*.py", "!*__pycache__*", "!*.pyc")
    exports_sources = (f"{RECIPE_SRC}/*",)
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "backend": ["cpu", "metal", "cuda", "vulkan"],
        "fPIC": [True, False],
        "openmp": [True, False],
        "cpu_baseline": [None] + list(CPU_BASELINES),
        # x86_64 and armv8 only (removed elsewhere): comma-separated CPU_VARIANTS names
        "cpu_variants": [None, "ANY"],
        "with_common": [True, False],
        "with_mtmd": [True, False],
        "with_rpc": [True, False],
        "sanitize": [None, "ANY"],
        # Apple OSes only (removed elsewhere)
        "accelerate": [True, False],
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
        "cpu_variants": None,
        "with_common": True,
        "with_mtmd": False,
        "with_rpc": False,
        "sanitize": None,
        "accelerate": True,
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
        "cpu_variants": "cpu_baseline=dispatch: the variants to compile, comma-separated, the arch's floor "
                        "(x86-64, armv8.0) among them; default all. Each costs ~65 CPU-seconds of build "
                        "and ~1.1 MB in a stripped NIF",
        "with_common": "llama-common + llama-common-base: chat templates, JSON-schema grammars, sampling, speculative",
        "with_mtmd": "libmtmd: image/audio input through a projector GGUF",
        "with_rpc": "ggml-rpc backend: offload to upstream rpc-servers over TCP",
        "sanitize": "instrument the archives: comma-separated address, undefined, fuzzer-no-link (clang); "
                    "consumers link the runtime; one CPU variant (no dispatch)",
        "accelerate": "Apple OSes: ggml-cpu uses Apple's Accelerate framework (vDSP); off for SDK-less "
                      "builds (Zig ships no framework headers); backend=metal needs it on",
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
        else:
            del self.options.accelerate
        if str(self.settings.arch) not in CPU_VARIANTS:
            del self.options.cpu_variants
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
        variants = self.options.get_safe("cpu_variants")
        if variants and baseline != "dispatch":
            raise ConanInvalidConfiguration(
                f"cpu_variants={variants} applies to cpu_baseline=dispatch only, not cpu_baseline={baseline}: "
                f"leave cpu_variants unset")
        if variants:
            try:
                chosen_variants(arch, str(variants))
            except ValueError as problem:
                raise ConanInvalidConfiguration(str(problem)) from None
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

        if backend == "metal" and not self.options.accelerate:
            raise ConanInvalidConfiguration(
                "accelerate=False cannot be used with backend=metal (its BLAS backend is Accelerate): "
                "use backend=cpu for an SDK-less build, or accelerate=True")

        if self.options.openmp and self.settings.compiler in ("apple-clang", "msvc"):
            raise ConanInvalidConfiguration(
                f"openmp=True is not supported with compiler={self.settings.compiler}: it ships no "
                f"OpenMP runtime ggml can link; use openmp=False (ggml's own thread pool)")

        if self.options.backend == "cuda":
            archs = str(self.options.cuda_architectures)
            if cuda_architectures_problem(archs):
                raise ConanInvalidConfiguration(cuda_architectures_problem(archs))
            ptx_12x = cuda_ptx_12x(archs)
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

        libc = self.conf.get(LIBC_CONF)
        if libc in LIBCS:
            cc = self.conf.get("tools.build:compiler_executables", default={}, check_type=dict).get("c") or "cc"
            problem = libc_problem(cc, libc)
            if problem:
                raise ConanInvalidConfiguration(problem)

    def package_id(self):
        libc = self.conf.get(LIBC_CONF)
        if libc is not None:
            self.info.conf.define(LIBC_CONF, libc)
        variants = self.info.options.get_safe("cpu_variants")
        if variants:
            # the same rows, however written, are the same package; all of them is the default.
            # A value validate() refuses stays as written (Conan computes the id first).
            try:
                rows = [v["name"] for v in chosen_variants(str(self.info.settings.arch), str(variants))]
            except ValueError:
                return
            everything = len(rows) == len(CPU_VARIANTS[str(self.info.settings.arch)])
            self.info.options.cpu_variants = None if everything else ",".join(rows)

    @property
    def _glslc(self):
        return find_glslc(self.conf.get(GLSLC_CONF))

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
    def _recipe_src(self):
        return os.path.join(self.export_sources_folder, RECIPE_SRC)

    @property
    def _dispatch(self):
        return str(self.options.cpu_baseline) == "dispatch"

    @property
    def _cpu_variants(self):
        """The CPU_VARIANTS rows cpu_baseline=dispatch builds (the cpu_variants option; default all),
        which validate() has checked."""
        return chosen_variants(str(self.settings.arch), self.options.get_safe("cpu_variants") or None)

    def generate(self):
        generator = None if self.conf.get("tools.cmake.cmaketoolchain:generator") else "Ninja"
        tc = CMakeToolchain(self, generator=generator)
        for key, value in cache_variables(**recipe_inputs(self)).items():
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
            CpuDispatch(self, os.path.join(self._recipe_src, "dispatch"), self._cpu_variants).build()

    def _report_shader_features(self):
        """Which optional shader extensions of ggml-vulkan this glslc compiles, probed with
        upstream's own feature-test shaders before CMake runs, so a degraded build (plain shaders
        only: no cooperative matrix, integer dot product or bf16 paths) is visible in the log."""
        glslc = self._glslc
        version, supported, missing = shader_features(glslc, os.path.join(self.source_folder, VULKAN_FEATURE_TESTS))
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
                 cpu_variant_header(self._recipe_src, str(self.settings.arch), self._cpu_variants))
        if stdcpp_library(self):
            save(self, os.path.join(self.package_folder, CXX_RUNTIME["build_module"]),
                 cxx_runtime_module(self._recipe_src, stdcpp_library(self)))

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
                                     accelerate=bool(self.options.get_safe("accelerate", True)),
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
