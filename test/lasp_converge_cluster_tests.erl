%% @doc Convergence tracking across nodes: this node aggregates, two `peer'
%% nodes (same machine, the project's ebin on their code path) are members,
%% one of them with a clock 5 s ahead. The test itself passes states between
%% the nodes, calling `lasp_converge:observed/2' on each, and checks every
%% figure against timestamps it took on its own clock around each call:
%% a latency must lie between the tightest and the loosest bound those
%% timestamps allow, widened by the reported clock uncertainty.
-module(lasp_converge_cluster_tests).

-include_lib("eunit/include/eunit.hrl").

-define(C, lasp_converge_crdt).
-define(SKEW_US, 5000000).
-define(GAP_MS, 30).

cluster_test_() ->
    {timeout, 60, fun cluster/0}.

now_us() -> os:system_time(microsecond).

cluster() ->
    Started = ensure_distributed(),
    {ok, _} = application:ensure_all_started(lasp_converge),
    Ebin = filename:dirname(code:which(lasp_converge)),
    Peers = [start_peer(Ebin) || _ <- [1, 2]],
    try
        aggregator_only(Peers),
        run(Peers),
        join(Ebin, [N || {_, N} <- Peers])
    after
        [catch peer:stop(P) || {P, _} <- Peers],
        application:stop(lasp_converge),
        Started andalso net_kernel:stop()
    end.

ensure_distributed() ->
    case is_alive() of
        true ->
            false;
        false ->
            _ = os:cmd("epmd -daemon"),
            Name = list_to_atom("lc_cluster_" ++ integer_to_list(erlang:unique_integer([positive]))),
            {ok, _} = net_kernel:start([Name, shortnames]),
            true
    end.

start_peer(Ebin) ->
    {ok, P, Node} = peer:start_link(#{name => peer:random_name(lc_peer),
                                      args => ["-pa", Ebin]}),
    {ok, _} = erpc:call(Node, application, ensure_all_started, [lasp_converge]),
    {P, Node}.

%% Call `F' on `Node' and return `{Before, After, Result}', both timestamps
%% on this node's clock.
timed(Node, M, F, A) ->
    T0 = now_us(),
    R = erpc:call(Node, M, F, A),
    {T0, now_us(), R}.

run([{_, N1}, {P2, N2}]) ->
    ok = erpc:call(N2, application, set_env, [lasp_converge, clock_offset_us, ?SKEW_US]),
    V = {<<"cluster">>, state_orset},
    ok = lasp_converge:track(V, #{nodes => [node(), N1, N2]}),
    %% The aggregator synchronised the clocks while tracking started.
    S0 = lasp_converge:stats(V),
    ?assertEqual(lists:sort([node(), N1, N2]), lists:sort(maps:get(nodes, S0))),

    %% Update 1 on N1 (true clock), seen here, then on N2 (skewed).
    B0 = ?C:new(state_orset),
    {ok, A1} = ?C:mutate({add, one}, N1, B0),
    {U1a, U1b, ok} = timed(N1, lasp_converge, updated, [V, B0, A1]),
    timer:sleep(?GAP_MS),
    {H1a, H1b, ok} = timed(node(), lasp_converge, observed, [V, A1]),
    timer:sleep(?GAP_MS),
    {S1a, S1b, ok} = timed(N2, lasp_converge, observed, [V, A1]),
    St1 = wait(V, fun(#{converged := C}) -> C >= 1 end),
    U = maps:get(clock_uncertainty_us, St1),
    ?assert(U < 100000, {uncertainty, U}),
    ?assertEqual([], maps:get(unsynced_nodes, St1)),
    %% Convergence = N2's first-seen - update time.
    within(S1a - U1b - U, S1b - U1a + U, maps:get(max, St1)),
    #{per_node := #{N2 := N2Stats}} = St1,
    Self = maps:get(node(), maps:get(per_node, St1)),
    within(S1a - U1b - U, S1b - U1a + U, maps:get(max, N2Stats)),
    within(H1a - U1b - U, H1b - U1a + U, maps:get(max, Self)),

    %% Update 2 on the skewed node, seen by N1, then here.
    {ok, A2} = ?C:mutate({add, two}, N2, A1),
    {U2a, U2b, ok} = timed(N2, lasp_converge, updated, [V, A1, A2]),
    timer:sleep(?GAP_MS),
    {_, _, ok} = timed(N1, lasp_converge, observed, [V, A2]),
    timer:sleep(?GAP_MS),
    {H2a, H2b, ok} = timed(node(), lasp_converge, observed, [V, A2]),
    %% Bad input on a member node.
    ?assertMatch({error, {badcrdt, {type_mismatch, _, _}}},
                 erpc:call(N1, lasp_converge, observed, [V, {state_gset, []}])),
    ?assertEqual({error, {badcrdt, not_a_crdt}}, erpc:call(N1, lasp_converge, observed, [V, nope])),
    ?assertMatch({error, {badcrdt, _}}, erpc:call(N1, lasp_converge, updated, [V, A1, nope])),
    ?assertEqual({error, {badcrdt, {type_mismatch, state_orset, state_gset}}},
                 erpc:call(N1, lasp_converge, updated, [V, {state_gset, []}, {state_gset, [a]}])),
    ?assertEqual({error, not_tracked}, erpc:call(N1, lasp_converge, observed, [other, A1])),
    %% N2 holds its own update from the start; its observation is redundant.
    {_, _, ok} = timed(N2, lasp_converge, observed, [V, A2]),
    St2 = wait(V, fun(#{converged := C}) -> C >= 2 end),
    U2 = maps:get(clock_uncertainty_us, St2),
    Records = records(V),
    C2 = maps:get({N2, 1}, Records),
    within(H2a - U2b - U2, H2b - U2a + U2, C2),
    ?assertMatch(#{updates := 2, converged := 2, pending := 0, unconverged := 0,
                   negative_clamped := 0}, St2),
    %% Without the correction N2's 5 s lead would show as a 5 s latency.
    ?assert(maps:get(max, St2) < ?SKEW_US div 10),

    %% Update 3 on N1, seen here; N2 goes down before seeing it.
    {ok, A3} = ?C:mutate({add, three}, N1, A2),
    {U3a, U3b, ok} = timed(N1, lasp_converge, updated, [V, A2, A3]),
    timer:sleep(?GAP_MS),
    {H3a, H3b, ok} = timed(node(), lasp_converge, observed, [V, A3]),
    St3a = wait(V, fun(#{pending := P, updates := Up}) -> Up =:= 3 andalso P =:= 1 end),
    ?assertMatch(#{per_node := #{N2 := #{pending := 1}}}, St3a),
    ok = peer:stop(P2),
    St3 = wait(V, fun(#{pending := P}) -> P =:= 0 end),
    ?assertMatch(#{updates := 3, converged := 3, unconverged := 0}, St3),
    ?assertEqual(lists:sort([node(), N1]), lists:sort(maps:get(nodes, St3))),
    %% It converged over the live members: here, at H3.
    U3 = maps:get(clock_uncertainty_us, St3),
    within(H3a - U3b - U3, H3b - U3a + U3, maps:get({N1, 2}, records(V))),

    io:format(user, "~ncluster: convergence ~p us (mean ~p), clock uncertainty ~p us, "
              "per node ~p~n",
              [maps:get(max, St3), maps:get(mean, St3), U3,
               maps:map(fun(_, #{max := M}) -> M end, maps:get(per_node, St3))]),
    ?assert(is_list(lasp_converge:divergence(V))),
    ok = lasp_converge:untrack(V),
    ?assertEqual({error, not_tracked}, erpc:call(N1, lasp_converge, stats, [V])).

%% `nodes' names the nodes holding the variable; the node calling `track/2'
%% (this test runner) is not among them: it aggregates without being a
%% member, so an update seen by both peers converges (were it a member, it
%% would stay pending until the horizon, as nothing is observed here).
aggregator_only([{_, N1}, {_, N2}]) ->
    V = {<<"aggregator_only">>, state_gset},
    ok = lasp_converge:track(V, #{nodes => [N1, N2]}),
    try
        ?assertEqual(lists:sort([N1, N2]), lists:sort(maps:get(nodes, lasp_converge:stats(V)))),
        B0 = ?C:new(state_gset),
        {ok, A1} = ?C:mutate({add, one}, N1, B0),
        ok = erpc:call(N1, lasp_converge, updated, [V, B0, A1]),
        ok = erpc:call(N2, lasp_converge, observed, [V, A1]),
        St = wait(V, fun(#{converged := C}) -> C >= 1 end),
        ?assertMatch(#{updates := 1, converged := 1, pending := 0, unconverged := 0}, St)
    after
        lasp_converge:untrack(V)
    end.

%% A node that comes up after tracking started (no `nodes' option) joins:
%% it must see the updates made after it joined.
join(Ebin, [N1, _N2]) ->
    V = {<<"join">>, state_gset},
    ok = lasp_converge:track(V),
    ?assertEqual(lists:sort([node(), N1]), lists:sort(maps:get(nodes, lasp_converge:stats(V)))),
    {P3, N3} = start_peer(Ebin),
    try
        _ = wait(V, fun(#{nodes := Ns}) -> lists:member(N3, Ns) end),
        E = {state_gset, []},
        X = {state_gset, [x]},
        {Ua, Ub, ok} = timed(N3, lasp_converge, updated, [V, E, X]),
        timer:sleep(?GAP_MS),
        {_, _, ok} = timed(N1, lasp_converge, observed, [V, X]),
        {Ha, Hb, ok} = timed(node(), lasp_converge, observed, [V, X]),
        St = wait(V, fun(#{converged := C}) -> C =:= 1 end),
        ?assertMatch(#{updates := 1, pending := 0, per_node := #{N3 := #{live := true}}}, St),
        U = maps:get(clock_uncertainty_us, St),
        within(Ha - Ub - U, Hb - Ua + U, maps:get(max, St))
    after
        peer:stop(P3)
    end,
    ok = lasp_converge:untrack(V).

within(Lo, Hi, X) ->
    ?assert(is_integer(X) andalso X >= max(Lo, 0) - 2 andalso X =< Hi + 2, {Lo, X, Hi}).

wait(V, Done) ->
    wait(V, Done, 200).

wait(V, Done, 0) ->
    S = lasp_converge:stats(V),
    ?assert(Done(S), {timeout, S}),
    S;
wait(V, Done, N) ->
    S = lasp_converge:stats(V),
    case Done(S) of
        true -> S;
        false -> timer:sleep(10), wait(V, Done, N - 1)
    end.

%% Convergence time per update id, from the JSON export (node numbers are
%% mapped back through its "nodes" object).
records(V) ->
    {ok, Json} = lasp_converge:export(V, json),
    Names = json_names(Json),
    {match, Rs} = re:run(Json,
                         "\"id\":\\{\"origin\":(\\d+),\"seq\":(\\d+)\\},\"ts_us\":-?\\d+,"
                         "\"seen\":\\[[^\\]]*\\],\"outcome\":\"converged\",\"convergence_us\":(\\d+)",
                         [global, {capture, all_but_first, list}]),
    maps:from_list([{{maps:get(O, Names), list_to_integer(S)}, list_to_integer(C)}
                    || [O, S, C] <- Rs]).

json_names(Json) ->
    {match, Ns} = re:run(Json, "\"(\\d+)\":\"([^\"]+)\"", [global, {capture, all_but_first, list}]),
    maps:from_list([{I, list_to_atom(N)} || [I, N] <- Ns]).
