// A GPU backend's check tool, linked statically against a cuda or vulkan package (the CUDA GPU
// check, bench/cuda_gpu_check.md; tests/test_vulkan.py on lavapipe):
//
//   gpu_tool devices                     the ggml backend devices, one "name|type|description" a line
//   gpu_tool write-tiny PATH             test_package's tiny model (seed 42, the loader's bytes)
//   gpu_tool logits MODEL [options]      the same model on the CPU alone and fully offloaded to the
//                                        first GPU: greedy on the CPU, the GPU teacher-forced on the
//                                        CPU's tokens, logits compared step by step; prints one line
//                                        "LOGITS {json}" and exits 0 when NMSE <= --max-nmse and
//                                        every layer was offloaded (offloaded_layers, from
//                                        llama.cpp's load log: llama.h has no call that says)
//       --prompt TEXT | --prompt-tokens N   tokenized text (BOS added, as the NIF does) or N
//                                           synthetic token ids (the pattern lnif_bench uses)
//       --steps S        logit vectors compared: the prompt's last one, then S-1 generated tokens
//       --max-nmse X     tolerance on sum((gpu-cpu)^2) / sum(cpu^2) over every logit of every step
//       --gpu-layers N   layers the GPU run offloads (default -1: all; 0 shows the check failing)
//   gpu_tool ops ARGS...                 upstream's test-backend-ops with ARGS (its main(), renamed)
//
// The CPU run is the CPU alone: no GPU device in the model's device list and no op offload, so
// nothing of it reaches the GPU even though this binary has a GPU backend.
#include "ggml-backend.h"
#include "llama.h"
#include "tiny_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

int upstream_test_backend_ops_main(int argc, char ** argv);  // tests/test-backend-ops.cpp's main()

namespace {

std::vector<std::string> g_notes;  // llama.cpp log lines worth reporting (offload, flash attention)
int g_offloaded = -1, g_layers = -1;  // the last "offloaded X/Y layers to GPU" llama.cpp logged

void log_callback(ggml_log_level, const char * text, void *) {
    if (!text) return;
    if (const char * at = std::strstr(text, "offloaded ")) std::sscanf(at, "offloaded %d/%d layers", &g_offloaded, &g_layers);
    if (std::strstr(text, "offloaded") || std::strstr(text, "flash_attn") || std::strstr(text, "failed")) {
        std::string line(text);
        while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
        if (!line.empty() && g_notes.size() < 64) g_notes.push_back(line);
    }
    static const bool verbose = std::getenv("GPU_TOOL_VERBOSE") != nullptr;
    if (verbose) std::fputs(text, stderr);
}

const char * type_name(enum ggml_backend_dev_type t) {
    switch (t) {
        case GGML_BACKEND_DEVICE_TYPE_CPU: return "cpu";
        case GGML_BACKEND_DEVICE_TYPE_GPU: return "gpu";
        case GGML_BACKEND_DEVICE_TYPE_IGPU: return "igpu";
        case GGML_BACKEND_DEVICE_TYPE_ACCEL: return "accel";
        default: return "other";
    }
}

std::string json_escape(const std::string & s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += c;
        } else if ((unsigned char) c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            o += buf;
        } else {
            o += c;
        }
    }
    return o;
}

std::string join(const std::vector<int> & v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
    return s;
}

struct Run {
    llama_model * model = nullptr;
    llama_context * ctx = nullptr;
    ~Run() {
        if (ctx) llama_free(ctx);
        if (model) llama_model_free(model);
    }
};

// gpu=false: CPU alone; gpu=true: gpu_layers layers (-1: every one) on the default GPU device(s)
bool open_run(Run & r, const char * path, bool gpu, int n_ctx, int gpu_layers = -1) {
    static ggml_backend_dev_t no_devices[1] = {nullptr};
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = gpu ? gpu_layers : 0;
    if (!gpu) mp.devices = no_devices;  // an empty list: no offload device at all
    r.model = llama_model_load_from_file(path, mp);
    if (!r.model) return false;
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) n_ctx;
    cp.n_batch = (uint32_t) n_ctx;
    cp.n_ubatch = (uint32_t) std::min(n_ctx, 512);
    cp.no_perf = true;
    cp.op_offload = gpu;  // the CPU run must not send large batches to the GPU
    const int threads = (int) std::max(1u, std::thread::hardware_concurrency());
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    r.ctx = llama_init_from_model(r.model, cp);
    return r.ctx != nullptr;
}

// decodes `prompt`, then feeds `forced` (when not empty) or its own argmax, for `steps` logit
// vectors; appends each step's logits to `logits` and its argmax to `argmax`. `single_seconds`
// (optional) receives the wall time of the single-token decodes (every step after the prompt).
bool decode_steps(Run & r, const std::vector<llama_token> & prompt, const std::vector<int> & forced, int steps,
                  std::vector<float> & logits, std::vector<int> & argmax, double * single_seconds = nullptr) {
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(r.model));
    llama_memory_clear(llama_get_memory(r.ctx), true);
    std::vector<llama_token> first(prompt);
    llama_batch batch = llama_batch_get_one(first.data(), (int32_t) first.size());
    llama_token next = 0;
    double single = 0;
    for (int s = 0; s < steps; ++s) {
        const auto started = std::chrono::steady_clock::now();
        if (llama_decode(r.ctx, batch) != 0) return false;
        if (s > 0) single += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        const float * l = llama_get_logits_ith(r.ctx, -1);
        if (!l) return false;
        logits.insert(logits.end(), l, l + n_vocab);
        int best = 0;
        for (int t = 1; t < n_vocab; ++t) {
            if (l[t] > l[best]) best = t;
        }
        argmax.push_back(best);
        next = forced.empty() ? best : forced[s];
        batch = llama_batch_get_one(&next, 1);
    }
    if (single_seconds) *single_seconds = single;
    return true;
}

int cmd_devices() {
    llama_backend_init();
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        ggml_backend_dev_t d = ggml_backend_dev_get(i);
        std::printf("device[%zu]: %s|%s|%s\n", i, ggml_backend_dev_name(d), type_name(ggml_backend_dev_type(d)),
                    ggml_backend_dev_description(d));
    }
    return 0;
}

int cmd_logits(int argc, char ** argv) {
    if (argc < 1) {
        std::fprintf(stderr, "logits: MODEL missing\n");
        return 2;
    }
    const char * path = argv[0];
    std::string prompt_text = "hello world";
    int prompt_tokens = 0, steps = 16, gpu_layers = -1;
    double max_nmse = 1e-4;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--prompt")) prompt_text = argv[i + 1];
        else if (!std::strcmp(argv[i], "--prompt-tokens")) prompt_tokens = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--max-nmse")) max_nmse = std::atof(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--gpu-layers")) gpu_layers = std::atoi(argv[i + 1]);
        else {
            std::fprintf(stderr, "logits: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (steps < 1) steps = 1;
    llama_log_set(log_callback, nullptr);
    llama_backend_init();

    bool have_gpu = false;
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        const auto t = ggml_backend_dev_type(ggml_backend_dev_get(i));
        have_gpu = have_gpu || t == GGML_BACKEND_DEVICE_TYPE_GPU || t == GGML_BACKEND_DEVICE_TYPE_IGPU;
    }
    if (!have_gpu) {
        std::printf("LOGITS {\"error\": \"no GPU device\"}\n");
        return 1;
    }

    // the prompt, from the CPU model's vocabulary (the GPU run loads the same file)
    Run cpu;
    std::vector<llama_token> prompt;
    {
        llama_model_params vp = llama_model_default_params();
        vp.vocab_only = true;
        llama_model * v = llama_model_load_from_file(path, vp);
        if (!v) {
            std::printf("LOGITS {\"error\": \"cannot load %s\"}\n", json_escape(path).c_str());
            return 1;
        }
        const llama_vocab * vocab = llama_model_get_vocab(v);
        const int n_vocab = llama_vocab_n_tokens(vocab);
        if (prompt_tokens > 0) {
            for (int i = 0; i < prompt_tokens; ++i) prompt.push_back((llama_token) ((i * 7919 + 13) % n_vocab));
        } else {
            prompt.resize(prompt_text.size() + 16);
            const int n = llama_tokenize(vocab, prompt_text.c_str(), (int32_t) prompt_text.size(), prompt.data(),
                                         (int32_t) prompt.size(), true, false);
            prompt.resize(n > 0 ? n : 0);
        }
        llama_model_free(v);
    }
    if (prompt.empty()) {
        std::printf("LOGITS {\"error\": \"empty prompt\"}\n");
        return 1;
    }
    const int n_ctx = (int) ((prompt.size() + steps + 64 + 255) / 256 * 256);

    std::vector<float> lc, lg;
    std::vector<int> tc, tg, none;
    if (!open_run(cpu, path, false, n_ctx) || !decode_steps(cpu, prompt, none, steps, lc, tc)) {
        std::printf("LOGITS {\"error\": \"CPU run failed\"}\n");
        return 1;
    }
    Run gpu;
    g_offloaded = g_layers = -1;  // what the GPU run's load logs
    if (!open_run(gpu, path, true, n_ctx, gpu_layers) || !decode_steps(gpu, prompt, tc, steps, lg, tg)) {
        std::printf("LOGITS {\"error\": \"GPU run failed\"}\n");
        return 1;
    }

    // speed of single-token decodes, measured on a second pass of each run (the first GPU pass
    // includes compiling the device's pipelines/kernels)
    double cpu_s = 0, gpu_s = 0;
    {
        std::vector<float> l2;
        std::vector<int> t2;
        decode_steps(cpu, prompt, tc, steps, l2, t2, &cpu_s);
        l2.clear();
        t2.clear();
        decode_steps(gpu, prompt, tc, steps, l2, t2, &gpu_s);
    }
    // "offloaded X/Y layers to GPU" of the GPU run's load: without it (or with X < Y) the
    // comparison would be the CPU against itself
    const int offloaded = g_offloaded, n_layers = g_layers;
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(cpu.model));
    double num = 0, den = 0, max_abs = 0, ref_max = 0;
    long nonfinite = 0;
    int agree = 0, first_diff = -1;
    std::string margins;
    for (int s = 0; s < steps; ++s) {
        const float * c = lc.data() + (size_t) s * n_vocab;
        const float * g = lg.data() + (size_t) s * n_vocab;
        for (int t = 0; t < n_vocab; ++t) {
            if (!std::isfinite(g[t]) || !std::isfinite(c[t])) {
                ++nonfinite;
                continue;
            }
            const double d = (double) g[t] - c[t];
            num += d * d;
            den += (double) c[t] * c[t];
            max_abs = std::max(max_abs, std::fabs(d));
            ref_max = std::max(ref_max, std::fabs((double) c[t]));
        }
        if (tc[s] == tg[s]) {
            ++agree;
        } else {
            if (first_diff < 0) first_diff = s;
            // how close the CPU's own choice was: its top-1 minus its top-2 logit
            float second = -INFINITY;
            for (int t = 0; t < n_vocab; ++t) {
                if (t != tc[s]) second = std::max(second, c[t]);
            }
            char buf[64];
            std::snprintf(buf, sizeof buf, "%s%d:%.3g", margins.empty() ? "" : " ", s, c[tc[s]] - second);
            margins += buf;
        }
    }
    const double nmse = den > 0 ? num / den : (num > 0 ? INFINITY : 0.0);
    const bool all_offloaded = n_layers > 0 && offloaded == n_layers;
    const bool pass = nonfinite == 0 && nmse <= max_nmse && all_offloaded;
    std::string notes;
    for (const auto & n : g_notes) notes += (notes.empty() ? "\"" : ", \"") + json_escape(n) + "\"";
    std::printf("LOGITS {\"model\": \"%s\", \"n_vocab\": %d, \"prompt_tokens\": %zu, \"steps\": %d, "
                "\"nmse\": %.6g, \"max_abs_diff\": %.6g, \"ref_max_abs\": %.6g, \"nonfinite\": %ld, "
                "\"argmax_agree\": %d, \"first_disagreement\": %d, \"cpu_margin_where_different\": \"%s\", "
                "\"cpu_tokens\": \"%s\", \"gpu_argmax\": \"%s\", \"max_nmse\": %g, \"pass\": %s, "
                "\"offloaded_layers\": %d, \"layers\": %d, "
                "\"cpu_tg_tokens_per_s\": %.4g, \"gpu_tg_tokens_per_s\": %.4g, \"log\": [%s]}\n",
                json_escape(path).c_str(), n_vocab, prompt.size(), steps, nmse, max_abs, ref_max, nonfinite, agree,
                first_diff, margins.c_str(), join(tc).c_str(), join(tg).c_str(), max_nmse, pass ? "true" : "false",
                offloaded, n_layers,
                steps > 1 && cpu_s > 0 ? (steps - 1) / cpu_s : 0.0, steps > 1 && gpu_s > 0 ? (steps - 1) / gpu_s : 0.0,
                notes.c_str());
    return pass ? 0 : 1;
}

}  // namespace

int main(int argc, char ** argv) {
    if (argc >= 2 && !std::strcmp(argv[1], "ops")) {
        // line-buffered, so a run stopped at its time limit still leaves every finished case in the log
        std::setvbuf(stdout, nullptr, _IOLBF, 0);
        argv[1] = argv[0];
        return upstream_test_backend_ops_main(argc - 1, argv + 1);
    }
    if (argc >= 2 && !std::strcmp(argv[1], "devices")) return cmd_devices();
    if (argc >= 3 && !std::strcmp(argv[1], "write-tiny")) return write_tiny_llama(argv[2], 42) ? 0 : 1;
    if (argc >= 2 && !std::strcmp(argv[1], "logits")) return cmd_logits(argc - 2, argv + 2);
    std::fprintf(stderr, "usage: %s devices | write-tiny PATH | logits MODEL [options] | ops [test-backend-ops args]\n",
                 argv[0]);
    return 2;
}
