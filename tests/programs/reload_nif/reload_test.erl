%% Hot upgrade of a NIF in one VM: load version 1 and call it, purge the module, wait for the .so
%% to leave the memory map, put version 2 at the same path, load again. Prints one line per
%% step; the Python test reads them. erl -noshell -pa EBIN -s reload_test main -extra SO V2 VOCAB
-module(reload_test).
-export([main/0]).

main() ->
    [So, V2, Vocab] = init:get_plain_arguments(),
    io:format("before: version ~p vocab ~p mapped ~p~n",
              [reload_nif:version(), reload_nif:vocab_size(list_to_binary(Vocab)), mapped(So)]),
    code:delete(reload_nif),
    code:purge(reload_nif),
    io:format("purged: mapped ~p~n", [wait_unmapped(So, 50)]),
    %% a release unpacks the new file and renames it into place (a new inode; writing into the
    %% old file in place would change code a pinned library still runs)
    {ok, _} = file:copy(V2, So ++ ".new"),
    ok = file:rename(So ++ ".new", So),
    io:format("after: version ~p vocab ~p~n", [reload_nif:version(), reload_nif:vocab_size(list_to_binary(Vocab))]),
    halt(0).

mapped(So) ->
    Maps = os:cmd("cat /proc/" ++ os:getpid() ++ "/maps"),
    string:find(Maps, So) =/= nomatch.

%% the VM closes the library once no process runs the old code; give it up to 5 s
wait_unmapped(So, 0) -> mapped(So);
wait_unmapped(So, N) ->
    case mapped(So) of
        false -> false;
        true -> timer:sleep(100), wait_unmapped(So, N - 1)
    end.
