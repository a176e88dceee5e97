%% Drives llama_cpp_ex_nif in a real VM: generation works and is deterministic, bad input comes
%% back as {error, Reason} (or badarg) and the VM stays alive. Prints ERLANG NIF OK.
-module(llama_nif_selftest).
-export([main/0, run/1, probe/1, hostile_main/0]).

%% erl ... -s llama_nif_selftest main -extra ModelPath: runs run/1, halts 0 on success, 1 otherwise
main() ->
    [ModelPath] = init:get_plain_arguments(),
    Status = try run(ModelPath) of
                 ok -> 0
             catch C:R:S ->
                 io:format("~p~n", [{C, R, S}]),
                 1
             end,
    halt(Status).

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
    %% llama-common, when the package has it: chat template + JSON-schema constrained output
    Schema = <<"{\"type\": \"object\", \"properties\": {\"ok\": {\"type\": \"boolean\"}}, "
               "\"required\": [\"ok\"], \"additionalProperties\": false}">>,
    case llama_cpp_ex_nif:chat_json(Model, <<"hello">>, Schema) of
        {ok, Prompt, Json} ->
            true = binary:match(Prompt, <<"hello">>) =/= nomatch,
            <<"{", _/binary>> = Json,
            %% hex on one line: the grammar may emit newlines and tabs between the tokens
            io:format("erlang chat_json hex: ~s~n", [binary:encode_hex(Json)]);
        {error, <<"built without llama-common">>} ->
            io:format("erlang chat_json: not in this package~n")
    end,
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

%% erl ... -s llama_nif_selftest hostile_main -extra ModelPath: one hostile value per class of
%% tests/test_hostile_api.py through the NIF (a dirty CPU scheduler, its smaller stack): each must
%% be {error, _}, and the VM must still generate afterwards. Prints ERLANG HOSTILE OK, halts 0.
hostile_main() ->
    [ModelPath] = init:get_plain_arguments(),
    Model = list_to_binary(ModelPath),
    N = 100000,
    Deep = fun(Open, Middle, Close) -> iolist_to_binary([binary:copy(Open, N), Middle, binary:copy(Close, N)]) end,
    Cases = [{<<"token id past the vocabulary">>, <<"piece">>, <<"n_vocab">>},
             {<<"negative token id">>, <<"detokenize">>, <<"-5">>},
             {<<"output index without logits">>, <<"sample">>, <<"7">>},
             {<<"sequence id past the cache">>, <<"seq">>, <<"256">>},
             {<<"decode: bad sequence id, no positions">>, <<"decode_seq">>, <<"200000000">>},
             {<<"decode: more tokens than n_batch">>, <<"decode_many">>, <<"n_batch+1">>},
             {<<"no candidates to sample">>, <<"candidates">>, <<"0">>},
             {<<"deeply nested grammar">>, <<"grammar">>, <<"root ::= ", (Deep(<<"(">>, <<"\"a\"">>, <<")">>))/binary>>},
             {<<"trigger pattern that is no regex">>, <<"trigger">>, <<"(unclosed">>},
             {<<"deeply nested JSON schema">>, <<"schema">>,
              Deep(<<"{\"type\": \"array\", \"items\": ">>, <<"{\"type\": \"string\"}">>, <<"}">>)},
             {<<"recursive template macro">>, <<"template">>,
              <<"{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}">>},
             {<<"deeply nested template expression">>, <<"template">>,
              <<"{{ ", (Deep(<<"(">>, <<"1">>, <<")">>))/binary, " }}">>},
             {<<"endless template loop">>, <<"template">>,
              <<"{% for a in range(100000) %}{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}">>}],
    Results = [begin
                   R = llama_cpp_ex_nif:hostile(Model, Kind, Value),
                   io:format("hostile ~s: ~p~n", [Name, element(1, R)]),
                   {Name, R}
               end || {Name, Kind, Value} <- Cases],
    Bad = [Name || {Name, R} <- Results, element(1, R) =/= error],
    {ok, [_ | _]} = llama_cpp_ex_nif:generate(Model, <<"hello world">>, 4),
    case Bad of
        [] -> io:format("ERLANG HOSTILE OK~n"), halt(0);
        _ -> io:format("not an error: ~p~n", [Bad]), halt(1)
    end.
