// rpc_nif: a NIF-shaped shared object that proves ggml-rpc (llama.cpp's distributed backend) works
// from the static archives, and lets a test measure how it fails. Three C functions are exported,
// everything else is hidden, and no C++ exception crosses the boundary.
//
//   int rnif_serve(const char * endpoint, int n_threads);
//       Serves this process's CPU device over RPC at endpoint ("127.0.0.1:PORT"). Blocks for as long
//       as the server runs; upstream's accept loop never returns on success, so any return is a
//       failure (nonzero).
//   int rnif_generate(const char * model_path, const char * endpoint, int n_predict,
//                     int32_t * out, int cap, char * err, int err_cap);
//       Loads the model with every layer on the RPC device at endpoint (n_gpu_layers = 999,
//       devices = {rpc device, NULL}), or on the local CPU when endpoint is NULL or "", and greedily
//       generates n_predict tokens after the prompt "hello world". Returns the number of tokens
//       written to out, or a negative number with a message in err.
//   int rnif_write_model(const char * path, unsigned seed);
//       Writes the tiny test model (test_package/src/tiny_model.h). 0 on success.
//
// What can NOT be turned into an error (docs/rpc.md): ggml-rpc aborts the process (SIGABRT) when
// a server it already talks to goes away (mid-load or mid-command). An endpoint that cannot be
// reached at ggml_backend_rpc_add_server() is an error with patch 0005.
//
// Environment knobs (all optional):
//   RNIF_VERBOSE                 forward every llama/ggml log line to stderr
//   RNIF_NO_ABORT_HOOK           keep ggml's default abort path (prints a backtrace, which forks gdb
//                                when gdb is installed) instead of rnif's one-line abort report
//   RNIF_TOKEN_DELAY_MS          sleep this long after each generated token (slow generation)
//   RNIF_PROGRESS                print "rnif-progress <phase|i>" lines to stderr as work proceeds
//   RNIF_THREADS                 client CPU threads (default 2)
// n_predict may exceed the context (256): generation then clears the KV cache and starts again from
// the prompt, so a large n_predict gives an arbitrarily long (and deterministic) run.
//
// Built by tests/programs/CMakeLists.txt (CMakeDeps, target `ggml::ggml-rpc`).
#include "../../test_package/src/tiny_model.h"

#include "ggml-backend.h"
#include "ggml-rpc.h"
#include "ggml.h"
#include "llama.h"

#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(_WIN32)
#    define RNIF_API __declspec(dllexport)
#else
#    define RNIF_API __attribute__((visibility("default")))
#endif

namespace {

std::mutex g_log_mutex;
std::string g_first_error;  // first error-level log line since the current call began (any thread:
                            // ggml-rpc logs from its dispatcher thread too)

void log_callback(ggml_log_level level, const char * text, void *) {
    if (!text) return;
    if (level == GGML_LOG_LEVEL_ERROR) {
        std::string line(text);
        while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
        std::lock_guard<std::mutex> lock(g_log_mutex);
        if (!line.empty() && g_first_error.empty()) g_first_error = line;
    }
    static const bool verbose = std::getenv("RNIF_VERBOSE") != nullptr;
    if (verbose) std::fputs(text, stderr);
}

// ggml_abort() calls this, then abort(): the process dies either way. Replacing ggml's default
// report only skips its backtrace, which on Linux forks and execs gdb (seconds, and a debugger
// attached to the host VM) when gdb is installed.
void abort_hook(const char * message) {
    std::string first;
    {
        std::lock_guard<std::mutex> lock(g_log_mutex);
        first = g_first_error;
    }
    std::fprintf(stderr, "rnif: ggml abort: %s%s%s\n", message ? message : "?",
                 first.empty() ? "" : " | first error logged: ", first.c_str());
    std::fflush(stderr);
}

void init_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        llama_log_set(log_callback, nullptr);
        if (!std::getenv("RNIF_NO_ABORT_HOOK")) ggml_set_abort_callback(abort_hook);
        llama_backend_init();
    });
}

void reset_errors() {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    g_first_error.clear();
}

int env_int(const char * name, int fallback) {
    const char * v = std::getenv(name);
    if (!v || !*v) return fallback;
    char * end = nullptr;
    long x = std::strtol(v, &end, 10);
    return (end && *end == '\0' && x >= 0 && x <= 1000000000L) ? (int) x : fallback;
}

void progress(const char * fmt, ...) {
    static const bool on = std::getenv("RNIF_PROGRESS") != nullptr;
    if (!on) return;
    va_list ap;
    va_start(ap, fmt);
    std::fputs("rnif-progress ", stderr);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    std::fflush(stderr);
    va_end(ap);
}

// "host:port" with a numeric port in 1..65535 (upstream's parse_endpoint() accepts "h:12x")
bool split_endpoint(const std::string & ep, std::string & host, int & port) {
    size_t pos = ep.rfind(':');
    if (pos == std::string::npos || pos == 0 || pos + 1 >= ep.size()) return false;
    host = ep.substr(0, pos);
    long p = 0;
    for (size_t i = pos + 1; i < ep.size(); ++i) {
        if (ep[i] < '0' || ep[i] > '9') return false;
        p = p * 10 + (ep[i] - '0');
        if (p > 65535) return false;
    }
    port = (int) p;
    return port > 0;
}

struct generate_error {
    std::string what;
};

[[noreturn]] void raise(const std::string & what) {
    throw generate_error{what};
}

void write_err(char * err, int err_cap, const std::string & msg) {
    if (!err || err_cap <= 0) return;
    std::snprintf(err, (size_t) err_cap, "%s", msg.c_str());
}

struct model_guard {
    llama_model * model = nullptr;
    llama_context * ctx = nullptr;
    ~model_guard() {
        if (ctx) llama_free(ctx);
        if (model) llama_model_free(model);
    }
};

int generate(const char * model_path, const char * endpoint, int n_predict, int32_t * out) {
    using clock = std::chrono::steady_clock;
    const auto t_start = clock::now();
    const bool remote = endpoint && *endpoint;

    std::vector<ggml_backend_dev_t> devices;
    llama_model_params mp = llama_model_default_params();
    if (remote) {
        // the endpoint goes to ggml-rpc as given (a malformed one is its error to report);
        // connects, asks for the device count, and closes again: the connection lives only while a
        // dispatcher is referenced. An unreachable endpoint returns NULL with patch 0005 (upstream
        // b11312 aborts the process there)
        ggml_backend_reg_t reg = ggml_backend_rpc_add_server(endpoint);
        if (!reg) raise(std::string("ggml_backend_rpc_add_server('") + endpoint + "') returned NULL");
        if (ggml_backend_reg_dev_count(reg) < 1) raise("the RPC server reports no devices");
        devices.push_back(ggml_backend_reg_dev_get(reg, 0));
        progress("add-server-ok %s", ggml_backend_dev_name(devices[0]));
        mp.n_gpu_layers = 999;  // every repeating layer and the output layer
    } else {
        mp.n_gpu_layers = 0;
    }
    devices.push_back(nullptr);  // remote: {rpc dev, NULL}; local: {NULL} = no offload device at all
    mp.devices = devices.data();

    model_guard g;
    g.model = llama_model_load_from_file(model_path, mp);
    if (!g.model) raise(std::string("failed to load model '") + model_path + "'");
    progress("loaded");
    const auto t_loaded = clock::now();

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 256;
    cp.n_ubatch = 256;
    cp.no_perf = true;
    cp.n_threads = cp.n_threads_batch = env_int("RNIF_THREADS", 2);
    g.ctx = llama_init_from_model(g.model, cp);
    if (!g.ctx) raise("failed to create a context");

    const llama_vocab * vocab = llama_model_get_vocab(g.model);
    const char * prompt = "hello world";
    std::vector<llama_token> ptoks(64);
    int n_prompt = llama_tokenize(vocab, prompt, (int32_t) std::strlen(prompt), ptoks.data(), (int32_t) ptoks.size(),
                                  true, false);
    if (n_prompt <= 0) raise("the prompt produced no tokens");
    ptoks.resize(n_prompt);

    const int n_ctx = (int) llama_n_ctx(g.ctx);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    const int delay_ms = env_int("RNIF_TOKEN_DELAY_MS", 0);
    llama_memory_clear(llama_get_memory(g.ctx), true);
    llama_batch batch = llama_batch_get_one(ptoks.data(), n_prompt);
    int n_past = 0;
    llama_token next = 0;
    const auto t_gen = clock::now();
    for (int i = 0; i < n_predict; ++i) {
        if (n_past + batch.n_tokens > n_ctx) {  // context full: start again from the prompt
            llama_memory_clear(llama_get_memory(g.ctx), true);
            batch = llama_batch_get_one(ptoks.data(), n_prompt);
            n_past = 0;
        }
        const int32_t rc = llama_decode(g.ctx, batch);
        if (rc != 0) raise("llama_decode failed (" + std::to_string(rc) + ") at token " + std::to_string(i));
        n_past += batch.n_tokens;
        const float * logits = llama_get_logits_ith(g.ctx, -1);
        if (!logits) raise("no logits");
        int best = 0;
        for (int t = 1; t < n_vocab; ++t) {
            if (logits[t] > logits[best]) best = t;
        }
        if (!std::isfinite(logits[best])) raise("non-finite logits at token " + std::to_string(i));
        next = best;
        out[i] = next;
        batch = llama_batch_get_one(&next, 1);
        progress("%d", i);
        if (delay_ms) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    }
    const auto t_end = clock::now();
    auto ms = [](clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
    progress("timing load_ms=%.1f ctx_ms=%.1f gen_ms=%.1f total_ms=%.1f", ms(t_loaded - t_start), ms(t_gen - t_loaded),
             ms(t_end - t_gen), ms(t_end - t_start));
    return n_predict;
}

}  // namespace

extern "C" {

RNIF_API int rnif_serve(const char * endpoint, int n_threads) {
    try {
        init_once();
        reset_errors();
        std::string host;
        int port = 0;
        if (!endpoint || !split_endpoint(endpoint, host, port)) {
            std::fprintf(stderr, "rnif_serve: invalid endpoint '%s' (want host:port)\n", endpoint ? endpoint : "(null)");
            return 2;
        }
        ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
        if (!cpu) {
            std::fprintf(stderr, "rnif_serve: no CPU backend device\n");
            return 3;
        }
        std::fflush(stdout);
        // Never returns on success (accept loop, ggml-rpc.cpp:2143). It returns, printing to stderr,
        // when the backend cannot be created, the endpoint does not parse, or bind/listen/accept fail.
        ggml_backend_rpc_start_server(endpoint, /*cache_dir=*/nullptr, (size_t) (n_threads > 0 ? n_threads : 1), 1, &cpu);
        std::fflush(stdout);
        std::fprintf(stderr, "rnif_serve: server on %s stopped (bind/listen/accept failed?)\n", endpoint);
        return 1;
    } catch (const std::exception & e) {
        std::fprintf(stderr, "rnif_serve: exception: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "rnif_serve: unknown exception\n");
    }
    return 4;
}

RNIF_API int rnif_generate(const char * model_path, const char * endpoint, int n_predict, int32_t * out, int cap,
                           char * err, int err_cap) {
    if (err && err_cap > 0) err[0] = '\0';
    std::string msg;
    try {
        init_once();
        reset_errors();
        if (!model_path || !*model_path) {
            msg = "no model path given";
        } else if (!out || n_predict <= 0 || cap < n_predict) {
            msg = "invalid argument (out == NULL, n_predict <= 0 or cap < n_predict)";
        } else {
            return generate(model_path, endpoint, n_predict, out);
        }
    } catch (const generate_error & e) {
        msg = e.what;
    } catch (const std::exception & e) {
        msg = std::string("exception: ") + e.what();
    } catch (...) {
        msg = "unknown exception";
    }
    {
        std::lock_guard<std::mutex> lock(g_log_mutex);
        if (!g_first_error.empty()) msg += ": " + g_first_error;
    }
    write_err(err, err_cap, msg);
    return -1;
}

RNIF_API int rnif_write_model(const char * path, unsigned seed) {
    try {
        init_once();
        return (path && write_tiny_llama(path, seed)) ? 0 : 1;
    } catch (...) {
        return 2;
    }
}

}  // extern "C"
