%% @doc Binary payloads on three real Lasp 0.8 nodes (the build at
%% `$LASP_CONVERGE_LASP_LIB', by default `../shared/lasp-0.8/lib'; skipped
%% with a message without it): refused while a member is not accelerated;
%% once on, variables declared before hold binaries with the same values,
%% the same updates converge to the same query values as on stock nodes;
%% `decelerate' turns them back into types' terms, values unchanged, and
%% Lasp goes on with types' own code; and a node taking updates without
%% pause while payloads switch back and forth loses none. In Lasp's
%% state-based and delta-based modes.
-module(lasp_converge_payload_tests).

-include_lib("eunit/include/eunit.hrl").

-define(A, lasp_converge_accel).
-define(R, lasp_converge_real_lasp).

real_lasp_test_() ->
    case ?R:lib_dir() of
        {error, Why} ->
            io:format(user, "~nlasp_converge_payload_tests: real Lasp tests skipped: ~p~n", [Why]),
            [];
        {ok, _} ->
            [{Name,
              {setup,
               fun() ->
                       {ok, Ctx} = ?R:start(3, #{prefix => Prefix, state_interval => 200,
                                                 lasp_env => Env}),
                       Ctx
               end,
               fun ?R:stop/1,
               fun(Ctx = #{nodes := [N1 | _]}) ->
                       {timeout, 300,
                        fun() ->
                                ?assertEqual(Mode, call(N1, lasp_config, get, [mode, none])),
                                round_trip(Ctx),
                                under_load(Ctx)
                        end}
               end}}
             || {Name, Prefix, Mode, Env} <- [{"state-based", "lc_payload", state_based, []},
                                              {"delta-based", "lc_payload_delta", delta_based,
                                               [{mode, delta_based}, {delta_interval, 200}]}]]
    end.

call(N, M, F, A) -> erpc:call(N, M, F, A, 60000).

round_trip(#{nodes := [N1, N2, N3] = Ns}) ->
    %% Stock: one scenario to compare with, one left for the conversion.
    Stock = scenario(Ns, <<"stock">>),
    Before = scenario(Ns, <<"before">>),
    ?assertEqual(Stock, Before),
    %% Refused while N2 and N3 run types' own code; N1 then holds terms.
    ?assertMatch({ok, _}, call(N1, ?A, accelerate, [])),
    ?assertEqual({error, {not_accelerated, [N2, N3]}},
                 call(N1, ?A, accelerate, [#{payload => binary}])),
    ?assertEqual(term, call(N1, lasp_converge_payload, mode, [])),
    [?assertNot(is_binary(payload(N, I))) || N <- Ns, I <- ids(<<"before">>)],
    %% On everywhere: every member's gset and gcounter say so.
    {ok, St} = call(N2, ?A, accelerate, [#{nodes => all, payload => binary}]),
    [?assertMatch(#{state_gset := binary, state_gcounter := binary, state_orset := accelerated},
                  maps:get(N, St)) || N <- Ns],
    %% The variables already there hold binaries now, same values.
    [?assert(is_binary(payload(N, I))) || N <- Ns, I <- ids(<<"before">>)],
    ?assertEqual(Before, [query(N1, I) || I <- ids(<<"before">>)]),
    %% New variables too, and the same updates give the same values.
    Binary = scenario(Ns, <<"binary">>),
    ?assertEqual(Stock, Binary),
    [?assert(is_binary(payload(N, I))) || N <- Ns, I <- ids(<<"binary">>)],
    %% More updates to converted variables converge.
    [GB, _] = ids(<<"before">>),
    [{ok, _} = call(N, lasp, update, [GB, {add, {late, N}}, <<"x">>]) || N <- Ns],
    wait_until(fun() -> lists:usort([length(query(N, GB)) || N <- Ns]) =:= [length(hd(Stock)) + 3] end,
               60000),
    %% Back to terms, values unchanged, types' own code.
    Values = [query(N1, I) || I <- ids(<<"before">>) ++ ids(<<"binary">>)],
    {ok, Dec} = call(N3, ?A, decelerate, [#{nodes => all}]),
    [?assertEqual(stock, maps:get(state_gset, maps:get(N, Dec))) || N <- Ns],
    [?assertEqual(term, call(N, lasp_converge_payload, mode, [])) || N <- Ns],
    [?assert(is_list(payload(N, I))) || N <- Ns, I <- ids(<<"before">>) ++ ids(<<"binary">>)],
    [?assertEqual(Values, [query(N, I) || I <- ids(<<"before">>) ++ ids(<<"binary">>)]) || N <- Ns],
    [{ok, _} = call(N, lasp, update, [GB, {add, {after_stock, N}}, <<"y">>]) || N <- Ns],
    wait_until(fun() -> lists:usort([length(query(N, GB)) || N <- Ns]) =:= [length(hd(Stock)) + 6] end,
               60000).

%% A process updates a gcounter on N1 without pause while the cluster
%% goes from terms to binaries and back, then to types' own code: no
%% update fails, none is lost, every node ends with the count.
under_load(#{nodes := [N1 | _] = Ns}) ->
    Id = {<<"load_gcounter">>, state_gcounter},
    {ok, _} = call(N1, ?A, accelerate, [#{nodes => all}]),
    {ok, _} = call(N1, lasp, declare, [Id, state_gcounter]),
    Self = self(),
    Loader = spawn_link(fun() -> load_loop(N1, Id, Self, 0) end),
    timer:sleep(200),
    [begin
         ?assertMatch({ok, _}, call(N1, ?A, accelerate, [#{nodes => all, payload => binary}])),
         timer:sleep(150),
         ?assertMatch({ok, _}, call(N1, ?A, accelerate, [#{nodes => all, payload => term}])),
         timer:sleep(150)
     end || _ <- lists:seq(1, 3)],
    ?assertMatch({ok, _}, call(N1, ?A, accelerate, [#{nodes => all, payload => binary}])),
    timer:sleep(150),
    ?assertMatch({ok, _}, call(N1, ?A, decelerate, [#{nodes => all, grace => 300}])),
    timer:sleep(150),
    Loader ! stop,
    Count = receive {done, Loader, C} -> C after 30000 -> error(no_loader_result) end,
    ?assert(Count > 0),
    wait_until(fun() -> lists:all(fun(N) -> query(N, Id) =:= Count end, Ns) end, 60000),
    [?assert(is_list(payload(N, Id))) || N <- Ns].

load_loop(N, Id, Parent, K) ->
    receive
        stop -> Parent ! {done, self(), K}
    after 0 ->
            {ok, _} = call(N, lasp, update, [Id, increment, integer_to_binary(K rem 50)]),
            load_loop(N, Id, Parent, K + 1)
    end.

ids(Tag) ->
    [{<<Tag/binary, "_gset">>, state_gset}, {<<Tag/binary, "_gcounter">>, state_gcounter}].

%% Updates on every node (Lasp-like elements: integers, floats, atoms,
%% binaries, tuples; actors as lasp:update/3 takes them: binaries, strings,
%% an atom), then the values once every node has all.
scenario(Ns, Tag) ->
    [G, C] = ids(Tag),
    [{ok, _} = call(N, lasp, declare, [I, T]) || N <- Ns, {_, T} = I <- [G, C]],
    [{ok, _} = call(N, lasp, update, [G, {add, E}, atom_to_binary(N)])
     || {K, N} <- lists:zip(lists:seq(1, 3), Ns),
        E <- [K, <<"b", (integer_to_binary(K))/binary>>, {t, K, [x]}, node_atom, 2.5]],
    Actors = [case K rem 3 of
                  0 -> integer_to_binary(K);
                  1 -> "client" ++ integer_to_list(K);
                  2 when K =:= 2 -> node_actor;
                  2 -> <<"n", (integer_to_binary(K))/binary>>
              end || K <- lists:seq(1, 150)],
    [{ok, _} = call(lists:nth(1 + K rem 3, Ns), lasp, update, [C, increment, Act])
     || {K, Act} <- lists:zip(lists:seq(1, 150), Actors), _ <- [1, 2]],
    wait_until(fun() ->
                       case lists:usort([[query(N, I) || I <- [G, C]] || N <- Ns]) of
                           [[Gs, 300]] -> length(Gs) =:= 11;
                           _ -> false
                       end
               end, 60000),
    [query(hd(Ns), I) || I <- [G, C]].

query(N, Id) ->
    {ok, V} = call(N, lasp, query, [Id]),
    case sets:is_set(V) of
        true -> lists:sort(sets:to_list(V));
        false -> V
    end.

%% The payload Lasp's store holds for `Id' on `N'.
payload(N, Id) ->
    {ok, {_, _, _, {_, P}}} = call(N, lasp, read, [Id, undefined]),
    P.

wait_until(F, Ms) when Ms > 0 ->
    case F() of
        true -> ok;
        false ->
            timer:sleep(50),
            wait_until(F, Ms - 50)
    end;
wait_until(F, _) ->
    ?assert(F()).
