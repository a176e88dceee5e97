/* test_package's NIF-style library: C over the package's static archives, one entry point. */
#include <stdio.h>
#include <string.h>

#include "llama.h"

#if defined(_WIN32)
#    define LNIF_API __declspec(dllexport)
#else
#    define LNIF_API __attribute__((visibility("default")))
#endif

static void quiet(enum ggml_log_level level, const char * text, void * user) {
    (void) level; (void) text; (void) user;
}

/* Greedy generation of n_predict tokens after `prompt` by the model at `path`, on the CPU. Returns
 * the number of tokens written to `out`, or -1 with the reason in `error`. */
LNIF_API int lnif_generate(const char * path, const char * prompt, int n_predict, int * out, char * error,
                           int error_cap) {
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model * model = llama_model_load_from_file(path, mp);
    if (!model) {
        snprintf(error, error_cap, "cannot load model '%s'", path);
        return -1;
    }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = cp.n_batch = 128;
    struct llama_context * ctx = llama_init_from_model(model, cp);
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    llama_token tokens[128];
    int n_prompt = ctx ? llama_tokenize(vocab, prompt, (int) strlen(prompt), tokens, 128, 1, 0) : -1;
    int n = 0;
    if (n_prompt <= 0 || n_prompt + n_predict > 128) {
        snprintf(error, error_cap, "no context, or the prompt does not fit");
        n = -1;
    } else {
        struct llama_sampler * greedy = llama_sampler_init_greedy();
        struct llama_batch batch = llama_batch_get_one(tokens, n_prompt);
        while (n < n_predict && llama_decode(ctx, batch) == 0) {
            tokens[0] = llama_sampler_sample(greedy, ctx, -1);
            out[n++] = tokens[0];
            batch = llama_batch_get_one(tokens, 1);
        }
        llama_sampler_free(greedy);
        if (n != n_predict) {
            snprintf(error, error_cap, "llama_decode failed after %d tokens", n);
            n = -1;
        }
    }
    if (ctx) llama_free(ctx);
    llama_model_free(model);
    return n;
}
