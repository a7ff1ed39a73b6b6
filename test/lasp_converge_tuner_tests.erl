%% @doc `lasp_converge_tuner': the controller's decisions on synthetic
%% measurements for every policy (the direction of each move, bounds,
%% dwell time, no oscillation under noisy measurements), `set/2' and
%% `get/1' on three peers (one of them running a stand-in for Lasp's
%% `lasp_config'), and short real runs in which `{target_p99, Ms}' sets
%% the interval of a replicated variable from what it measures, and turns
%% propagation on update on for a slow writer and off for a fast one.
-module(lasp_converge_tuner_tests).

-include_lib("eunit/include/eunit.hrl").

-define(T, lasp_converge_tuner).
-define(P, lasp_converge_tuner_policy).
-define(CL, lasp_converge_cluster).
-define(R, lasp_converge_replicator).

%% ---- the model ----

rounds_test() ->
    ?assertEqual(1, ?P:rounds(5, all)),
    ?assertEqual(1, ?P:rounds(3, 2)),
    ?assertEqual(3, ?P:rounds(5, 1)),
    ?assertEqual(2, ?P:rounds(9, 2)),
    ?assertEqual(1, ?P:rounds(1, 1)).

window_figures_test() ->
    ?assertEqual(#{p50 => undefined, p99 => undefined, max => undefined},
                 ?P:window_figures([])),
    ?assertEqual(#{p50 => 50, p99 => 99, max => 100},
                 ?P:window_figures(lists:reverse(lists:seq(1, 100)))),
    %% An unconverged update is the slowest.
    ?assertEqual(#{p50 => 2, p99 => infinity, max => infinity},
                 ?P:window_figures([3, unconverged, 1, 2])).

%% ---- fixed ----

fixed_test() ->
    S0 = ?P:init_state({fixed, 250}, #{interval => 10000}),
    {250, S1} = ?P:initial({fixed, 250}, S0),
    ?assertMatch({keep, _}, ?P:decide({fixed, 250}, S1, m(1000, #{}))),
    %% Changed behind its back: set again, without waiting for the dwell time.
    ?assertMatch({250, _}, ?P:decide({fixed, 250}, S1#{interval := 40}, m(1001, #{}))).

%% ---- rate_proportional ----

-define(RP, {rate_proportional, #{updates_per_interval => 5, min => 20, max => 5000}}).

rate_direction_test() ->
    S0 = ?P:init_state(?RP, #{interval => 1000}),
    ?assertMatch({keep, #{why := no_rate_yet}}, ?P:initial(?RP, S0)),
    %% 50 updates/s: 5 updates every 100 ms.
    {100, S1} = ?P:decide(?RP, S0, m(1000, #{rate => 50.0})),
    %% Faster updates, shorter interval (smoothed: 0.3 of the new rate, 80/s).
    {I2, S2} = ?P:decide(?RP, S1, m(4000, #{rate => 150.0})),
    ?assertEqual(63, I2),
    %% Idle: longer (smoothed: 56/s).
    {I3, _} = ?P:decide(?RP, S2, m(7000, #{rate => 0.0})),
    ?assertEqual(89, I3).

rate_bounds_test() ->
    S0 = ?P:init_state(?RP, #{interval => 30}),
    %% 10,000 updates/s would want 0.5 ms: the minimum.
    {20, S1} = ?P:decide(?RP, S0, m(1000, #{rate => 10000.0})),
    ?assertMatch({keep, #{why := {no_change, _}}},
                 ?P:decide(?RP, S1, m(4000, #{rate => 10000.0}))),
    %% Nothing at all, for long: up to the maximum, never past it.
    Is = run(?RP, S1#{rate := 0.0}, [#{rate => 0.0} || _ <- lists:seq(1, 40)]),
    ?assertEqual(5000, lists:last(Is)),
    ?assert(lists:all(fun(I) -> I =< 5000 andalso I >= 20 end, Is)).

rate_noise_test() ->
    rand:seed(exsss, {1, 2, 3}),
    S0 = ?P:init_state(?RP, #{interval => 1000}),
    %% 50 updates/s, each window's rate off by up to 20 %.
    Ms = [#{rate => 50 * (0.8 + 0.4 * rand:uniform())} || _ <- lists:seq(1, 200)],
    Is = run(?RP, S0, Ms),
    Changes = changes(Is),
    ?assert(length(Changes) =< 3),
    ?assert(lists:all(fun(I) -> I >= 80 andalso I =< 125 end, lists:nthtail(2, Is))).

%% ---- target_p99 ----

-define(TP, {target_p99, 200}).
-define(TP1, {target_p99, 1000}).

%% A plant: p99 = Gain * interval + 5 ms, each window off by up to Noise.
plant(Gain, Noise) ->
    fun(I) -> #{p99 => round(1000 * (Gain * I + 5) * (1 - Noise + 2 * Noise * rand:uniform()))} end.

target_model_test() ->
    S0 = ?P:init_state(?TP, #{interval => 10000, nodes => 5, fanout => all}),
    %% One round: 0.7 * 200 - 2 ms latency.
    ?assertMatch({138, _}, ?P:initial(?TP, S0)),
    %% Fanout 1 of 5: three rounds.
    S1 = ?P:init_state(?TP, #{interval => 10000, nodes => 5, fanout => 1}),
    ?assertMatch({46, _}, ?P:initial(?TP, S1)).

target_direction_test() ->
    S0 = ?P:init_state(?TP, #{interval => 100}),
    %% Over the target: shorter, at once.
    {I1, S1} = ?P:decide(?TP, S0, m(1000, #{p99 => 400000})),
    ?assert(I1 < 100),
    ?assertMatch(#{why := {over_target, _}}, S1),
    %% Well under it: longer, but only after two windows in a row.
    S2 = S0,
    {keep, S3} = ?P:decide(?TP, S2, m(10000, #{p99 => 20000})),
    ?assertMatch(#{why := {calming, 1, _}}, S3),
    {I4, _} = ?P:decide(?TP, S3, m(11000, #{p99 => 20000})),
    ?assertEqual(200, I4),
    %% In the band: stays.
    ?assertMatch({keep, #{why := {in_band, _}}}, ?P:decide(?TP, S2, m(10000, #{p99 => 150000}))),
    %% No finished update in the window: no evidence, stays.
    ?assertMatch({keep, #{why := no_samples}}, ?P:decide(?TP, S2, m(10000, #{}))),
    %% An unconverged update: a quarter.
    ?assertMatch({25, _}, ?P:decide(?TP, S2, m(10000, #{p99 => infinity}))).

target_bounds_test() ->
    S0 = ?P:init_state(?TP, #{interval => 100, min => 60, max => 150}),
    {60, S1} = ?P:decide(?TP, S0, m(1000, #{p99 => 900000})),
    ?assertMatch({keep, #{why := {no_change, _}}},
                 ?P:decide(?TP, S1, m(5000, #{p99 => 900000}))),
    Is = run(?TP, S1, [#{p99 => 1000} || _ <- lists:seq(1, 20)]),
    ?assertEqual(150, lists:max(Is)),
    ?assertEqual(60, lists:min(Is)).

target_dwell_test() ->
    S0 = ?P:init_state(?TP, #{interval => 1000, dwell => 2000}),
    {I1, S1} = ?P:decide(?TP, S0, m(1000, #{p99 => 1500000})),
    ?assert(I1 < 1000),
    %% Still over, 500 ms later: waits for the dwell time.
    ?assertMatch({keep, #{why := {dwell, _}}}, ?P:decide(?TP, S1, m(1500, #{p99 => 1500000}))),
    ?assertMatch({I, _} when I < I1, ?P:decide(?TP, S1, m(3000, #{p99 => 1500000}))).

%% From Lasp's 10 s default, the model's first value and then the
%% measurements bring the p99 under the target, where it stays, with a
%% plant that matches the model and one three times slower; 20 % noise.
target_converges_test() ->
    rand:seed(exsss, {4, 5, 6}),
    lists:foreach(
      fun(Gain) ->
              S0 = ?P:init_state(?TP, #{interval => 10000, nodes => 3}),
              {I0, S1} = ?P:initial(?TP, S0),
              Plant = plant(Gain, 0.2),
              {Is, Fs} = closed_loop(?TP, S1#{interval := I0}, Plant, 100),
              Late = lists:nthtail(10, Fs),
              ?assert(lists:all(fun(#{p99 := P}) -> P =< 200000 end, Late)),
              ?assert(length(changes(Is)) =< 3),
              %% The slowest that meets it: within a factor two of the
              %% interval whose p99 is the target.
              Best = (200 - 5) / Gain,
              ?assert(lists:last(Is) >= Best / 2 andalso lists:last(Is) =< Best)
      end, [1.0, 3.0]).

%% 35 % noise on the plant: a few moves, no swinging back and forth, and
%% at least 95 % of the windows under the target.
target_noise_closed_loop_test() ->
    rand:seed(exsss, {13, 14, 15}),
    S0 = ?P:init_state(?TP, #{interval => 10000, nodes => 3}),
    {I0, S1} = ?P:initial(?TP, S0),
    {Is, Fs} = closed_loop(?TP, S1#{interval := I0}, plant(2.0, 0.35), 200),
    Over = length([P || #{p99 := P} <- lists:nthtail(10, Fs), P > 200000]),
    ?assert(Over =< 190 * 5 div 100),
    ?assert(reversals(changes([I0 | Is])) =< 2).

%% Measurements anywhere in the band leave the interval alone.
target_noise_test() ->
    rand:seed(exsss, {7, 8, 9}),
    S0 = ?P:init_state(?TP, #{interval => 130}),
    Ms = [#{p99 => round(1000 * (100 + 99 * rand:uniform()))} || _ <- lists:seq(1, 200)],
    ?assertEqual([], changes(run(?TP, S0, Ms))).

%% Measurements that agree with the model (gains within 6 %): the aim
%% rises to 0.85 after `2 × calm + 1' windows and the interval follows; a
%% window over the target brings it back to 0.7, and it stays there for
%% five dwell times.
target_aim_rises_test() ->
    S0 = ?P:init_state(?TP1, #{interval => 698, nodes => 5, push => never}),
    ?assertMatch(#{aim := 0.7, aim_high := 0.85}, S0),
    P99 = fun(I) -> #{p99 => round(1000 * (I + 2))} end,
    {Is, _} = closed_loop(?TP1, S0, fun(I) -> P99(I) end, 5),
    ?assertEqual([698, 698, 698, 698, 848], Is),
    {_, S3} = lists:foldl(fun(At, {_, S}) ->
                                  ?P:decide(?TP1, S, m(At, P99(maps:get(interval, S))))
                          end, {keep, S0}, [1000, 2000, 3000, 4000, 5000]),
    ?assertMatch(#{aim := 0.85, interval := 848, why := {aim, 0.85, _}}, S3),
    %% At the higher aim, in the band: stays.
    {keep, S4} = ?P:decide(?TP1, S3, m(6000, P99(848))),
    ?assertMatch(#{aim := 0.85, interval := 848}, S4),
    ?assertMatch(#{why := {in_band, _}}, S4),
    %% Over the target: back to 0.7 at once.
    {I5, S5} = ?P:decide(?TP1, S4, m(7000, #{p99 => 1100000})),
    ?assertMatch(#{aim := 0.7, raise_after := 17000}, S5),
    ?assert(I5 < 698),
    %% Agreeing windows within the hold: the aim stays.
    {_, S6} = lists:foldl(fun(At, {_, S}) ->
                                  ?P:decide(?TP1, S, m(At, P99(maps:get(interval, S))))
                          end, {keep, S5}, lists:seq(10000, 16000, 1000)),
    ?assertMatch(#{aim := 0.7}, S6),
    %% After it: up again.
    {_, S7} = lists:foldl(fun(At, {_, S}) ->
                                  ?P:decide(?TP1, S, m(At, P99(maps:get(interval, S))))
                          end, {keep, S6}, [17000, 18000, 19000]),
    ?assertMatch(#{aim := 0.85}, S7).

%% The aim rises with the interval or not at all: agreeing windows whose
%% gain (1.04) puts the higher aim's interval within the hysteresis of
%% the one in force (815 against 698) leave both as they are.
target_aim_with_the_interval_test() ->
    S0 = ?P:init_state(?TP1, #{interval => 698, nodes => 5, push => never}),
    P99 = #{p99 => round(1000 * (1.04 * 698 + 2))},
    {_, S} = lists:foldl(fun(At, {_, S}) -> ?P:decide(?TP1, S, m(At, P99)) end,
                         {keep, S0}, lists:seq(1000, 8000, 1000)),
    ?assertMatch(#{aim := 0.7, interval := 698, why := {hysteresis, {aim, 0.85, _}}}, S).

%% Gains spread more than 6 %: the base aim's margin is kept.
target_aim_noisy_test() ->
    S0 = ?P:init_state(?TP1, #{interval => 698, nodes => 5, push => never}),
    Ms = [#{p99 => P} || P <- [690000, 620000, 700000, 640000, 695000, 630000]],
    Is = run(?TP1, S0, Ms),
    ?assert(lists:all(fun(I) -> I =:= 698 end, Is)).

%% ---- target_p99: propagation on update ----

%% 5 nodes, fanout all, 1 s target: the model's 698 ms, without push.
push_state() ->
    push_state(#{}).

push_state(Ctx) ->
    S0 = ?P:init_state(?TP1, maps:merge(#{interval => 10000, nodes => 5, fanout => all}, Ctx)),
    {_, S1} = ?P:initial(?TP1, S0),
    S1.

%% A window of `Rate' updates a second (its p99, if any, in Fields).
w(At, Rate, Fields) ->
    m(At, maps:merge(#{updates => round(Rate), rate => float(round(Rate))}, Fields)).

%% Feed windows of the given rates a second apart from `At0'; the push
%% flag and interval after each, and the last state.
push_run(S0, At0, Rates) ->
    {Out, S} = lists:foldl(
                 fun(R, {Acc, S}) ->
                         At = At0 + 1000 * (length(Acc) + 1),
                         {_, S1} = ?P:decide(?TP1, S, w(At, R, #{})),
                         {[{maps:get(push, S1), maps:get(interval, S1)} | Acc], S1}
                 end, {[], S0}, Rates),
    {lists:reverse(Out), S}.

push_share_test() ->
    S = push_state(),
    ?assertMatch(#{interval := 698, push := false, anti_entropy := 60000}, S),
    %% Five updates a second: 20 messages a second pushed, against 5 x 4
    %% each 698 ms (28.7 a second); plus the anti-entropy rounds.
    ?assert(abs(?P:push_share(5, S) - (5 * 698 / 5000 + 698 / 60000)) < 1.0e-9),
    ?assert(?P:push_share(5, S) < 0.8),
    ?assert(?P:push_share(10, S) > 1.25).

%% Quiet: on after `calm + 1' windows, straight to the anti-entropy
%% interval (the round armed with the interval in force still goes out);
%% a burst: off at once, back to the interval.
push_on_off_test() ->
    S0 = push_state(),
    %% 3 updates a second: pushing would cost 0.43 of the interval's
    %% messages, under the threshold (0.8) but not far under it.
    {[{false, 698}, {false, 698}, {true, 60000}], S1} = push_run(S0, 0, [3, 3, 3]),
    ?assertMatch(#{need := 698, push := true, why := {quiet, #{rate := _}}}, S1),
    ?assertMatch({#{propagate_on_update := false, interval := 698},
                  #{push := false, why := {surge, _}}},
                 ?P:decide(?TP1, S1, w(3500, 100, #{}))),
    %% Within the dwell time too.
    ?assertMatch({#{propagate_on_update := false}, _}, ?P:decide(?TP1, S1, w(3100, 100, #{}))),
    %% Pushing, the measured p99 does not move the interval.
    ?assertMatch({keep, #{interval := 60000, push := true, why := {pushing, 5000}}},
                 ?P:decide(?TP1, S1, w(8000, 0, #{p99 => 5000}))),
    %% Pushing and over the target: back to the interval.
    ?assertMatch({#{propagate_on_update := false, interval := 698},
                  #{why := {over_target, infinity}}},
                 ?P:decide(?TP1, S1, w(8000, 0, #{p99 => infinity}))).

%% Far under the threshold (under half of it): on after one window.
push_on_fast_test() ->
    S0 = push_state(),
    {[{true, 60000}], S1} = push_run(S0, 0, [1]),
    ?assertMatch(#{need := 698, why := {quiet, #{rate := 1.0}}}, S1),
    {[{true, 60000}], _} = push_run(S0, 0, [0]),
    %% Not within the dwell time of the last change.
    ?assertMatch({keep, _}, ?P:decide(?TP1, S0#{last_change_ms := 500}, w(1000, 0, #{}))).

%% The rate falls from a busy spell: a window under half the rate of each
%% of the last ones is judged alone (they belong to the spell that ended),
%% unless push went off within five dwell times; then it is averaged with
%% them.
push_on_drop_test() ->
    S0 = push_state(),
    %% 100/s, then 5/s: on at the first slow window (0.71 of the
    %% interval's messages; the mean, 68/s, would be 9.6).
    {[{false, 698}, {false, 698}, {true, 60000}], S1} = push_run(S0, 0, [100, 100, 5]),
    ?assertMatch(#{why := {quiet, #{rate := 5.0, drop := true}}}, S1),
    %% Not far enough under each of them: the mean decides.
    {[{false, 698}, {false, 698}, {false, 698}], _} = push_run(S0, 0, [10, 10, 6]),
    {[{false, 698}, {false, 698}, {false, 698}], _} = push_run(S0, 0, [100, 6, 5]),
    %% Too few windows to call it a spell.
    {[{false, 698}, {false, 698}], _} = push_run(S0, 0, [100, 5]),
    %% Push went off on a surge: for five dwell times (10 s) the slow
    %% windows are averaged with the busy ones.
    {_, On} = push_run(S0, 0, [0, 0, 0]),
    {Off, S2} = ?P:decide(?TP1, On, w(3500, 100, #{})),
    ?assertMatch(#{propagate_on_update := false}, Off),
    ?assertMatch(#{drop_after := 13500}, S2),
    {Out, _} = push_run(S2, 3500, [100, 0, 0, 0, 0]),
    ?assertEqual([{false, 698}, {false, 698}, {false, 698}, {true, 60000}, {true, 60000}], Out),
    %% Rates that come and go: a busy window every third one is no spell,
    %% and push stays off; two busy windows in every three turn it on
    %% after them and off at the next burst, at most once in five dwell
    %% times.
    {Cycle1, _} = push_run(S0, 0, lists:append(lists:duplicate(20, [100, 0, 0]))),
    ?assertNot(lists:any(fun({P, _}) -> P end, Cycle1)),
    {Cycle2, _} = push_run(S0, 0, lists:append(lists:duplicate(20, [100, 100, 0]))),
    Ps = [false | [P || {P, _} <- Cycle2]],
    Ons = [K || {K, false, true} <- lists:zip3(lists:seq(1, 60), lists:droplast(Ps), tl(Ps))],
    ?assert(length(Ons) >= 2),
    ?assert(lists:all(fun({A, B}) -> B - A >= 10 end,
                      lists:zip(lists:droplast(Ons), tl(Ons)))).

%% Part of a window, while pushing: a surge with 10 updates or more turns
%% push off, or with 5 or more at four times a surge's rate (2.5 times the
%% interval's messages); fewer say too little; the rates of whole windows
%% stay as they were.
push_partial_surge_test() ->
    {_, S1} = push_run(push_state(), 0, [0, 0, 0]),
    Part = fun(At, U, Ms) -> #{at_ms => At, window_ms => Ms, partial => true, updates => U,
                               rate => U * 1000 / Ms} end,
    %% 9 updates in 300 ms: 30/s, 4.2 times the interval's messages.
    {keep, S2} = ?P:decide(?TP1, S1, Part(3300, 9, 300)),
    ?assertEqual(maps:get(rates, S1), maps:get(rates, S2)),
    ?assertMatch({#{propagate_on_update := false, interval := 698}, #{why := {surge, _}}},
                 ?P:decide(?TP1, S1, Part(3250, 25, 250))),
    %% 5 updates in 50 ms: 100/s, 14 times.
    ?assertMatch({#{propagate_on_update := false}, #{why := {surge, _}}},
                 ?P:decide(?TP1, S1, Part(3050, 5, 50))),
    %% 4 are too few; 5 at 60/s (8.4 times) too.
    ?assertMatch({keep, _}, ?P:decide(?TP1, S1, Part(3040, 4, 40))),
    ?assertMatch({keep, _}, ?P:decide(?TP1, S1, Part(3083, 5, 83))).

%% A moderate rise: off once the mean of the last windows costs more than
%% the interval (a 20 % hysteresis), not on one window.
push_busy_test() ->
    {_, S1} = push_run(push_state(), 0, [0, 0, 0]),
    true = maps:get(push, S1),
    %% 8/s: 1.13 times the interval's messages, within the hysteresis.
    {Out1, S2} = push_run(S1, 10000, [8, 8, 8, 8, 8]),
    ?assert(lists:all(fun({P, _}) -> P end, Out1)),
    %% 10/s: off once the mean of three windows is over 1.25.
    {Out2, _} = push_run(S2, 20000, [10, 10, 10]),
    ?assertMatch([{true, 60000}, {false, 698}, {false, 698}], Out2).

%% The interval the target needs is kept while pushing: measured before,
%% restored after.
push_restores_the_interval_test() ->
    S0 = push_state(),
    %% Well under the target for two windows: longer.
    {keep, S1a} = ?P:decide(?TP1, S0, w(1000, 100, #{p99 => 300000})),
    {_, S1} = ?P:decide(?TP1, S1a, w(2000, 100, #{p99 => 300000})),
    #{interval := I1} = S1,
    ?assert(I1 > 698),
    {_, S2} = push_run(S1, 10000, [0, 0, 0]),
    ?assertMatch(#{push := true, need := I1}, S2),
    ?assertMatch({#{interval := I1}, #{interval := I1, push := false}},
                 ?P:decide(?TP1, S2, w(20000, 100, #{}))).

%% Noisy rates near either threshold: at most the one change that crosses
%% it, never back and forth.
push_noise_test() ->
    rand:seed(exsss, {16, 17, 18}),
    S0 = push_state(),
    Rate = fun(Share) -> (Share - 698 / 60000) * 5000 / 698 end,
    Noisy = fun(Lo, Hi) -> [Rate(Lo + (Hi - Lo) * rand:uniform()) || _ <- lists:seq(1, 200)] end,
    Flips = fun(Out) -> length(changes([P || {P, _} <- Out])) end,
    %% Around break-even, from either side: nothing moves.
    {Off, _} = push_run(S0, 0, Noisy(0.85, 1.2)),
    ?assertEqual(0, Flips([{false, 0} | Off])),
    {_, On0} = push_run(S0, 0, [0, 0, 0]),
    {On, _} = push_run(On0, 10000, Noisy(0.85, 1.2)),
    ?assertEqual(0, Flips([{true, 0} | On])),
    %% Straddling the lower threshold, then the upper one.
    {Low, _} = push_run(S0, 0, Noisy(0.6, 1.0)),
    ?assert(Flips([{false, 0} | Low]) =< 1),
    {High, _} = push_run(On0, 10000, Noisy(1.0, 1.6)),
    ?assert(Flips([{true, 0} | High]) =< 1).

%% Idle, burst, steady, idle (the benchmark's schedule): push while idle
%% and steady, the interval through the burst; four changes of push.
push_phases_test() ->
    Rates = lists:duplicate(20, 0) ++ [1] ++ lists:duplicate(10, 100)
        ++ lists:duplicate(15, 5) ++ lists:duplicate(20, 0),
    {Out, _} = push_run(push_state(), 0, Rates),
    Ps = [P || {P, _} <- Out],
    ?assertEqual([true, false, true], changes([false | Ps])),
    ?assertEqual(false, lists:nth(22, Ps)),
    %% On again at the first steady window: the rate fell from the burst.
    ?assertEqual([false, true], [lists:nth(K, Ps) || K <- [31, 32]]),
    ?assert(lists:all(fun(P) -> P end, lists:nthtail(35, Ps))).

%% A burst whose windows agree with the model (p99 = interval + 2 ms):
%% the aim rises to 0.85 on the fifth and the interval goes from 698 to
%% 848 ms; the state after `Windows' of them, and the push flag and
%% interval after each.
raised_burst(Windows) ->
    P99 = fun(S) -> #{p99 => 1000 * (maps:get(interval, S) + 2)} end,
    {Out, S} = lists:foldl(
                 fun(K, {Acc, S}) ->
                         {_, S1} = ?P:decide(?TP1, S, w(1000 * K, 100, P99(S))),
                         {[{maps:get(push, S1), maps:get(interval, S1)} | Acc], S1}
                 end, {[], push_state()}, lists:seq(1, Windows)),
    {lists:reverse(Out), S}.

%% Push is judged against rounds at the base aim's interval: the raised
%% aim's longer rounds leave the share where it was.
push_share_base_aim_test() ->
    {_, S} = raised_burst(6),
    ?assertMatch(#{aim := 0.85, interval := 848, push := false}, S),
    Base = push_state(),
    ?assertEqual(?P:push_share(5, Base), ?P:push_share(5, S)),
    %% Back at the base aim (a window over the target), the interval in
    %% force counts as it is.
    ?assert(?P:push_share(5, S#{aim := 0.7}) > ?P:push_share(5, S)),
    %% Never under the minimum interval.
    Tiny = (push_state(#{min => 800}))#{interval := 848, aim := 0.85},
    ?assertEqual(5 * 800 / 5000 + 800 / 60000, ?P:push_share(5, Tiny)).

%% The benchmark's burst with the aim raised, then 5/s and idle: push goes
%% on at the first slow window (0.71 of the base aim's rounds; 0.86 of
%% the 848 ms rounds in force, over the 0.8 threshold), keeping the base
%% aim's interval, and stays on; a surge turns it off with that interval
%% back, and the aim rises again after five agreeing windows.
push_on_after_raised_burst_test() ->
    {Burst, S1} = raised_burst(10),
    ?assertEqual(lists:duplicate(4, {false, 698}) ++ lists:duplicate(6, {false, 848}), Burst),
    ?assert(5 * 848 / 5000 + 848 / 60000 > 0.8),
    {Out, S2} = push_run(S1, 10000, lists:duplicate(15, 5) ++ lists:duplicate(20, 0)),
    ?assertEqual([{true, 60000}], lists:usort(Out)),
    ?assertMatch(#{need := 698, aim := 0.7, recent := [],
                   why := {quiet, #{rate := 5.0, drop := true}}},
                 element(2, push_run(S1, 10000, [5]))),
    {Off, S3} = ?P:decide(?TP1, S2, w(46000, 100, #{})),
    ?assertMatch(#{propagate_on_update := false, interval := 698}, Off),
    ?assertMatch(#{push := false, aim := 0.7, why := {surge, _}}, S3),
    P99 = fun(S) -> #{p99 => 1000 * (maps:get(interval, S) + 2)} end,
    {_, S4} = lists:foldl(fun(At, {_, S}) -> ?P:decide(?TP1, S, w(At, 100, P99(S))) end,
                          {keep, S3}, lists:seq(47000, 51000, 1000)),
    ?assertMatch(#{push := false, aim := 0.85, interval := 848}, S4).

%% With the aim raised, noisy rates near either threshold (on the base
%% aim's scale): nothing moves around break-even, at most the one change
%% that crosses a threshold, never back and forth.
push_noise_raised_aim_test() ->
    rand:seed(exsss, {19, 20, 21}),
    {_, S0} = raised_burst(10),
    Rate = fun(Share) -> (Share - 698 / 60000) * 5000 / 698 end,
    Noisy = fun(Lo, Hi) -> [Rate(Lo + (Hi - Lo) * rand:uniform()) || _ <- lists:seq(1, 200)] end,
    Flips = fun(Out) -> length(changes([P || {P, _} <- Out])) end,
    {Off, _} = push_run(S0, 10000, Noisy(0.85, 1.2)),
    ?assertEqual(0, Flips([{false, 0} | Off])),
    {_, On0} = push_run(S0, 10000, [5, 5, 5]),
    ?assertMatch(#{push := true, need := 698}, On0),
    {On, _} = push_run(On0, 20000, Noisy(0.85, 1.2)),
    ?assertEqual(0, Flips([{true, 0} | On])),
    {Low, _} = push_run(S0, 10000, Noisy(0.6, 1.0)),
    ?assert(Flips([{false, 0} | Low]) =< 1),
    {High, _} = push_run(On0, 20000, Noisy(1.0, 1.6)),
    ?assert(Flips([{true, 0} | High]) =< 1).

push_not_driven_test() ->
    %% push => never, or a fanout that does not reach every member: never on.
    lists:foreach(fun(Ctx) ->
                          {Out, _} = push_run(push_state(Ctx), 0, lists:duplicate(20, 0)),
                          ?assertNot(lists:any(fun({P, _}) -> P end, Out))
                  end, [#{push => never}, #{fanout => 2}]),
    %% Found on: turned off with the model's interval first.
    S = ?P:init_state(?TP1, #{interval => 10000, nodes => 5, propagate_on_update => true}),
    ?assertMatch({#{propagate_on_update := false, interval := 698}, #{push := false}},
                 ?P:initial(?TP1, S)),
    %% Left alone with push => never.
    ?assertMatch({698, #{push := true}}, ?P:initial(?TP1, S#{push_auto := false})).

%% ---- budget ----

-define(BU, {budget, 100}).

budget_model_test() ->
    S0 = ?P:init_state(?BU, #{interval => 10000, nodes => 5, fanout => all}),
    %% 5 nodes sending to 4 peers each round: 20 messages a round.
    ?assertMatch({286, _}, ?P:initial(?BU, S0)),
    S1 = S0#{mode := delta_based},
    ?assertMatch({571, _}, ?P:initial(?BU, S1)).

budget_direction_test() ->
    S0 = ?P:init_state(?BU, #{interval => 100}),
    {I1, _} = ?P:decide(?BU, S0, m(1000, #{message_rate => 300.0})),
    ?assert(I1 > 100),
    %% Silence (delta-based, nothing to send): faster, after two windows.
    {keep, S2} = ?P:decide(?BU, S0, m(1000, #{message_rate => 0.0})),
    ?assertMatch({50, _}, ?P:decide(?BU, S2, m(2000, #{message_rate => 0.0}))),
    ?assertMatch({keep, #{why := {in_band, _}}},
                 ?P:decide(?BU, S0, m(1000, #{message_rate => 80.0}))).

%% Messages proportional to 1/interval, 20 % noise: within the budget after
%% the first corrections, and steady.
budget_converges_test() ->
    rand:seed(exsss, {10, 11, 12}),
    Plant = fun(I) -> #{message_rate => 30000 / I * (0.8 + 0.4 * rand:uniform())} end,
    S0 = ?P:init_state(?BU, #{interval => 10000, nodes => 5}),
    {I0, S1} = ?P:initial(?BU, S0),
    {Is, Fs} = closed_loop(?BU, S1#{interval := I0}, Plant, 100),
    Over = length([R || #{message_rate := R} <- lists:nthtail(10, Fs), R > 100]),
    ?assert(Over =< 90 * 5 div 100),
    ?assert(reversals(changes([I0 | Is])) =< 2),
    ?assert(length(changes(Is)) =< 4).

%% ---- helpers for the synthetic runs ----

m(At, Fields) ->
    maps:merge(#{at_ms => At, window_ms => 1000}, Fields).

%% Feed measurements a second apart; the interval after each.
run(Policy, S0, Ms) ->
    {Is, _} = lists:foldl(fun(F, {Acc, S}) ->
                                  At = 1000 * (length(Acc) + 1) + 100000,
                                  {_, S1} = ?P:decide(Policy, S, m(At, F)),
                                  {[maps:get(interval, S1) | Acc], S1}
                          end, {[], S0}, Ms),
    lists:reverse(Is).

%% The plant answers each interval with a measurement; the intervals after
%% each decision, and the measurements.
closed_loop(Policy, S0, Plant, N) ->
    {Is, Fs, _} = lists:foldl(
                    fun(K, {Is, Fs, S}) ->
                            F = Plant(maps:get(interval, S)),
                            {_, S1} = ?P:decide(Policy, S, m(1000 * K, F)),
                            {[maps:get(interval, S1) | Is], [F | Fs], S1}
                    end, {[], [], S0}, lists:seq(1, N)),
    {lists:reverse(Is), lists:reverse(Fs)}.

%% How many times a sequence of values turns from rising to falling or back.
reversals(Vs) when length(Vs) < 3 ->
    0;
reversals(Vs) ->
    Signs = [sign(B - A) || {A, B} <- lists:zip(lists:droplast(Vs), tl(Vs))],
    length([x || {X, Y} <- lists:zip(lists:droplast(Signs), tl(Signs)), X =/= Y]).

sign(D) when D > 0 -> 1;
sign(_) -> -1.

changes([]) -> [];
changes([H | T]) ->
    {Cs, _} = lists:foldl(fun(I, {Acc, Prev}) when I =:= Prev -> {Acc, Prev};
                             (I, {Acc, _}) -> {[I | Acc], I}
                          end, {[], H}, T),
    lists:reverse(Cs).

%% ---- on a cluster ----

cluster_test_() ->
    {timeout, 90, fun three_nodes/0}.

three_nodes() ->
    WasAlive = is_alive(),
    try
        ?CL:with_cluster(3, #{prefix => lc_tun}, fun(C) ->
                                                         set_get(C),
                                                         real_run(C),
                                                         push_run(C)
                                                 end)
    after
        WasAlive orelse net_kernel:stop()
    end.

%% N3 runs a stand-in for Lasp: an application named `lasp' and a
%% `lasp_config' keeping what it is given in the application's env, as
%% Lasp's does.
fake_lasp(C, N) ->
    Forms = [{attribute, 1, module, lasp_config},
             {attribute, 2, export, [{set, 2}, {get, 2}]},
             {function, 3, set, 2,
              [{clause, 3, [{var, 3, 'K'}, {var, 3, 'V'}], [],
                [{call, 3, {remote, 3, {atom, 3, application}, {atom, 3, set_env}},
                  [{atom, 3, lasp}, {var, 3, 'K'}, {var, 3, 'V'}]}]}]},
             {function, 4, get, 2,
              [{clause, 4, [{var, 4, 'K'}, {var, 4, 'D'}], [],
                [{call, 4, {remote, 4, {atom, 4, application}, {atom, 4, get_env}},
                  [{atom, 4, lasp}, {var, 4, 'K'}, {var, 4, 'D'}]}]}]}],
    {ok, lasp_config, Bin} = compile:forms(Forms, []),
    {module, lasp_config} = ?CL:call(C, N, code, load_binary, [lasp_config, "lasp_config.erl", Bin]),
    App = {application, lasp, [{description, "stand-in"}, {vsn, "0"}, {modules, []},
                               {registered, []}, {applications, [kernel, stdlib]}]},
    ok = ?CL:call(C, N, application, load, [App]),
    ok = ?CL:call(C, N, application, start, [lasp]).

set_get(C) ->
    Ns = [N1, N2, N3] = ?CL:nodes(C),
    fake_lasp(C, N3),
    All = #{state_interval => 120, delta_interval => 300, propagate_on_update => true,
            jitter => true, jitter_percent => 7},
    ?assertEqual({ok, #{N1 => replicator, N2 => replicator, N3 => lasp}},
                 ?T:set(All, #{nodes => Ns})),
    ?assertMatch(#{agree := true, disagree := [], settings := All,
                   backends := #{N1 := replicator, N3 := lasp}},
                 ?T:get(#{nodes => Ns})),
    %% Where it went: the replicator's own knobs, and Lasp's config.
    ?assertMatch(#{state_interval := 120, propagate_on_update := true, jitter_percent := 7},
                 ?CL:call(C, N2, ?R, settings, [])),
    ?assertEqual({ok, 300}, ?CL:call(C, N3, application, get_env, [lasp, delta_interval])),
    %% Every node running the application, or Lasp, by default.
    ?assertEqual(lists:sort(Ns), lists:sort(maps:keys(maps:get(per_node, ?T:get()))) -- [node()]),
    %% One node differs: reported.
    {ok, _} = ?T:set(#{state_interval => 500, jitter => false}, #{nodes => [N2]}),
    G = ?T:get(#{nodes => Ns}),
    ?assertMatch(#{agree := false, disagree := [state_interval, jitter]}, G),
    ?assertEqual(#{delta_interval => 300, propagate_on_update => true, jitter_percent => 7},
                 maps:get(settings, G)),
    ?assertMatch(#{N2 := #{state_interval := 500, jitter := false, jitter_percent := 7}},
                 maps:get(per_node, G)),
    ?assertMatch(#{jitter_percent := 0}, ?CL:call(C, N2, ?R, settings, [])),
    %% Delta-based: delta_interval drives the replicator's timer.
    {ok, _} = ?CL:call(C, N1, ?R, set, [#{mode => delta_based}]),
    {ok, _} = ?T:set(#{delta_interval => 80}, #{nodes => [N1]}),
    ?assertMatch(#{state_interval := 80}, ?CL:call(C, N1, ?R, settings, [])),
    ?assertMatch(#{N1 := #{state_interval := 120, delta_interval := 80}},
                 maps:get(per_node, ?T:get(#{nodes => Ns}))),
    {ok, _} = ?CL:call(C, N1, ?R, set, [#{mode => state_based, state_interval => 120}]),
    %% Bad settings change nothing.
    ?assertEqual({error, {bad_settings, [fanout, state_interval]}},
                 ?T:set(#{state_interval => 0, fanout => 2}, #{nodes => Ns})),
    [_, Host] = string:split(atom_to_list(N1), "@"),
    Gone = list_to_atom("lc_tun_gone@" ++ Host),
    ?assertEqual({error, {set_failed, [{Gone, not_running}]}},
                 ?T:set(#{state_interval => 100}, #{nodes => [Gone]})),
    %% Lasp stops on N3: the replicator takes the settings again.
    ok = ?CL:call(C, N3, application, stop, [lasp]),
    ?assertMatch(#{backends := #{N3 := replicator}}, ?T:get(#{nodes => Ns})).

%% A replicated orset on three nodes, 2 s rounds, about 25 updates a
%% second; the controller on N1 with a 300 ms p99 target.
real_run(C) ->
    Ns = [N1 | _] = ?CL:nodes(C),
    Var = {<<"tuned">>, state_orset},
    {ok, _} = ?T:set(#{state_interval => 2000, propagate_on_update => false, jitter => false},
                     #{nodes => Ns}),
    ok = ?CL:call(C, N1, lasp_converge, track, [Var, #{nodes => Ns}]),
    {ok, _} = ?CL:call(C, N1, ?R, declare, [Var, state_orset, #{nodes => Ns}]),
    Writer = spawn_link(fun() -> write(C, Ns, Var, 0) end),
    try
        %% Fanout 1: the model counts two gossip rounds for three nodes,
        %% where the replicator's rounds overlap; the measurements correct it.
        Opts = #{nodes => Ns, window => 500, dwell => 1000, min_samples => 5, fanout => 1},
        ?assertEqual({error, {bad_policy, {target_p99, 0}}},
                     ?CL:call(C, N1, ?T, start, [Var, {target_p99, 0}, Opts])),
        ?assertEqual({error, {unknown_option, windw}},
                     ?CL:call(C, N1, ?T, start, [Var, {target_p99, 300}, Opts#{windw => 5}])),
        %% A bad value is answered before any process starts.
        ?assertEqual({error, {bad_option, window, -1}},
                     ?CL:call(C, N1, ?T, start, [Var, {target_p99, 300}, Opts#{window => -1}])),
        ?assertEqual({error, {bad_option, aim, 2}},
                     ?CL:call(C, N1, ?T, start, [Var, {target_p99, 300}, Opts#{aim => 2}])),
        ?assertEqual({error, {bad_opts, [{window, 5}]}},
                     ?CL:call(C, N1, ?T, start, [Var, {target_p99, 300}, [{window, 5}]])),
        {ok, _} = ?CL:call(C, N1, ?T, start, [Var, {target_p99, 300}, Opts]),
        ?assertEqual({error, already_started},
                     ?CL:call(C, N1, ?T, start, [Var, {fixed, 10}, Opts])),
        %% The model's first value, at once: two rounds, under the target.
        [First | _] = ?CL:call(C, N1, ?T, log, [Var]),
        ?assertMatch(#{key := state_interval, old := 2000, new := 104, measurement := none,
                       why := {model, #{rounds := 2}}, result := ok},
                     First),
        ?assertEqual([104], intervals(Ns)),
        %% Then it measures, and moves from what it measures (or finds the
        %% p99 between half the target and the target, and stays).
        wait_until(fun() ->
                           case ?CL:call(C, N1, ?T, status, [Var]) of
                               #{last := #{p99 := P}, state := #{why := Why}}
                                 when is_integer(P) ->
                                   length(?CL:call(C, N1, ?T, log, [Var])) >= 2
                                       orelse element(1, Why) =:= in_band;
                               _ ->
                                   false
                           end
                   end, 15000),
        %% Every move it made from a measurement went the right way.
        [?assert(if
                     P > 300000 -> New < Old;
                     P < 150000 -> New > Old;
                     true -> false
                 end)
         || #{measurement := #{p99 := P}, old := Old, new := New}
                <- ?CL:call(C, N1, ?T, log, [Var])],
        %% Whatever it did since, every node runs its interval, and each
        %% change was recorded as a mark.
        wait_until(fun() ->
                           #{state := #{interval := I}} = ?CL:call(C, N1, ?T, status, [Var]),
                           intervals(Ns) =:= [I]
                   end, 5000),
        Log = ?CL:call(C, N1, ?T, log, [Var]),
        wait_until(fun() ->
                           Marks = [M || #{tuner := V} = M <- ?CL:call(C, N1, lasp_converge,
                                                                       marks, [Var]),
                                         V =:= Var],
                           length(Marks) >= length(Log)
                   end, 5000),
        ?assertEqual(ok, ?CL:call(C, N1, ?T, stop, [Var])),
        ?assertEqual({error, not_running}, ?CL:call(C, N1, ?T, log, [Var])),
        ?assertEqual({error, not_running}, ?CL:call(C, N1, ?T, stop, [Var]))
    after
        unlink(Writer),
        exit(Writer, kill)
    end.

%% A variable updated about once a second: the controller turns
%% propagation on update on everywhere, with the anti-entropy interval;
%% then a fast writer: off, back to an interval.
push_run(C) ->
    Ns = [N1 | _] = ?CL:nodes(C),
    Var = {<<"pushed">>, state_orset},
    {ok, _} = ?T:set(#{state_interval => 2000, propagate_on_update => false, jitter => false},
                     #{nodes => Ns}),
    ok = ?CL:call(C, N1, lasp_converge, track, [Var, #{nodes => Ns}]),
    {ok, _} = ?CL:call(C, N1, ?R, declare, [Var, state_orset, #{nodes => Ns}]),
    Slow = spawn_link(fun() -> write(C, Ns, Var, 0, 1000) end),
    Opts = #{nodes => Ns, window => 300, dwell => 600, max => 20000},
    {ok, _} = ?CL:call(C, N1, ?T, start, [Var, {target_p99, 1000}, Opts]),
    Settings = fun() -> lists:usort([{maps:get(propagate_on_update, S), maps:get(state_interval, S)}
                                     || S <- maps:values(maps:get(per_node,
                                                                  ?T:get(#{nodes => Ns})))])
               end,
    try
        wait_until(fun() -> Settings() =:= [{true, 20000}] end, 20000),
        ?assertMatch([#{key := propagate_on_update, old := false, new := true,
                        why := {quiet, _}, result := ok},
                      #{key := state_interval, new := 20000}],
                     [E || #{key := K} = E <- ?CL:call(C, N1, ?T, log, [Var]),
                           K =:= propagate_on_update orelse maps:get(new, E) =:= 20000]),
        unlink(Slow),
        exit(Slow, kill),
        Fast = spawn_link(fun() -> write(C, Ns, Var, 100000, 0) end),
        try
            wait_until(fun() ->
                               case Settings() of
                                   [{false, I}] -> I < 20000;
                                   _ -> false
                               end
                       end, 20000)
        after
            unlink(Fast),
            exit(Fast, kill)
        end,
        wait_until(fun() ->
                           Marks = [M || #{tuner := V, key := propagate_on_update} = M
                                             <- ?CL:call(C, N1, lasp_converge, marks, [Var]),
                                         V =:= Var],
                           length(Marks) >= 2
                   end, 5000),
        ?assertEqual(ok, ?CL:call(C, N1, ?T, stop, [Var]))
    after
        unlink(Slow),
        exit(Slow, kill)
    end.

%% The state intervals in force on the nodes, without duplicates.
intervals(Ns) ->
    #{per_node := Per} = ?T:get(#{nodes => Ns}),
    lists:usort([maps:get(state_interval, S) || S <- maps:values(Per)]).

write(C, Ns, Var, K) ->
    write(C, Ns, Var, K, 40).

write(C, Ns, Var, K, Sleep) ->
    N = lists:nth(K rem length(Ns) + 1, Ns),
    {ok, _} = ?CL:call(C, N, ?R, update, [Var, {add, K}, N]),
    _ = Sleep > 0 andalso timer:sleep(Sleep),
    write(C, Ns, Var, K + 1, Sleep).

wait_until(F, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    wait_until(F, Deadline, Ms).

wait_until(F, Deadline, Ms) ->
    case F() of
        true ->
            ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> error({timeout, Ms});
                false -> timer:sleep(50), wait_until(F, Deadline, Ms)
            end
    end.

%% recommend/1: the simulator's proposal, the same as lasp_converge_sim's.
recommend_is_the_simulators_test() ->
    Opts = #{target_p99 => 2000, nodes => 20, update_rate => 5, duration => 5000,
             fanouts => [2]},
    {ok, Best} = lasp_converge_tuner:recommend(Opts),
    ?assertEqual({ok, Best}, lasp_converge_sim:recommend(Opts)),
    ?assertMatch(#{fanout := 2, state_interval := I, p99 := P} when is_integer(I) andalso P =< 2000000,
                 Best),
    ?assertEqual({error, {bad_spec, target_p99}}, lasp_converge_tuner:recommend(#{nodes => 3})).

%% Windows of 100 samples or more agree with the model: their p99s are
%% percentiles, so the aim rises after `calm + 1' of them (the third
%% window) instead of `2 × calm + 1'; with fewer samples it waits for the
%% fifth, as before.
target_aim_rises_sooner_with_rich_windows_test() ->
    S0 = ?P:init_state(?TP1, #{interval => 698, nodes => 5, push => never}),
    Rich = fun(I) -> #{p99 => round(1000 * (I + 2)), samples => 150} end,
    Few = fun(I) -> #{p99 => round(1000 * (I + 2)), samples => 20} end,
    {IsRich, _} = closed_loop(?TP1, S0, Rich, 5),
    ?assertEqual([698, 698, 848, 848, 848], IsRich),
    {IsFew, _} = closed_loop(?TP1, S0, Few, 5),
    ?assertEqual([698, 698, 698, 698, 848], IsFew),
    %% A window with fewer samples in between starts the count again.
    Mixed = [Rich(698), Rich(698), Few(698), Rich(698), Rich(698)],
    ?assertEqual([698, 698, 698, 698, 848], run(?TP1, S0, Mixed)),
    %% Rich windows whose gains spread more than 6 %: no rise.
    Spread = [#{p99 => P, samples => 150} || P <- [700000, 640000, 690000, 630000, 700000]],
    ?assert(lists:all(fun(I) -> I =:= 698 end, run(?TP1, S0, Spread))).

%% Each change says why with the figures it was made from: the model's
%% interval; the measured p99, the gain and the interval they ask for;
%% the rate, the interval and nodes the push share compares, and the
%% share against its threshold.
why_figures_test() ->
    S0 = ?P:init_state(?TP1, #{interval => 10000, nodes => 5, fanout => all}),
    {698, S1} = ?P:initial(?TP1, S0),
    ?assertMatch(#{why := {model, #{rounds := 1, target_ms := 1000, aim := 0.7,
                                    interval := 698, latency_ms := 2}}}, S1),
    %% 1.5 s measured at 698 ms: gain (1500 - 2) / 698, asking for
    %% (700 - 2) / gain.
    {I2, S2} = ?P:decide(?TP1, S1, m(1000, #{p99 => 1500000, samples => 40})),
    {over_target, #{p99_ms := 1500.0, samples := 40, target_ms := 1000, gain := G,
                    aim := 0.7, interval := Asked}} = maps:get(why, S2),
    ?assert(abs(G - 1498 / 698) < 1.0e-9),
    ?assertEqual(round(698 / G), Asked),
    ?assertEqual(I2, Asked),
    %% Quiet: the share of pushing at the mean rate against the interval.
    {_, S3} = push_run(push_state(), 0, [1]),
    {quiet, #{rate := 1.0, interval := 698, nodes := 5, anti_entropy := 60000,
              share := Share, under := 0.8, windows := 1}} = maps:get(why, S3),
    ?assertEqual(?P:push_share(1.0, push_state()), Share),
    %% A surge: the window's rate and share, over twice the threshold.
    {_, S4} = ?P:decide(?TP1, S3, w(10000, 100, #{})),
    ?assertMatch({surge, #{rate := 100.0, interval := 698, nodes := 5, over := 2.5}},
                 maps:get(why, S4)),
    %% The aim rises: the gains of the windows that agreed.
    {_, S5} = raised_burst(5),
    {aim, 0.85, #{gains := Gains, gain := Max, interval := 848, p99_ms := _}} =
        maps:get(why, S5),
    ?assertEqual(5, length(Gains)),
    ?assertEqual(lists:max(Gains), Max).
