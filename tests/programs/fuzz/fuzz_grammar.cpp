// A GBNF grammar (the input after its first 4 bytes) given to llama_sampler_init_grammar; when it
// is accepted, a few steps of sampling under it over the first 512 tokens of the vocabulary, and
// one token id taken from the input's first 4 bytes accepted as a caller would pass it.
#include "fuzz.h"

#include <cmath>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    if (size < 4) return 0;
    const llama_vocab * vocab = fuzz_vocab();
    const std::string grammar((const char *) data + 4, size - 4);
    llama_sampler * smpl = llama_sampler_init_grammar(vocab, grammar.c_str(), "root");
    if (!smpl) return 0;
    const int n = llama_vocab_n_tokens(vocab) < 512 ? llama_vocab_n_tokens(vocab) : 512;
    std::vector<llama_token_data> cand(n);
    for (int step = 0; step < 4; ++step) {
        for (int i = 0; i < n; ++i) cand[i] = {i, (float) ((i * 7919 + step) % 97), 0.0f};
        llama_token_data_array arr = {cand.data(), cand.size(), -1, false};
        llama_sampler_apply(smpl, &arr);
        llama_token next = LLAMA_TOKEN_NULL;
        for (size_t i = 0; i < arr.size; ++i) {
            if (std::isfinite(arr.data[i].logit)) {
                next = arr.data[i].id;
                break;
            }
        }
        if (next == LLAMA_TOKEN_NULL) break;
        llama_sampler_accept(smpl, next);
    }
    llama_sampler_accept(smpl, fuzz_token(data));  // the caller's token: allowed or not, valid or not
    llama_sampler_free(smpl);
    return 0;
}
