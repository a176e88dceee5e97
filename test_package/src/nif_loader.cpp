// Loads the NIF-style library the way a VM does (dlopen RTLD_NOW | RTLD_LOCAL, or LoadLibrary),
// writes the tiny model, generates 16 tokens twice. Its own ggml-base copy (for the gguf writer)
// cannot clash with the library's hidden one.   usage: nif_loader <library> <work dir>
#include "tiny_model.h"

#include <cstdio>
#include <cstring>
#include <string>

#if defined(_WIN32)
#    include <windows.h>
static void * open_lib(const char * p) { return (void *) LoadLibraryA(p); }
static void * find_sym(void * h, const char * n) { return (void *) GetProcAddress((HMODULE) h, n); }
#else
#    include <dlfcn.h>
static void * open_lib(const char * p) { return dlopen(p, RTLD_NOW | RTLD_LOCAL); }
static void * find_sym(void * h, const char * n) { return dlsym(h, n); }
#endif

int main(int argc, char ** argv) {
    if (argc != 3) return std::fprintf(stderr, "usage: %s <library> <work dir>\n", argv[0]), 2;
    void * lib = open_lib(argv[1]);
    if (!lib) return std::fprintf(stderr, "cannot load %s\n", argv[1]), 1;
    using generate_fn = int (*)(const char *, const char *, int, int *, char *, int);
    auto generate = reinterpret_cast<generate_fn>(find_sym(lib, "lnif_generate"));
    if (!generate || find_sym(lib, "ggml_init") || find_sym(lib, "llama_model_load_from_file")) {
        return std::fprintf(stderr, "the library must export lnif_generate and no ggml/llama symbol\n"), 1;
    }
    const std::string model = std::string(argv[2]) + "/tiny-llama.gguf";
    if (!write_tiny_llama(model.c_str(), 42)) return std::fprintf(stderr, "cannot write %s\n", model.c_str()), 1;
    int first[16], second[16];
    char error[256] = "";
    if (generate(model.c_str(), "hello world", 16, first, error, sizeof error) != 16 ||
        generate(model.c_str(), "hello world", 16, second, error, sizeof error) != 16) {
        return std::fprintf(stderr, "generation failed: %s\n", error), 1;
    }
    std::printf("generated:");
    for (int t : first) std::printf(" %d", t);
    std::printf("\n");
    if (std::memcmp(first, second, sizeof first) != 0) return std::fprintf(stderr, "two greedy runs differ\n"), 1;
    std::printf("LOADER OK\n");
    return 0;
}
