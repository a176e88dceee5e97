"""backend=cuda through the recipe, on a machine with nvcc but no GPU and no NVIDIA driver.
CI builds a reduced variant (Hopper PTX only, no flash-attention kernels) through the same
recipe code path; the NIF must load here, list no CUDA device and generate on the CPU."""
import os
import re

import pytest

from conftest import cuda_create_args

# Reduced for CI time, none of which changes what runs here (no GPU: the NIF must load and fall
# back to the CPU): one architecture (Hopper) as PTX only (`90-virtual`: nvcc skips ptxas, which
# measured 18% of a heavy mmq instance's compile time), no flash-attention kernel instances, and no
# llama-common (not CUDA code; the cpu package proves it).
REDUCED = ["-o", "*:cuda_architectures=90-virtual", "-o", "*:cuda_fa=False", "-o", "*:with_common=False"]


@pytest.fixture(scope="module")
def cuda_package(packages, cuda_toolkit):
    args, env = cuda_create_args(cuda_toolkit)
    return packages.get("cuda-reduced", *args, *REDUCED, env=env)


def test_cuda_archive_is_packaged(cuda_package):
    libs = set(os.listdir(os.path.join(cuda_package["folder"], "lib")))
    assert libs == {"libllama.a", "libggml.a", "libggml-base.a", "libggml-cpu.a", "libggml-cuda.a"}
    size = os.path.getsize(os.path.join(cuda_package["folder"], "lib", "libggml-cuda.a"))
    print(f"libggml-cuda.a: {size} bytes; cold conan create (with test_package): {cuda_package['seconds']:.0f} s")


def test_cuda_nif_needs_only_the_cuda_runtime(cuda_package):
    out = cuda_package["output"]
    assert "libllama_nif.so: self-contained" in out
    needs = re.search(r"libllama_nif\.so: ELF x86_64.*\n  needs: +(.*)", out).group(1).split(", ")
    print("cuda NIF NEEDED:", ", ".join(needs))
    cuda = {n for n in needs if "cu" in n}
    assert cuda and cuda <= {"libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13"}, needs
    assert "libcuda.so.1" not in needs, "the driver must not be linked with cuda_vmm=False"
    assert not [n for n in needs if "nccl" in n]
    assert "ggml/gguf/llama exports: 0" in out


def test_cuda_nif_loads_without_gpu_and_generates_on_cpu(cuda_package, cpu_package):
    out = cuda_package["output"]
    devices = re.findall(r"^device\[\d+\]: (.*)$", out, re.M)
    assert devices and all(d.startswith("CPU|") for d in devices), devices
    assert "LOADER OK" in out
    generated = re.search(r"^generated: (.*)$", out, re.M).group(1)
    assert generated == re.search(r"^generated: (.*)$", cpu_package["output"], re.M).group(1)
