"""Writes a seeded random-weight llama-architecture model big enough for meaningful speed figures
(about 34 M parameters, F16) with upstream's own gguf-py from the source archive. Quantised
variants are made from it with upstream's llama-quantize (see run.py). Needs numpy.

usage: python make_model.py <gguf-py folder> <out.gguf>
"""
import sys

N_EMBD, N_HEAD, N_HEAD_KV, N_FF, N_LAYER, N_CTX, N_WORDS = 512, 8, 8, 1408, 8, 2048, 8192


def main(gguf_py, out):
    sys.path.insert(0, gguf_py)
    import numpy as np
    import gguf

    rng = np.random.default_rng(20261125)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    tokens += [f"\u2581w{i}" for i in range(N_WORDS)]
    types += [gguf.TokenType.NORMAL] * N_WORDS
    n_vocab = len(tokens)

    w = gguf.GGUFWriter(out, "llama")
    w.add_name("bench-random-llama")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * 259 + [-float(i) for i in range(N_WORDS)])
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    def tensor(name, *shape, norm=False):
        # gguf-py takes numpy shapes (rows last in ggml order reversed)
        data = np.ones(shape, np.float32) if norm else (rng.standard_normal(shape) * 0.02).astype(np.float16)
        w.add_tensor(name, data)

    tensor("token_embd.weight", n_vocab, N_EMBD)
    tensor("output_norm.weight", N_EMBD, norm=True)
    tensor("output.weight", n_vocab, N_EMBD)
    for layer in range(N_LAYER):
        p = f"blk.{layer}."
        tensor(p + "attn_norm.weight", N_EMBD, norm=True)
        tensor(p + "attn_q.weight", N_EMBD, N_EMBD)
        tensor(p + "attn_k.weight", N_EMBD // N_HEAD * N_HEAD_KV, N_EMBD)
        tensor(p + "attn_v.weight", N_EMBD // N_HEAD * N_HEAD_KV, N_EMBD)
        tensor(p + "attn_output.weight", N_EMBD, N_EMBD)
        tensor(p + "ffn_norm.weight", N_EMBD, norm=True)
        tensor(p + "ffn_gate.weight", N_FF, N_EMBD)
        tensor(p + "ffn_up.weight", N_FF, N_EMBD)
        tensor(p + "ffn_down.weight", N_EMBD, N_FF)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    params = 2 * n_vocab * N_EMBD + N_LAYER * (2 * N_EMBD * N_EMBD + 2 * N_EMBD * (N_EMBD // N_HEAD * N_HEAD_KV)
                                               + 3 * N_EMBD * N_FF)
    print(f"{out}: {params / 1e6:.1f} M parameters, vocabulary {n_vocab}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
