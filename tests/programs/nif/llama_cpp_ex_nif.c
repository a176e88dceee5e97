/* A real Erlang NIF over the same C ABI, in the shape of priv/llama_cpp_ex_nif.so. The only
 * symbol it exports is nif_init (ERL_NIF_INIT); enif_* come from the VM at load time. */
#include <erl_nif.h>
#include <string.h>

#include "llama_nif.h"

static ERL_NIF_TERM binary_of(ErlNifEnv * env, const char * s) {
    ERL_NIF_TERM term;
    size_t n = s ? strlen(s) : 0;
    unsigned char * buf = enif_make_new_binary(env, n, &term);
    if (n) memcpy(buf, s, n);
    return term;
}

static ERL_NIF_TERM error_of(ErlNifEnv * env, const char * reason) {
    return enif_make_tuple2(env, enif_make_atom(env, "error"), binary_of(env, reason));
}

static ERL_NIF_TERM system_info(ErlNifEnv * env, int argc, const ERL_NIF_TERM argv[]) {
    (void) argc;
    (void) argv;
    return binary_of(env, lnif_system_info());
}

static ERL_NIF_TERM devices(ErlNifEnv * env, int argc, const ERL_NIF_TERM argv[]) {
    (void) argc;
    (void) argv;
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (int i = lnif_device_count() - 1; i >= 0; --i) list = enif_make_list_cell(env, binary_of(env, lnif_device_describe(i)), list);
    return list;
}

/* generate(ModelPath :: binary(), Prompt :: binary(), NPredict :: pos_integer()) ->
 *     {ok, [Token]} | {error, Reason :: binary()} */
static ERL_NIF_TERM generate(ErlNifEnv * env, int argc, const ERL_NIF_TERM argv[]) {
    ErlNifBinary path, prompt;
    int n_predict;
    (void) argc;
    if (!enif_inspect_binary(env, argv[0], &path) || !enif_inspect_binary(env, argv[1], &prompt) ||
        !enif_get_int(env, argv[2], &n_predict) || n_predict < 0 || n_predict > 4096) {
        return enif_make_badarg(env);
    }
    char cpath[4096], cprompt[4096];
    if (path.size >= sizeof cpath || prompt.size >= sizeof cprompt) return error_of(env, "argument too long");
    memcpy(cpath, path.data, path.size);
    cpath[path.size] = 0;
    memcpy(cprompt, prompt.data, prompt.size);
    cprompt[prompt.size] = 0;

    lnif_model * m = lnif_open(cpath, 0, 128);
    if (!m) return error_of(env, lnif_last_error());
    int32_t toks[4096];
    int nonfinite = 0;
    int n = lnif_generate(m, cprompt, n_predict, 2, toks, 4096, &nonfinite);
    ERL_NIF_TERM result;
    if (n < 0) {
        result = error_of(env, lnif_last_error());
    } else if (nonfinite) {
        result = error_of(env, "non-finite logits");
    } else {
        ERL_NIF_TERM list = enif_make_list(env, 0);
        for (int i = n - 1; i >= 0; --i) list = enif_make_list_cell(env, enif_make_int(env, toks[i]), list);
        result = enif_make_tuple2(env, enif_make_atom(env, "ok"), list);
    }
    lnif_close(m);
    return result;
}

/* chat_json(ModelPath :: binary(), Message :: binary(), Schema :: binary()) ->
 *     {ok, Prompt :: binary(), Json :: binary()} | {error, Reason :: binary()}
 * llama-common: the model's chat template around Message, then output constrained by Schema */
static ERL_NIF_TERM chat_json(ErlNifEnv * env, int argc, const ERL_NIF_TERM argv[]) {
    ErlNifBinary bins[3];
    char args[3][4096];
    (void) argc;
    for (int i = 0; i < 3; ++i) {
        if (!enif_inspect_binary(env, argv[i], &bins[i])) return enif_make_badarg(env);
        if (bins[i].size >= sizeof args[i]) return error_of(env, "argument too long");
        memcpy(args[i], bins[i].data, bins[i].size);
        args[i][bins[i].size] = 0;
    }
    lnif_model * m = lnif_open(args[0], 0, 512);
    if (!m) return error_of(env, lnif_last_error());
    static char prompt[8192], json[8192];  /* dirty schedulers may run two calls at once: */
    ERL_NIF_TERM result;                   /* the selftest makes one call at a time */
    if (lnif_chat_format(m, args[1], prompt, sizeof prompt) < 0 ||
        lnif_generate_json(m, prompt, args[2], 400, json, sizeof json) < 0) {
        result = error_of(env, lnif_last_error());
    } else {
        result = enif_make_tuple3(env, enif_make_atom(env, "ok"), binary_of(env, prompt), binary_of(env, json));
    }
    lnif_close(m);
    return result;
}

/* hostile(ModelPath :: binary(), Kind :: binary(), Value :: binary()) ->
 *     {error, What :: binary()} | {ok, What :: binary()}
 * one caller's value given to one llama.h / llama-common call (lnif_hostile, tests/programs/nif/hostile.c) */
static ERL_NIF_TERM hostile(ErlNifEnv * env, int argc, const ERL_NIF_TERM argv[]) {
    ErlNifBinary bins[3];
    char * args[3] = {NULL, NULL, NULL};
    ERL_NIF_TERM result;
    (void) argc;
    for (int i = 0; i < 3; ++i) {
        if (!enif_inspect_binary(env, argv[i], &bins[i])) return enif_make_badarg(env);
    }
    for (int i = 0; i < 3; ++i) {
        args[i] = enif_alloc(bins[i].size + 1);
        if (!args[i]) {
            result = error_of(env, "out of memory");
            goto done;
        }
        memcpy(args[i], bins[i].data, bins[i].size);
        args[i][bins[i].size] = 0;
    }
    lnif_model * m = lnif_open(args[0], 0, 64);
    if (!m) {
        result = error_of(env, lnif_last_error());
        goto done;
    }
    char what[1024];
    const int rc = lnif_hostile(m, args[1], args[2], what, sizeof what);
    lnif_close(m);
    result = rc == 0 ? enif_make_tuple2(env, enif_make_atom(env, "ok"), binary_of(env, what))
           : rc == 1 ? error_of(env, what) : enif_make_badarg(env);
done:
    for (int i = 0; i < 3; ++i) enif_free(args[i]);
    return result;
}

static ErlNifFunc funcs[] = {
    {"system_info", 0, system_info, 0},
    {"devices", 0, devices, 0},
    {"generate", 3, generate, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"chat_json", 3, chat_json, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"hostile", 3, hostile, ERL_NIF_DIRTY_JOB_CPU_BOUND},
};

ERL_NIF_INIT(llama_cpp_ex_nif, funcs, NULL, NULL, NULL, NULL)
