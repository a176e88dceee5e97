#!/usr/bin/env python3
"""Seeded random-weight llama-architecture models for the GPU check's speed figures
(bench/cuda_gpu_check.md): one F16 and one Q4_0 file of the same shape, about 311 M parameters
(F16 about 620 MB, Q4_0 about 175 MB), written with upstream's gguf-py (from the source archive; the
GPU machine has numpy). Q4_0 blocks are drawn directly (a random scale near 0.0044 and random
4-bit values), so nothing has to be quantised: the figures measure speed, not quality.

usage: python cuda_gpu_model.py <gguf-py folder> <out folder>   -> bench-f16.gguf, bench-q4_0.gguf
"""
import os
import sys
import time

from make_model import q4_0_matrix, write_random_llama  # the same llama layout as bench/run.py's model

# head size 128 and 4 query heads per KV head (the shapes the flash-attention kernels are built for)
N_EMBD, N_HEAD, N_HEAD_KV, N_FF, N_LAYER, N_CTX, N_VOCAB = 2048, 16, 4, 5632, 4, 4096, 32000
SEED = 20261130


def write(gguf, np, path, ftype):
    rng = np.random.default_rng(SEED)
    q4_0 = q4_0_matrix(gguf, np, rng)

    def matrix(w, name, rows, cols):  # ggml ne = [cols, rows]
        if ftype == "F16":
            data = rng.standard_normal((rows, cols), dtype=np.float32)
            data *= 0.02
            w.add_tensor(name, data.astype(np.float16))
            return
        q4_0(w, name, rows, cols)

    file_type = gguf.LlamaFileType.MOSTLY_F16 if ftype == "F16" else gguf.LlamaFileType.MOSTLY_Q4_0
    return write_random_llama(gguf, np, path, "gpu-check-random-llama", file_type, N_EMBD, N_HEAD, N_HEAD_KV, N_FF,
                              N_LAYER, N_CTX, N_VOCAB - 3 - 256, matrix)


def main(gguf_py, out):
    sys.path.insert(0, gguf_py)
    import numpy as np
    import gguf

    os.makedirs(out, exist_ok=True)
    for ftype in ("F16", "Q4_0"):
        path = os.path.join(out, f"bench-{ftype.lower()}.gguf")
        started = time.time()
        params = write(gguf, np, path, ftype)
        print(f"{path}: {ftype}, {params / 1e6:.0f} M parameters, {os.path.getsize(path) / 1e6:.0f} MB, "
              f"{time.time() - started:.1f} s", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
