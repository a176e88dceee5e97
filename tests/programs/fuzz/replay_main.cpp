// main() for the harnesses built without libFuzzer: runs an entry point once per file named on the
// command line (tests/test_fuzz_corpus.py gives each regression input its own process).
//   fuzz_replay HARNESS FILE...   (the tests' build: every harness in one program, FUZZ_REPLAY_ALL)
//   <harness> FILE...             (one harness linked alone with this file)
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

typedef int (*entry_fn)(const uint8_t * data, size_t size);

#if defined(FUZZ_REPLAY_ALL)
extern "C" int fuzz_tokenize(const uint8_t *, size_t);
extern "C" int fuzz_grammar(const uint8_t *, size_t);
extern "C" int fuzz_schema(const uint8_t *, size_t);
extern "C" int fuzz_template(const uint8_t *, size_t);
extern "C" int fuzz_gguf(const uint8_t *, size_t);
static const struct {
    const char * name;
    entry_fn fn;
} ENTRIES[] = {{"tokenize", fuzz_tokenize}, {"grammar", fuzz_grammar}, {"schema", fuzz_schema},
               {"template", fuzz_template}, {"gguf", fuzz_gguf}};
#else
extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size);
#endif

int main(int argc, char ** argv) {
    int first = 1;
    entry_fn entry = nullptr;
#if defined(FUZZ_REPLAY_ALL)
    for (const auto & e : ENTRIES) {
        if (argc > 1 && std::strcmp(argv[1], e.name) == 0) entry = e.fn;
    }
    if (!entry) {
        std::fprintf(stderr, "usage: %s tokenize|grammar|schema|template|gguf FILE...\n", argv[0]);
        return 2;
    }
    first = 2;
#else
    entry = LLVMFuzzerTestOneInput;
#endif
    for (int i = first; i < argc; ++i) {
        FILE * f = std::fopen(argv[i], "rb");
        if (!f) {
            std::fprintf(stderr, "cannot open %s\n", argv[i]);
            return 2;
        }
        std::vector<uint8_t> data;
        uint8_t buf[65536];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.insert(data.end(), buf, buf + n);
        std::fclose(f);
        entry(data.data(), data.size());
        std::printf("replayed %s\n", argv[i]);
        std::fflush(stdout);
    }
    return 0;
}
