%% @doc The convergence assertions of `include/lasp_converge.hrl' on three
%% peer nodes. Nodes 1 and 2 propagate every 30 ms; node 3 every 60 s and
%% not on update, so what is written on node 3 stays there: the assertions
%% pass for a variable written on nodes 1 and 2 and fail, naming nodes 1
%% and 2 as lagging, for one written on node 3.
-module(lasp_converge_assert_tests).

-include_lib("eunit/include/eunit.hrl").
-include("lasp_converge.hrl").

-define(CL, lasp_converge_cluster).
-define(R, lasp_converge_replicator).

assertions_test_() ->
    {timeout, 60, fun three_nodes/0}.

three_nodes() ->
    WasAlive = is_alive(),
    try
        ?CL:with_cluster(3, #{prefix => lc_assert}, fun(C) ->
                                                            setup(C),
                                                            passing(C),
                                                            failing(C),
                                                            no_tracker(C)
                                                    end)
    after
        WasAlive orelse net_kernel:stop()
    end.

setup(C) ->
    [N1, N2, N3] = Ns = ?CL:nodes(C),
    [{ok, _} = ?CL:call(C, N, ?R, set, [#{state_interval => 30}]) || N <- [N1, N2]],
    {ok, _} = ?CL:call(C, N3, ?R, set, [#{state_interval => 60000,
                                          propagate_on_update => false}]),
    [begin
         ok = ?CL:call(C, N1, lasp_converge, track, [V, #{nodes => Ns}]),
         {ok, _} = ?CL:call(C, N1, ?R, declare, [V, state_orset, #{nodes => Ns}])
     end || V <- [good(), stuck()]],
    ok.

good() -> {<<"good">>, state_orset}.
stuck() -> {<<"stuck">>, state_orset}.

passing(C) ->
    [N1, N2, _] = ?CL:nodes(C),
    [{ok, _} = ?CL:call(C, N, ?R, update, [good(), {add, {N, K}}, N])
     || N <- [N1, N2], K <- [1, 2, 3]],
    {ok, _} = ?CL:call(C, N2, ?R, update, [good(), {rmv, {N2, 3}}, N2]),
    %% The tracker is found on a connected node; the replicas are its members.
    ?assertEqual(ok, ?assertConverges(good(), 5000)),
    ?assertEqual(ok, ?assertConverges(good(), 5000, #{cluster => C, via => N2})),
    ?assertEqual(ok, ?assertConvergenceP99(good(), 2000)),
    Added = [{N1, 1}, {N1, 2}, {N1, 3}, {N2, 1}, {N2, 2}],
    ?assertEqual(ok, ?assertNoLostUpdates(good(), Added)),
    ?assertEqual(ok, ?assertNoLostUpdates(good(), Added, #{cluster => C})),
    {ok, Info} = lasp_converge_assert:check(good(), #{cluster => C}),
    ?assertMatch(#{converged := true, lagging := [], stats := #{pending := 0, updates := 7}},
                 Info),
    %% A limit of 0 ms is missed: every update took some microseconds.
    ?assertError({assertConvergenceP99, [{module, ?MODULE}, {line, _}, {expression, _},
                                         {var, _}, {limit_ms, 0}, {reason, too_slow} | _]},
                 ?assertConvergenceP99(good(), 0)).

failing(C) ->
    [N1, N2, N3] = ?CL:nodes(C),
    {ok, _} = ?CL:call(C, N3, ?R, update, [stuck(), {add, lost_on_3}, N3]),
    T0 = erlang:monotonic_time(millisecond),
    {Class, {assertConverges, Props}} =
        try ?assertConverges(stuck(), 300, #{cluster => C}) of
            ok -> {no_failure, {assertConverges, []}}
        catch error:E -> {error, E}
        end,
    Waited = erlang:monotonic_time(millisecond) - T0,
    ?assertEqual(error, Class),
    %% It polled for the whole timeout, and not much longer.
    ?assert(Waited >= 300),
    ?assert(Waited < 5000),
    ?assertEqual(?MODULE, proplists:get_value(module, Props)),
    ?assert(is_integer(proplists:get_value(line, Props))),
    ?assertEqual(stuck(), proplists:get_value(var, Props)),
    ?assertEqual({unseen_updates, 1, 0}, proplists:get_value(reason, Props)),
    ?assertMatch(#{updates := 1, pending := 1}, proplists:get_value(stats, Props)),
    Lagging = proplists:get_value(lagging, Props),
    ?assertEqual([N1, N2], [N || #{node := N} <- Lagging]),
    [?assertMatch(#{missing := [lost_on_3], value := [], pending := 1}, L) || L <- Lagging],
    ?assertEqual([lost_on_3], maps:get(N3, proplists:get_value(values, Props))),
    %% The text LaspConverge.Assertions prints names the lagging nodes.
    Text = lists:flatten(io_lib:format("~s", [lasp_converge_assert:format({assertConverges,
                                                                             Props})])),
    ?assertNotEqual(nomatch, string:find(Text, atom_to_list(N1))),
    ?assertNotEqual(nomatch, string:find(Text, "lost_on_3")),
    ?assertError({assertConvergenceP99, [_, _, _, {var, _}, {limit_ms, 1000},
                                         {reason, {unseen_updates, 1, 0}} | _]},
                 ?assertConvergenceP99(stuck(), 1000)),
    ?assertError({assertNoLostUpdates, [_, _, _, {var, _}, {nodes, _},
                                        {lost, [#{node := N1, missing := [lost_on_3]},
                                                #{node := N2, missing := [lost_on_3]}]}
                                        | _]},
                 ?assertNoLostUpdates(stuck(), [lost_on_3], #{cluster => C, timeout => 100})),
    %% Node 3 is the only one holding it, so the replicas-only check of node 3 passes.
    ?assertEqual(ok, ?assertConverges(stuck(), 0, #{nodes => [N3], tracked => false})).

no_tracker(C) ->
    Var = {<<"never_tracked">>, state_gset},
    ?assertError({assertConverges, [_, _, _, {var, Var}, {timeout_ms, 0},
                                    {reason, {tracker, not_tracked}} | _]},
                 ?assertConverges(Var, 0, #{cluster => C})),
    %% A node that cannot be reached lags with the error as its value.
    {lagging, #{lagging := [#{node := 'nobody@nowhere', value := {error, _}}]}} =
        lasp_converge_assert:check(Var, #{nodes => ['nobody@nowhere'], tracked => false,
                                          call_timeout => 500}).
