"""backend=cuda through the recipe, on a machine with nvcc but no GPU and no NVIDIA driver.
CI builds a reduced variant (Hopper PTX only, no flash-attention kernels) through the same
recipe code path; the NIF must load here, list no CUDA device and generate on the CPU."""
import os
import subprocess

import pytest

from llama_cpp_recipe import nifcheck
from conftest import ROOT, build_programs, cuda_create_args, profile, run_loader

# Reduced for CI time, none of which changes what runs here (no GPU: the NIF must load and fall
# back to the CPU): one architecture (Hopper) as PTX only (`90-virtual`: nvcc skips ptxas, which
# measured 18% of a heavy mmq instance's compile time), flash attention compiled out (cuda_fa=False: the
# instance files remain, their kernels empty), no
# llama-common (not CUDA code; the cpu package proves it), one CPU baseline instead of the
# default runtime dispatch (four more ggml-cpu builds; the cpu package proves dispatch), and the
# CUDA files compiled without optimization, host side (-O0) and device side (-Xcicc -O0): an mmq
# instance took 16.8 s instead of 28-31 s (cicc 17.2 -> 6.6 s, host gcc 8.7 -> 3.3 s); and the
# device side stops after nvcc's front end (-fdevice-syntax-only: every kernel is still parsed,
# instantiated and type-checked, no PTX is generated, which no GPU here would ever run; the host
# object and its link are unchanged): mmq-instance-q4_0.cu 12.0 -> 8.5 s, mmvq.cu 15.5 -> 10.6 s
# (2026-12-04, Zen 3). And the .cu files are compiled in unity groups (tests/cmake/unity_ggml_cuda.cmake:
# the headers every file includes are parsed once per group): ggml-cuda's 144 files as 25 compiler
# runs, 345 instead of about 1,110 CPU-seconds, 175 s instead of about 560 s on 2 cores (2026-12-04,
# Zen 3). Device code generation is bench/cuda_build.py's and the GPU check's (docs/cuda.md). The
# recipe's own flags and cache variables are the same.
UNITY = os.path.join(ROOT, "tests", "cmake", "unity_ggml_cuda.cmake")
EXTRA_VARIABLES = {"CMAKE_CUDA_FLAGS_RELEASE": "-O0 -DNDEBUG -Xcicc -O0 -fdevice-syntax-only", "CMAKE_PROJECT_INCLUDE": UNITY}
REDUCED = ["-o", "*:cuda_architectures=90-virtual", "-o", "*:cuda_fa=False", "-o", "*:with_common=False",
           "-o", "*:cpu_baseline=x86-64-v3",
           "-c", f"tools.cmake.cmaketoolchain:extra_variables={EXTRA_VARIABLES!r}"]


@pytest.fixture(scope="module")
def cuda_package(packages, cuda_toolkit, ccache):
    args, env = cuda_create_args(cuda_toolkit)
    # no test_package run: cuda_nif builds and runs the tests' NIF against it (CI time); in a full
    # run the parts package (tests/test_cpu_dispatch.py) comes first: ccache reuses its llama,
    # ggml-base and ggml-cpu objects
    return packages.get("cuda-reduced", *args, *REDUCED, "-tf", "", env={**ccache, **env})


def test_cuda_archive_is_packaged(cuda_package, ccache):
    libs = {f for f in os.listdir(os.path.join(cuda_package["folder"], "lib")) if f.endswith(".a")}
    assert libs == {"libllama.a", "libggml.a", "libggml-base.a", "libggml-cpu.a", "libggml-cuda.a"}
    archive = os.path.join(cuda_package["folder"], "lib", "libggml-cuda.a")
    members = subprocess.run(["ar", "t", archive], capture_output=True, text=True, check=True).stdout.split()
    # the reduction is in effect (CI time): ggml-cuda compiled in unity groups, not file by file
    assert [m for m in members if m.startswith("unity_")], members
    size = os.path.getsize(archive)
    print(f"libggml-cuda.a: {size} bytes; cold conan create (no test_package): {cuda_package['seconds']:.0f} s")
    if ccache:  # how much of the C/C++ part the parts build served (CI time)
        print(subprocess.run(["ccache", "-s"], capture_output=True, text=True, env={**os.environ, **ccache}).stdout)


@pytest.fixture(scope="module")
def cuda_nif(conan, cuda_package, cuda_toolkit, tmp_path_factory):
    """The tests' NIF and loader built against the cuda package, and the loader's run (no GPU)."""
    args, env = cuda_create_args(cuda_toolkit)
    work = tmp_path_factory.mktemp("programs-cuda")
    programs = build_programs(conan, work, [*args, *REDUCED], profiles=["-pr:b", profile("linux-x86_64")], env=env)
    proc, report = run_loader(programs, os.path.join(str(work), "run"), env=env)
    return {**programs, "report": report}


def test_cuda_nif_needs_only_the_cuda_runtime(cuda_nif):
    binary, problems = nifcheck.check(cuda_nif["path"], exports=("lnif_",), libs=["cudart", "cublas", "cublasLt"])
    print("cuda NIF NEEDED:", ", ".join(binary.needed))
    assert problems == []
    cuda = {n for n in binary.needed if "cu" in n}
    assert cuda and cuda <= {"libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13"}, binary.needed
    assert "libcuda.so.1" not in binary.needed, "the driver must not be linked with cuda_vmm=False"
    assert not [n for n in binary.needed if "nccl" in n]
    assert nifcheck.leaked(binary) == []


def test_cuda_nif_loads_without_gpu_and_generates_on_cpu(cuda_nif, cpu_nif):
    report = cuda_nif["report"]
    assert report["devices"] and all(d.startswith("CPU|") for d in report["devices"]), report["devices"]
    assert report["failures"] == 0
    assert report["generated"] == cpu_nif["report"]["generated"]
