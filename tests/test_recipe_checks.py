"""Unit tests of the recipe's plain check functions (llama_cpp_recipe.checks, .sanitize): the
messages test_recipe_config.py sees through `conan install`, without a Conan run."""
import shutil

import pytest

from llama_cpp_recipe.checks import cuda_architectures_problem, cuda_ptx_12x, libc_problem
from llama_cpp_recipe.sanitize import sanitize_flags, sanitize_problem


@pytest.mark.parametrize("archs", ["all", "all-major", "native", "86-real;90-virtual", "120a-real;121a-real;100-virtual"])
def test_cuda_architectures_accepted(archs):
    assert cuda_architectures_problem(archs) is None


def test_cuda_architectures_refused_and_warned():
    assert cuda_architectures_problem("sm_90,compute_90").startswith("cuda_architectures='sm_90,compute_90' is malformed")
    assert cuda_ptx_12x("90-real;120-virtual;121a-real;120") == ["120-virtual", "120"]


def test_libc_problem_asks_the_compiler():
    if not shutil.which("gcc"):
        pytest.skip("no gcc")
    # the host's gcc (glibc, not 2.28 on Debian 12) is refused for both Zig profiles' libcs
    assert libc_problem("gcc", "musl").startswith("user.llama-cpp:libc=musl, but gcc compiles against glibc ")
    assert libc_problem("/nonexistent/cc", "glibc2.28").startswith(
        "user.llama-cpp:libc=glibc2.28: the C compiler /nonexistent/cc cannot run")


def test_sanitize():
    assert sanitize_problem(None, "Linux", "gcc", None) is None
    assert sanitize_problem("address,undefined", "Linux", "gcc", None) is None
    assert sanitize_problem("address,fuzzer-no-link", "Linux", "gcc", None) == (
        "sanitize=address,fuzzer-no-link: fuzzer-no-link needs compiler=clang, not compiler=gcc")
    assert sanitize_problem("fuzzer-no-link", "Linux", "clang", None).startswith("sanitize=fuzzer-no-link: fuzzer-no-link needs address too")
    assert sanitize_flags("address,undefined,fuzzer-no-link") == (
        ["-fsanitize=address,undefined,fuzzer-no-link", "-fno-omit-frame-pointer"], ["-fsanitize=address,undefined"])
