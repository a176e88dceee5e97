"""The llama-cpp recipe's Python side, imported by conanfile.py (and by tests/ and bench/):

    tables.py     backends, OS libraries, libcs, pinned upstream defaults, CUDA options, optional
                  parts, components, sanitizers, the C++ runtime component
    cpu.py        CPU baselines, cpu_baseline=dispatch variants, features and targets
    config.py     cache_variables(): every CMake cache variable of a build
    link.py       link_components(): what package_info() declares
    sanitize.py   the `sanitize` option's checks and flags
    checks.py     the other checks of validate()/validate_build() that are plain functions
    dispatch.py   cpu_baseline=dispatch at build time (CpuDispatch) and the dispatcher's table
    templates.py  the package files rendered from recipe_src/

and one tool that ships with it but that conanfile.py never imports (standard library only):

    nifcheck.py   the self-containment checker for a NIF (any shared object: ELF, PE, Mach-O):
                  dependencies, exports, unloadability, glibc/musl floor. test_package runs it,
                  `python3 -m llama_cpp_recipe.nifcheck LIBRARY --export PREFIX ...` (--help)

Exported with the recipe (conanfile.py's `exports`), so a consumer that only downloads a binary
can load the recipe; the C and CMake sources in recipe_src/ go with the recipe's sources."""
