// A native extension module (Python ctypes / Ruby FFI / Node ffi style) over the static
// llama.cpp archives: counts the tokens of a text with a model's vocabulary.
#include "llama.h"

#include <string>
#include <vector>

#define EXAMPLE_API extern "C" __attribute__((visibility("default")))

static void quiet(ggml_log_level, const char *, void *) {}

// number of tokens, or -1 when the model cannot be loaded
EXAMPLE_API int example_count_tokens(const char * model_path, const char * text) {
    llama_log_set(quiet, nullptr);
    llama_model_params params = llama_model_default_params();
    params.vocab_only = true;
    llama_model * model = llama_model_load_from_file(model_path, params);
    if (!model) return -1;
    const std::string s(text);
    std::vector<llama_token> tokens(s.size() + 8);
    int n = llama_tokenize(llama_model_get_vocab(model), s.data(), (int) s.size(), tokens.data(),
                           (int) tokens.size(), false, false);
    llama_model_free(model);
    return n;
}
