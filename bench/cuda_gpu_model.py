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

# head size 128 and 4 query heads per KV head (the shapes the flash-attention kernels are built for)
N_EMBD, N_HEAD, N_HEAD_KV, N_FF, N_LAYER, N_CTX, N_VOCAB = 2048, 16, 4, 5632, 4, 4096, 32000
SEED = 20261130


def write(gguf, np, path, ftype):
    rng = np.random.default_rng(SEED)
    words = N_VOCAB - 3 - 256
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + [f"\u2581w{i}" for i in range(words)]
    types = ([gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
             + [gguf.TokenType.NORMAL] * words)
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("gpu-check-random-llama")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_vocab_size(N_VOCAB)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if ftype == "F16" else gguf.LlamaFileType.MOSTLY_Q4_0)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * 259 + [-float(i) for i in range(words)])
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    q4 = gguf.GGMLQuantizationType.Q4_0
    block, type_size = gguf.GGML_QUANT_SIZES[q4]  # 32 values in 18 bytes: f16 scale + 16 bytes of nibbles

    def matrix(name, rows, cols):  # ggml ne = [cols, rows]
        if ftype == "F16":
            data = rng.standard_normal((rows, cols), dtype=np.float32)
            data *= 0.02
            w.add_tensor(name, data.astype(np.float16))
            return
        n_blocks = rows * cols // block
        raw = np.empty((n_blocks, type_size), np.uint8)
        scale = (0.0044 * (1.0 + 0.1 * rng.standard_normal(n_blocks, dtype=np.float32))).astype(np.float16)
        raw[:, :2] = scale.view(np.uint8).reshape(n_blocks, 2)
        raw[:, 2:] = rng.integers(0, 256, (n_blocks, type_size - 2), dtype=np.uint8)
        w.add_tensor(name, raw.reshape(rows, cols // block * type_size), raw_dtype=q4)

    def norm(name):
        w.add_tensor(name, np.ones(N_EMBD, np.float32))

    kv = N_EMBD // N_HEAD * N_HEAD_KV
    matrix("token_embd.weight", N_VOCAB, N_EMBD)
    norm("output_norm.weight")
    matrix("output.weight", N_VOCAB, N_EMBD)
    for layer in range(N_LAYER):
        p = f"blk.{layer}."
        norm(p + "attn_norm.weight")
        matrix(p + "attn_q.weight", N_EMBD, N_EMBD)
        matrix(p + "attn_k.weight", kv, N_EMBD)
        matrix(p + "attn_v.weight", kv, N_EMBD)
        matrix(p + "attn_output.weight", N_EMBD, N_EMBD)
        norm(p + "ffn_norm.weight")
        matrix(p + "ffn_gate.weight", N_FF, N_EMBD)
        matrix(p + "ffn_up.weight", N_FF, N_EMBD)
        matrix(p + "ffn_down.weight", N_EMBD, N_FF)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main(gguf_py, out):
    sys.path.insert(0, gguf_py)
    import numpy as np
    import gguf

    os.makedirs(out, exist_ok=True)
    params = 2 * N_VOCAB * N_EMBD + N_LAYER * (2 * N_EMBD * N_EMBD + 2 * N_EMBD * (N_EMBD // N_HEAD * N_HEAD_KV)
                                               + 3 * N_EMBD * N_FF)
    for ftype in ("F16", "Q4_0"):
        path = os.path.join(out, f"bench-{ftype.lower()}.gguf")
        started = time.time()
        write(gguf, np, path, ftype)
        print(f"{path}: {ftype}, {params / 1e6:.0f} M parameters, {os.path.getsize(path) / 1e6:.0f} MB, "
              f"{time.time() - started:.1f} s", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
