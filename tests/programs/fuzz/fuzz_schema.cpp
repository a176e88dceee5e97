// A JSON schema (as an API request would carry it) to a GBNF grammar with llama-common, and that
// grammar to llama_sampler_init_grammar: exceptions are the documented errors, nothing else is.
#include "fuzz.h"

#include "json-schema-to-grammar.h"
#include "json.h"

#include <exception>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const llama_vocab * vocab = fuzz_vocab();
    std::string grammar;
    try {
        grammar = json_schema_to_grammar(common_json::parse(std::string((const char *) data, size)));
    } catch (const std::exception &) {
        return 0;
    }
    if (llama_sampler * smpl = llama_sampler_init_grammar(vocab, grammar.c_str(), "root")) {
        llama_sampler_free(smpl);
    }
    return 0;
}
