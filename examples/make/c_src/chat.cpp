// The one C++ file of the example NIF: llama-common's chat templates (a C++ API) behind a C
// function the C NIF calls. No exception crosses into the VM.
#include "chat.h"
#include "llama.h"

#include <cstring>
#include <string>

extern "C" int llama_ex_chat_prompt(const struct llama_model * model, const char * message, char * out,
                                    size_t cap) {
    try {
        // the model's own template; upstream's built-in ChatML when the GGUF has none
        common_chat_templates_ptr templates = common_chat_templates_init(model, "");
        common_chat_templates_inputs inputs;
        common_chat_msg msg;
        msg.role = "user";
        msg.content = message;
        inputs.messages.push_back(msg);
        const std::string prompt = common_chat_templates_apply(templates.get(), inputs).prompt;
        if (prompt.size() >= cap) return -1;
        std::memcpy(out, prompt.c_str(), prompt.size() + 1);
        return (int) prompt.size();
    } catch (...) {
        return -1;
    }
}
