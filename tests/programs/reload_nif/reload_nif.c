/* An Erlang NIF in C for the hot-upgrade proof (tests/test_c_consumers.py): the test builds it
 * twice with different RELOAD_NIF_VERSION values, loads version 1, purges the module, replaces the
 * .so at the same path with version 2 and loads again. */
#include <erl_nif.h>
#include <string.h>

#include "llama.h"

#ifndef RELOAD_NIF_VERSION
#define RELOAD_NIF_VERSION 1
#endif

static void quiet(enum ggml_log_level level, const char * text, void * user) {
    (void) level; (void) text; (void) user;
}

static int load(ErlNifEnv * env, void ** priv, ERL_NIF_TERM info) {
    (void) env; (void) priv; (void) info;
    llama_log_set(quiet, NULL);
    llama_backend_init();
    return 0;
}

static void unload(ErlNifEnv * env, void * priv) {
    (void) env; (void) priv;
    llama_backend_free();
}

static ERL_NIF_TERM version(ErlNifEnv * env, int argc, const ERL_NIF_TERM argv[]) {
    (void) argc; (void) argv;
    return enif_make_int(env, RELOAD_NIF_VERSION);
}

/* vocab_size(Path :: binary()) -> integer() (-1 when the model cannot be loaded) */
static ERL_NIF_TERM vocab_size(ErlNifEnv * env, int argc, const ERL_NIF_TERM argv[]) {
    ErlNifBinary bin;
    char path[4096];
    (void) argc;
    if (!enif_inspect_binary(env, argv[0], &bin) || bin.size >= sizeof path) return enif_make_badarg(env);
    memcpy(path, bin.data, bin.size);
    path[bin.size] = 0;
    struct llama_model_params params = llama_model_default_params();
    params.vocab_only = 1;
    struct llama_model * model = llama_model_load_from_file(path, params);
    if (!model) return enif_make_int(env, -1);
    int n = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_model_free(model);
    return enif_make_int(env, n);
}

static ErlNifFunc funcs[] = {
    {"version", 0, version, 0},
    {"vocab_size", 1, vocab_size, ERL_NIF_DIRTY_JOB_CPU_BOUND},
};

ERL_NIF_INIT(reload_nif, funcs, load, NULL, NULL, unload)
