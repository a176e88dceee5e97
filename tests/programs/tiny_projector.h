// Writes a tiny vision projector ("mmproj") GGUF for libmtmd with seeded random F32 weights: a
// 2-layer ViT on 32x32 images with a gemma3-style projector. Nothing is downloaded: the file is
// made where the test runs, next to the tiny text model of test_package/src/tiny_model.h.
#pragma once
#include <cstdint>

// n_embd_text: embedding width of the text model the projector feeds (mtmd refuses to pair a
// projector whose output width differs from llama_model_n_embd_inp() of the text model).
// Returns true on success; the same (seed, n_embd_text) always gives the same bytes.
bool write_tiny_projector(const char * path, uint32_t seed, int n_embd_text);

// What the projector turns one image into: n_tokens embeddings of n_embd_text floats each.
// Every image is resized to 32x32, cut in 4x4 patches (8x8 grid), then average-pooled 2x2.
constexpr int TINY_PROJECTOR_IMAGE_TOKENS = 16;
