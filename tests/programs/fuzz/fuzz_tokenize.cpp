// Text to tokens (both special-token modes) and back; then the input read as token ids, each to a
// piece and all of them detokenized: ids outside the vocabulary must be error values (patch 0008).
#include "fuzz.h"

#include <climits>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const llama_vocab * vocab = fuzz_vocab();
    const char * text = (const char *) data;
    std::vector<llama_token> toks(size + 8);
    for (int parse_special = 0; parse_special < 2; ++parse_special) {
        int n = llama_tokenize(vocab, text, (int32_t) size, toks.data(), (int32_t) toks.size(), true, parse_special);
        if (n == INT32_MIN) continue;  // the text cannot be tokenized: an error, not a size to retry with
        if (n < 0) {
            toks.resize(-n);
            n = llama_tokenize(vocab, text, (int32_t) size, toks.data(), (int32_t) toks.size(), true, parse_special);
        }
        if (n > 0) {
            std::vector<char> out(size * 4 + 64);
            llama_detokenize(vocab, toks.data(), n, out.data(), (int32_t) out.size(), false, parse_special);
        }
    }
    std::vector<llama_token> ids;
    for (size_t i = 0; i + 4 <= size && ids.size() < 64; i += 4) ids.push_back(fuzz_token(data + i));
    char piece[256];
    for (llama_token id : ids) {
        llama_token_to_piece(vocab, id, piece, (int32_t) sizeof piece, 1, true);
        llama_vocab_get_text(vocab, id);
        llama_vocab_get_attr(vocab, id);
        llama_vocab_is_eog(vocab, id);
        llama_vocab_is_control(vocab, id);
    }
    if (!ids.empty()) {
        std::vector<char> out(4096);
        llama_detokenize(vocab, ids.data(), (int32_t) ids.size(), out.data(), (int32_t) out.size(), true, true);
    }
    return 0;
}
