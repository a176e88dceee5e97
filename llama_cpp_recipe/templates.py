"""The files the package gets from the recipe's templates in recipe_src/ (export_sources): @NAME@
placeholders filled in, nothing else changed."""
import os
import re

from .cpu import CPU_VARIANT_ENV, CPU_VARIANTS
from .tables import CXX_RUNTIME


def render(path, **values):
    """The text of the template at `path` with every @KEY@ replaced by values[KEY.lower()]."""
    with open(path, newline="") as f:
        text = f.read()
    for key, value in values.items():
        text = text.replace(f"@{key.upper()}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise ValueError(f"{path}: no value for {', '.join(left)}")
    return text


def cxx_runtime_module(sources, lib):
    """CXX_RUNTIME's CMake build module for the C++ standard library `lib` (stdcpp_library())."""
    return render(os.path.join(sources, "llama-cpp-cxx-runtime.cmake.in"), target=CXX_RUNTIME["cmake_target"], lib=lib)


def cpu_variant_header(sources, arch, variants=None):
    """CPU_VARIANT_HEADER of a cpu_baseline=dispatch package for `arch` with the CPU_VARIANTS rows
    `variants` (default all)."""
    return render(os.path.join(sources, "llama-cpp-cpu-variant.h.in"),
                  names=", ".join(v["name"] for v in (variants or CPU_VARIANTS[arch])), env=CPU_VARIANT_ENV)
