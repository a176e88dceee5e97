"""Writes a seeded random-weight llama-architecture model big enough for meaningful speed figures
(about 34 M parameters, F16) with upstream's own gguf-py from the source archive. Quantised
variants are made from it with upstream's llama-quantize (see run.py). Needs numpy.
write_random_llama() is also what bench/cuda_gpu_model.py writes its GPU-check models with.

usage: python make_model.py <gguf-py folder> <out.gguf> [F16|Q4_0]   (Q4_0: blocks drawn directly)
"""
import sys

N_EMBD, N_HEAD, N_HEAD_KV, N_FF, N_LAYER, N_CTX, N_WORDS = 512, 8, 8, 1408, 8, 2048, 8192


def write_random_llama(gguf, np, path, name, file_type, n_embd, n_head, n_head_kv, n_ff, n_layer, n_ctx, n_words,
                       matrix, norm=None):
    """A llama GGUF: SentencePiece-style vocabulary (<unk>, <s>, </s>, 256 byte pieces, n_words
    words), every weight matrix from matrix(writer, tensor name, rows, cols), every norm from
    norm(tensor name) (an n_embd float32 array; default: ones). file_type None leaves
    general.file_type out. Returns the number of parameters. tests/oracle.py writes its models
    with it too."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + [f"\u2581w{i}" for i in range(n_words)]
    types = ([gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
             + [gguf.TokenType.NORMAL] * n_words)
    n_vocab = len(tokens)
    w = gguf.GGUFWriter(path, "llama")
    w.add_name(name)
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_vocab_size(n_vocab)
    if file_type is not None:
        w.add_file_type(file_type)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * 259 + [-float(i) for i in range(n_words)])
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    def add_norm(tensor):
        w.add_tensor(tensor, norm(tensor) if norm else np.ones(n_embd, np.float32))

    kv = n_embd // n_head * n_head_kv
    matrix(w, "token_embd.weight", n_vocab, n_embd)
    add_norm("output_norm.weight")
    matrix(w, "output.weight", n_vocab, n_embd)
    for layer in range(n_layer):
        p = f"blk.{layer}."
        add_norm(p + "attn_norm.weight")
        matrix(w, p + "attn_q.weight", n_embd, n_embd)
        matrix(w, p + "attn_k.weight", kv, n_embd)
        matrix(w, p + "attn_v.weight", kv, n_embd)
        matrix(w, p + "attn_output.weight", n_embd, n_embd)
        add_norm(p + "ffn_norm.weight")
        matrix(w, p + "ffn_gate.weight", n_ff, n_embd)
        matrix(w, p + "ffn_up.weight", n_ff, n_embd)
        matrix(w, p + "ffn_down.weight", n_embd, n_ff)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return 2 * n_vocab * n_embd + n_layer * (2 * n_embd * n_embd + 2 * n_embd * kv + 3 * n_embd * n_ff)


def q4_0_matrix(gguf, np, rng):
    """A matrix writer for write_random_llama() that draws Q4_0 blocks directly (a random scale near
    0.0044, random 4-bit values): nothing is quantised, the figures measure speed, not quality."""
    q4 = gguf.GGMLQuantizationType.Q4_0
    block, type_size = gguf.GGML_QUANT_SIZES[q4]  # 32 values in 18 bytes: f16 scale + 16 bytes of nibbles

    def matrix(w, name, rows, cols):  # ggml ne = [cols, rows]
        n_blocks = rows * cols // block
        raw = np.empty((n_blocks, type_size), np.uint8)
        scale = (0.0044 * (1.0 + 0.1 * rng.standard_normal(n_blocks, dtype=np.float32))).astype(np.float16)
        raw[:, :2] = scale.view(np.uint8).reshape(n_blocks, 2)
        raw[:, 2:] = rng.integers(0, 256, (n_blocks, type_size - 2), dtype=np.uint8)
        w.add_tensor(name, raw.reshape(rows, cols // block * type_size), raw_dtype=q4)
    return matrix


def main(gguf_py, out, ftype="F16"):
    sys.path.insert(0, gguf_py)
    import numpy as np
    import gguf

    rng = np.random.default_rng(20261125)

    def f16(w, name, rows, cols):  # gguf-py takes numpy shapes (ggml's order reversed)
        w.add_tensor(name, (rng.standard_normal((rows, cols)) * 0.02).astype(np.float16))

    if ftype == "Q4_0":
        matrix, file_type = q4_0_matrix(gguf, np, rng), gguf.LlamaFileType.MOSTLY_Q4_0
    else:
        matrix, file_type = f16, gguf.LlamaFileType.MOSTLY_F16
    params = write_random_llama(gguf, np, out, "bench-random-llama", file_type, N_EMBD, N_HEAD,
                                N_HEAD_KV, N_FF, N_LAYER, N_CTX, N_WORDS, matrix)
    print(f"{out}: {ftype}, {params / 1e6:.1f} M parameters, vocabulary {N_WORDS + 259}")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[3:] not in ([], ["F16"], ["Q4_0"]):
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
