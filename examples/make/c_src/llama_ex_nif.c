/* Erlang/Elixir NIF for the Elixir module LlamaEx.Nif, written straight against llama.h: what a
 * NIF author writes once the package provides the archives. Built by ../Makefile. */
#include <erl_nif.h>
#include <string.h>

#include "llama.h"

static void quiet(enum ggml_log_level level, const char * text, void * user) {
    (void) level; (void) text; (void) user;
}

static int load(ErlNifEnv * env, void ** priv, ERL_NIF_TERM info) {
    (void) env; (void) priv; (void) info;
    llama_log_set(quiet, NULL);
    llama_backend_init();
    return 0;
}

static ERL_NIF_TERM error_tuple(ErlNifEnv * env, const char * reason) {
    ERL_NIF_TERM bin;
    size_t n = strlen(reason);
    memcpy(enif_make_new_binary(env, n, &bin), reason, n);
    return enif_make_tuple2(env, enif_make_atom(env, "error"), bin);
}

static ERL_NIF_TERM system_info(ErlNifEnv * env, int argc, const ERL_NIF_TERM argv[]) {
    (void) argc; (void) argv;
    const char * info = llama_print_system_info();
    ERL_NIF_TERM bin;
    memcpy(enif_make_new_binary(env, strlen(info), &bin), info, strlen(info));
    return bin;
}

/* generate(model_path, prompt, n_predict) -> {:ok, [token]} | {:error, reason}; greedy sampling */
static ERL_NIF_TERM generate(ErlNifEnv * env, int argc, const ERL_NIF_TERM argv[]) {
    ErlNifBinary path_bin, prompt_bin;
    int n_predict;
    (void) argc;
    if (!enif_inspect_iolist_as_binary(env, argv[0], &path_bin) ||
        !enif_inspect_iolist_as_binary(env, argv[1], &prompt_bin) || !enif_get_int(env, argv[2], &n_predict) ||
        n_predict < 1 || n_predict > 512 || path_bin.size >= 4096 || prompt_bin.size >= 4096) {
        return enif_make_badarg(env);
    }
    char path[4096], prompt[4096];
    memcpy(path, path_bin.data, path_bin.size);
    path[path_bin.size] = 0;
    memcpy(prompt, prompt_bin.data, prompt_bin.size);
    prompt[prompt_bin.size] = 0;

    struct llama_model * model = llama_model_load_from_file(path, llama_model_default_params());
    if (!model) return error_tuple(env, "cannot load model");
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 256;
    struct llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        llama_model_free(model);
        return error_tuple(env, "cannot create context");
    }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    llama_token tokens[512];
    int n_prompt = llama_tokenize(vocab, prompt, (int) strlen(prompt), tokens, 512, true, false);
    ERL_NIF_TERM result;
    if (n_prompt <= 0 || n_prompt + n_predict > (int) llama_n_ctx(ctx)) {
        result = error_tuple(env, "prompt too long for the context");
    } else {
        struct llama_sampler * greedy = llama_sampler_init_greedy();
        struct llama_batch batch = llama_batch_get_one(tokens, n_prompt);
        ERL_NIF_TERM out[512];
        int n = 0;
        llama_token next;
        while (n < n_predict && llama_decode(ctx, batch) == 0) {
            next = llama_sampler_sample(greedy, ctx, -1);
            out[n++] = enif_make_int(env, next);
            batch = llama_batch_get_one(&next, 1);
        }
        llama_sampler_free(greedy);
        result = n == n_predict ? enif_make_tuple2(env, enif_make_atom(env, "ok"), enif_make_list_from_array(env, out, n))
                                : error_tuple(env, "decode failed");
    }
    llama_free(ctx);
    llama_model_free(model);
    return result;
}

int llama_ex_chat_prompt(const struct llama_model * model, const char * message, char * out, size_t cap);  /* chat.cpp */

/* chat_prompt(model_path, message) -> {:ok, prompt} | {:error, reason}: the model's chat template
 * (llama-common) applied to one user message, ready to be tokenized */
static ERL_NIF_TERM chat_prompt(ErlNifEnv * env, int argc, const ERL_NIF_TERM argv[]) {
    ErlNifBinary path_bin, msg_bin;
    (void) argc;
    if (!enif_inspect_iolist_as_binary(env, argv[0], &path_bin) || !enif_inspect_iolist_as_binary(env, argv[1], &msg_bin) ||
        path_bin.size >= 4096 || msg_bin.size >= 4096) {
        return enif_make_badarg(env);
    }
    char path[4096], message[4096], prompt[16384];
    memcpy(path, path_bin.data, path_bin.size);
    path[path_bin.size] = 0;
    memcpy(message, msg_bin.data, msg_bin.size);
    message[msg_bin.size] = 0;
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = 1;
    struct llama_model * model = llama_model_load_from_file(path, mp);
    if (!model) return error_tuple(env, "cannot load model");
    int n = llama_ex_chat_prompt(model, message, prompt, sizeof prompt);
    llama_model_free(model);
    if (n < 0) return error_tuple(env, "chat template failed");
    ERL_NIF_TERM bin;
    memcpy(enif_make_new_binary(env, (size_t) n, &bin), prompt, (size_t) n);
    return enif_make_tuple2(env, enif_make_atom(env, "ok"), bin);
}

static ErlNifFunc funcs[] = {
    {"system_info", 0, system_info, 0},
    {"generate", 3, generate, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"chat_prompt", 2, chat_prompt, ERL_NIF_DIRTY_JOB_CPU_BOUND},
};

ERL_NIF_INIT(Elixir.LlamaEx.Nif, funcs, load, NULL, NULL, NULL)
