%% @doc The aggregating node dies (`lasp_converge_fault:crash/2' on a
%% three-peer cluster): the other nodes keep their trackers and their
%% journals, say `{error, {aggregator_down, Node}}', go on accepting
%% updates, and `track(Var, #{take_over => true})' on one of them rebuilds
%% the measurement from what they kept: the updates made on the surviving
%% nodes, before and after the crash, with their first-seen times, and the
%% takeover as a mark. Tracking goes on from there; while the new
%% aggregator lives, another takeover is refused.
-module(lasp_converge_handover_tests).

-include_lib("eunit/include/eunit.hrl").

-define(C, lasp_converge_crdt).
-define(L, lasp_converge).

handover_test_() ->
    {timeout, 120, fun handover/0}.

handover() ->
    lasp_converge_cluster:with_cluster(3, #{prefix => lc_handover}, fun run/1).

call(C, N, F, A) ->
    lasp_converge_cluster:call(C, N, ?L, F, A).

run(C) ->
    [A, B, D] = lasp_converge_cluster:nodes(C),
    V = {<<"handover">>, state_gset},
    ok = call(C, A, track, [V, #{nodes => [A, B, D]}]),
    G0 = gs([]),
    G1 = gs([{b, 1}]),
    G2 = gs([{b, 1}, <<"d">>]),
    G3 = gs([{b, 1}, <<"d">>, a]),
    %% One update on B, seen everywhere; one on D, seen by D only; one on
    %% A, seen by A only.
    ok = call(C, B, updated, [V, G0, G1]),
    [ok = call(C, N, observed, [V, G1]) || N <- [A, B, D]],
    ok = call(C, D, updated, [V, G1, G2]),
    ok = call(C, D, observed, [V, G2]),
    ok = call(C, A, updated, [V, G2, G3]),
    wait(fun() ->
                 case call(C, A, stats, [V]) of
                     #{updates := 3, converged := 1} -> true;
                     _ -> false
                 end
         end),
    Crash = os:system_time(microsecond),
    ok = lasp_converge_fault:crash(C, A),

    %% The others say what happened, and keep accepting updates.
    wait(fun() -> call(C, B, stats, [V]) =:= {error, {aggregator_down, A}} end),
    wait(fun() -> call(C, D, stats, [V]) =:= {error, {aggregator_down, A}} end),
    ?assertEqual({error, {aggregator_down, A}}, call(C, D, records, [V])),
    ok = call(C, B, observed, [V, G2]),
    G4 = gs([{b, 1}, <<"d">>, {b, 2}]),
    ok = call(C, B, updated, [V, G2, G4]),
    ok = call(C, D, observed, [V, G4]),

    %% D takes over; B's and D's records come with it, A's own update is
    %% gone with A.
    ok = call(C, D, track, [V, #{take_over => true, nodes => [B, D]}]),
    S = wait_stats(C, D, V, fun(#{updates := 3, converged := 3}) -> true; (_) -> false end),
    ?assertMatch(#{pending := 0, unconverged := 0}, S),
    ?assertEqual(lists:sort([B, D]), lists:sort(maps:get(nodes, S))),
    Recs = call(C, D, records, [V]),
    ?assertEqual(lists:sort([{B, 1}, {D, 1}, {B, 2}]),
                 lists:sort([{O, Seq} || #{origin := O, seq := Seq} <- Recs])),
    %% The replayed first-seen times are those taken then: B's first
    %% update was seen everywhere before the crash.
    [#{seen := Seen1}] = [R || R = #{origin := O, seq := 1} <- Recs, O =:= B],
    ?assertEqual([B, D], lists:sort(maps:keys(Seen1))),
    [?assert(T < Crash) || T <- maps:values(Seen1)],
    ?assertMatch([#{takeover := #{from := A, replayed := R, dropped := 0}}] when R >= 6,
                 [M || M = #{takeover := _} <- call(C, D, marks, [V])]),
    %% The query on B now reaches D.
    ?assertMatch(#{updates := 3, converged := 3}, call(C, B, stats, [V])),

    %% Tracking goes on: B's next update reaches D, B's sequence numbers
    %% carry on.
    G5 = gs([{b, 1}, <<"d">>, {b, 2}, {b, 3}]),
    ok = call(C, B, updated, [V, G4, G5]),
    [ok = call(C, N, observed, [V, G5]) || N <- [B, D]],
    wait_stats(C, D, V, fun(#{updates := 4, converged := 4}) -> true; (_) -> false end),
    ?assert(lists:member({B, 3}, [{O, Seq} || #{origin := O, seq := Seq}
                                                 <- call(C, D, records, [V])])),

    %% Nobody takes over a live aggregator.
    ?assertEqual({error, {aggregator_alive, D}},
                 call(C, B, track, [V, #{take_over => true, nodes => [B, D]}])),
    ?assertEqual({error, {bad_option, take_over, maybe}},
                 call(C, B, track, [V, #{take_over => maybe}])),
    ok = call(C, D, untrack, [V]),
    wait(fun() -> call(C, B, stats, [V]) =:= {error, not_tracked} end).

%% A plain track/1 after the aggregator died starts afresh and adopts the
%% orphaned members, whose journals are dropped; `untrack/1' on an
%% orphaned member stops it.
fresh_track_adopts_orphans_test_() ->
    {timeout, 120,
     fun() ->
             lasp_converge_cluster:with_cluster(
               3, #{prefix => lc_orphans},
               fun(C) ->
                       [A, B, D] = lasp_converge_cluster:nodes(C),
                       V = {<<"orphans">>, state_gset},
                       ok = call(C, A, track, [V, #{nodes => [A, B, D]}]),
                       ok = call(C, B, updated, [V, gs([]), gs([x])]),
                       ok = lasp_converge_fault:crash(C, A),
                       wait(fun() -> call(C, D, stats, [V]) =:= {error, {aggregator_down, A}} end),
                       ok = call(C, B, track, [V, #{nodes => [B, D]}]),
                       S = call(C, B, stats, [V]),
                       ?assertMatch(#{updates := 0}, S),
                       ?assertEqual(lists:sort([B, D]), lists:sort(maps:get(nodes, S))),
                       ok = call(C, D, updated, [V, gs([x]), gs([x, y])]),
                       wait_stats(C, B, V, fun(#{updates := 1}) -> true; (_) -> false end),
                       ok = lasp_converge_fault:crash(C, B),
                       wait(fun() -> call(C, D, stats, [V]) =:= {error, {aggregator_down, B}} end),
                       ?assertEqual(ok, call(C, D, untrack, [V])),
                       ?assertEqual({error, not_tracked}, call(C, D, stats, [V]))
               end)
     end}.

gs(Elems) -> {state_gset, lists:usort(Elems)}.

%% A journal past `journal_max' drops its oldest entries and counts them:
%% the takeover's mark says how many, and the member's last state still
%% makes its node see what it had seen.
a_full_journal_counts_what_it_dropped_test_() ->
    {timeout, 120,
     fun() ->
             lasp_converge_cluster:with_cluster(
               3, #{prefix => lc_journal},
               fun(C) ->
                       [A, B, D] = lasp_converge_cluster:nodes(C),
                       V = {<<"journal">>, state_gset},
                       ok = lasp_converge_cluster:call(C, B, application, set_env,
                                                       [lasp_converge, journal_max, 2]),
                       ok = call(C, A, track, [V, #{nodes => [A, B, D]}]),
                       States = [gs(lists:seq(1, K)) || K <- lists:seq(0, 4)],
                       [begin
                            ok = call(C, B, updated, [V, Pre, Post]),
                            ok = call(C, B, observed, [V, Post])
                        end || {Pre, Post} <- lists:zip(lists:droplast(States), tl(States))],
                       ok = call(C, D, observed, [V, lists:last(States)]),
                       ok = lasp_converge_fault:crash(C, A),
                       wait(fun() -> call(C, D, stats, [V]) =:= {error, {aggregator_down, A}} end),
                       ok = call(C, D, track, [V, #{take_over => true, nodes => [B, D]}]),
                       [#{takeover := #{dropped := Dropped, replayed := Replayed}}] =
                           [M || M = #{takeover := _} <- call(C, D, marks, [V])],
                       %% 8 entries on B, 2 kept; D's single observation.
                       ?assertEqual(6, Dropped),
                       ?assertEqual(3, Replayed),
                       %% The update still in B's journal converged: B made
                       %% it, D's state holds it.
                       ?assertMatch(#{updates := 1, converged := 1}, call(C, D, stats, [V]))
               end)
     end}.

%% reset/1 starts a new measurement on the members' journals too: a
%% takeover after it replays nothing from before.
reset_clears_the_journals_test_() ->
    {timeout, 120,
     fun() ->
             lasp_converge_cluster:with_cluster(
               3, #{prefix => lc_reset},
               fun(C) ->
                       [A, B, D] = lasp_converge_cluster:nodes(C),
                       V = {<<"reset">>, state_gset},
                       ok = call(C, A, track, [V, #{nodes => [A, B, D]}]),
                       ok = call(C, B, updated, [V, gs([]), gs([1])]),
                       [ok = call(C, N, observed, [V, gs([1])]) || N <- [A, D]],
                       wait_stats(C, A, V, fun(#{converged := 1}) -> true; (_) -> false end),
                       ok = call(C, A, reset, [V]),
                       ok = call(C, B, updated, [V, gs([1]), gs([1, 2])]),
                       wait_stats(C, A, V, fun(#{updates := 1}) -> true; (_) -> false end),
                       ok = lasp_converge_fault:crash(C, A),
                       wait(fun() -> call(C, D, stats, [V]) =:= {error, {aggregator_down, A}} end),
                       ok = call(C, D, track, [V, #{take_over => true, nodes => [B, D]}]),
                       %% Only B's second update; D's last state (from before
                       %% the reset) is replayed as its observation.
                       [#{takeover := #{replayed := 1, dropped := 0}}] =
                           [M || M = #{takeover := _} <- call(C, D, marks, [V])],
                       ?assertMatch(#{updates := 1, pending := 1, converged := 0},
                                    call(C, D, stats, [V])),
                       ok = call(C, D, observed, [V, gs([1, 2])]),
                       wait_stats(C, D, V, fun(#{converged := 1}) -> true; (_) -> false end),
                       ?assertEqual([{B, 2}], [{O, Q} || #{origin := O, seq := Q}
                                                         <- call(C, D, records, [V])])
               end)
     end}.

wait_stats(C, N, V, Pred) ->
    wait(fun() ->
                 S = call(C, N, stats, [V]),
                 is_map(S) andalso Pred(S)
         end),
    call(C, N, stats, [V]).

wait(F) ->
    wait(F, 200).

wait(F, 0) ->
    ?assert(F());
wait(F, N) ->
    case F() of
        true -> ok;
        false -> timer:sleep(50), wait(F, N - 1)
    end.
