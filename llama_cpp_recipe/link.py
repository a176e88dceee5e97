"""What package_info() declares, as a plain function of settings and options (tests call it for
targets that cannot be built here)."""
from .tables import (APPLE_OS, BACKENDS, COMPONENTS, CUDA_DRIVER_LIB, CXX_RUNTIME, EXCLUDE_LIBS_OS, FRAMEWORKS,
                     GGML_ALL, OPENMP_RUNTIME, OPTIONAL_PARTS, SYSTEM_LIBS)


def link_components(os_, backend, openmp=False, compiler=None, cuda_vmm=False, parts=(), cxx_runtime=None,
                    exclude_libs=True, accelerate=True):
    """What package_info() declares, as data: components in static link order, each with its
    archives, requires, system libs, frameworks, include folders and CMake/pkg-config names.
    `parts` names the OPTIONAL_PARTS options that are on; `cxx_runtime` is the C++ standard
    library (stdcpp_library()), declared by the CXX_RUNTIME component below ggml-base.
    `exclude_libs` False leaves out --exclude-libs (the Zig profiles' linker refuses it: LIBCS).
    `accelerate` False (the option of Apple OSes) leaves FRAMEWORKS out.
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
    frameworks = dict(FRAMEWORKS) if os_ in APPLE_OS and accelerate else {}
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
