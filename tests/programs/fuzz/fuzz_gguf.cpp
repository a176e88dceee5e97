// A model file from bytes: written to a file (llama.h loads from paths) and loaded with
// llama_model_load_from_file, vocab only and in full; a loaded model is then tokenized with.
// The file lives in $TMPDIR (else /tmp) and is removed after each input.
#include "fuzz.h"

#include <cstdlib>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    static const char * tmpdir = std::getenv("TMPDIR");
    static const std::string path = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/llama-fuzz-gguf-" +
                                    std::to_string(getpid()) + ".gguf";
    fuzz_vocab();  // the log callback is set once, before any load
    FILE * f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    for (int vocab_only = 1; vocab_only >= 0; --vocab_only) {
        llama_model_params mp = llama_model_default_params();
        mp.vocab_only = vocab_only;
        llama_model * model = llama_model_load_from_file(path.c_str(), mp);
        if (!model) continue;
        llama_token toks[64];
        llama_tokenize(llama_model_get_vocab(model), "hello world", 11, toks, 64, true, false);
        llama_model_free(model);
    }
    std::remove(path.c_str());
    return 0;
}
