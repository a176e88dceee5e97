// Shared by the fuzz harnesses (tests/programs/fuzz): each defines LLVMFuzzerTestOneInput, built
// either with libFuzzer (bench/fuzz.py: clang, -fsanitize=fuzzer,address,undefined, against a
// sanitizer build) or into fuzz_replay (replay_main.cpp, against the normal package).
// Every input goes to the API the way a NIF's caller would hand it over: llama.h from C-style
// calls with no exception handling around them; llama-common's C++ API inside a try/catch (it may
// throw; it must not crash, overflow the stack or hang).
#pragma once

#include "llama.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

// the vocabulary every harness uses: a vocab-only model, $LLAMA_FUZZ_VOCAB (upstream's
// models/ggml-vocab-llama-bpe.gguf in bench/fuzz.py), loaded once per process
inline const llama_model * fuzz_model() {
    static const llama_model * model = [] {
        llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
        const char * path = std::getenv("LLAMA_FUZZ_VOCAB");
        if (!path) {
            std::fprintf(stderr, "set LLAMA_FUZZ_VOCAB to a vocab GGUF\n");
            std::abort();
        }
        llama_model_params mp = llama_model_default_params();
        mp.vocab_only = true;
        llama_model * m = llama_model_load_from_file(path, mp);
        if (!m) {
            std::fprintf(stderr, "cannot load %s\n", path);
            std::abort();
        }
        return m;
    }();
    return model;
}

inline const llama_vocab * fuzz_vocab() {
    return llama_model_get_vocab(fuzz_model());
}

// a token id taken from 4 input bytes (any int32: ids out of range are part of the input space)
inline llama_token fuzz_token(const uint8_t * p) {
    return (llama_token) ((uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24);
}
