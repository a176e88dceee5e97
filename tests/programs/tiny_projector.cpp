// Tiny random-weight vision projector for libmtmd (llama.cpp tools/mtmd), written with the gguf
// C API in the same way as test_package/src/tiny_model.cpp writes the tiny text model.
//
// Projector type: "gemma3" (PROJECTOR_TYPE_GEMMA3). Why this one:
//  - the projector proper is two weight matrices and nothing else: mm.soft_emb_norm.weight (an
//    RMS-norm scale) and mm.input_projection.weight. No biases, no extra hyper-parameters beyond
//    the common clip.vision.* ones (clip.cpp load_hparams / load_tensors, case GEMMA3).
//    "mlp" (llava) needs 4 (mm.0.w/b + mm.2.w/b: clip_n_mmproj_embd() dereferences mm_2_w, so the
//    1-layer variant crashes), idefics3 needs tokens like <fake_token_around_image> in the text
//    vocabulary (mtmd.cpp init_vision() looks them up) and llava-uhd slicing, lfm2 needs 4 plus
//    dynamic-size positional-embedding interpolation.
//  - the vision tower is clip_graph_siglip (models/siglip.cpp) -> the generic build_vit(), the
//    path most current projectors share, and every block counts (llava stops one block early).
//  - preprocessing is the plain fixed-size one (mtmd_image_preprocessor_fixed_size): resize to
//    image_size x image_size, normalise with image_mean/std, one image chunk. No slices, no
//    special tokens; mtmd only wraps the chunk in the text "<start_of_image>"/"<end_of_image>",
//    which the tiny vocabulary tokenizes through byte fallback like any other text.
//  - the output width is mm.input_projection.weight->ne[0] (clip_n_mmproj_embd), which must equal
//    llama_model_n_embd_inp() of the text model, or mtmd_init_from_file() fails.
//
// Shapes (ggml order, ne0 first), D = vision width, F = vision FFN width, E = n_embd_text:
//   v.patch_embd.weight          [P, P, 3, D]   conv2d kernel, stride P (clip_graph::build_inp)
//   v.position_embd.weight       [D, (S/P)^2]   learned, added as is (no interpolation: fixed size)
//   v.blk.N.attn_{q,k,v,out}.weight [D, D]
//   v.blk.N.ffn_up.weight        [D, F]
//   v.blk.N.ffn_down.weight      [F, D]         F != D on purpose: clip.cpp swaps up/down of
//                                               gemma3 models whose ffn_down has ne0 == D (legacy
//                                               exports), and D == F would make that ambiguous
//   mm.soft_emb_norm.weight      [D]
//   mm.input_projection.weight   [E, D]         used transposed: out = W^T x, width E
// Layer norms (v.blk.N.ln1/ln2, v.post_ln), biases and v.patch_embd.bias are optional for this
// graph and left out: build_norm() then normalises without an affine step.
#include "tiny_projector.h"

#include "ggml.h"
#include "gguf.h"

#include <cmath>
#include <string>
#include <vector>

namespace {

constexpr int IMAGE_SIZE = 32;  // every image is resized to this square (fixed-size preprocessing)
constexpr int PATCH = 4;        // 8x8 = 64 patches
constexpr int MERGE = 2;        // gemma3 average-pools MERGE x MERGE patches: 4x4 = 16 output tokens
constexpr int D = 32, N_HEAD = 2, F = 64, N_LAYER = 2;
constexpr int N_PATCHES = (IMAGE_SIZE / PATCH) * (IMAGE_SIZE / PATCH);
static_assert((IMAGE_SIZE / PATCH / MERGE) * (IMAGE_SIZE / PATCH / MERGE) == TINY_PROJECTOR_IMAGE_TOKENS,
              "header and shape disagree");
static_assert(F != D, "see the ffn up/down note above");

struct Rng {  // xorshift32, the same generator as tiny_model.cpp
    uint32_t s;
    float next() {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        return (float) (s >> 8) / (float) (1u << 24) - 0.5f;  // [-0.5, 0.5)
    }
};

enum class Init { Random, AroundOne };

struct Spec {
    std::string name;
    int64_t ne[4];
    int n_dims;
    Init init;
    float scale;  // Random: uniform in [-scale/2, scale/2)
};

}  // namespace

bool write_tiny_projector(const char * path, uint32_t seed, int n_embd_text) {
    if (!path || n_embd_text <= 0) return false;
    const int E = n_embd_text;

    gguf_context * g = gguf_init_empty();
    if (!g) return false;
    // key types matter: clip.cpp reads them with gguf_get_val_u32/f32/bool/str, which
    // GGML_ASSERT (abort) on a type mismatch instead of failing
    gguf_set_val_str(g, "general.architecture", "clip");
    gguf_set_val_str(g, "general.name", "tiny-random-gemma3-mmproj");
    gguf_set_val_str(g, "clip.projector_type", "gemma3");
    gguf_set_val_bool(g, "clip.has_vision_encoder", true);
    gguf_set_val_bool(g, "clip.use_gelu", true);  // gemma3's SigLIP uses gelu (default: gelu_quick)
    gguf_set_val_u32(g, "clip.vision.image_size", IMAGE_SIZE);
    gguf_set_val_u32(g, "clip.vision.patch_size", PATCH);
    gguf_set_val_u32(g, "clip.vision.embedding_length", D);
    gguf_set_val_u32(g, "clip.vision.feed_forward_length", F);
    gguf_set_val_u32(g, "clip.vision.block_count", N_LAYER);
    gguf_set_val_u32(g, "clip.vision.attention.head_count", N_HEAD);
    gguf_set_val_f32(g, "clip.vision.attention.layer_norm_epsilon", 1e-6f);
    gguf_set_val_u32(g, "clip.vision.projection_dim", (uint32_t) E);  // required key, unused by gemma3
    gguf_set_val_u32(g, "clip.vision.projector.scale_factor", MERGE);  // gemma3 default would be 4
    const float mean[3] = {0.5f, 0.5f, 0.5f}, stdv[3] = {0.5f, 0.5f, 0.5f};  // SigLIP's
    gguf_set_arr_data(g, "clip.vision.image_mean", GGUF_TYPE_FLOAT32, mean, 3);
    gguf_set_arr_data(g, "clip.vision.image_std", GGUF_TYPE_FLOAT32, stdv, 3);

    // uniform weights with std ~ 0.6/sqrt(fan_in), so activations stay O(1) through the tower
    auto fan = [](int fan_in) { return 2.0f / std::sqrt((float) fan_in); };
    std::vector<Spec> specs = {
        {"v.patch_embd.weight", {PATCH, PATCH, 3, D}, 4, Init::Random, fan(PATCH * PATCH * 3)},
        {"v.position_embd.weight", {D, N_PATCHES, 1, 1}, 2, Init::Random, 0.2f},
    };
    for (int l = 0; l < N_LAYER; ++l) {
        const std::string p = "v.blk." + std::to_string(l) + ".";
        for (const char * w : {"attn_q", "attn_k", "attn_v", "attn_out"})
            specs.push_back({p + w + ".weight", {D, D, 1, 1}, 2, Init::Random, fan(D)});
        specs.push_back({p + "ffn_up.weight", {D, F, 1, 1}, 2, Init::Random, fan(D)});
        specs.push_back({p + "ffn_down.weight", {F, D, 1, 1}, 2, Init::Random, fan(F)});
    }
    // the tensor clip.cpp reads last is also last in the file: a file cut inside it is the case an
    // unchecked read would load silently (tests/test_optional_parts.py, patch 0004)
    specs.push_back({"mm.input_projection.weight", {E, D, 1, 1}, 2, Init::Random, fan(D)});
    specs.push_back({"mm.soft_emb_norm.weight", {D, 1, 1, 1}, 1, Init::AroundOne, 0.2f});

    size_t bytes = 0;
    for (const auto & s : specs) bytes += (size_t) (s.ne[0] * s.ne[1] * s.ne[2] * s.ne[3]) * sizeof(float) + 64;
    ggml_init_params ip = {bytes + specs.size() * ggml_tensor_overhead(), nullptr, false};
    ggml_context * ctx = ggml_init(ip);
    if (!ctx) {
        gguf_free(g);
        return false;
    }
    Rng rng{seed ? seed : 1u};
    for (const auto & s : specs) {
        ggml_tensor * t = ggml_new_tensor(ctx, GGML_TYPE_F32, s.n_dims, s.ne);
        ggml_set_name(t, s.name.c_str());
        float * d = (float *) t->data;
        const int64_t n = ggml_nelements(t);
        for (int64_t i = 0; i < n; ++i)
            d[i] = s.init == Init::AroundOne ? 1.0f + rng.next() * s.scale : rng.next() * s.scale;
        gguf_add_tensor(g, t);
    }
    const bool ok = gguf_write_to_file(g, path, false);
    ggml_free(ctx);
    gguf_free(g);
    return ok;
}
