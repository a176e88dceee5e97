// The test NIF's C ABI over the static llama.cpp archives. No C++ exception crosses this boundary,
// every failure becomes a return value plus lnif_last_error().
#define LNIF_BUILD 1
#include "llama_nif.h"

#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "llama.h"
#if __has_include("llama-cpp-cpu-variant.h")
#include "llama-cpp-cpu-variant.h"
#endif

#if defined(LNIF_WITH_COMMON)
#include "chat.h"
#include "chat-auto-parser.h"
#include "json-schema-to-grammar.h"
#include "json.h"
#endif

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <mutex>
#include <string>
#include <vector>

struct lnif_model {
    llama_model * model = nullptr;
    llama_context * ctx = nullptr;
    const llama_vocab * vocab = nullptr;
    // thread pools lnif_bench attached, freed after the context: ggml's CPU backend keeps a pointer
    // to the last pool it ran on (and pauses it when given another), detached or not
    std::vector<ggml_threadpool *> pools;
    int pool_threads = 0;
};

namespace {

thread_local std::string t_error;      // what lnif_last_error() returns
thread_local std::string t_log_error;  // first error line llama.cpp logged during the current call

void log_callback(ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR && text) {
        std::string line(text);
        while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
        // the first error of a failed call is the specific one ("error loading model: ...")
        if (!line.empty() && t_log_error.empty()) t_log_error = line;
    }
    static const bool verbose = std::getenv("LNIF_VERBOSE") != nullptr;
    if (verbose && text) std::fputs(text, stderr);
}

void init_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        llama_log_set(log_callback, nullptr);
        llama_backend_init();
    });
}

int fail(const std::string & what) {
    t_error = what;
    if (!t_log_error.empty()) t_error += ": " + t_log_error;
    return -1;
}

template <typename F> auto guarded(F && f, decltype(f()) on_exception) -> decltype(f()) {
    try {
        return f();
    } catch (const std::exception & e) {
        t_error = std::string("exception: ") + e.what();
    } catch (...) {
        t_error = "unknown exception";
    }
    return on_exception;
}

const char * device_type_name(enum ggml_backend_dev_type type) {
    switch (type) {
        case GGML_BACKEND_DEVICE_TYPE_CPU: return "cpu";
        case GGML_BACKEND_DEVICE_TYPE_GPU: return "gpu";
        case GGML_BACKEND_DEVICE_TYPE_IGPU: return "igpu";
        case GGML_BACKEND_DEVICE_TYPE_ACCEL: return "accel";
        default: return "other";
    }
}

}  // namespace

extern "C" {

const char * lnif_system_info(void) {
    init_once();
    return llama_print_system_info();
}

const char * lnif_cpu_variant(void) {
    init_once();
#if __has_include("llama-cpp-cpu-variant.h")
    const char * variant = llama_cpp_cpu_variant();
    return variant ? variant : "none";
#else
    return nullptr;
#endif
}

int lnif_device_count(void) {
    init_once();
    return (int) ggml_backend_dev_count();
}

const char * lnif_device_describe(int i) {
    init_once();
    static thread_local std::string out;
    if (i < 0 || (size_t) i >= ggml_backend_dev_count()) {
        fail("device index out of range");
        return nullptr;
    }
    ggml_backend_dev_t dev = ggml_backend_dev_get((size_t) i);
    out = std::string(ggml_backend_dev_name(dev)) + "|" + device_type_name(ggml_backend_dev_type(dev)) +
          "|" + ggml_backend_dev_description(dev);
    return out.c_str();
}

lnif_model * lnif_open(const char * path, int vocab_only, int n_ctx) {
    init_once();
    t_error.clear();
    t_log_error.clear();
    return guarded([&]() -> lnif_model * {
        if (!path || !*path) {
            fail("no model path given");
            return nullptr;
        }
        llama_model_params mp = llama_model_default_params();
        mp.vocab_only = vocab_only != 0;
        // the proof runs on the CPU (GPU builds still list their devices); LNIF_N_GPU_LAYERS=N offloads
        // N layers, -1 all of them, for the GPU check (bench/cuda_gpu_check.md)
        const char * gpu_layers = std::getenv("LNIF_N_GPU_LAYERS");
        mp.n_gpu_layers = gpu_layers ? std::atoi(gpu_layers) : 0;
        llama_model * model = llama_model_load_from_file(path, mp);
        if (!model) {
            fail(std::string("failed to load model '") + path + "'");
            return nullptr;
        }
        auto * m = new lnif_model;
        m->model = model;
        m->vocab = llama_model_get_vocab(model);
        if (!vocab_only) {
            llama_context_params cp = llama_context_default_params();
            cp.n_ctx = n_ctx > 0 ? (uint32_t) n_ctx : 256;
            cp.n_batch = cp.n_ctx;
            cp.n_ubatch = cp.n_ctx < 512 ? cp.n_ctx : 512;  // llama-bench's default micro-batch
            cp.no_perf = true;
            m->ctx = llama_init_from_model(model, cp);
            if (!m->ctx) {
                fail("failed to create a context");
                lnif_close(m);
                return nullptr;
            }
        }
        return m;
    }, nullptr);
}

void lnif_close(lnif_model * m) {
    if (!m) return;
    if (m->ctx) llama_free(m->ctx);
    for (ggml_threadpool * pool : m->pools) ggml_threadpool_free(pool);
    if (m->model) llama_model_free(m->model);
    delete m;
}

int lnif_vocab_size(const lnif_model * m) {
    return m ? llama_vocab_n_tokens(m->vocab) : -1;
}

int lnif_tokenize(lnif_model * m, const char * text, int len, int add_special, int32_t * out, int cap) {
    t_error.clear();
    t_log_error.clear();
    if (!m || !text || len < 0 || cap < 0) return fail("invalid argument");
    return guarded([&]() -> int {
        std::vector<llama_token> toks(len + 16);
        int n = llama_tokenize(m->vocab, text, len, toks.data(), (int32_t) toks.size(), add_special != 0, false);
        if (n < 0) {
            toks.resize(-n);
            n = llama_tokenize(m->vocab, text, len, toks.data(), (int32_t) toks.size(), add_special != 0, false);
        }
        if (n < 0) return fail("tokenization failed");
        if (n > cap) return fail("output buffer too small");
        std::memcpy(out, toks.data(), sizeof(int32_t) * n);
        return n;
    }, -1);
}

int lnif_generate(lnif_model * m, const char * prompt, int n_predict, int n_threads, int32_t * out, int cap,
                  int * nonfinite) {
    t_error.clear();
    t_log_error.clear();
    if (!m || !prompt || !out || n_predict < 0) return fail("invalid argument");
    if (!m->ctx) return fail("model was opened vocab-only; it cannot generate");
    if (n_predict > cap) return fail("output buffer smaller than n_predict");
    return guarded([&]() -> int {
        const int n_ctx = (int) llama_n_ctx(m->ctx);
        const int len = (int) std::strlen(prompt);
        std::vector<llama_token> toks(len + 16);
        int n_prompt = llama_tokenize(m->vocab, prompt, len, toks.data(), (int32_t) toks.size(), true, false);
        if (n_prompt <= 0) return fail("the prompt produced no tokens");
        if (n_prompt + n_predict > n_ctx) {
            return fail("prompt (" + std::to_string(n_prompt) + " tokens) + n_predict (" + std::to_string(n_predict) +
                        ") exceeds the context size " + std::to_string(n_ctx));
        }
        toks.resize(n_prompt);
        if (n_threads > 0) llama_set_n_threads(m->ctx, n_threads, n_threads);
        llama_memory_clear(llama_get_memory(m->ctx), true);

        const int n_vocab = llama_vocab_n_tokens(m->vocab);
        int bad = 0;
        llama_batch batch = llama_batch_get_one(toks.data(), n_prompt);
        llama_token next = 0;
        for (int i = 0; i < n_predict; ++i) {
            if (llama_decode(m->ctx, batch) != 0) return fail("llama_decode failed");
            const float * logits = llama_get_logits_ith(m->ctx, -1);
            if (!logits) return fail("no logits");
            int best = 0;
            for (int t = 0; t < n_vocab; ++t) {
                if (!std::isfinite(logits[t])) {
                    ++bad;
                    continue;
                }
                if (logits[t] > logits[best] || !std::isfinite(logits[best])) best = t;
            }
            next = best;
            out[i] = next;
            batch = llama_batch_get_one(&next, 1);
        }
        if (nonfinite) *nonfinite = bad;
        return n_predict;
    }, -1);
}

int lnif_logits(lnif_model * m, const int32_t * tokens, int n, int n_threads, float * out, int cap) {
    t_error.clear();
    t_log_error.clear();
    if (!m || !tokens || !out || n < 1) return fail("invalid argument");
    if (!m->ctx) return fail("model was opened vocab-only; it has no logits");
    const int n_vocab = llama_vocab_n_tokens(m->vocab);
    if (n > (int) llama_n_batch(m->ctx)) return fail("more tokens than the batch size");
    if ((long long) n * n_vocab > cap) return fail("output buffer smaller than n * vocab");
    for (int i = 0; i < n; ++i) {
        if (tokens[i] < 0 || tokens[i] >= n_vocab) return fail("token id out of range");
    }
    return guarded([&]() -> int {
        if (n_threads > 0) llama_set_n_threads(m->ctx, n_threads, n_threads);
        llama_memory_clear(llama_get_memory(m->ctx), true);
        llama_batch batch = llama_batch_init(n, 0, 1);
        for (int i = 0; i < n; ++i) {
            batch.token[i] = tokens[i];
            batch.pos[i] = i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = 1;
        }
        batch.n_tokens = n;
        const int rc = llama_decode(m->ctx, batch);
        llama_batch_free(batch);
        if (rc != 0) return fail("llama_decode failed");
        for (int i = 0; i < n; ++i) {
            const float * logits = llama_get_logits_ith(m->ctx, i);
            if (!logits) return fail("no logits");
            std::memcpy(out + (size_t) i * n_vocab, logits, sizeof(float) * n_vocab);
        }
        return n * n_vocab;
    }, -1);
}

int lnif_bench(lnif_model * m, int n_prompt, int n_gen, int n_threads, double * pp_tps, double * tg_tps) {
    t_error.clear();
    t_log_error.clear();
    if (!m || !m->ctx || n_prompt < 1 || n_gen < 1 || !pp_tps || !tg_tps) return fail("invalid argument");
    if (n_prompt > (int) llama_n_batch(m->ctx) || n_gen > (int) llama_n_ctx(m->ctx)) {
        return fail("n_prompt/n_gen larger than the context");
    }
    return guarded([&]() -> int {
        using clock = std::chrono::steady_clock;
        const int n_vocab = llama_vocab_n_tokens(m->vocab);
        std::vector<llama_token> prompt(n_prompt);
        for (int i = 0; i < n_prompt; ++i) prompt[i] = (llama_token) ((i * 7919 + 13) % n_vocab);
        if (n_threads > 0) llama_set_n_threads(m->ctx, n_threads, n_threads);
        // a thread pool that stays, as llama-bench attaches one: without it ggml-cpu starts and
        // joins its threads on every llama_decode, which a 1-token step mostly measures
        if (m->pool_threads != llama_n_threads(m->ctx)) {
            ggml_threadpool_params tpp = ggml_threadpool_params_default(llama_n_threads(m->ctx));
            ggml_threadpool * pool = ggml_threadpool_new(&tpp);
            if (!pool) return fail("ggml_threadpool_new failed");
            m->pools.push_back(pool);
            m->pool_threads = tpp.n_threads;
            llama_attach_threadpool(m->ctx, pool, nullptr);
        }

        llama_memory_clear(llama_get_memory(m->ctx), true);
        auto t0 = clock::now();
        if (llama_decode(m->ctx, llama_batch_get_one(prompt.data(), n_prompt)) != 0) return fail("llama_decode failed");
        llama_synchronize(m->ctx);
        auto t1 = clock::now();

        llama_memory_clear(llama_get_memory(m->ctx), true);
        llama_token tok = prompt[0];
        auto t2 = clock::now();
        for (int i = 0; i < n_gen; ++i) {
            if (llama_decode(m->ctx, llama_batch_get_one(&tok, 1)) != 0) return fail("llama_decode failed");
            llama_synchronize(m->ctx);
            tok = (llama_token) ((tok * 31 + 7) % n_vocab);
        }
        auto t3 = clock::now();
        *pp_tps = n_prompt / std::chrono::duration<double>(t1 - t0).count();
        *tg_tps = n_gen / std::chrono::duration<double>(t3 - t2).count();
        return 0;
    }, -1);
}

#if defined(LNIF_WITH_COMMON)
int lnif_chat_format(lnif_model * m, const char * user_message, char * out, int cap) {
    t_error.clear();
    t_log_error.clear();
    if (!m || !user_message || !out || cap <= 0) return fail("invalid argument");
    return guarded([&]() -> int {
        common_chat_templates_ptr tmpls = common_chat_templates_init(m->model, "");
        common_chat_templates_inputs inputs;
        common_chat_msg msg;
        msg.role = "user";
        msg.content = user_message;
        inputs.messages.push_back(msg);
        const std::string prompt = common_chat_templates_apply(tmpls.get(), inputs).prompt;
        if ((int) prompt.size() >= cap) return fail("output buffer too small");
        std::memcpy(out, prompt.c_str(), prompt.size() + 1);
        return (int) prompt.size();
    }, -1);
}

int lnif_generate_json(lnif_model * m, const char * prompt, const char * json_schema, int n_predict, char * out,
                       int cap) {
    t_error.clear();
    t_log_error.clear();
    if (!m || !prompt || !json_schema || !out || cap <= 0 || n_predict < 1) return fail("invalid argument");
    if (!m->ctx) return fail("model was opened vocab-only; it cannot generate");
    return guarded([&]() -> int {
        const std::string grammar = json_schema_to_grammar(common_json::parse(json_schema));
        llama_sampler * chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
        llama_sampler * constrained = llama_sampler_init_grammar(m->vocab, grammar.c_str(), "root");
        if (!constrained) {
            llama_sampler_free(chain);
            return fail("the grammar from the JSON schema was rejected");
        }
        llama_sampler_chain_add(chain, constrained);
        llama_sampler_chain_add(chain, llama_sampler_init_greedy());

        std::vector<llama_token> toks(std::strlen(prompt) + 16);
        int n = llama_tokenize(m->vocab, prompt, (int32_t) std::strlen(prompt), toks.data(), (int32_t) toks.size(),
                               true, false);
        if (n <= 0 || n + n_predict > (int) llama_n_ctx(m->ctx)) {
            llama_sampler_free(chain);
            return fail("prompt + n_predict do not fit the context");
        }
        toks.resize(n);
        llama_memory_clear(llama_get_memory(m->ctx), true);
        std::string text;
        llama_batch batch = llama_batch_get_one(toks.data(), n);
        llama_token next = 0;
        for (int i = 0; i < n_predict; ++i) {
            if (llama_decode(m->ctx, batch) != 0) {
                llama_sampler_free(chain);
                return fail("llama_decode failed");
            }
            next = llama_sampler_sample(chain, m->ctx, -1);
            if (llama_vocab_is_eog(m->vocab, next)) break;
            char piece[64];
            const int len = llama_token_to_piece(m->vocab, next, piece, sizeof piece, 0, false);
            if (len > 0) text.append(piece, len);
            batch = llama_batch_get_one(&next, 1);
        }
        llama_sampler_free(chain);
        if ((int) text.size() >= cap) return fail("output buffer too small");
        std::memcpy(out, text.c_str(), text.size() + 1);
        return (int) text.size();
    }, -1);
}
#else
int lnif_chat_format(lnif_model *, const char *, char *, int) {
    return fail("built without llama-common");
}

int lnif_generate_json(lnif_model *, const char *, const char *, int, char *, int) {
    return fail("built without llama-common");
}
#endif

const llama_model * hostile_model(const lnif_model * m) {
    return m->model;
}

llama_context * hostile_context(const lnif_model * m) {
    return m->ctx;
}

int hostile_common(lnif_model * m, const char * kind, const char * value, char * out, int cap) {
#if defined(LNIF_WITH_COMMON)
    const std::string k = kind;
    if (k != "schema" && k != "template" && k != "template_long" && k != "template_then_direct") return -1;
    // the template `value` through common_chat_templates_init/apply: one user message, or
    // (long) a system message and 64 turns
    auto apply = [&](bool long_chat) {
        common_chat_templates_ptr tmpls = common_chat_templates_init(m->model, value);
        common_chat_templates_inputs inputs;
        const int turns = long_chat ? 65 : 1;
        for (int i = 0; i < turns; ++i) {
            common_chat_msg msg;
            msg.role = !long_chat ? "user" : i == 0 ? "system" : i % 2 ? "user" : "assistant";
            msg.content = "message " + std::to_string(i) + ": hello, how are you?";
            inputs.messages.push_back(msg);
        }
        return common_chat_templates_apply(tmpls.get(), inputs).prompt;
    };
    std::string result;
    try {
        if (k == "template_then_direct") {
            // `value` first (it may fail), then a plain template rendered directly on the same
            // thread: nothing of the first call's step budget may carry over to it
            try {
                apply(false);
            } catch (const std::exception &) {
            }
            common_chat_template tmpl("{% for m in messages %}[{{ m.content }}]{% endfor %}", "", "");
            autoparser::generation_params params;
            params.messages = common_json::parse("[{\"role\": \"user\", \"content\": \"after\"}]");
            result = common_chat_template_direct_apply(tmpl, params);
            if (result.find("[after]") == std::string::npos) throw std::runtime_error("unexpected render: " + result);
        } else if (k == "schema") {
            result = json_schema_to_grammar(common_json::parse(value));
        } else {
            result = apply(k == "template_long");
        }
    } catch (const std::exception & e) {
        std::snprintf(out, (size_t) cap, "exception: %s", e.what());
        return 1;
    }
    std::snprintf(out, (size_t) cap, "%zu bytes", result.size());
    return 0;
#else
    (void) m, (void) value;
    std::snprintf(out, (size_t) cap, "built without llama-common: %s", kind);
    return -1;
#endif
}

const char * lnif_last_error(void) {
    return t_error.c_str();
}

}  // extern "C"
