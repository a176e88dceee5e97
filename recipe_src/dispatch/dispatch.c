/* The dispatcher of cpu_baseline=dispatch, compiled by the llama-cpp Conan recipe next to the ggml-cpu
 * variants: every ggml-cpu.h function forwards to the variant chosen at first use. What it dispatches
 * (features, variants, functions) comes from cpu-dispatch-table.h, which the recipe generates from
 * ggml-cpu.h and its CPU_VARIANTS table (llama_cpp_recipe/dispatch.py, dispatch_table()). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ggml-cpu.h"
#include "cpu-dispatch-table.h"

void ggml_log_internal(enum ggml_log_level level, const char * format, ...);

/* F_<feature>: one bit per CPU_FEATURES entry, and its name */
#define FEATURE_BIT(name, bit) F_##name = 1u << bit,
#define FEATURE_NAME(name, bit) #name,
enum { CPU_FEATURES(FEATURE_BIT) };
static const char * const feature_names[] = { CPU_FEATURES(FEATURE_NAME) };

/* static unsigned cpu_features(void): the F_ bits the running CPU and OS support */
#include CPU_FEATURES_PROBE

/* the forwarded functions, and each variant's renamed definitions of them */
#define API_MEMBER(prefix, kind, ret, name, params, args) __typeof__(name) * name;
#define VARIANT_EXTERN(prefix, kind, ret, name, params, args) extern __typeof__(name) prefix##name;
#define VARIANT_EXTERNS(variant, prefix, needs) CPU_FUNCTIONS(VARIANT_EXTERN, prefix)
#define API_ENTRY(prefix, kind, ret, name, params, args) prefix##name,
#define VARIANT_ROW(variant, prefix, needs) {variant, needs, {CPU_FUNCTIONS(API_ENTRY, prefix)}},

struct api {
    CPU_FUNCTIONS(API_MEMBER, )
};
CPU_VARIANTS(VARIANT_EXTERNS)
static const struct variant {
    const char * name;
    unsigned needs;
    struct api api;
} variants[] = {
    CPU_VARIANTS(VARIANT_ROW)
};
#define N_VARIANTS (sizeof(variants) / sizeof(variants[0]))

static void names(char * out, size_t size, unsigned bits, int of_variants) {
    size_t used = 0;
    out[0] = 0;
    for (size_t i = 0; i < (of_variants ? N_VARIANTS : sizeof(feature_names) / sizeof(feature_names[0])); i++) {
        int take = of_variants ? (variants[i].needs & bits) == variants[i].needs : (bits >> i) & 1;
        if (take && used < size) {
            used += snprintf(out + used, size - used, "%s%s", used ? " " : "", of_variants ? variants[i].name : feature_names[i]);
        }
    }
}

static const struct variant * choose(void) {
    const unsigned have = cpu_features();
    const char * forced = getenv(CPU_VARIANT_ENV);
    char runnable[256], all[256], missing[256];
    names(runnable, sizeof runnable, have, 1);
    names(all, sizeof all, ~0u, 1);
    if (forced && *forced) {
        for (size_t i = 0; i < N_VARIANTS; i++) {
            if (strcmp(variants[i].name, forced) != 0) continue;
            if ((variants[i].needs & have) == variants[i].needs) {
                ggml_log_internal(GGML_LOG_LEVEL_INFO, "ggml-cpu: variant %s, forced by " CPU_VARIANT_ENV " (this CPU can run: %s)\n",
                                  forced, runnable);
                return &variants[i];
            }
            names(missing, sizeof missing, variants[i].needs & ~have, 0);
            ggml_log_internal(GGML_LOG_LEVEL_ERROR, "ggml-cpu: " CPU_VARIANT_ENV "=%s cannot run here: this CPU or OS lacks %s; "
                              "it can run: %s. No CPU backend is registered\n", forced, missing, runnable);
            return NULL;
        }
        ggml_log_internal(GGML_LOG_LEVEL_ERROR, "ggml-cpu: " CPU_VARIANT_ENV "=%s is not a variant of this build; choose one of: "
                          "%s. No CPU backend is registered\n", forced, all);
        return NULL;
    }
    for (size_t i = N_VARIANTS; i-- > 0;) {
        if ((variants[i].needs & have) == variants[i].needs) {
            ggml_log_internal(GGML_LOG_LEVEL_INFO, "ggml-cpu: variant %s chosen for this CPU (variants: %s; " CPU_VARIANT_ENV " forces one)\n",
                              variants[i].name, all);
            return &variants[i];
        }
    }
    ggml_log_internal(GGML_LOG_LEVEL_ERROR, "ggml-cpu: this CPU runs none of the variants %s\n", all);
    return NULL;
}

static const struct variant * chosen;
static int claimed, decided;

/* the variant for this process, chosen once; NULL if a forced one cannot run */
static const struct variant * selected(void) {
    if (__atomic_load_n(&decided, __ATOMIC_ACQUIRE)) return chosen;
    if (__atomic_exchange_n(&claimed, 1, __ATOMIC_ACQ_REL) == 0) {
        chosen = choose();
        __atomic_store_n(&decided, 1, __ATOMIC_RELEASE);
    }
    while (!__atomic_load_n(&decided, __ATOMIC_ACQUIRE)) {
    }
    return chosen;
}

/* what a forwarder calls when no variant was chosen: the floor, which every CPU runs */
static const struct variant * any(void) {
    const struct variant * v = selected();
    return v ? v : &variants[0];
}

const char * llama_cpp_cpu_variant(void) {
    const struct variant * v = selected();
    return v ? v->name : NULL;
}

/* the forwarders, by CPU_FUNCTIONS' kind: VALUE and VOID use the floor when no variant was chosen,
 * REFUSABLE answers NULL then (no CPU backend) */
#define FORWARD_VALUE(ret, name, params, args) ret name params { return any()->api.name args; }
#define FORWARD_VOID(ret, name, params, args) ret name params { any()->api.name args; }
#define FORWARD_REFUSABLE(ret, name, params, args) \
    ret name params { const struct variant * v = selected(); return v ? v->api.name args : NULL; }
#define FORWARD(prefix, kind, ret, name, params, args) FORWARD_##kind(ret, name, params, args)
CPU_FUNCTIONS(FORWARD, )
