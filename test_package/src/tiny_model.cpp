#include "tiny_model.h"

#include "ggml.h"
#include "gguf.h"

#include <string>
#include <vector>

namespace {

// model shape: big enough to exercise attention with GQA and a SwiGLU FFN, small enough to write
// and run in milliseconds on any target (qemu included)
constexpr int N_EMBD = 64, N_HEAD = 4, N_HEAD_KV = 2, N_FF = 128, N_LAYER = 2, N_CTX = 256;

struct Rng {  // xorshift32: tiny, portable, identical on every platform
    uint32_t s;
    float next() {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        return (float) (s >> 8) / (float) (1u << 24) - 0.5f;  // [-0.5, 0.5)
    }
};

std::vector<std::string> vocabulary(std::vector<float> & scores, std::vector<int32_t> & types) {
    std::vector<std::string> toks = {"<unk>", "<s>", "</s>"};
    types = {2, 3, 3};  // UNKNOWN, CONTROL, CONTROL
    char buf[8];
    for (int b = 0; b < 256; ++b) {  // byte fallback pieces, required by the SPM tokenizer
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        toks.push_back(buf);
        types.push_back(6);  // BYTE
    }
    const std::string space = "\xe2\x96\x81";  // U+2581, SentencePiece's word boundary
    std::vector<std::string> pieces = {space};
    for (char c = 'a'; c <= 'z'; ++c) pieces.push_back(std::string(1, c));
    for (const char * w : {"he", "ll", "lo", "hello", "wor", "ld", "world", "the", "llama", "is",
                           "nif", "static", "model", "token", "in", "on", "at", "er", "an"}) {
        pieces.push_back(space + w);
        pieces.push_back(w);
    }
    pieces.push_back(space + "a");  // "a" itself is already a letter: every piece must be unique
    for (size_t i = 0; i < pieces.size(); ++i) {
        toks.push_back(pieces[i]);
        types.push_back(1);  // NORMAL
    }
    scores.assign(toks.size(), 0.0f);
    for (size_t i = 3 + 256; i < toks.size(); ++i) scores[i] = (float) toks[i].size();  // prefer longer merges
    return toks;
}

}  // namespace

bool write_tiny_llama(const char * path, uint32_t seed) {
    std::vector<float> scores;
    std::vector<int32_t> types;
    std::vector<std::string> toks = vocabulary(scores, types);
    const int n_vocab = (int) toks.size();
    const int n_embd_kv = N_EMBD / N_HEAD * N_HEAD_KV;

    gguf_context * g = gguf_init_empty();
    gguf_set_val_str(g, "general.architecture", "llama");
    gguf_set_val_str(g, "general.name", "tiny-random-llama");
    gguf_set_val_u32(g, "llama.context_length", N_CTX);
    gguf_set_val_u32(g, "llama.embedding_length", N_EMBD);
    gguf_set_val_u32(g, "llama.block_count", N_LAYER);
    gguf_set_val_u32(g, "llama.feed_forward_length", N_FF);
    gguf_set_val_u32(g, "llama.attention.head_count", N_HEAD);
    gguf_set_val_u32(g, "llama.attention.head_count_kv", N_HEAD_KV);
    gguf_set_val_f32(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_set_val_u32(g, "llama.rope.dimension_count", N_EMBD / N_HEAD);
    gguf_set_val_u32(g, "llama.vocab_size", (uint32_t) n_vocab);
    gguf_set_val_str(g, "tokenizer.ggml.model", "llama");
    std::vector<const char *> ptrs;
    for (const auto & t : toks) ptrs.push_back(t.c_str());
    gguf_set_arr_str(g, "tokenizer.ggml.tokens", ptrs.data(), ptrs.size());
    gguf_set_arr_data(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores.data(), scores.size());
    gguf_set_arr_data(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types.data(), types.size());
    gguf_set_val_u32(g, "tokenizer.ggml.unknown_token_id", 0);
    gguf_set_val_u32(g, "tokenizer.ggml.bos_token_id", 1);
    gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", 2);
    gguf_set_val_bool(g, "tokenizer.ggml.add_bos_token", true);

    struct Shape { std::string name; int64_t ne0, ne1; bool norm; };
    std::vector<Shape> shapes = {{"token_embd.weight", N_EMBD, n_vocab, false},
                                 {"output_norm.weight", N_EMBD, 1, true},
                                 {"output.weight", N_EMBD, n_vocab, false}};
    for (int l = 0; l < N_LAYER; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        shapes.push_back({p + "attn_norm.weight", N_EMBD, 1, true});
        shapes.push_back({p + "attn_q.weight", N_EMBD, N_EMBD, false});
        shapes.push_back({p + "attn_k.weight", N_EMBD, n_embd_kv, false});
        shapes.push_back({p + "attn_v.weight", N_EMBD, n_embd_kv, false});
        shapes.push_back({p + "attn_output.weight", N_EMBD, N_EMBD, false});
        shapes.push_back({p + "ffn_norm.weight", N_EMBD, 1, true});
        shapes.push_back({p + "ffn_gate.weight", N_EMBD, N_FF, false});
        shapes.push_back({p + "ffn_up.weight", N_EMBD, N_FF, false});
        shapes.push_back({p + "ffn_down.weight", N_FF, N_EMBD, false});
    }
    size_t bytes = 0;
    for (const auto & s : shapes) bytes += (size_t) (s.ne0 * s.ne1) * sizeof(float) + 1024;
    ggml_init_params ip = {bytes + shapes.size() * ggml_tensor_overhead(), nullptr, false};
    ggml_context * ctx = ggml_init(ip);
    if (!ctx) {
        gguf_free(g);
        return false;
    }
    Rng rng{seed ? seed : 1u};
    for (const auto & s : shapes) {
        ggml_tensor * t = s.ne1 == 1 ? ggml_new_tensor_1d(ctx, GGML_TYPE_F32, s.ne0)
                                     : ggml_new_tensor_2d(ctx, GGML_TYPE_F32, s.ne0, s.ne1);
        ggml_set_name(t, s.name.c_str());
        float * d = (float *) t->data;
        for (int64_t i = 0; i < s.ne0 * s.ne1; ++i) d[i] = s.norm ? 1.0f : rng.next() * 0.5f;
        gguf_add_tensor(g, t);
    }
    const bool ok = gguf_write_to_file(g, path, false);
    ggml_free(ctx);
    gguf_free(g);
    return ok;
}
