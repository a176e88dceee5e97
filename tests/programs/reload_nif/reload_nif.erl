%% Erlang side of reload_nif.c: loads $RELOAD_NIF_DIR/reload_nif.so.
-module(reload_nif).
-export([version/0, vocab_size/1]).
-on_load(init/0).

init() -> erlang:load_nif(filename:join(os:getenv("RELOAD_NIF_DIR"), "reload_nif"), 0).

version() -> erlang:nif_error(not_loaded).
vocab_size(_Path) -> erlang:nif_error(not_loaded).
