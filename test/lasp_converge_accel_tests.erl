%% @doc `lasp_converge_accel' on three real Lasp 0.8 nodes (the build at
%% `$LASP_CONVERGE_LASP_LIB', by default `../shared/lasp-0.8/lib'; skipped
%% with a message without it): the same updates on stock and accelerated
%% nodes converge to the same values; accelerate and decelerate are
%% idempotent, reach every member, and leave types' own beams loaded
%% afterwards; a node keeps taking updates while its code is swapped back
%% and forth; the adapter (`lasp_converge_lasp') tracks a real Lasp
%% variable; refusals for a types version or a beam without debug_info.
-module(lasp_converge_accel_tests).

-include_lib("eunit/include/eunit.hrl").

-define(A, lasp_converge_accel).
-define(R, lasp_converge_real_lasp).

real_lasp_test_() ->
    case ?R:lib_dir() of
        {error, Why} ->
            io:format(user, "~nlasp_converge_accel_tests: real Lasp tests skipped: ~p~n", [Why]),
            [];
        {ok, _} ->
            {setup, fun setup/0, fun ?R:stop/1,
             fun(Ctx) ->
                     {inorder,
                      [{Name, {timeout, 120, fun() -> F(Ctx) end}}
                       || {Name, F} <- [{"stock at start", fun stock_at_start/1},
                                        {"stock and accelerated converge alike",
                                         fun same_values/1},
                                        {"idempotent, status everywhere", fun idempotent/1},
                                        {"swapping code under load", fun under_load/1},
                                        {"decelerate restores types' beams", fun restored/1},
                                        {"the adapter on real Lasp", fun adapter/1}]]}
             end}
    end.

setup() ->
    {ok, Ctx} = ?R:start(3, #{prefix => "lc_accel", state_interval => 200}),
    Ctx.

call(N, M, F, A) -> erpc:call(N, M, F, A, 60000).

all_status(Ctx, S) ->
    Ns = ?R:nodes(Ctx),
    maps:from_list([{N, maps:from_list([{M, S} || M <- ?A:accelerated_types()])} || N <- Ns]).

stock_at_start(Ctx = #{nodes := [N1 | _]}) ->
    ?assertEqual({ok, all_status(Ctx, stock)}, call(N1, ?A, status, [#{nodes => all}])).

%% The scenario, run with ids under `Tag': updates on every node, then the
%% values each node queries once all agree.
scenario(Ns, Tag) ->
    Id = fun(T) -> {<<Tag/binary, "_", (atom_to_binary(T))/binary>>, T} end,
    [N1, N2, N3] = Ns,
    G = Id(state_gcounter),
    O = Id(state_orset),
    A = Id(state_awset),
    P = Id(state_pncounter),
    [{ok, _} = call(N, lasp, declare, [I, T]) || N <- Ns, {_, T} = I <- [G, O, A, P]],
    %% 300 actors on the gcounter, as lasp:update/3 takes them: binaries,
    %% strings, atoms.
    Actors = [case K rem 3 of
                  0 -> integer_to_binary(K);
                  1 -> "client" ++ integer_to_list(K);
                  2 when K =:= 2 -> node_actor;
                  2 -> <<"n", (integer_to_binary(K))/binary>>
              end || K <- lists:seq(1, 300)],
    [{ok, _} = call(lists:nth(1 + K rem 3, Ns), lasp, update, [G, increment, Act])
     || {K, Act} <- lists:zip(lists:seq(1, 300), Actors)],
    [{ok, _} = call(N, lasp, update, [O, {add, E}, atom_to_binary(N)])
     || N <- Ns, E <- [1, <<"b">>, {t, 3}, 7]],
    {ok, _} = call(N2, lasp, update, [O, {add, only_n2}, <<"n2">>]),
    {ok, _} = call(N2, lasp, update, [O, {rmv, only_n2}, <<"n2">>]),
    {ok, _} = call(N1, lasp, update, [A, {add_all, lists:seq(1, 200)}, <<"n1">>]),
    {ok, _} = call(N3, lasp, update, [A, {add_all, [{e, K} || K <- lists:seq(1, 100)]}, <<"n3">>]),
    {ok, _} = call(N1, lasp, update, [A, {rmv, 5}, <<"n1">>]),
    [{ok, _} = call(N, lasp, update, [P, Op, atom_to_binary(N)])
     || N <- Ns, Op <- [increment, increment, decrement]],
    %% Every node holds every update: equal values alone are not enough
    %% (three nodes that each hold only their own pncounter changes agree on
    %% 1).
    wait_until(fun() ->
                       Vs = [[query(N, I) || I <- [G, O, A, P]] || N <- Ns],
                       case lists:usort(Vs) of
                           [[300, Os, AWs, 3]] -> length(Os) =:= 4 andalso length(AWs) =:= 299;
                           _ -> false
                       end
               end, 60000),
    [query(N1, I) || I <- [G, O, A, P]].

query(N, Id) ->
    {ok, V} = call(N, lasp, query, [Id]),
    case sets:is_set(V) of
        true -> lists:sort(sets:to_list(V));
        false -> V
    end.

same_values(Ctx = #{nodes := [N1 | _] = Ns}) ->
    Stock = scenario(Ns, <<"stock">>),
    ?assertEqual({ok, all_status(Ctx, accelerated)}, call(N1, ?A, accelerate, [#{nodes => all}])),
    Accel = scenario(Ns, <<"accel">>),
    ?assertEqual(Stock, Accel),
    %% The values themselves: 300, 4 elements, 299, 3.
    ?assertMatch([300, O, AW, 3] when length(O) =:= 4 andalso length(AW) =:= 299, Accel),
    %% Every node holds a generated module and types' code beside it.
    [begin
         ?assertMatch({lasp_converge_accel, [_]},
                      lists:keyfind(lasp_converge_accel, 1,
                                    call(N, state_gcounter, module_info, [attributes]))),
         ?assert(call(N, erlang, module_loaded, ['state_gcounter$types']))
     end || N <- Ns].

idempotent(Ctx = #{nodes := [N1, N2 | _]}) ->
    ?assertEqual({ok, all_status(Ctx, accelerated)}, call(N2, ?A, accelerate, [#{nodes => all}])),
    ?assertEqual({ok, all_status(Ctx, accelerated)}, call(N1, ?A, status, [#{nodes => all}])),
    ?assertEqual({error, {not_accelerable, [state_foo]}},
                 call(N1, ?A, accelerate, [#{types => [state_foo]}])),
    ?assertEqual({error, {bad_nodes, 3}}, call(N1, ?A, accelerate, [#{nodes => 3}])).

%% A process updates a gcounter on N1 without pause while N1's code goes
%% back and forth: no update fails, none is lost.
under_load(#{nodes := [N1 | _] = Ns}) ->
    Id = {<<"load_gcounter">>, state_gcounter},
    {ok, _} = call(N1, lasp, declare, [Id, state_gcounter]),
    Self = self(),
    Loader = spawn_link(fun() -> load_loop(N1, Id, Self, 0) end),
    timer:sleep(200),
    [begin
         ?assertMatch({ok, _}, call(N1, ?A, decelerate, [])),
         timer:sleep(100),
         ?assertMatch({ok, _}, call(N1, ?A, accelerate, [])),
         timer:sleep(100)
     end || _ <- lists:seq(1, 3)],
    Loader ! stop,
    Count = receive {done, Loader, C} -> C after 30000 -> error(no_loader_result) end,
    ?assert(Count > 0),
    wait_until(fun() -> lists:all(fun(N) -> query(N, Id) =:= Count end, Ns) end, 30000),
    ?assertMatch({ok, #{N1 := #{state_gcounter := accelerated}}}, call(N1, ?A, status, [])).

load_loop(N, Id, Parent, K) ->
    receive
        stop -> Parent ! {done, self(), K}
    after 0 ->
            {ok, _} = call(N, lasp, update, [Id, increment, integer_to_binary(K rem 50)]),
            load_loop(N, Id, Parent, K + 1)
    end.

restored(Ctx = #{nodes := [N1 | _] = Ns}) ->
    ?assertEqual({ok, all_status(Ctx, stock)}, call(N1, ?A, decelerate, [#{nodes => all}])),
    ?assertEqual({ok, all_status(Ctx, stock)}, call(N1, ?A, decelerate, [#{nodes => all}])),
    [[begin
          File = call(N, code, which, [M]),
          ?assertMatch({ok, {M, _}}, beam_lib:md5(File)),
          {ok, {M, Md5}} = beam_lib:md5(File),
          ?assertEqual(Md5, call(N, M, module_info, [md5])),
          ?assertNot(call(N, erlang, module_loaded,
                          [list_to_atom(atom_to_list(M) ++ "$types")]))
      end || M <- ?A:accelerated_types()] || N <- Ns],
    %% Lasp still works on types' own code.
    Id = {<<"after_gcounter">>, state_gcounter},
    {ok, _} = call(N1, lasp, update, [Id, increment, <<"a">>]),
    wait_until(fun() -> lists:all(fun(N) -> query(N, Id) =:= 1 end, Ns) end, 30000).

%% lasp_converge_lasp against the real Lasp: members, tracking, timed
%% updates converging, settings, with the nodes accelerated.
adapter(#{nodes := [N1, N2, N3] = Ns}) ->
    {ok, _} = call(N1, ?A, accelerate, [#{nodes => all}]),
    [{ok, _} = call(N, application, ensure_all_started, [lasp_converge]) || N <- [N1, N2]],
    Id = {<<"adapter_awset">>, state_awset},
    ?assertEqual({ok, #{members => lists:sort(Ns), instrumented => lists:sort([N1, N2]),
                        not_instrumented => [N3]}},
                 call(N1, lasp_converge_lasp, members, [])),
    {ok, _} = call(N1, lasp_converge_lasp, track, [Id]),
    [{ok, _} = call(N, lasp_converge_lasp, update, [Id, {add, {N, K}}, atom_to_binary(N)])
     || N <- [N1, N2], K <- lists:seq(1, 5)],
    wait_until(fun() ->
                       S = call(N1, lasp_converge, stats, [Id]),
                       maps:get(updates, S) =:= 10 andalso maps:get(converged, S) =:= 10
               end, 30000),
    ?assertEqual({ok, Ns}, call(N2, lasp_converge_lasp, set, [#{state_interval => 150}])),
    [?assertEqual(150, call(N, lasp_config, get, [state_interval, 0])) || N <- Ns],
    {ok, _} = call(N1, ?A, decelerate, [#{nodes => all}]).

%% Refusals, on a plain node whose `types' is not the real one.
refusals_test_() ->
    {timeout, 60,
     fun() ->
             WasAlive = is_alive(),
             WasAlive orelse begin
                                 _ = os:cmd("epmd -daemon"),
                                 {ok, _} = net_kernel:start(
                                             [list_to_atom(lists:concat(["lc_accel_ctl_", os:getpid()])),
                                              shortnames])
                             end,
             Name = list_to_atom(lists:concat(["lc_accel_refuse_", os:getpid(), "_",
                                               erlang:unique_integer([positive])])),
             Ebin = filename:dirname(code:which(?A)),
             {ok, Peer, N} = peer:start_link(#{name => Name, args => ["-pa", Ebin]}),
             try
                 App = fun(Vsn) -> {application, types, [{vsn, Vsn}, {modules, []},
                                                        {registered, []},
                                                        {applications, [kernel, stdlib]}]}
                       end,
                 ok = call(N, application, load, [App("0.1.7")]),
                 ?assertEqual({error, {types_version, "0.1.7", "0.1.8"}}, call(N, ?A, accelerate, [])),
                 ok = call(N, application, unload, [types]),
                 ok = call(N, application, load, [App("0.1.8")]),
                 %% A state_gcounter compiled without debug_info.
                 Dir = filename:join(["/tmp", atom_to_list(Name)]),
                 ok = filelib:ensure_dir(filename:join(Dir, "x")),
                 Src = filename:join(Dir, "state_gcounter.erl"),
                 ok = file:write_file(Src, "-module(state_gcounter).\n-export([new/0]).\n"
                                      "new() -> {state_gcounter, []}.\n"),
                 {ok, _} = compile:file(Src, [{outdir, Dir}]),
                 true = call(N, code, add_patha, [Dir]),
                 ?assertEqual({error, {no_debug_info, state_gcounter}},
                              call(N, ?A, accelerate, [#{types => [state_gcounter]}])),
                 ?assertEqual({ok, #{N => maps:from_list([{M, stock} || M <- ?A:accelerated_types()])}},
                              call(N, ?A, status, [])),
                 %% Nothing accelerated to undo.
                 ?assertMatch({ok, #{N := _}}, call(N, ?A, decelerate, [])),
                 os:cmd("rm -rf " ++ Dir)
             after
                 peer:stop(Peer),
                 WasAlive orelse net_kernel:stop()
             end
     end}.

wait_until(F, Ms) when Ms > 0 ->
    case F() of
        true -> ok;
        false ->
            timer:sleep(50),
            wait_until(F, Ms - 50)
    end;
wait_until(F, _) ->
    ?assert(F()).
