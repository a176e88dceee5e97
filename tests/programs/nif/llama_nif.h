/* The small C ABI of the test NIF. Everything a native-extension author needs to prove that the
 * static llama.cpp archives work inside one shared object: open a model, tokenize, generate
 * greedily, report errors, describe the system. Only these symbols are exported. */
#ifndef LLAMA_NIF_H
#define LLAMA_NIF_H

#include <stdint.h>

#if defined(LNIF_STATIC)  /* compiled into another module (the Erlang NIF): export nothing */
#  define LNIF_API
#elif defined(_WIN32)
#  if defined(LNIF_BUILD)
#    define LNIF_API __declspec(dllexport)
#  else
#    define LNIF_API __declspec(dllimport)
#  endif
#else
#  define LNIF_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lnif_model lnif_model;

/* llama_print_system_info(): the CPU features ggml was built with and found */
LNIF_API const char * lnif_system_info(void);
/* the ggml-cpu variant this process runs, from the package's llama_cpp_cpu_variant(), for
 * cpu_baseline=dispatch packages: its name, or "none" when no variant can run on this CPU (or the
 * one forced cannot); NULL for a single-baseline package (nothing to choose) */
LNIF_API const char * lnif_cpu_variant(void);
/* number of ggml backend devices, and "name|type|description" of device i (type: cpu, gpu, igpu, accel) */
LNIF_API int          lnif_device_count(void);
LNIF_API const char * lnif_device_describe(int i);
/* NULL on failure, lnif_last_error() says why */
LNIF_API lnif_model * lnif_open(const char * path, int vocab_only, int n_ctx);
LNIF_API void         lnif_close(lnif_model * m);
LNIF_API int          lnif_vocab_size(const lnif_model * m);
/* number of tokens written (<= cap), or -1 on error */
LNIF_API int          lnif_tokenize(lnif_model * m, const char * text, int len, int add_special,
                                    int32_t * out, int cap);
/* greedy decoding of n_predict tokens after prompt; returns tokens written, -1 on error;
 * *nonfinite counts logits that were NaN/Inf (a correct model gives 0) */
LNIF_API int          lnif_generate(lnif_model * m, const char * prompt, int n_predict, int n_threads,
                                    int32_t * out, int cap, int * nonfinite);
/* the logits of every position after decoding `tokens` (n of them, one batch, from an empty
 * context): writes n * vocab floats to out (position-major), returns that count, -1 on error.
 * For comparisons against an independent forward pass (tests/oracle.py) */
LNIF_API int          lnif_logits(lnif_model * m, const int32_t * tokens, int n, int n_threads, float * out,
                                  int cap);
/* speed probe in the shape of llama-bench's pp/tg tests: decodes n_prompt tokens in one batch, then
 * n_gen tokens one at a time from an empty context; writes tokens/s of each; 0 or -1 on error */
LNIF_API int          lnif_bench(lnif_model * m, int n_prompt, int n_gen, int n_threads, double * pp_tps,
                                 double * tg_tps);
/* llama-common (chat templates, JSON-schema grammars); -1 with lnif_last_error() "built without
 * llama-common" when the package has with_common=False.
 * The model's chat template (upstream's built-in ChatML when the GGUF has none) applied to one user
 * message with the generation prompt; writes a NUL-terminated string, returns its length */
LNIF_API int          lnif_chat_format(lnif_model * m, const char * user_message, char * out, int cap);
/* greedy decoding constrained by the grammar common converts the JSON schema into; stops at the
 * end of the grammar (end-of-generation token) or after n_predict tokens; writes the text */
LNIF_API int          lnif_generate_json(lnif_model * m, const char * prompt, const char * json_schema,
                                         int n_predict, char * out, int cap);
/* one hostile value given to one llama.h call (tests/programs/nif/hostile.c) or to llama-common's
 * C++ API (kinds "schema": a JSON schema to a grammar, "template": a chat template applied to one
 * message; "template_long": a system message and 64 turns). Returns 1 when the call reported an error (its error value, or an exception of
 * llama-common), 0 when it succeeded, -1 for an unknown kind; out says what came back. Kinds with
 * a token id / output index / sequence id in `value`: piece, detokenize, text, score, attr, sample,
 * seq, accept (a token a grammar sampler is told to accept: "error" when it was refused and the
 * grammar kept its state); with a text: grammar (GBNF), trigger (a lazy grammar's trigger regex) */
LNIF_API int          lnif_hostile(lnif_model * m, const char * kind, const char * value, char * out, int cap);
/* last error of this thread, "" when none */
LNIF_API const char * lnif_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
