// Loads the NIF-style shared library the way a VM does (dlopen RTLD_NOW | RTLD_LOCAL, or
// LoadLibrary) and drives its C ABI end to end. The loader itself links its own copy of
// ggml-base (for the gguf writer): with hidden symbols in the NIF, the two copies cannot clash.
//
// usage: nif_loader <path-to-llama_nif> <work-dir>
//        prints what it does, writes <work-dir>/tiny-llama.gguf and <work-dir>/report.json (the
//        facts tests read: devices, generated tokens, error strings, chat/JSON output), prints
//        "LOADER OK" and exits 0 when every check passed; last it unloads the library and reports
//        whether it left the memory map ("unloaded").
//        nif_loader <path-to-llama_nif> <work-dir> --probe FILE...
//        opens each FILE as a model (and generates from it when it opens); prints "probe FILE"
//        before and "result FILE ok|error" after each, so a crash points at its input.
//        nif_loader <path-to-llama_nif> <work-dir> --logits ID,ID,... MODEL...
//        decodes the token ids in one batch with each MODEL and writes the logits of every position
//        (float32, position-major) to <work-dir>/<model file name>.logits (tests/oracle.py compares them)
//        nif_loader <path-to-llama_nif> <work-dir> --call MODEL KIND VALUE-FILE
//        opens MODEL and gives the bytes of VALUE-FILE to lnif_hostile(KIND); prints
//        "call KIND error|ok|unknown: <what came back>" and exits 0 (a crash is the process's status)
#include <fstream>
#include <sstream>
#include "tiny_model.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#if defined(_WIN32)
#    include <windows.h>
static void * open_lib(const char * p) { return (void *) LoadLibraryA(p); }
static void * find_sym(void * h, const char * n) { return (void *) GetProcAddress((HMODULE) h, n); }
static std::string open_error() { return "LoadLibrary error " + std::to_string(GetLastError()); }
#else
#    include <dlfcn.h>
#    include <climits>
#    include <cstdlib>
static void * open_lib(const char * p) { return dlopen(p, RTLD_NOW | RTLD_LOCAL); }
static void * find_sym(void * h, const char * n) { return dlsym(h, n); }
static std::string open_error() { return dlerror(); }
#endif

// Unloads the library like a VM purging a NIF: "true" when it left the process's memory map
// (/proc/self/maps), "false" when it stayed, "null" where that cannot be seen (Windows, no /proc).
// It stays here: glibc keeps a library mapped while a live thread has thread_local destructors
// registered from it (__cxa_thread_atexit_impl), and this loader called it on its main thread;
// musl never unmaps. The exit that follows must still be clean.
static const char * unload(void * h, const char * path) {
#if defined(_WIN32)
    FreeLibrary((HMODULE) h);
    (void) path;
    return "null";
#else
    char real[PATH_MAX];
    if (dlclose(h) != 0 || !realpath(path, real)) return "false";
    FILE * maps = std::fopen("/proc/self/maps", "r");
    if (!maps) return "null";
    char line[PATH_MAX + 256];
    bool mapped = false;
    while (!mapped && std::fgets(line, sizeof line, maps)) {
        mapped = std::strstr(line, real) != nullptr;
    }
    std::fclose(maps);
    return mapped ? "false" : "true";
#endif
}

struct lnif_model;
struct Api {
    const char * (*system_info)();
    int (*device_count)();
    const char * (*device_describe)(int);
    lnif_model * (*open)(const char *, int, int);
    void (*close)(lnif_model *);
    int (*tokenize)(lnif_model *, const char *, int, int, int32_t *, int);
    int (*generate)(lnif_model *, const char *, int, int, int32_t *, int, int *);
    int (*chat_format)(lnif_model *, const char *, char *, int);
    int (*generate_json)(lnif_model *, const char *, const char *, int, char *, int);
    int (*vocab_size)(const lnif_model *);
    const char * (*cpu_variant)();
    int (*bench)(lnif_model *, int, int, int, double *, double *);
    int (*logits)(lnif_model *, const int32_t *, int, int, float *, int);
    int (*hostile)(lnif_model *, const char *, const char *, char *, int);
    const char * (*last_error)();
};

// the JSON schema the loader (and tests/) constrain generation with: every value is bounded, so the
// grammar ends and generation stops at the end-of-generation token
static const char * SCHEMA = R"({"type": "object", "properties": {
    "color": {"enum": ["red", "green", "blue"]},
    "count": {"type": "integer", "minimum": 0, "maximum": 99},
    "ok": {"type": "boolean"}},
  "required": ["color", "count", "ok"], "additionalProperties": false})";

static int failures = 0;
#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            std::fprintf(stderr, "CHECK FAILED: " __VA_ARGS__); \
            std::fprintf(stderr, "\n");                   \
            ++failures;                                   \
        }                                                 \
    } while (0)

template <typename T> static bool bind(void * h, const char * name, T & fn) {
    fn = reinterpret_cast<T>(find_sym(h, name));
    if (!fn) std::fprintf(stderr, "missing export %s\n", name);
    return fn != nullptr;
}

// the report: a flat JSON object, written at exit
static std::string report = "{";
static std::string quoted(const std::string & s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') out += '\\', out += (char) c;
        else if (c < 0x20) { char u[8]; std::snprintf(u, sizeof u, "\\u%04x", c); out += u; }
        else out += (char) c;
    }
    return out + "\"";
}
static void fact(const char * key, const std::string & json_value) {
    report += (report.size() > 1 ? ", " : "") + quoted(key) + ": " + json_value;
}

static std::string join(const int32_t * t, int n, const char * sep = " ") {
    std::string s;
    for (int i = 0; i < n; ++i) s += (i ? sep : "") + std::to_string(t[i]);
    return s;
}

int main(int argc, char ** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s <llama_nif library> <work dir>\n", argv[0]);
        return 2;
    }
    void * h = open_lib(argv[1]);
    if (!h) {
        std::fprintf(stderr, "cannot load %s: %s\n", argv[1], open_error().c_str());
        return 1;
    }
    Api api{};
    bool ok = bind(h, "lnif_system_info", api.system_info) & bind(h, "lnif_device_count", api.device_count) &
              bind(h, "lnif_device_describe", api.device_describe) & bind(h, "lnif_open", api.open) &
              bind(h, "lnif_close", api.close) & bind(h, "lnif_tokenize", api.tokenize) &
              bind(h, "lnif_generate", api.generate) & bind(h, "lnif_last_error", api.last_error) &
              bind(h, "lnif_chat_format", api.chat_format) & bind(h, "lnif_generate_json", api.generate_json) &
              bind(h, "lnif_vocab_size", api.vocab_size) & bind(h, "lnif_logits", api.logits) &
              bind(h, "lnif_cpu_variant", api.cpu_variant) & bind(h, "lnif_bench", api.bench) &
              bind(h, "lnif_hostile", api.hostile);
    if (!ok) return 1;
    // a leaked ggml symbol would be visible here; the NIF must export none
    CHECK(find_sym(h, "ggml_init") == nullptr && find_sym(h, "llama_model_load_from_file") == nullptr,
          "ggml/llama symbols are exported from the NIF");

    if (argc > 3 && std::strcmp(argv[3], "--probe") == 0) {
        for (int i = 4; i < argc; ++i) {
            std::printf("probe %s\n", argv[i]);
            std::fflush(stdout);
            bool ok = false;
            if (lnif_model * m = api.open(argv[i], 0, 64)) {
                int32_t toks[64];
                int nonfinite = 0;
                ok = api.tokenize(m, "hello world", 11, 1, toks, 64) >= 0 &&
                     api.generate(m, "hello", 2, 1, toks, 8, &nonfinite) == 2;
                api.close(m);
            }
            std::printf("result %s %s\n", argv[i], ok ? "ok" : "error");
            std::fflush(stdout);
        }
        return 0;
    }

    if (argc == 7 && std::strcmp(argv[3], "--call") == 0) {
        std::ifstream in(argv[6], std::ios::binary);
        std::stringstream value;
        value << in.rdbuf();
        lnif_model * m = api.open(argv[4], 0, 64);
        if (!m) {
            std::printf("open %s failed: %s\n", argv[4], api.last_error());
            return 1;
        }
        std::vector<char> out(4096);
        std::printf("call %s ", argv[5]);
        std::fflush(stdout);
        const int rc = api.hostile(m, argv[5], value.str().c_str(), out.data(), (int) out.size());
        std::printf("%s: %s\n", rc == 1 ? "error" : rc == 0 ? "ok" : "unknown", out.data());
        api.close(m);
        return 0;
    }

    const char * variant = api.cpu_variant();
    std::printf("system_info: %s\n", api.system_info());
    std::printf("cpu_variant: %s\n", variant ? variant : "(single baseline)");

    if (argc > 4 && std::strcmp(argv[3], "--logits") == 0) {
        std::vector<int32_t> ids;
        for (const char * p = argv[4]; *p;) {
            char * end = nullptr;
            ids.push_back((int32_t) std::strtol(p, &end, 10));
            if (end == p) break;
            p = *end == ',' ? end + 1 : end;
        }
        for (int i = 5; i < argc; ++i) {
            lnif_model * m = api.open(argv[i], 0, 64);
            CHECK(m != nullptr, "open(%s) failed: %s", argv[i], api.last_error());
            if (!m) continue;
            const int n_vocab = api.vocab_size(m);
            std::vector<float> out((size_t) n_vocab * ids.size());
            const int n = api.logits(m, ids.data(), (int) ids.size(), 0, out.data(), (int) out.size());
            CHECK(n == (int) out.size(), "logits(%s) failed: %s", argv[i], api.last_error());
            std::string name = argv[i];
            name = name.substr(name.find_last_of("/\\") + 1);  // npos + 1 == 0: no folder
            const std::string path = std::string(argv[2]) + "/" + name + ".logits";
            FILE * f = std::fopen(path.c_str(), "wb");
            CHECK(f && std::fwrite(out.data(), sizeof(float), out.size(), f) == out.size(), "cannot write %s",
                  path.c_str());
            if (f) std::fclose(f);
            std::printf("logits %s: %zu positions x %d\n", path.c_str(), ids.size(), n_vocab);
            api.close(m);
        }
        return failures == 0 ? 0 : 1;
    }

    fact("system_info", quoted(api.system_info()));
    fact("cpu_variant", variant ? quoted(variant) : "null");
    const int n_dev = api.device_count();
    std::printf("devices: %d\n", n_dev);
    CHECK(n_dev >= 1, "no backend device at all (the CPU backend must always be there)");
    std::string devices = "[";
    for (int i = 0; i < n_dev; ++i) {
        std::printf("device[%d]: %s\n", i, api.device_describe(i));
        devices += (i ? ", " : "") + quoted(api.device_describe(i));
    }
    fact("devices", devices + "]");

    const std::string dir = argv[2];
    const std::string model_path = dir + "/tiny-llama.gguf";
    if (!write_tiny_llama(model_path.c_str(), 42)) {
        std::fprintf(stderr, "cannot write %s\n", model_path.c_str());
        return 1;
    }
    lnif_model * m = api.open(model_path.c_str(), 0, 128);
    CHECK(m != nullptr, "open(tiny model) failed: %s", api.last_error());
    if (m) {
        int32_t toks[64];
        int n = api.tokenize(m, "hello world", 11, 0, toks, 64);
        std::printf("tokens('hello world'): %s\n", join(toks, n).c_str());
        CHECK(n > 0, "tokenize failed: %s", api.last_error());

        int32_t run1[16], run2[16];
        int bad1 = -1, bad2 = -1;
        int g1 = api.generate(m, "hello world", 16, 2, run1, 16, &bad1);
        int g2 = api.generate(m, "hello world", 16, 2, run2, 16, &bad2);
        std::printf("generated: %s\n", join(run1, g1 > 0 ? g1 : 0).c_str());
        fact("generated", "[" + join(run1, g1 > 0 ? g1 : 0, ", ") + "]");
        fact("deterministic", g1 == g2 && !std::memcmp(run1, run2, sizeof run1) ? "true" : "false");
        fact("nonfinite_logits", std::to_string(bad1 + bad2));
        CHECK(g1 == 16 && g2 == 16, "generation failed: %s", api.last_error());
        CHECK(g1 == g2 && std::memcmp(run1, run2, sizeof run1) == 0, "two greedy runs differ");
        CHECK(bad1 == 0 && bad2 == 0, "%d non-finite logits", bad1 + bad2);
        std::printf("deterministic: %s, non-finite logits: %d\n", g1 == g2 && !std::memcmp(run1, run2, sizeof run1) ? "yes" : "no",
                    bad1 + bad2);

        int32_t few[4];
        CHECK(api.generate(m, "", 4, 2, few, 4, nullptr) == 4, "empty prompt (BOS only) must generate: %s",
              api.last_error());
        std::printf("empty prompt -> %d tokens\n", 4);

        int32_t big[1024];
        CHECK(api.generate(m, "hello", 1000, 2, big, 1024, nullptr) == -1 && *api.last_error(),
              "n_predict beyond the context must be an error");
        std::printf("n_predict beyond context -> error: %s\n", api.last_error());

        // the speed probe bench/ uses, once: its thread pool is attached to the context and freed
        // after it by close (the teardown order README's thread-pool advice rests on)
        double pp = 0, tg = 0;
        const int rc = api.bench(m, 16, 4, 2, &pp, &tg);
        CHECK(rc == 0 && pp > 0 && tg > 0, "lnif_bench failed: %s", api.last_error());
        std::printf("bench: pp16 %.0f tokens/s, tg4 %.0f tokens/s\n", pp, tg);
        fact("bench_ok", rc == 0 && pp > 0 && tg > 0 ? "true" : "false");
        api.close(m);
    }

    // llama-common: a chat template and a JSON-schema grammar (when the package has common); a
    // second open of the same model that fails is a failure, not a skipped block
    lnif_model * c = api.open(model_path.c_str(), 0, 512);
    CHECK(c != nullptr, "second open(tiny model, n_ctx 512) failed: %s", api.last_error());
    if (c) {
        static char text[8192];
        int n = api.chat_format(c, "hello", text, sizeof text);
        if (n < 0 && std::strstr(api.last_error(), "without llama-common")) {
            std::printf("common: not in this package\n");
            fact("chat_prompt", "null");
        } else {
            CHECK(n > 0 && std::strstr(text, "hello") != nullptr, "chat template: %s", api.last_error());
            std::printf("chat template -> %d bytes\n", n);
            fact("chat_prompt", quoted(n > 0 ? text : ""));
            n = api.generate_json(c, "hello", SCHEMA, 400, text, sizeof text);
            CHECK(n > 1 && text[0] == '{' && text[n - 1] == '}', "JSON-schema generation: %s", api.last_error());
            std::printf("json: %s\n", n > 0 ? text : "");
            fact("json", quoted(n > 0 ? text : ""));
        }
        api.close(c);
    }

    lnif_model * missing = api.open((dir + "/does-not-exist.gguf").c_str(), 0, 64);
    CHECK(missing == nullptr && *api.last_error(), "missing file must be an error");
    std::printf("missing file -> error: %s\n", api.last_error());
    fact("missing_file_error", quoted(api.last_error()));

    const std::string garbage = dir + "/garbage.gguf";
    if (FILE * f = std::fopen(garbage.c_str(), "wb")) {
        const char junk[] = "GGUF\x03\x00\x00\x00 this is not a model, just bytes that start like one";
        std::fwrite(junk, 1, sizeof junk, f);
        std::fclose(f);
    }
    lnif_model * bad = api.open(garbage.c_str(), 0, 64);
    CHECK(bad == nullptr && *api.last_error(), "garbage file must be an error");
    std::printf("garbage file -> error: %s\n", api.last_error());
    fact("garbage_file_error", quoted(api.last_error()));
    // after this the process exits: a destructor the NIF left registered would run from unmapped
    // memory (the Zig profiles' trap, profiles/zig/dso_fini.c) and the exit code would not be 0
    fact("unloaded", unload(h, argv[1]));
    fact("failures", std::to_string(failures));
    if (FILE * f = std::fopen((dir + "/report.json").c_str(), "w")) {
        std::fprintf(f, "%s}\n", report.c_str());
        std::fclose(f);
    }

    if (failures) {
        std::printf("LOADER FAILED (%d checks)\n", failures);
        return 1;
    }
    std::printf("LOADER OK\n");
    return 0;
}
