%% @doc EUnit tests of convergence tracking on one node: the native tracker
%% (`lasp_converge_nif:tracker_*') with timestamps the test chooses, so every
%% figure is exact, and the public API (`lasp_converge') around it.
-module(lasp_converge_tracker_tests).

-include_lib("eunit/include/eunit.hrl").

-define(N, lasp_converge_nif).
-define(C, lasp_converge_crdt).

%% Nodes 0, 1, 2 sharing the reference clock, members from time 0.
tracker() ->
    tracker(#{}).

tracker(Opts) ->
    {ok, R} = ?N:tracker_new(Opts#{exact => [0, 1, 2]}),
    ok = ?N:tracker_set_members(R, 0, [0, 1, 2]),
    R.

stats(R) ->
    {ok, S} = ?N:tracker_stats(R),
    S.

gset(Es) -> {state_gset, lists:usort(Es)}.

%% HdrHistogram percentiles at 3 significant digits: within 0.1%.
-define(assertNear(Want, Got),
        ?assert(abs((Got) - (Want)) =< (Want) div 1000 + 1, {near, Want, Got})).

%% ===================================================================
%% Figures
%% ===================================================================

convergence_time_is_the_last_first_seen_minus_the_update_time_test() ->
    R = tracker(),
    {ok, new} = ?N:tracker_updated(R, 0, 1, 1000, gset([]), gset([a])),
    {ok, new} = ?N:tracker_updated(R, 0, 2, 2000, gset([a]), gset([a, b])),
    {ok, new} = ?N:tracker_updated(R, 0, 3, 3000, gset([a, b]), gset([a, b, c])),
    {ok, #{checked := 3, newly_seen := 1, converged := 0}} =
        ?N:tracker_observed(R, 2, 4000, gset([a])),
    {ok, #{checked := 3, newly_seen := 3, converged := 1}} =
        ?N:tracker_observed(R, 1, 5000, gset([a, b, c])),
    {ok, #{checked := 2, newly_seen := 2, converged := 2}} =
        ?N:tracker_observed(R, 2, 9000, gset([a, b, c, d])),
    %% Convergence: 5000-1000, 9000-2000, 9000-3000.
    S = stats(R),
    ?assertMatch(#{updates := 3, converged := 3, pending := 0, unconverged := 0,
                   max := 7000, clock_uncertainty_us := 0}, S),
    ?assertEqual(17000 / 3, maps:get(mean, S)),
    ?assertNear(6000, maps:get(p50, S)),
    ?assertNear(7000, maps:get(p99, S)),
    ?assertNear(7000, maps:get(p999, S)),
    #{per_node := #{0 := N0, 1 := N1, 2 := N2}} = S,
    %% Node 1 saw all three at 5000; node 2 the first at 4000, the rest at 9000.
    ?assertMatch(#{max := undefined, pending := 0, count := 0}, N0),
    ?assertMatch(#{max := 4000, pending := 0, count := 3}, N1),
    ?assertMatch(#{max := 7000, pending := 0, count := 3}, N2),
    ?assertNear(3000, maps:get(p50, N1)),
    ?assertNear(6000, maps:get(p50, N2)),
    %% Exactly these keys, no more.
    ?assertEqual([clock_uncertainty_us, converged, duplicates, max, mean, negative_clamped,
                  orphaned, p50, p90, p99, p999, pending, per_node, saturated, unconverged,
                  unconverged_capacity, unsynced_nodes, updates, witness_checks],
                 lists:sort(maps:keys(S))),
    ?assertEqual([clock_uncertainty_us, count, live, max, p50, p99, pending],
                 lists:sort(maps:keys(N1))).

pending_until_every_member_holds_the_witness_test() ->
    R = tracker(),
    S0 = ?C:new(state_orset),
    {ok, S1} = ?C:mutate({add, x}, node0, S0),
    {ok, new} = ?N:tracker_updated(R, 0, 1, 0, S0, S1),
    %% A state without the add's token does not hold it.
    {ok, Other} = ?C:mutate({add, x}, node1, S0),
    {ok, #{newly_seen := 0}} = ?N:tracker_observed(R, 1, 100, Other),
    {ok, #{newly_seen := 1}} = ?N:tracker_observed(R, 1, 200, ?C:merge(Other, S1)),
    ?assertMatch(#{pending := 1, per_node := #{2 := #{pending := 1}, 1 := #{pending := 0}}},
                 stats(R)),
    {ok, #{converged := 1}} = ?N:tracker_observed(R, 2, 700, S1),
    ?assertMatch(#{converged := 1, max := 700}, stats(R)).

counter_updates_test() ->
    R = tracker(),
    G0 = ?C:new(state_gcounter),
    {ok, G1} = ?C:mutate(increment, n0, G0),
    {ok, G2} = ?C:mutate(increment, n0, G1),
    {ok, new} = ?N:tracker_updated(R, 0, 1, 0, G0, G1),
    {ok, new} = ?N:tracker_updated(R, 0, 2, 10, G1, G2),
    %% Holding the first increment only.
    {ok, #{newly_seen := 1}} = ?N:tracker_observed(R, 1, 50, G1),
    {ok, #{newly_seen := 2}} = ?N:tracker_observed(R, 2, 60, G2),
    {ok, #{newly_seen := 1, converged := 1}} = ?N:tracker_observed(R, 1, 80, G2),
    ?assertMatch(#{converged := 2, max := 70}, stats(R)).

observation_before_the_announcement_counts_at_that_observation_test() ->
    R = tracker(),
    %% Node 1 merged the update before the announcement reached the tracker.
    {ok, _} = ?N:tracker_observed(R, 1, 2000, gset([a])),
    {ok, new} = ?N:tracker_updated(R, 0, 1, 1000, gset([]), gset([a])),
    {ok, #{converged := 1}} = ?N:tracker_observed(R, 2, 3500, gset([a])),
    ?assertMatch(#{converged := 1, max := 2500, per_node := #{1 := #{max := 1000}}},
                 stats(R)).

duplicate_announcements_are_ignored_test() ->
    R = tracker(),
    {ok, new} = ?N:tracker_updated(R, 0, 1, 0, gset([]), gset([a])),
    {ok, duplicate} = ?N:tracker_updated(R, 0, 1, 5, gset([]), gset([a])),
    {ok, new} = ?N:tracker_witness(R, 1, 1, 5, gset([b])),
    ?assertMatch(#{updates := 2, duplicates := 1, pending := 2}, stats(R)).

update_seen_by_every_member_already_finishes_at_once_test() ->
    R = tracker(),
    {ok, _} = ?N:tracker_observed(R, 1, 100, gset([a])),
    {ok, _} = ?N:tracker_observed(R, 2, 300, gset([a])),
    {ok, finished} = ?N:tracker_updated(R, 0, 1, 50, gset([]), gset([a])),
    ?assertMatch(#{converged := 1, max := 250}, stats(R)).

horizon_counts_unseen_updates_as_unconverged_test() ->
    R = tracker(#{horizon_us => 10000}),
    {ok, new} = ?N:tracker_updated(R, 0, 1, 0, gset([]), gset([a])),
    {ok, _} = ?N:tracker_observed(R, 1, 100, gset([a])),
    ok = ?N:tracker_tick(R, 10000),
    ?assertMatch(#{pending := 1, unconverged := 0}, stats(R)),
    ok = ?N:tracker_tick(R, 10001),
    ?assertMatch(#{updates := 1, pending := 0, unconverged := 1, converged := 0},
                 stats(R)).

a_node_leaving_releases_its_pending_updates_test() ->
    R = tracker(),
    {ok, new} = ?N:tracker_updated(R, 0, 1, 0, gset([]), gset([a])),
    {ok, _} = ?N:tracker_observed(R, 1, 400, gset([a])),
    ok = ?N:tracker_set_members(R, 1000, [0, 1]),
    S = stats(R),
    ?assertMatch(#{converged := 1, pending := 0, max := 400}, S),
    ?assertMatch(#{2 := #{live := false}}, maps:get(per_node, S)).

clock_offsets_are_corrected_test() ->
    {ok, R} = ?N:tracker_new(#{exact => [0]}),
    %% Node 1 runs 250 ms ahead; round trip 2 ms.
    {ok, #{offset_us := 250000, uncertainty_us := 1000, rtt_us := 2000}} =
        ?N:tracker_clock_sample(R, 1, 1000000, 1251000, 1002000),
    %% A looser round trip does not replace it.
    {ok, #{offset_us := 250000}} =
        ?N:tracker_clock_sample(R, 1, 2000000, 2260000, 2010000),
    ok = ?N:tracker_set_members(R, 0, [0, 1]),
    {ok, new} = ?N:tracker_updated(R, 0, 1, 3000000, gset([]), gset([a])),
    %% Read 3 254 000 on node 1's clock: 3 004 000 on the reference clock.
    {ok, #{converged := 1}} = ?N:tracker_observed(R, 1, 3254000, gset([a])),
    ?assertMatch(#{max := 4000, clock_uncertainty_us := 1000, unsynced_nodes := []},
                 stats(R)),
    ?assertEqual({error, negative_rtt}, ?N:tracker_clock_sample(R, 1, 10, 5, 9)).

divergence_samples_test() ->
    R = tracker(#{sample_every_us => 1000}),
    {ok, new} = ?N:tracker_updated(R, 0, 1, 0, gset([]), gset([a])),
    {ok, _} = ?N:tracker_observed(R, 1, 2500, gset([a])),
    {ok, _} = ?N:tracker_observed(R, 2, 4500, gset([a])),
    ok = ?N:tracker_tick(R, 5000),
    {ok, Samples} = ?N:tracker_divergence(R),
    ?assertEqual([1000, 2000, 3000, 4000, 5000], [T || #{t_us := T} <- Samples]),
    ?assertEqual([1 / 3, 1 / 3, 2 / 3, 2 / 3, 1.0], [U || #{up_to_date := U} <- Samples]),
    [#{nodes := #{1 := L1, 2 := L2}} | _] = Samples,
    ?assertEqual(#{unseen => 1, oldest_unseen_age_us => 1000}, L1),
    ?assertEqual(#{unseen => 1, oldest_unseen_age_us => 1000}, L2),
    #{nodes := #{0 := L0}} = lists:last(Samples),
    ?assertEqual(#{unseen => 0, oldest_unseen_age_us => undefined}, L0).

json_and_reset_test() ->
    R = tracker(),
    {ok, new} = ?N:tracker_updated(R, 0, 1, 0, gset([]), gset([a])),
    {ok, _} = ?N:tracker_observed(R, 1, 10, gset([a])),
    {ok, _} = ?N:tracker_observed(R, 2, 20, gset([a])),
    {ok, Json} = ?N:tracker_json(R),
    ?assertMatch(<<"{\"config\":", _/binary>>, Json),
    ?assertNotEqual(nomatch, binary:match(Json, <<"\"convergence_us\":20">>)),
    ok = ?N:tracker_reset(R),
    ?assertMatch(#{updates := 0, converged := 0, max := undefined}, stats(R)),
    %% Members are kept: a new update waits for nodes 1 and 2 again.
    {ok, new} = ?N:tracker_updated(R, 0, 1, 100, gset([a]), gset([a, b])),
    ?assertMatch(#{pending := 1}, stats(R)).

%% ===================================================================
%% The witness index
%% ===================================================================

%% After a node's first observation, only witnesses under the keys (set
%% elements, counter actors) that changed in its state are checked.
%% A thousand dirty calls: on a loaded machine each waits for a dirty
%% scheduler, so the test has more than EUnit's default 5 s.
index_checks_only_changed_entries_test_() ->
    {timeout, 120, fun index_checks_only_changed_entries/0}.

index_checks_only_changed_entries() ->
    R = tracker(),
    S0 = ?C:new(state_orset),
    Sn = lists:foldl(fun(I, S) ->
                             {ok, S1} = ?C:mutate({add, I}, node0, S),
                             {ok, new} = ?N:tracker_updated_dirty(R, 0, I, I, S, S1),
                             S1
                     end, S0, lists:seq(1, 1000)),
    %% Large states are refused on a normal scheduler (the caller retries dirty).
    {ok, S1001} = ?C:mutate({add, 1001}, node0, Sn),
    ?assertError(lasp_converge_dirty, ?N:tracker_updated(R, 0, 1001, 1001, Sn, S1001)),
    %% First observation: everything.
    {ok, #{checked := 1000, newly_seen := 0}} = ?N:tracker_observed(R, 1, 2000, S0),
    %% Node 1 receives element 7 only: one check.
    {state_orset, Entries} = Sn,
    Has7 = {state_orset, [lists:keyfind(7, 1, Entries)]},
    {ok, #{checked := 1, newly_seen := 1}} = ?N:tracker_observed(R, 1, 2100, Has7),
    %% Another add of 7 (a new token) changes entry 7 only, whose witness
    %% node 1 has already seen: nothing to check.
    {ok, Add7} = ?C:mutate({add, 7}, node1, S0),
    {ok, #{checked := 0}} = ?N:tracker_observed(R, 1, 2200, ?C:merge(Has7, Add7)),
    %% Node 1 now holds everything: the 999 others are checked once each.
    {ok, #{checked := 999, newly_seen := 999}} =
        ?N:tracker_observed(R, 1, 2300, ?C:merge(Sn, Add7)),
    %% Out of order (an earlier timestamp): every pending update is checked,
    %% so that first-seen times can move back.
    {ok, #{checked := 1000, newly_seen := 0}} = ?N:tracker_observed(R, 1, 1500, Sn),
    ?assertMatch(#{pending := 1000, per_node := #{1 := #{pending := 0}}}, stats(R)).

index_on_counters_test() ->
    R = tracker(),
    G0 = ?C:new(state_gcounter),
    {ok, A1} = ?C:mutate(increment, a, G0),
    {ok, B1} = ?C:mutate(increment, b, G0),
    {ok, new} = ?N:tracker_updated(R, 0, 1, 0, G0, A1),
    {ok, new} = ?N:tracker_updated(R, 0, 2, 0, G0, B1),
    {ok, #{checked := 2, newly_seen := 0}} = ?N:tracker_observed(R, 1, 10, G0),
    {ok, #{checked := 1, newly_seen := 1}} = ?N:tracker_observed(R, 1, 20, B1),
    {ok, #{checked := 1, newly_seen := 1}} = ?N:tracker_observed(R, 1, 30, ?C:merge(A1, B1)),
    ?assertMatch(#{per_node := #{1 := #{pending := 0}, 2 := #{pending := 2}}}, stats(R)).

floats_and_multi_entry_deltas_are_indexed_test() ->
    R = tracker(),
    %% A float element (1 == 1.0: numbers are indexed by value), a delta of
    %% two entries (indexed under each) and a twopset are all indexed: a
    %% change elsewhere checks none of them.
    {ok, new} = ?N:tracker_updated(R, 0, 1, 0, gset([]), gset([1.5])),
    {ok, new} = ?N:tracker_updated(R, 0, 2, 0, gset([1.5]), gset([1.5, x, y])),
    {ok, _} = ?N:tracker_observed(R, 1, 10, gset([])),
    {ok, #{checked := 0, newly_seen := 0}} = ?N:tracker_observed(R, 1, 20, gset([z])),
    {ok, #{checked := 1, newly_seen := 0}} = ?N:tracker_observed(R, 1, 25, gset([x, z])),
    {ok, #{newly_seen := 2}} = ?N:tracker_observed(R, 1, 30, gset([1.5, x, y, z])),
    T = tracker(),
    {ok, new} = ?N:tracker_updated(T, 0, 1, 0, {state_twopset, {[], []}}, {state_twopset, {[a], []}}),
    {ok, _} = ?N:tracker_observed(T, 1, 10, {state_twopset, {[], []}}),
    {ok, #{checked := 0}} = ?N:tracker_observed(T, 1, 15, {state_twopset, {[b], []}}),
    {ok, #{checked := 1, newly_seen := 1}} = ?N:tracker_observed(T, 1, 20, {state_twopset, {[a], []}}).

%% A member sends what its state gained since the last state it sent; the
%% tracker joins it into the node's state and checks against the join.
observed_deltas_are_joined_test() ->
    R = tracker(),
    {ok, new} = ?N:tracker_updated(R, 0, 1, 0, gset([]), gset([a])),
    %% add_all: a two-entry delta, not indexed, held only by the join.
    {ok, new} = ?N:tracker_updated(R, 0, 2, 0, gset([a]), gset([a, x, y])),
    {ok, #{checked := 2, newly_seen := 0}} = ?N:tracker_observed_delta(R, 1, 10, gset([])),
    %% Indexed: the witness under `a' is not checked; the keyless one is.
    {ok, #{checked := 1, newly_seen := 0}} = ?N:tracker_observed_delta(R, 1, 20, gset([x])),
    {ok, #{checked := 1, newly_seen := 1}} = ?N:tracker_observed_delta(R, 1, 30, gset([y])),
    {ok, #{checked := 1, newly_seen := 1}} = ?N:tracker_observed_delta(R, 1, 40, gset([a])),
    ?assertMatch(#{per_node := #{1 := #{pending := 0}}}, stats(R)),
    ?assertMatch({error, {badcrdt, {type_mismatch, state_gset, state_orset}}},
                 ?N:tracker_observed_delta(R, 1, 50, {state_orset, []})).

%% As rustler's resource_test.exs: create a thousand, let them go, and
%% every one is freed. (Trackers that earlier tests left as garbage may be
%% freed meanwhile too, so the count only has to come back to at most what
%% it was.)
trackers_are_freed_with_their_last_reference_test() ->
    Before = ?N:tracker_live(),
    {Pid, Ref} = spawn_monitor(fun() ->
                                       Rs = [tracker() || _ <- lists:seq(1, 1000)],
                                       true = ?N:tracker_live() >= 1000,
                                       exit({done, length(Rs)})
                               end),
    receive {'DOWN', Ref, process, Pid, Why} -> ?assertEqual({done, 1000}, Why) end,
    erlang:garbage_collect(),
    ?assert(wait_live(Before, 100) =< Before).

wait_live(_Max, 0) -> ?N:tracker_live();
wait_live(Max, N) ->
    case ?N:tracker_live() of
        Live when Live =< Max -> Live;
        _ -> timer:sleep(10), wait_live(Max, N - 1)
    end.

%% ===================================================================
%% Bad input: {error, Reason}, never an exception
%% ===================================================================

bad_input_gives_error_tuples_test() ->
    R = tracker(),
    NotR = make_ref(),
    G = gset([a]),
    ?assertEqual({error, bad_opts}, ?N:tracker_new(not_a_map)),
    ?assertEqual({error, bad_opts}, ?N:tracker_new(#{horizon_us => soon})),
    ?assertEqual({error, bad_opts}, ?N:tracker_new(#{exact => [-1]})),
    ?assertEqual({error, not_a_tracker}, ?N:tracker_stats(NotR)),
    ?assertEqual({error, not_a_tracker}, ?N:tracker_observed(NotR, 1, 0, G)),
    ?assertEqual({error, not_a_tracker}, ?N:tracker_updated(self(), 0, 1, 0, G, G)),
    ?assertEqual({error, not_a_tracker}, ?N:tracker_json(<<"r">>)),
    ?assertEqual({error, not_a_tracker}, ?N:tracker_reset(1)),
    ?assertEqual({error, not_a_tracker}, ?N:tracker_divergence([])),
    ?assertEqual({error, bad_node}, ?N:tracker_observed(R, -1, 0, G)),
    ?assertEqual({error, bad_node}, ?N:tracker_observed(R, 1 bsl 40, 0, G)),
    ?assertEqual({error, bad_node}, ?N:tracker_observed(R, node(), 0, G)),
    ?assertEqual({error, bad_ts}, ?N:tracker_observed(R, 1, 1.5, G)),
    ?assertEqual({error, bad_ts}, ?N:tracker_observed(R, 1, 1 bsl 70, G)),
    ?assertEqual({error, bad_ts}, ?N:tracker_tick(R, now)),
    ?assertEqual({error, bad_seq}, ?N:tracker_updated(R, 0, -1, 0, G, G)),
    ?assertEqual({error, bad_members}, ?N:tracker_set_members(R, 0, [0 | 1])),
    ?assertEqual({error, bad_members}, ?N:tracker_set_members(R, 0, [a])),
    ?assertEqual({error, {badcrdt, not_a_crdt}}, ?N:tracker_observed(R, 1, 0, {a, b, c})),
    ?assertEqual({error, {badcrdt, unknown_type}}, ?N:tracker_observed(R, 1, 0, {no_such_type, []})),
    ?assertMatch({error, {badcrdt, {malformed, state_gset}}},
                 ?N:tracker_observed(R, 1, 0, {state_gset, not_a_list})),
    ?assertMatch({error, {badcrdt, _}},
                 ?N:tracker_updated(R, 0, 1, 0, {state_gset, [b, a]}, G)),
    ?assertMatch({error, {badcrdt, {type_mismatch, _, _}}},
                 ?N:tracker_updated(R, 0, 1, 0, G, {state_gcounter, []})),
    %% The first good state fixes the type: another type is refused.
    {ok, _} = ?N:tracker_observed(R, 1, 0, G),
    ?assertEqual({error, {badcrdt, {type_mismatch, state_gset, state_gcounter}}},
                 ?N:tracker_observed(R, 1, 0, {state_gcounter, []})),
    ?assertEqual({error, {badcrdt, {type_mismatch, state_gset, state_gcounter}}},
                 ?N:tracker_witness(R, 0, 9, 0, {state_gcounter, []})),
    %% Nothing above was counted.
    ?assertMatch(#{updates := 0}, stats(R)).

bad_input_creates_no_atoms_test() ->
    R = tracker(),
    Before = erlang:system_info(atom_count),
    Inputs = [{<<"state_gset">>, []}, {"state_orset", []}, {state_gset, [<<"new_atom_x">>]}],
    [_ = ?N:tracker_observed(R, 1, 0, I) || I <- Inputs],
    _ = ?N:tracker_new(#{<<"horizon_us">> => 1}),
    ?assertEqual(Before, erlang:system_info(atom_count)).

%% ===================================================================
%% The indexed answer is the brute-force one, for every type
%% ===================================================================

%% For each of the 19 types: a writer (node 0) makes updates, registered
%% with their deltas; node 1 observes whole states (random joins of the
%% deltas, in increasing time), node 2 the deltas it gains, and some
%% observations come before the update they hold is registered. After each
%% step, every node's count of unseen updates equals the number of
%% registered witnesses its state does not inflate (`is_inflation'), as a
%% tracker checking every pending update would count.
indexed_equals_brute_force_test_() ->
    {timeout, 120, [{atom_to_list(T), fun() -> brute_force(T) end} || T <- ?C:types()]}.

brute_force(Type) ->
    rand:seed(exsss, {7, 11, erlang:phash2(Type)}),
    R = tracker(#{horizon_us => 1 bsl 40, max_pending => 100000}),
    S0 = ?C:new(Type),
    {Ds, _} = lists:mapfoldl(fun(I, {S, Prev}) ->
                                     D = bf_delta(Type, I, S, Prev),
                                     {D, {?C:merge(S, D), D}}
                             end, {S0, S0}, lists:seq(1, 60)),
    Deltas = lists:zip(lists:seq(1, 60), Ds),
    %% Registered in batches of 6; each node gains random earlier or
    %% slightly later deltas (up to 3 ahead: not registered yet).
    lists:foldl(
      fun(Batch, {Ts, N1, N2, Sent2}) ->
              Reg = lists:sublist(Deltas, 6 * Batch),
              [{ok, _} = register_delta(R, I, D) || {I, D} <- lists:sublist(Deltas, 6 * Batch - 5, 6)],
              Pool = lists:sublist(Deltas, min(60, 6 * Batch + 3)),
              N1b = bf_join(N1, Pool),
              N2b = bf_join(N2, Pool),
              {ok, _} = ?N:tracker_observed(R, 1, Ts, N1b),
              Gain = case Sent2 of
                         undefined -> N2b;
                         _ -> ?C:delta(N2b, Sent2)
                     end,
              {ok, _} = ?N:tracker_observed_delta(R, 2, Ts, Gain),
              #{per_node := #{1 := #{pending := P1}, 2 := #{pending := P2}}} = stats(R),
              ?assertEqual({Type, Batch, node1, unseen(Reg, N1b)}, {Type, Batch, node1, P1}),
              ?assertEqual({Type, Batch, node2, unseen(Reg, N2b)}, {Type, Batch, node2, P2}),
              {Ts + 10, N1b, N2b, N2b}
      end, {1000, S0, S0, undefined}, lists:seq(1, 10)),
    ok.

register_delta(R, I, D) ->
    try ?N:tracker_witness(R, 0, I, I, D)
    catch error:lasp_converge_dirty -> ?N:tracker_witness_dirty(R, 0, I, I, D)
    end.

%% Join 1 to 4 random deltas of the pool into S.
bf_join(S, Pool) ->
    lists:foldl(fun(_, X) ->
                        {_, D} = lists:nth(rand:uniform(length(Pool)), Pool),
                        try ?C:merge(X, D) catch error:_ -> X end
                end, S, lists:seq(1, rand:uniform(4))).

unseen(Reg, S) ->
    length([I || {I, D} <- Reg, not inflates(D, S)]).

inflates(D, S) ->
    try ?C:is_inflation(D, S) catch error:_ -> false end.

%% Update I's delta (actors and elements mixing atoms, binaries, tuples),
%% or the previous delta where the type allows no new update.
bf_delta(Type, I, S, Prev) ->
    Actor = case I rem 3 of
                0 -> {'lasp@host', I rem 4};
                1 -> list_to_binary(["actor-", integer_to_list(I rem 4)]);
                _ -> list_to_atom("node" ++ integer_to_list(I rem 4))
            end,
    E = case I rem 3 of
            0 -> I rem 7;
            1 -> <<(I rem 5):8>>;
            _ -> {I rem 6, x}
        end,
    A = case Type of
            state_awset_ps -> {<<"obj">>, Actor};
            _ -> Actor
        end,
    try ?C:delta_mutate(bf_op(Type, I, E), A, S) of
        {ok, D} -> D;
        _ -> Prev
    catch error:_ -> Prev
    end.

bf_op(T, I, _) when T =:= state_gcounter; T =:= state_max_int; T =:= state_lexcounter;
                    T =:= state_pncounter; T =:= state_bcounter ->
    case I rem 3 of
        0 when T =/= state_gcounter, T =/= state_max_int -> decrement;
        _ -> increment
    end;
bf_op(state_boolean, _, _) -> true;
bf_op(T, I, _) when T =:= state_ewflag; T =:= state_dwflag ->
    case I rem 2 of 0 -> enable; 1 -> disable end;
bf_op(state_gset, _, E) -> {add, E};
bf_op(T, I, E) when T =:= state_twopset; T =:= state_orset; T =:= state_awset;
                    T =:= state_awset_ps ->
    case I rem 4 of 3 -> {rmv, E}; _ -> {add, E} end;
bf_op(state_ivar, _, E) -> {set, E};
bf_op(state_lwwregister, I, E) -> {set, I rem 9, E};
bf_op(state_mvregister, I, E) -> {set, I, E};
bf_op(state_gmap, I, _) -> {apply, I rem 5, increment};
bf_op(state_pair, I, E) when I rem 2 =:= 0 -> {fst, {set, E}};
bf_op(state_pair, _, E) -> {snd, {set, E}};
bf_op(state_awmap, I, _) when I rem 4 =:= 3 -> {rmv, I rem 3};
bf_op(state_awmap, I, E) -> {apply, I rem 3, {add, E}}.

%% ===================================================================
%% Public API, one node
%% ===================================================================

api_test_() ->
    {setup,
     fun() -> {ok, Apps} = application:ensure_all_started(lasp_converge), Apps end,
     fun(Apps) -> [application:stop(A) || A <- lists:reverse(Apps)] end,
     [fun api_lifecycle/0, fun api_figures/0, fun api_bad_input/0,
      fun api_updated_delta/0, fun api_future_ts_is_refused/0,
      fun api_replicator_hands_off_to_the_observer/0,
      fun api_replicator_hands_off_changes_only/0,
      fun api_observer_starts_from_the_replica/0,
      fun api_observer_behind_skips_observations/0]}.

api_lifecycle() ->
    V = {<<"life">>, state_gset},
    ?assertEqual({error, not_tracked}, lasp_converge:stats(V)),
    ?assertEqual(ok, lasp_converge:track(V)),
    ?assertEqual({error, already_tracked}, lasp_converge:track(V)),
    ?assertEqual(ok, lasp_converge:untrack(V)),
    ?assertEqual({error, not_tracked}, lasp_converge:untrack(V)),
    ?assertEqual({error, not_tracked}, lasp_converge:updated(V, gset([]), gset([a]))),
    ?assertEqual(ok, lasp_converge:track(V, #{horizon => 1000})),
    ?assertEqual(ok, lasp_converge:untrack(V)).

api_figures() ->
    V = {<<"fig">>, state_gset},
    ok = lasp_converge:track(V, #{nodes => [], tick => false, clock => false}),
    try
        %% One member: the writer itself, so an update converges at once.
        ok = lasp_converge:updated(V, gset([]), gset([a]), #{ts => 1000}),
        ok = lasp_converge:observed(V, gset([a]), #{ts => 1500}),
        S = lasp_converge:stats(V),
        Keys = [updates, converged, pending, unconverged, p50, p90, p99, p999, max,
                mean, clock_uncertainty_us, per_node],
        ?assertEqual([], Keys -- maps:keys(S)),
        ?assertMatch(#{updates := 1, converged := 1, max := 0, nodes := [_]}, S),
        ?assertMatch(#{pending := 0}, maps:get(node(), maps:get(per_node, S))),
        ?assert(is_list(lasp_converge:divergence(V))),
        {ok, Json} = lasp_converge:export(V, json),
        ?assertMatch(<<"{\"nodes\":{\"0\":\"", _/binary>>, Json),
        ok = lasp_converge:reset(V),
        ?assertMatch(#{updates := 0}, lasp_converge:stats(V))
    after
        lasp_converge:untrack(V)
    end.

api_bad_input() ->
    V = {<<"bad">>, state_gset},
    ok = lasp_converge:track(V, #{nodes => []}),
    try
        ?assertEqual({error, {badcrdt, not_a_crdt}}, lasp_converge:observed(V, nope)),
        ?assertMatch({error, {badcrdt, _}}, lasp_converge:updated(V, gset([]), nope)),
        ok = lasp_converge:observed(V, gset([a])),
        ?assertMatch({error, {badcrdt, {type_mismatch, _, _}}},
                     lasp_converge:observed(V, {state_gcounter, []})),
        ?assertEqual({error, bad_ts}, lasp_converge:observed(V, gset([a]), #{ts => soon})),
        ?assertEqual({error, bad_opts}, lasp_converge:observed(V, gset([a]), [])),
        ?assertEqual({error, bad_format}, lasp_converge:export(V, xml)),
        ?assertEqual({error, bad_opts}, lasp_converge:track(other, [])),
        %% Options by name, before anything starts (was a child-spec error
        %% and a crash report).
        ?assertEqual({error, {bad_option, horizon, "30s"}},
                     lasp_converge:track(other, #{horizon => "30s"})),
        ?assertEqual({error, {unknown_option, horizn}},
                     lasp_converge:track(other, #{horizn => 30000})),
        ?assertEqual({error, {bad_option, tick, 0}}, lasp_converge:track(other, #{tick => 0})),
        ?assertEqual({error, {bad_option, nodes, [<<"n">>]}},
                     lasp_converge:track(other, #{nodes => [<<"n">>]})),
        ?assertEqual({error, not_tracked}, lasp_converge:stats(other)),
        ?assertEqual({error, not_tracked}, lasp_converge:observed(other, gset([])))
    after
        lasp_converge:untrack(V)
    end.

%% A timestamp in the wrong unit (nanoseconds) or far in the future is
%% refused with a clear reason and leaves every figure as it was; before,
%% it moved the tracker's clock decades ahead and expired everything.
api_future_ts_is_refused() ->
    V = {<<"future">>, state_gset},
    ok = lasp_converge:track(V, #{nodes => [], tick => false, clock => false}),
    try
        Ns = erlang:system_time(),
        ?assertEqual({error, {bad_ts, Ns}},
                     lasp_converge:updated(V, gset([]), gset([a]), #{ts => Ns})),
        ?assertEqual({error, {bad_ts, Ns}}, lasp_converge:observed(V, gset([a]), #{ts => Ns})),
        Ahead = lasp_converge_tracker:now_us() + 61000000,
        ?assertEqual({error, {bad_ts, Ahead}},
                     lasp_converge:updated_delta(V, gset([b]), #{ts => Ahead})),
        ?assertMatch(#{updates := 0, unconverged := 0}, lasp_converge:stats(V)),
        %% A reading a little ahead (clock skew) is fine.
        Now = lasp_converge_tracker:now_us(),
        ok = lasp_converge:updated(V, gset([]), gset([a]), #{ts => Now + 1000000}),
        ok = lasp_converge:observed(V, gset([a]), #{ts => Now + 1000000}),
        ?assertMatch(#{updates := 1, converged := 1, unconverged := 0}, lasp_converge:stats(V))
    after
        lasp_converge:untrack(V)
    end.

%% The replicator hands its updates and observations to the variable's
%% observer and returns: with the observer suspended, an update still
%% completes, and the tracker sees it only once the observer runs again.
api_replicator_hands_off_to_the_observer() ->
    V = {<<"handoff">>, state_awset},
    {ok, _} = lasp_converge_replicator:declare(V, state_awset, #{nodes => [node()]}),
    ok = lasp_converge:track(V, #{nodes => [], tick => false, clock => false}),
    {ok, Obs} = lasp_converge_registry:observer(V),
    %% Idle first: suspending a process in the middle of a dirty NIF call
    %% (the observer's first read of the state) can raise internal_error.
    ok = lasp_converge_observer:sync(V),
    try
        true = erlang:suspend_process(Obs),
        {ok, _} = lasp_converge_replicator:update(V, {add, x}, node()),
        ?assertMatch(#{updates := 0}, lasp_converge:stats(V)),
        true = erlang:resume_process(Obs),
        ok = lasp_converge_observer:sync(V),
        ?assertMatch(#{updates := 1, converged := 1}, lasp_converge:stats(V)),
        ?assertEqual(0, lasp_converge_observer:errors(V))
    after
        %% Resumed already unless an assertion failed in between.
        _ = catch erlang:resume_process(Obs),
        lasp_converge:untrack(V)
    end.

%% The replicator copies changes to the observer, never its whole state:
%% a local update's delta (reported as the update and as what the replica
%% gained) and what a received state added to the replica; in either mode.
api_replicator_hands_off_changes_only() ->
    Mode0 = maps:get(mode, lasp_converge_replicator:settings()),
    try
        [changes_only(Mode) || Mode <- [state_based, delta_based]]
    after
        lasp_converge_replicator:set(#{mode => Mode0})
    end.

changes_only(Mode) ->
    {ok, _} = lasp_converge_replicator:set(#{mode => Mode}),
    V = {<<"changes">>, Mode},
    {ok, _} = lasp_converge_replicator:declare(V, state_awset, #{nodes => [node()]}),
    [{ok, _} = lasp_converge_replicator:update(V, {add, {e, I}}, node()) || I <- lists:seq(1, 200)],
    ok = lasp_converge:track(V, #{nodes => [], tick => false, clock => false}),
    ok = lasp_converge_observer:sync(V),
    {ok, Obs} = lasp_converge_registry:observer(V),
    {ok, Local} = lasp_converge_replicator:state(V),
    {ok, Remote} = lasp_converge_crdt:mutate({add, y}, other, Local),
    try
        true = erlang:suspend_process(Obs),
        {ok, _} = lasp_converge_replicator:update(V, {add, x}, node()),
        {ok, _} = lasp_converge_replicator:absorb(V, Remote),
        %% Nothing new: no event.
        {ok, _} = lasp_converge_replicator:absorb(V, Remote),
        {messages, Msgs} = erlang:process_info(Obs, messages),
        Events = [E || {lc_event, _, E} <- Msgs],
        ?assertMatch([{updated_delta, D}, {observed_delta, D}, {observed_delta, _}], Events),
        [{updated_delta, D1}, _, {observed_delta, Added}] = Events,
        ?assertEqual([x], sets:to_list(lasp_converge_crdt:query(D1))),
        ?assertEqual([y], sets:to_list(lasp_converge_crdt:query(Added))),
        true = erlang:resume_process(Obs),
        ok = lasp_converge_observer:sync(V),
        ?assertMatch(#{updates := 1, converged := 1}, lasp_converge:stats(V)),
        ?assertEqual(0, lasp_converge_observer:errors(V))
    after
        _ = catch erlang:resume_process(Obs),
        lasp_converge:untrack(V)
    end.

%% Tracking a variable that already holds a state: the observer reads that
%% state once when it starts (the replicator reports only changes), so an
%% update of another node that the replica already holds is seen at once.
api_observer_starts_from_the_replica() ->
    V = {<<"base">>, state_gset},
    {ok, _} = lasp_converge_replicator:declare(V, state_gset, #{nodes => [node()]}),
    {ok, _} = lasp_converge_replicator:update(V, {add, a}, node()),
    ok = lasp_converge:track(V, #{nodes => [], tick => false, clock => false}),
    try
        ok = lasp_converge_observer:sync(V),
        {ok, {aggregator, _, Res, 0}} = lasp_converge_tracker:lookup(V),
        ?assertMatch({ok, #{last_states := 1}}, ?N:tracker_retained(Res)),
        %% Updates of node 1 (not a member): only this node must see them.
        Now = lasp_converge_tracker:now_us(),
        {ok, _} = ?N:tracker_witness(Res, 1, 1, Now, gset([a])),
        {ok, _} = ?N:tracker_witness(Res, 1, 2, Now, gset([b])),
        ?assertMatch(#{updates := 2, converged := 1, pending := 1}, lasp_converge:stats(V))
    after
        lasp_converge:untrack(V)
    end.

%% An observer with events queued behind an observation skips it (a later
%% one supersedes it) but never skips an update, and counts what it skipped.
api_observer_behind_skips_observations() ->
    V = {<<"behind">>, state_gset},
    ok = lasp_converge:track(V, #{nodes => [], tick => false, clock => false}),
    {ok, Obs} = lasp_converge_registry:observer(V),
    try
        true = erlang:suspend_process(Obs),
        [begin
             ok = lasp_converge_observer:submit(V, {updated, gset(lists:seq(1, I - 1)),
                                                    gset(lists:seq(1, I))}),
             ok = lasp_converge:observed_async(V, gset(lists:seq(1, I)))
         end || I <- lists:seq(1, 1500)],
        true = erlang:resume_process(Obs),
        ok = lasp_converge_observer:sync(V),
        ?assert(lasp_converge_observer:skipped(V) > 0),
        ?assertEqual(0, lasp_converge_observer:errors(V)),
        ?assertMatch(#{updates := 1500, converged := 1500, pending := 0},
                     lasp_converge:stats(V))
    after
        _ = catch erlang:resume_process(Obs),
        lasp_converge:untrack(V)
    end.

%% A small delta of a node whose state is held keyed, or held decoded and
%% small, is applied on the calling scheduler; anything else (a node's
%% first observation, which checks every pending update; a large state
%% held decoded, whose join costs O(state)) raises `lasp_converge_dirty',
%% and `observed_delta/4' moves it to a dirty scheduler.
observed_delta_normal_scheduler_test() ->
    {ok, R} = ?N:tracker_new(#{exact => [0, 1]}),
    ok = ?N:tracker_set_members(R, 0, [0, 1]),
    {ok, _} = ?N:tracker_witness(R, 0, 1, 10, gset([a])),
    ?assertError(lasp_converge_dirty, ?N:tracker_observed_delta_normal(R, 1, 20, gset([b]))),
    {ok, _} = lasp_converge_tracker:observed_delta(R, 1, 20, gset([b])),
    ?assertMatch({ok, #{newly_seen := 1, converged := 1}},
                 ?N:tracker_observed_delta_normal(R, 1, 30, gset([a]))),
    Lww = fun(T) -> {state_lwwregister, {T, v}} end,
    {ok, L} = ?N:tracker_new(#{exact => [0, 1]}),
    ok = ?N:tracker_set_members(L, 0, [0, 1]),
    {ok, _} = ?N:tracker_witness(L, 0, 1, 10, Lww(5)),
    {ok, _} = ?N:tracker_observed(L, 1, 20, Lww(1)),
    ?assertMatch({ok, #{newly_seen := 1, converged := 1}},
                 ?N:tracker_observed_delta_normal(L, 1, 30, Lww(5))),
    %% A pncounter of 1,000 actors is held decoded and heavy.
    Pn = fun(N, K) -> {state_pncounter, [{I, {K, 0}} || I <- lists:seq(1, N)]} end,
    {ok, P} = ?N:tracker_new(#{exact => [0, 1]}),
    ok = ?N:tracker_set_members(P, 0, [0, 1]),
    {ok, _} = ?N:tracker_witness(P, 0, 1, 10, Pn(1, 5)),
    {ok, _} = ?N:tracker_observed(P, 1, 20, Pn(1000, 1)),
    ?assertError(lasp_converge_dirty, ?N:tracker_observed_delta_normal(P, 1, 30, Pn(1, 5))),
    ?assertMatch({ok, #{newly_seen := 1, converged := 1}},
                 lasp_converge_tracker:observed_delta(P, 1, 30, Pn(1, 5))),
    %% A light ewflag whose compressed context covers 5,000 dots: the
    %% change lists one index atom per dot.
    Flag = fun(N) -> {state_ewflag, {[], {[{a, N}], []}}} end,
    {ok, F} = ?N:tracker_new(#{exact => [0, 1]}),
    ok = ?N:tracker_set_members(F, 0, [0, 1]),
    {ok, _} = ?N:tracker_witness(F, 0, 1, 10, Flag(2)),
    {ok, _} = ?N:tracker_observed(F, 1, 20, Flag(1)),
    ?assertError(lasp_converge_dirty, ?N:tracker_observed_delta_normal(F, 1, 30, Flag(5000))),
    ?assertMatch({ok, #{newly_seen := 1, converged := 1}},
                 lasp_converge_tracker:observed_delta(F, 1, 30, Flag(5000))),
    %% A change of one dot is light again.
    ?assertMatch({ok, _}, ?N:tracker_observed_delta_normal(F, 1, 40,
                                                          {state_ewflag, {[], {[], [{a, 5001}]}}})),
    ?assertEqual({error, not_a_tracker}, ?N:tracker_observed_delta_normal(nope, 1, 30, Lww(5))).

%% Node slots are bounded (`max_nodes', default 1024) and freed by reset:
%% before, every distinct node id took a slot (a latency histogram) for
%% the tracker's life.
node_slots_are_bounded_and_freed_test() ->
    {ok, R} = ?N:tracker_new(#{exact => [0]}),
    ok = ?N:tracker_set_members(R, 0, [0]),
    Rs = [?N:tracker_observed(R, I, 10, gset([a])) || I <- lists:seq(1, 1100)],
    ?assertEqual(1023, length([ok || {ok, _} <- Rs])),
    ?assertEqual(77, length([E || {error, too_many_nodes} = E <- Rs])),
    ?assertMatch({ok, #{nodes := 1024}}, ?N:tracker_retained(R)),
    ?assertEqual({error, too_many_nodes}, ?N:tracker_set_members(R, 20, [0, 5000])),
    ok = ?N:tracker_reset(R),
    ?assertMatch({ok, #{nodes := 1}}, ?N:tracker_retained(R)),
    {ok, _} = ?N:tracker_observed(R, 5000, 30, gset([a])),
    {ok, T} = ?N:tracker_new(#{max_nodes => 2}),
    {ok, _} = ?N:tracker_observed(T, 1, 10, gset([])),
    {ok, _} = ?N:tracker_observed(T, 2, 10, gset([])),
    ?assertEqual({error, too_many_nodes}, ?N:tracker_updated(T, 3, 1, 10, gset([]), gset([a]))),
    ?assertEqual({error, too_many_nodes}, ?N:tracker_observed(T, 3, 10, gset([]))).

%% A million updates through the NIF (gcounter increments by 8 actors,
%% registered as their deltas, 10 us of tracker time apart; a batch of 100
%% spans 1 ms). Node 1 sees each batch right after it; node 2 too, except
%% for 300 batches (300 ms, past the 200 ms horizon) when it is silent: its
%% pending updates run into `max_pending' and the horizon, and are counted
%% unconverged. What the tracker holds stays within its configuration the
%% whole time, and every update is accounted for.
a_million_updates_keep_memory_bounded_test_() ->
    {timeout, 300, fun a_million_updates/0}.

a_million_updates() ->
    {ok, R} = ?N:tracker_new(#{exact => [0, 1, 2], horizon_us => 200000, max_pending => 5000,
                               record_window => 1000, sample_every_us => 1000,
                               max_samples => 2000}),
    ok = ?N:tracker_set_members(R, 0, [0, 1, 2]),
    Bottom = {state_gcounter, []},
    {ok, _} = ?N:tracker_observed(R, 1, 0, Bottom),
    {ok, _} = ?N:tracker_observed(R, 2, 0, Bottom),
    N = 1000000,
    Batch = 100,
    Peak = lists:foldl(
             fun(B, Peak0) ->
                     Base = B * Batch,
                     Counts = million_batch(R, Base, Batch),
                     Ts = (Base + Batch) * 10,
                     {ok, _} = ?N:tracker_observed_delta(R, 1, Ts + 5, Counts),
                     (B >= 3000 andalso B < 3300) orelse
                         ({ok, _} = ?N:tracker_observed_delta(R, 2, Ts + 7, Counts)),
                     {ok, K} = ?N:tracker_retained(R),
                     maps:fold(fun(Key, V, Acc) -> Acc#{Key => max(V, maps:get(Key, Acc, 0))} end,
                               Peak0, K)
             end, #{}, lists:seq(0, N div Batch - 1)),
    {ok, S} = ?N:tracker_stats(R),
    ?debugFmt("a million updates: ~p~npeak retained: ~p",
              [maps:with([converged, unconverged, unconverged_capacity, pending, orphaned], S),
               Peak]),
    ?assertMatch(#{updates := N}, S),
    #{converged := Conv, unconverged := Unconv, pending := Pend, orphaned := Orph} = S,
    ?assertEqual(N, Conv + Unconv + Pend + Orph),
    %% The 30,000 updates of the silence, less the 5,000 the cap keeps.
    ?assert(Unconv >= 25000),
    ?assert(Conv >= 960000),
    ?assert(maps:get(pending, Peak) =< 5000),
    ?assert(maps:get(index_entries, Peak) =< 5000 * 6),
    ?assert(maps:get(records, Peak) =< 1000),
    ?assert(maps:get(samples, Peak) =< 2000),
    ?assert(maps:get(seq_entries, Peak) =< 4096),   %% the default seq_window
    ?assertMatch(#{nodes := 3, last_states := 2}, Peak).

%% Register updates Base+1..Base+Batch, each an increment of actor
%% I rem 8 with its delta as witness; the counter after the batch.
million_batch(R, Base, Batch) ->
    lists:foreach(fun(I) ->
                          A = I rem 8,
                          {ok, new} = ?N:tracker_witness(R, 0, I, I * 10,
                                                         {state_gcounter, [{A, count(A, I)}]})
                  end, lists:seq(Base + 1, Base + Batch)),
    {state_gcounter, [{A, count(A, Base + Batch)} || A <- lists:seq(0, 7),
                                                     count(A, Base + Batch) > 0]}.

%% Actor A's count once updates 1..I are made (update I increments I rem 8).
count(0, I) -> I div 8;
count(A, I) when I < A -> 0;
count(A, I) -> (I - A) div 8 + 1.

%% A delta from delta_mutate/3 as the witness (what updated_delta/3
%% registers): on a 2,000-element orset an add is seen by a state holding
%% its token and by no state without it; a remove once its tombstones
%% arrive.
delta_witness_test() ->
    R = tracker(),
    Big = big_orset(2000),
    {ok, D1} = ?C:delta_mutate({add, x}, w, Big),
    S1 = ?C:merge(Big, D1),
    {ok, new} = ?N:tracker_witness(R, 0, 1, 1000, D1),
    %% Another add of x, with its own token: not this update.
    {ok, Other} = ?C:mutate({add, x}, w, Big),
    {ok, #{newly_seen := 0}} = ?N:tracker_observed(R, 1, 1500, Other),
    {ok, #{newly_seen := 1}} = ?N:tracker_observed(R, 1, 2000, S1),
    {ok, #{converged := 1}} = ?N:tracker_observed(R, 2, 2500, S1),
    {ok, D2} = ?C:delta_mutate({rmv, x}, w, S1),
    S2 = ?C:merge(S1, D2),
    {ok, new} = ?N:tracker_witness(R, 0, 2, 3000, D2),
    {ok, #{newly_seen := 0}} = ?N:tracker_observed(R, 1, 3100, S1),
    {ok, #{newly_seen := 1}} = ?N:tracker_observed(R, 1, 3500, S2),
    {ok, #{converged := 1}} = ?N:tracker_observed(R, 2, 4000, S2),
    ?assertMatch(#{updates := 2, converged := 2, max := 1500}, stats(R)).

big_orset(N) ->
    lists:foldl(fun(I, S) -> {ok, S1} = ?C:mutate({add, I}, w, S), S1 end,
                ?C:new(state_orset), lists:seq(1, N)).

%% updated_delta/3 through the API (one member, the writer: an update
%% converges at once). A delta as large as a state weighs too much for the
%% normal scheduler and registers through the dirty twin.
api_updated_delta() ->
    V = {<<"delta">>, state_orset},
    ok = lasp_converge:track(V, #{nodes => [], tick => false, clock => false}),
    try
        Big = big_orset(2000),
        {ok, D1} = ?C:delta_mutate({add, x}, w, Big),
        ok = lasp_converge:updated_delta(V, D1, #{ts => 1000}),
        ?assertMatch(#{updates := 1, converged := 1}, lasp_converge:stats(V)),
        {ok, R} = lasp_converge_nif:tracker_new(#{exact => [0]}),
        ?assertError(lasp_converge_dirty, lasp_converge_nif:tracker_witness(R, 0, 1, 0, Big)),
        ok = lasp_converge:updated_delta(V, Big, #{ts => 5000}),
        ?assertMatch(#{updates := 2}, lasp_converge:stats(V)),
        ?assertEqual({error, {badcrdt, not_a_crdt}}, lasp_converge:updated_delta(V, nope)),
        ?assertMatch({error, {badcrdt, {type_mismatch, _, _}}},
                     lasp_converge:updated_delta(V, {state_gset, []})),
        ?assertMatch({error, {badcrdt, _}},
                     lasp_converge:updated_delta(V, {state_orset, [{b, []}, {a, []}]})),
        ?assertEqual({error, bad_ts}, lasp_converge:updated_delta(V, D1, #{ts => soon})),
        ?assertEqual({error, not_tracked}, lasp_converge:updated_delta(other, D1)),
        ?assertMatch(#{updates := 2}, lasp_converge:stats(V))
    after
        lasp_converge:untrack(V)
    end.
