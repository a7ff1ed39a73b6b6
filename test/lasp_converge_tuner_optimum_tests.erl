%% The offline optimum and the policy against the simulator, on small
%% schedules whose answer can be reasoned out: 4 nodes, state-based,
%% fanout all, a constant 1 ms latency. An interval I sends 4 × 3 messages
%% each I ms and makes an update wait up to I for its writer's round, so
%% the longest interval meeting a p99 target T is a little under T; pushing
%% costs 3 messages per update.
-module(lasp_converge_tuner_optimum_tests).

-include_lib("eunit/include/eunit.hrl").

-define(O, lasp_converge_tuner_optimum).
-define(OPTS, #{target_p99 => 600, nodes => 4}).

%% One update every 3 s: pushing costs 3 messages each, any interval
%% meeting 600 ms about 12 messages every 600 ms.
sparse_phase_pushes_test() ->
    {ok, #{phases := [P], messages := M}} = ?O:optimum([{sparse, 9000, 1 / 3}], ?OPTS),
    #{choice := push, updates := 3, push := Push, periodic := Periodic} = P,
    %% 3 updates × 3 peers, and no anti-entropy round within 9 s of a 60 s
    %% interval (or one: 12 messages) at most.
    ?assert(maps:get(messages, Push) >= 9 andalso maps:get(messages, Push) =< 21),
    ?assertEqual(maps:get(messages, Push), M),
    ?assert(maps:get(messages, Periodic) > 5 * M),
    ?assert(maps:get(p99, P) < 10000).

%% 100 updates a second: pushing costs 300 messages a second, an interval
%% just under the target 20.
dense_phase_takes_the_longest_interval_test() ->
    {ok, #{phases := [P]}} = ?O:optimum([{busy, 5000, 100}], ?OPTS),
    #{choice := {interval, I}, p99 := P99, push := Push, messages := M} = P,
    ?assert(I > 540 andalso I =< 600),
    ?assert(P99 =< 600000),
    ?assert(M < maps:get(messages, Push) div 5),
    %% About 4 × 3 messages per interval over 5 s.
    ?assert(abs(M - 12 * 5000 / I) =< 24),
    %% The next interval of the grid misses the target.
    #{p99 := Next} = ?O:simulate(#{interval => round(I * 1.02) + 1, push => false},
                                 [{round(J * 10), J rem 4 + 1} || J <- lists:seq(0, 499)],
                                 5000, ?OPTS#{seed => 1001}),
    ?assert(Next > 600000 orelse I >= 594).

%% Two phases: each its own choice; the best fixed interval, one for the
%% whole schedule, costs more than the optimum.
schedule_test() ->
    Ph = [{busy, 4000, 50}, {sparse, 9000, 1 / 3}],
    {ok, #{phases := [B, S], messages := M, best_fixed := Fixed, meets := true}} =
        ?O:optimum(Ph, ?OPTS),
    ?assertMatch(#{choice := {interval, _}}, B),
    ?assertMatch(#{choice := push}, S),
    ?assertEqual(maps:get(messages, B) + maps:get(messages, S), M),
    #{interval := FI, messages := FM, meets := true} = Fixed,
    {interval, BI} = maps:get(choice, B),
    ?assert(FI =< BI),
    ?assert(FM > M).

%% A target under the latency: nothing meets it, the lower p99 is kept.
unreachable_test() ->
    {ok, #{meets := false, phases := [P], best_fixed := none}} =
        ?O:optimum([{busy, 2000, 20}], ?OPTS#{target_p99 => 0.5}),
    ?assertMatch(#{meets := false, choice := push}, P).

bad_input_test() ->
    ?assertEqual({error, {bad_opts, target_p99}}, ?O:optimum([{a, 1000, 1}], #{})),
    ?assertEqual({error, bad_schedule}, ?O:optimum([], ?OPTS)),
    ?assertEqual({error, bad_schedule}, ?O:optimum([{a, 0, 1}], ?OPTS)),
    ?assertEqual({error, bad_schedule}, ?O:optimum([{a, 1000, 0}], ?OPTS)),
    ?assertMatch({error, _}, ?O:optimum([{a, 1000, 1}], ?OPTS#{mode => nope})).

updates_test() ->
    %% Evenly spaced from each phase's start, at least one a phase, the
    %% nodes in turn.
    ?assertEqual([{0, 1}, {500, 2}, {1000, 3}, {2000, 1}, {3000, 2}],
                 ?O:updates([{a, 1000, 2}, {b, 2000, 1}, {c, 5000, 0.01}], 3)).

%% A fixed interval through the plant: every window under it, all of them
%% meeting a target it meets.
open_loop_fixed_test() ->
    R = ?O:open_loop([{interval, 400}], [{busy, 5000, 40}], ?OPTS),
    #{windows := Ws, met := 5, with_updates := 5, messages := M} = R,
    ?assertEqual([400], lists:usort([I || #{interval := I} <- Ws])),
    ?assert(abs(M - 12 * 5000 / 400) =< 24).

%% The policy against the simulator: from Lasp's 10 s to the model's
%% interval at once, then pushing once the rate falls to one every 3 s.
closed_loop_test() ->
    R = ?O:closed_loop({target_p99, 600}, [{busy, 6000, 40}, {sparse, 12000, 1 / 3}], ?OPTS),
    #{log := [First | _] = Log, windows := Ws, met := Met, with_updates := With} = R,
    ?assertMatch(#{at_ms := 0, interval := 418, push := false, why := {model, _}}, First),
    ?assert(Met >= With - 1),
    ?assert(lists:any(fun(#{push := P, at_ms := At}) -> P andalso At >= 6000 end, Log)),
    ?assertEqual(18, length(Ws)),
    ?assertEqual(6 + 4, With).

closed_loop_bad_policy_test() ->
    ?assertEqual({error, {bad_policy, nope}},
                 lasp_converge_tuner:simulate(nope, [{a, 1000, 1}], ?OPTS)).
