/* nif_host: loads an Erlang NIF library outside the Erlang VM and calls one of its functions, so a
 * precompiled NIF can be run on targets this machine has no Erlang for (aarch64, riscv64 and musl
 * under qemu or their own loader, Windows under wine). It stands in for the part of the VM a NIF
 * sees: nif_init(), the load callback and the enif_ functions below (terms are plain C structs).
 *
 *   nif_host LIBRARY                      prints the NIF's module and functions (name/arity)
 *   nif_host LIBRARY FUNCTION [ARG...]    ARG is b:TEXT (binary), i:INTEGER or a:ATOM
 *
 * The result is printed the way Erlang's io:format("~w~n", [Result]) prints it; an exception
 * (enif_make_badarg, enif_raise_exception) as {raised,error,Reason}. release.py checks this output
 * against the real VM's for the native build. Exit status: 0 called, 2 cannot load or call, 3 the
 * NIF used an enif_ function this host does not have (Windows; on Linux the load fails instead).
 *
 * Built for each target with the NIF's own compilers (release.py): Linux with -rdynamic so the
 * library binds to the enif_ symbols below; Windows with STATIC_ERLANG_NIF, which declares the
 * enif_ functions as plain externs here, and the callback table nif_init() takes is filled from
 * them. */
#if defined(_WIN32)
#define STATIC_ERLANG_NIF 1
#include <windows.h>
#else
#include <dlfcn.h>
#endif
#include <erl_nif.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { T_INT, T_ATOM, T_BINARY, T_TUPLE, T_LIST };

typedef struct term {
    enum kind kind;
    long long i;               /* T_INT */
    const char * atom;         /* T_ATOM */
    unsigned char * data;      /* T_BINARY */
    size_t size;               /* T_BINARY bytes, T_TUPLE/T_LIST elements */
    ERL_NIF_TERM * elems;      /* T_TUPLE, T_LIST */
} term;

struct enif_environment_t {
    void * priv;
    int raised;
    ERL_NIF_TERM reason;
};

static ErlNifEnv the_env;

/* every term lives until exit: the process makes one call */
static term * new_term(enum kind kind) {
    term * t = calloc(1, sizeof *t);
    if (!t) {
        fputs("nif_host: out of memory\n", stderr);
        exit(2);
    }
    t->kind = kind;
    return t;
}
#define T(x) ((term *) (uintptr_t) (x))
#define E(t) ((ERL_NIF_TERM) (uintptr_t) (t))

static ERL_NIF_TERM make_seq(enum kind kind, const ERL_NIF_TERM * elems, size_t n) {
    term * t = new_term(kind);
    t->size = n;
    t->elems = calloc(n ? n : 1, sizeof *t->elems);
    if (n) memcpy(t->elems, elems, n * sizeof *elems);
    return E(t);
}

/* ---- the enif_ functions this host provides ------------------------------------------------ */

void * enif_priv_data(ErlNifEnv * env) { return env->priv; }
void * enif_alloc(size_t size) { return malloc(size); }
void enif_free(void * ptr) { free(ptr); }
void * enif_realloc(void * ptr, size_t size) { return realloc(ptr, size); }

ERL_NIF_TERM enif_make_atom(ErlNifEnv * env, const char * name) {
    (void) env;
    term * t = new_term(T_ATOM);
    t->atom = strdup(name);
    return E(t);
}

ERL_NIF_TERM enif_make_badarg(ErlNifEnv * env) {
    env->raised = 1;
    env->reason = enif_make_atom(env, "badarg");
    return enif_make_atom(env, "badarg");
}

ERL_NIF_TERM enif_raise_exception(ErlNifEnv * env, ERL_NIF_TERM reason) {
    env->raised = 1;
    env->reason = reason;
    return reason;
}

static ERL_NIF_TERM make_integer(long long i) {
    term * t = new_term(T_INT);
    t->i = i;
    return E(t);
}
ERL_NIF_TERM enif_make_int(ErlNifEnv * env, int i) { (void) env; return make_integer(i); }
ERL_NIF_TERM enif_make_uint(ErlNifEnv * env, unsigned i) { (void) env; return make_integer(i); }
ERL_NIF_TERM enif_make_long(ErlNifEnv * env, long i) { (void) env; return make_integer(i); }

static int get_integer(ERL_NIF_TERM x, long long lo, long long hi, long long * out) {
    if (T(x)->kind != T_INT || T(x)->i < lo || T(x)->i > hi) return 0;
    *out = T(x)->i;
    return 1;
}
int enif_get_int(ErlNifEnv * env, ERL_NIF_TERM x, int * ip) {
    long long v;
    (void) env;
    if (!get_integer(x, INT32_MIN, INT32_MAX, &v)) return 0;
    *ip = (int) v;
    return 1;
}
int enif_get_uint(ErlNifEnv * env, ERL_NIF_TERM x, unsigned * ip) {
    long long v;
    (void) env;
    if (!get_integer(x, 0, UINT32_MAX, &v)) return 0;
    *ip = (unsigned) v;
    return 1;
}
int enif_get_long(ErlNifEnv * env, ERL_NIF_TERM x, long * ip) {
    long long v;
    (void) env;
    if (!get_integer(x, sizeof(long) == 8 ? INT64_MIN : INT32_MIN, sizeof(long) == 8 ? INT64_MAX : INT32_MAX, &v)) return 0;
    *ip = (long) v;
    return 1;
}
#if SIZEOF_LONG != 8
int enif_get_int64(ErlNifEnv * env, ERL_NIF_TERM x, ErlNifSInt64 * ip) {
    long long v;
    (void) env;
    if (!get_integer(x, INT64_MIN, INT64_MAX, &v)) return 0;
    *ip = v;
    return 1;
}
ERL_NIF_TERM enif_make_int64(ErlNifEnv * env, ErlNifSInt64 i) { (void) env; return make_integer(i); }
#endif

int enif_is_binary(ErlNifEnv * env, ERL_NIF_TERM x) { (void) env; return T(x)->kind == T_BINARY; }
int enif_is_atom(ErlNifEnv * env, ERL_NIF_TERM x) { (void) env; return T(x)->kind == T_ATOM; }
int enif_is_list(ErlNifEnv * env, ERL_NIF_TERM x) { (void) env; return T(x)->kind == T_LIST; }

int enif_get_atom(ErlNifEnv * env, ERL_NIF_TERM x, char * buf, unsigned len, ErlNifCharEncoding enc) {
    (void) env; (void) enc;
    if (T(x)->kind != T_ATOM || strlen(T(x)->atom) + 1 > len) return 0;
    memcpy(buf, T(x)->atom, strlen(T(x)->atom) + 1);
    return (int) strlen(T(x)->atom) + 1;
}

int enif_inspect_binary(ErlNifEnv * env, ERL_NIF_TERM x, ErlNifBinary * bin) {
    (void) env;
    if (T(x)->kind != T_BINARY) return 0;
    memset(bin, 0, sizeof *bin);
    bin->size = T(x)->size;
    bin->data = T(x)->data;
    return 1;
}

/* an iolist: a binary, or a list of bytes, binaries and iolists */
static int iolist_size(ERL_NIF_TERM x, size_t * n) {
    term * t = T(x);
    if (t->kind == T_BINARY) return *n += t->size, 1;
    if (t->kind != T_LIST) return 0;
    for (size_t k = 0; k < t->size; ++k) {
        term * e = T(t->elems[k]);
        if (e->kind == T_INT) {
            if (e->i < 0 || e->i > 255) return 0;
            ++*n;
        } else if (!iolist_size(t->elems[k], n)) {
            return 0;
        }
    }
    return 1;
}
static unsigned char * iolist_copy(ERL_NIF_TERM x, unsigned char * out) {
    term * t = T(x);
    if (t->kind == T_BINARY) return (t->size ? memcpy(out, t->data, t->size) : out), out + t->size;
    for (size_t k = 0; k < t->size; ++k) {
        term * e = T(t->elems[k]);
        out = e->kind == T_INT ? (*out = (unsigned char) e->i, out + 1) : iolist_copy(t->elems[k], out);
    }
    return out;
}
int enif_inspect_iolist_as_binary(ErlNifEnv * env, ERL_NIF_TERM x, ErlNifBinary * bin) {
    size_t n = 0;
    (void) env;
    if (!iolist_size(x, &n)) return 0;
    memset(bin, 0, sizeof *bin);
    bin->data = malloc(n ? n : 1);
    bin->size = n;
    iolist_copy(x, bin->data);
    return 1;
}

int enif_alloc_binary(size_t size, ErlNifBinary * bin) {
    memset(bin, 0, sizeof *bin);
    bin->data = malloc(size ? size : 1);
    bin->size = size;
    return bin->data != NULL;
}
int enif_realloc_binary(ErlNifBinary * bin, size_t size) {
    unsigned char * data = realloc(bin->data, size ? size : 1);
    if (!data) return 0;
    bin->data = data;
    bin->size = size;
    return 1;
}
void enif_release_binary(ErlNifBinary * bin) { free(bin->data); bin->data = NULL; }

ERL_NIF_TERM enif_make_binary(ErlNifEnv * env, ErlNifBinary * bin) {
    (void) env;
    term * t = new_term(T_BINARY);
    t->size = bin->size;
    t->data = bin->data;  /* ownership moves to the term, as in the VM */
    bin->data = NULL;
    return E(t);
}
unsigned char * enif_make_new_binary(ErlNifEnv * env, size_t size, ERL_NIF_TERM * termp) {
    (void) env;
    term * t = new_term(T_BINARY);
    t->size = size;
    t->data = malloc(size ? size : 1);
    *termp = E(t);
    return t->data;
}

ERL_NIF_TERM enif_make_tuple_from_array(ErlNifEnv * env, const ERL_NIF_TERM arr[], unsigned cnt) {
    (void) env;
    return make_seq(T_TUPLE, arr, cnt);
}
ERL_NIF_TERM enif_make_list_from_array(ErlNifEnv * env, const ERL_NIF_TERM arr[], unsigned cnt) {
    (void) env;
    return make_seq(T_LIST, arr, cnt);
}
static ERL_NIF_TERM make_seq_va(enum kind kind, unsigned cnt, va_list ap) {
    ERL_NIF_TERM * elems = calloc(cnt ? cnt : 1, sizeof *elems);
    for (unsigned k = 0; k < cnt; ++k) elems[k] = va_arg(ap, ERL_NIF_TERM);
    ERL_NIF_TERM t = make_seq(kind, elems, cnt);
    free(elems);
    return t;
}
ERL_NIF_TERM enif_make_tuple(ErlNifEnv * env, unsigned cnt, ...) {
    va_list ap;
    (void) env;
    va_start(ap, cnt);
    ERL_NIF_TERM t = make_seq_va(T_TUPLE, cnt, ap);
    va_end(ap);
    return t;
}
ERL_NIF_TERM enif_make_list(ErlNifEnv * env, unsigned cnt, ...) {
    va_list ap;
    (void) env;
    va_start(ap, cnt);
    ERL_NIF_TERM t = make_seq_va(T_LIST, cnt, ap);
    va_end(ap);
    return t;
}
ERL_NIF_TERM enif_make_string(ErlNifEnv * env, const char * s, ErlNifCharEncoding enc) {
    size_t n = strlen(s);
    ERL_NIF_TERM * elems = calloc(n ? n : 1, sizeof *elems);
    (void) enc;
    for (size_t k = 0; k < n; ++k) elems[k] = enif_make_int(env, (unsigned char) s[k]);
    ERL_NIF_TERM t = make_seq(T_LIST, elems, n);
    free(elems);
    return t;
}

/* ---- printing as io:format("~w") does --------------------------------------------------- */

static int plain_atom(const char * a) {
    if (!(*a >= 'a' && *a <= 'z')) return 0;
    for (const char * p = a; *p; ++p)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '@'))
            return 0;
    return 1;
}

static void print_term(ERL_NIF_TERM x) {
    term * t = T(x);
    switch (t->kind) {
    case T_INT: printf("%lld", t->i); break;
    case T_ATOM:
        if (plain_atom(t->atom)) {
            fputs(t->atom, stdout);
        } else {
            putchar('\'');
            for (const char * p = t->atom; *p; ++p) {
                if (*p == '\'' || *p == '\\') putchar('\\');
                putchar(*p);
            }
            putchar('\'');
        }
        break;
    case T_BINARY:
        fputs("<<", stdout);
        for (size_t k = 0; k < t->size; ++k) printf(k ? ",%u" : "%u", t->data[k]);
        fputs(">>", stdout);
        break;
    case T_TUPLE:
    case T_LIST:
        putchar(t->kind == T_TUPLE ? '{' : '[');
        for (size_t k = 0; k < t->size; ++k) {
            if (k) putchar(',');
            print_term(t->elems[k]);
        }
        putchar(t->kind == T_TUPLE ? '}' : ']');
        break;
    }
}

static ERL_NIF_TERM parse_arg(const char * arg) {
    if (!strncmp(arg, "i:", 2)) {
        char * end;
        long long v = strtoll(arg + 2, &end, 10);
        if (end != arg + 2 && !*end) return make_integer(v);
    } else if (!strncmp(arg, "a:", 2)) {
        return enif_make_atom(&the_env, arg + 2);
    } else if (!strncmp(arg, "b:", 2)) {
        ERL_NIF_TERM t;
        size_t n = strlen(arg + 2);
        memcpy(enif_make_new_binary(&the_env, n, &t), arg + 2, n);
        return t;
    }
    fprintf(stderr, "nif_host: argument %s is not b:TEXT, i:INTEGER or a:ATOM\n", arg);
    exit(2);
}

/* ---- loading ----------------------------------------------------------------------------- */

#if defined(_WIN32)
static void unsupported(void) {
    fputs("nif_host: the NIF called an enif_ function nif_host does not provide\n", stderr);
    exit(3);
}

static ErlNifEntry * load_library(const char * path) {
    HMODULE lib = LoadLibraryA(path);
    if (!lib) {
        fprintf(stderr, "nif_host: cannot load %s: error %lu\n", path, (unsigned long) GetLastError());
        return NULL;
    }
    ErlNifEntry * (*init)(TWinDynNifCallbacks *) = (ErlNifEntry * (*)(TWinDynNifCallbacks *)) (void (*)(void)) GetProcAddress(lib, "nif_init");
    if (!init) {
        fprintf(stderr, "nif_host: %s has no nif_init\n", path);
        return NULL;
    }
    static TWinDynNifCallbacks table;
    void (**slot)(void) = (void (**)(void)) &table;
    for (size_t k = 0; k < sizeof table / sizeof *slot; ++k) slot[k] = unsupported;
#define PROVIDE(name) table.name = name
    PROVIDE(enif_priv_data); PROVIDE(enif_alloc); PROVIDE(enif_free); PROVIDE(enif_realloc);
    PROVIDE(enif_make_atom); PROVIDE(enif_make_badarg); PROVIDE(enif_raise_exception);
    PROVIDE(enif_make_int); PROVIDE(enif_make_uint); PROVIDE(enif_make_long);
    PROVIDE(enif_get_int); PROVIDE(enif_get_uint); PROVIDE(enif_get_long);
    PROVIDE(enif_get_int64); PROVIDE(enif_make_int64);
    PROVIDE(enif_is_binary); PROVIDE(enif_is_atom); PROVIDE(enif_is_list); PROVIDE(enif_get_atom);
    PROVIDE(enif_inspect_binary); PROVIDE(enif_inspect_iolist_as_binary);
    PROVIDE(enif_alloc_binary); PROVIDE(enif_realloc_binary); PROVIDE(enif_release_binary);
    PROVIDE(enif_make_binary); PROVIDE(enif_make_new_binary);
    PROVIDE(enif_make_tuple); PROVIDE(enif_make_list); PROVIDE(enif_make_tuple_from_array);
    PROVIDE(enif_make_list_from_array); PROVIDE(enif_make_string);
#undef PROVIDE
    return init(&table);
}
#else
static ErlNifEntry * load_library(const char * path) {
    void * lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "nif_host: cannot load: %s\n", dlerror());
        return NULL;
    }
    ErlNifEntry * (*init)(void) = (ErlNifEntry * (*)(void)) dlsym(lib, "nif_init");
    if (!init) {
        fprintf(stderr, "nif_host: %s has no nif_init\n", path);
        return NULL;
    }
    return init();
}
#endif

int main(int argc, char ** argv) {
    if (argc < 2) {
        fputs("usage: nif_host LIBRARY [FUNCTION [b:TEXT|i:INTEGER|a:ATOM]...]\n", stderr);
        return 2;
    }
    ErlNifEntry * entry = load_library(argv[1]);
    if (!entry) return 2;
    if (argc == 2) {
        printf("module %s (NIF %d.%d)\n", entry->name, entry->major, entry->minor);
        for (int k = 0; k < entry->num_of_funcs; ++k) printf("%s/%u\n", entry->funcs[k].name, entry->funcs[k].arity);
        return 0;
    }
    const ErlNifFunc * func = NULL;
    for (int k = 0; k < entry->num_of_funcs; ++k)
        if (!strcmp(entry->funcs[k].name, argv[2]) && entry->funcs[k].arity == (unsigned) (argc - 3)) func = &entry->funcs[k];
    if (!func) {
        fprintf(stderr, "nif_host: %s has no %s/%d\n", entry->name, argv[2], argc - 3);
        return 2;
    }
    if (entry->load && entry->load(&the_env, &the_env.priv, enif_make_atom(&the_env, "undefined")) != 0) {
        fprintf(stderr, "nif_host: the load callback of %s failed\n", entry->name);
        return 2;
    }
    ERL_NIF_TERM args[16];
    if (argc - 3 > 16) return 2;
    for (int k = 3; k < argc; ++k) args[k - 3] = parse_arg(argv[k]);
    ERL_NIF_TERM result = func->fptr(&the_env, argc - 3, args);
    if (the_env.raised) {
        fputs("{raised,error,", stdout);
        print_term(the_env.reason);
        putchar('}');
    } else {
        print_term(result);
    }
    putchar('\n');
    fflush(stdout);
    /* the unload callback and dlclose are left out: the VM does not unload a NIF library while
     * the module is loaded, and this process ends here */
    return 0;
}
