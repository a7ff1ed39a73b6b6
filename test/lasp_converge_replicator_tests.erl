%% @doc `lasp_converge_replicator' on three peer nodes, state-based: updates
%% made on different nodes reach every replica (no add is lost), the tracker
%% sees every update converge, `propagate_on_update' propagates without a
%% tick, the message counters grow with the ticks, and a longer interval
%% waits for the round already armed. Delta-based: deltas
%% and acknowledgements, nothing sent once every peer has acknowledged, and
%% the full state for a peer further behind than the delta buffer reaches.
-module(lasp_converge_replicator_tests).

-include_lib("eunit/include/eunit.hrl").

-define(CL, lasp_converge_cluster).
-define(R, lasp_converge_replicator).

replicator_test_() ->
    {timeout, 60, fun three_nodes/0}.

three_nodes() ->
    WasAlive = is_alive(),
    try
        ?CL:with_cluster(3, #{prefix => lc_rep}, fun(C) ->
                                                         timer_run(C),
                                                         on_update_run(C),
                                                         interval_run(C),
                                                         delta_run(C),
                                                         errors(C)
                                                 end)
    after
        WasAlive orelse net_kernel:stop()
    end.

%% A change of settings keeps the armed timer unless the new interval ends
%% sooner (or nothing is declared yet): the round armed with 200 ms still
%% goes out after the interval is set to 60 s, once. `flush/1' sends one
%% round at once. Runs first, while the replicators hold no variable, so
%% that setting 60 s re-arms every timer for 60 s.
timer_run(C) ->
    Ns = [N1 | _] = ?CL:nodes(C),
    Var = {<<"timer">>, state_orset},
    [{ok, _} = ?CL:call(C, N, ?R, set, [#{state_interval => 60000,
                                          propagate_on_update => false}])
     || N <- Ns],
    {ok, _} = ?CL:call(C, N1, ?R, declare, [Var, state_orset, #{nodes => Ns}]),
    {ok, _} = ?CL:call(C, N1, ?R, update, [Var, {add, a}, N1]),
    ?assertEqual(0, msgs(C, N1, Var)),
    %% Shorter than the time left: re-armed at once.
    {ok, _} = ?CL:call(C, N1, ?R, set, [#{state_interval => 200}]),
    %% Longer: the 200 ms round still goes out, to both peers.
    {ok, #{state_interval := 60000}} = ?CL:call(C, N1, ?R, set, [#{state_interval => 60000}]),
    wait_until(fun() -> msgs(C, N1, Var) =:= 2 end, 5000),
    wait_agree(C, Ns, Var, [a]),
    ?assertEqual(ok, ?CL:call(C, N1, ?R, flush, [Var])),
    ?assertEqual(4, msgs(C, N1, Var)),
    ?assertEqual({error, not_declared}, ?CL:call(C, N1, ?R, flush, [nope])).

%% Adds on every node, propagated by 50 ms ticks only.
interval_run(C) ->
    Ns = [N1 | _] = ?CL:nodes(C),
    Var = {<<"interval">>, state_orset},
    [?assertMatch({ok, #{state_interval := 50}},
                  ?CL:call(C, N, ?R, set, [#{state_interval => 50, fanout => all,
                                             propagate_on_update => false}]))
     || N <- Ns],
    ok = ?CL:call(C, N1, lasp_converge, track, [Var, #{nodes => Ns}]),
    ?assertEqual({ok, lists:sort(Ns)},
                 ?CL:call(C, N1, ?R, declare, [Var, state_orset, #{nodes => Ns}])),
    Adds = [{N, K} || N <- Ns, K <- lists:seq(1, 5)],
    [{ok, _} = ?CL:call(C, N, ?R, update, [Var, {add, {N, K}}, N]) || {N, K} <- Adds],
    Want = lists:sort(Adds),
    wait_agree(C, Ns, Var, Want),
    wait_until(fun() ->
                       S = ?CL:call(C, N1, lasp_converge, stats, [Var]),
                       maps:get(converged, S) =:= length(Adds)
                           andalso maps:get(updates, S) =:= length(Adds)
               end, 5000),
    %% Counters grow with the ticks: two peers each tick, about 20 ticks a second.
    S0 = ?CL:call(C, N1, ?R, stats, []),
    timer:sleep(300),
    S1 = ?CL:call(C, N1, ?R, stats, []),
    #{vars := #{Var := V0}} = S0,
    #{vars := #{Var := V1}} = S1,
    Grew = maps:get(sent_messages, V1) - maps:get(sent_messages, V0),
    ?assert(Grew >= 2 * 3),
    ?assertEqual(0, Grew rem 2),
    ?assert(maps:get(sent_bytes, V1) > maps:get(sent_bytes, V0)),
    ?assert(maps:get(sent_messages, S1) >= maps:get(sent_messages, V1)),
    ?assert(maps:get(received_changed, V1) > 0).

%% Ticks every 60 s: only propagate_on_update moves the state.
on_update_run(C) ->
    Ns = [N1, N2, N3] = ?CL:nodes(C),
    Var = {<<"on_update">>, state_orset},
    [{ok, _} = ?CL:call(C, N, ?R, set, [#{state_interval => 60000,
                                          propagate_on_update => true}])
     || N <- Ns],
    ok = ?CL:call(C, N2, lasp_converge, track, [Var, #{nodes => Ns}]),
    {ok, _} = ?CL:call(C, N2, ?R, declare, [Var, state_orset, #{nodes => Ns}]),
    Before = [msgs(C, N, Var) || N <- Ns],
    ?assertEqual([0, 0, 0], Before),
    {ok, _} = ?CL:call(C, N1, ?R, update, [Var, {add, a}, N1]),
    {ok, _} = ?CL:call(C, N3, ?R, update, [Var, {add, b}, N3]),
    {ok, _} = ?CL:call(C, N3, ?R, update, [Var, {rmv, b}, N3]),
    {ok, _} = ?CL:call(C, N3, ?R, update, [Var, {add, c}, N3]),
    wait_agree(C, Ns, Var, [a, c]),
    wait_until(fun() ->
                       maps:get(converged, ?CL:call(C, N2, lasp_converge, stats, [Var])) =:= 4
               end, 5000),
    %% One message to each of the two peers per update, none from ticks.
    ?assertEqual([2, 0, 6], [msgs(C, N, Var) || N <- Ns]).

%% Delta-based, 30 ms ticks, a buffer of 3 deltas.
delta_run(C) ->
    Ns = [N1, N2, N3] = ?CL:nodes(C),
    Var = {<<"delta">>, state_awset},
    [{ok, _} = ?CL:call(C, N, ?R, set, [#{state_interval => 30, propagate_on_update => false,
                                          mode => delta_based, delta_buffer => 3}])
     || N <- Ns],
    {ok, _} = ?CL:call(C, N1, ?R, declare, [Var, state_awset, #{nodes => Ns}]),
    [{ok, _} = ?CL:call(C, N, ?R, update, [Var, {add, N}, N]) || N <- Ns],
    wait_agree(C, Ns, Var, lists:sort(Ns)),
    %% Every peer acknowledges: the senders go quiet (within a few ticks).
    Counters = fun() -> [counters(C, N, Var) || N <- Ns] end,
    wait_until(fun() ->
                       A = Counters(),
                       timer:sleep(150),
                       A =:= Counters()
               end, 5000),
    %% Every peer has acknowledged, so the next update travels as a delta.
    [#{deltas := D0, full_states := F1} | _] = Counters(),
    {ok, _} = ?CL:call(C, N1, ?R, update, [Var, {add, next}, N1]),
    wait_agree(C, Ns, Var, lists:sort([next | Ns])),
    [#{deltas := D1, full_states := F1} | Acked] = Counters(),
    ?assert(D1 >= D0 + 2),
    ?assert(lists:all(fun(#{acks := A}) -> A > 0 end, Acked)),
    %% N3 cut off while N1 makes more updates than the buffer holds: after
    %% the heal N1 sends it the full state.
    ok = lasp_converge_fault:partition(C, [[N1, N2], [N3]]),
    Adds = lists:seq(1, 6),
    [{ok, _} = ?CL:call(C, N1, ?R, update, [Var, {add, K}, N1]) || K <- Adds],
    wait_agree(C, [N1, N2], Var, lists:sort([next | Ns] ++ Adds)),
    ok = lasp_converge_fault:heal(C),
    wait_agree(C, Ns, Var, lists:sort([next | Ns] ++ Adds)),
    #{full_states := F2} = counters(C, N1, Var),
    ?assert(F2 > F1).

counters(C, N, Var) ->
    #{vars := #{Var := Counters}} = ?CL:call(C, N, ?R, stats, []),
    Counters.

errors(C) ->
    [N1 | _] = ?CL:nodes(C),
    ?assertEqual({error, not_declared}, ?CL:call(C, N1, ?R, update, [nope, {add, 1}, a])),
    ?assertEqual({error, not_declared}, ?CL:call(C, N1, ?R, value, [nope])),
    ?assertEqual({error, {bad_settings, [fanout]}}, ?CL:call(C, N1, ?R, set, [#{fanout => 0}])),
    ?assertEqual({error, {unknown_type, nope}}, ?CL:call(C, N1, ?R, declare, [v, nope])),
    Var = {<<"interval">>, state_orset},
    ?assertMatch({error, _}, ?CL:call(C, N1, ?R, update, [Var, {bogus_op}, a])),
    %% Untracked variable: updates work quietly.
    {ok, _} = ?CL:call(C, N1, ?R, declare, [untracked, state_gcounter]),
    ?assertEqual({ok, 1}, ?CL:call(C, N1, ?R, update, [untracked, increment, a])).

msgs(C, N, Var) ->
    #{vars := #{Var := #{sent_messages := M}}} = ?CL:call(C, N, ?R, stats, []),
    M.

wait_agree(C, Ns, Var, Want) ->
    wait_until(fun() ->
                       lists:all(fun(N) ->
                                         {ok, V} = ?CL:call(C, N, ?R, value, [Var]),
                                         lists:sort(sets:to_list(V)) =:= Want
                                 end, Ns)
               end, 5000).

wait_until(F, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    wait_until(F, Deadline, Ms).

wait_until(F, Deadline, Ms) ->
    case F() of
        true -> ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> erlang:error({timeout_after_ms, Ms});
                false -> timer:sleep(20), wait_until(F, Deadline, Ms)
            end
    end.
