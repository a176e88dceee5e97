// main() for the harnesses built without libFuzzer: every harness in one program, each entry point
// renamed (tests/programs/CMakeLists.txt), run once per file named on the command line
// (tests/test_fuzz_corpus.py gives each regression input its own process).
//   fuzz_replay HARNESS FILE...
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

extern "C" int fuzz_tokenize(const uint8_t *, size_t);
extern "C" int fuzz_grammar(const uint8_t *, size_t);
extern "C" int fuzz_schema(const uint8_t *, size_t);
extern "C" int fuzz_template(const uint8_t *, size_t);
extern "C" int fuzz_gguf(const uint8_t *, size_t);

static const struct {
    const char * name;
    int (*fn)(const uint8_t * data, size_t size);
} ENTRIES[] = {{"tokenize", fuzz_tokenize}, {"grammar", fuzz_grammar}, {"schema", fuzz_schema},
               {"template", fuzz_template}, {"gguf", fuzz_gguf}};

int main(int argc, char ** argv) {
    int (*entry)(const uint8_t *, size_t) = nullptr;
    for (const auto & e : ENTRIES) {
        if (argc > 1 && std::strcmp(argv[1], e.name) == 0) entry = e.fn;
    }
    if (!entry) {
        std::fprintf(stderr, "usage: %s tokenize|grammar|schema|template|gguf FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 2; i < argc; ++i) {
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
