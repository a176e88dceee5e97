%% Erlang side of the test NIF: loads priv/llama_cpp_ex_nif.so from $LLAMA_NIF_PRIV.
-module(llama_cpp_ex_nif).
-export([system_info/0, devices/0, generate/3, chat_json/3, hostile/3]).
-on_load(init/0).

init() ->
    Priv = os:getenv("LLAMA_NIF_PRIV", "priv"),
    erlang:load_nif(filename:join(Priv, "llama_cpp_ex_nif"), 0).

system_info() -> erlang:nif_error(not_loaded).
devices() -> erlang:nif_error(not_loaded).
generate(_Model, _Prompt, _NPredict) -> erlang:nif_error(not_loaded).
chat_json(_Model, _Message, _Schema) -> erlang:nif_error(not_loaded).
hostile(_Model, _Kind, _Value) -> erlang:nif_error(not_loaded).
