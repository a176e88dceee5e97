/* A shared library written in C against llama.h, linked the plainest way each build system allows
 * (tests/test_c_consumers.py): nothing in its build says the archives are C++ or which symbols to
 * hide; the package's declarations have to be enough. */
#include "llama.h"

/* number of tokens in the vocabulary of the GGUF at `path`, -1 when it cannot be loaded */
int consumer_vocab_size(const char * path) {
    struct llama_model_params params = llama_model_default_params();
    params.vocab_only = 1;
    struct llama_model * model = llama_model_load_from_file(path, params);
    if (!model) return -1;
    int n = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_model_free(model);
    return n;
}
