%% Drives llama_cpp_ex_nif in a real VM: generation works and is deterministic, bad input comes
%% back as {error, Reason} (or badarg) and the VM stays alive. Prints ERLANG NIF OK.
-module(llama_nif_selftest).
-export([run/1, probe/1]).

run(ModelPath) ->
    Model = list_to_binary(ModelPath),
    Info = llama_cpp_ex_nif:system_info(),
    true = is_binary(Info) andalso byte_size(Info) > 0,
    io:format("system_info: ~s~n", [Info]),
    [_ | _] = Devices = llama_cpp_ex_nif:devices(),
    io:format("devices: ~p~n", [Devices]),
    {ok, Tokens} = llama_cpp_ex_nif:generate(Model, <<"hello world">>, 16),
    16 = length(Tokens),
    {ok, Tokens} = llama_cpp_ex_nif:generate(Model, <<"hello world">>, 16),
    io:format("generated: ~w~n", [Tokens]),
    {error, Missing} = llama_cpp_ex_nif:generate(<<"/nonexistent/model.gguf">>, <<"hi">>, 4),
    io:format("missing model -> ~s~n", [Missing]),
    {error, TooLong} = llama_cpp_ex_nif:generate(Model, <<"hi">>, 4000),
    io:format("n_predict beyond context -> ~s~n", [TooLong]),
    %% an empty prompt is just the BOS token: a correct result, not a crash
    {ok, [_, _, _, _]} = llama_cpp_ex_nif:generate(Model, <<>>, 4),
    ok = try llama_cpp_ex_nif:generate(not_a_binary, <<"hi">>, 4) of
             _ -> unexpected
         catch
             error:badarg -> ok
         end,
    %% the VM is still alive and the NIF still works after the errors
    {ok, Tokens} = llama_cpp_ex_nif:generate(Model, <<"hello world">>, 16),
    io:format("ERLANG NIF OK~n"),
    ok.

%% Feeds hostile model files to the NIF in one VM: every call must return, the VM must survive.
probe(Files) ->
    lists:foreach(fun(File) ->
                          Verdict = case llama_cpp_ex_nif:generate(list_to_binary(File), <<"hello">>, 2) of
                                        {ok, _} -> ok;
                                        {error, _} -> error
                                    end,
                          io:format("result ~s ~s~n", [File, Verdict])
                  end, Files),
    io:format("ERLANG PROBE DONE~n"),
    ok.
