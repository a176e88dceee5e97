// A chat template (it comes from the GGUF file) and the messages (they come from the caller), both
// from the input: the template is the text before the first NUL byte, each further NUL-separated
// piece is a message, roles alternating user/assistant. common_chat_templates_init + apply, as a
// NIF does; exceptions are errors, a crash, a stack overflow or a hang is not.
#include "fuzz.h"

#include "chat.h"

#include <exception>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string input((const char *) data, size);
    const size_t end = input.find('\0');
    const std::string tmpl = input.substr(0, end);
    try {
        common_chat_templates_ptr tmpls = common_chat_templates_init(fuzz_model(), tmpl);
        common_chat_templates_inputs inputs;
        size_t pos = end == std::string::npos ? input.size() : end + 1;
        for (int i = 0; pos < input.size() && i < 16; ++i) {
            size_t next = input.find('\0', pos);
            if (next == std::string::npos) next = input.size();
            common_chat_msg msg;
            msg.role = i % 2 ? "assistant" : "user";
            msg.content = input.substr(pos, next - pos);
            inputs.messages.push_back(msg);
            pos = next + 1;
        }
        if (inputs.messages.empty()) {
            common_chat_msg msg;
            msg.role = "user";
            msg.content = "hello";
            inputs.messages.push_back(msg);
        }
        common_chat_templates_apply(tmpls.get(), inputs);
    } catch (const std::exception &) {
    }
    return 0;
}
