// Writes a tiny llama-architecture GGUF model with seeded random F32 weights and a small
// SentencePiece-style vocabulary. Nothing is downloaded: the model is made where the test runs.
#pragma once
#include <cstdint>

// returns true on success; the same seed always gives the same bytes
bool write_tiny_llama(const char * path, uint32_t seed);
