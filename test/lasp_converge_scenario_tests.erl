%% @doc `lasp_converge_scenario' on peer clusters: a run converges with no
%% update lost and counts its messages; a 2 x 2 sweep shows the shorter
%% interval converging sooner and the messages per update falling as the
%% rate rises (state-based ticks cost the same whatever the rate); specs
%% are validated; tables are aligned.
-module(lasp_converge_scenario_tests).

-include_lib("eunit/include/eunit.hrl").
-include("lasp_converge.hrl").

-define(S, lasp_converge_scenario).

scenario_test_() ->
    {setup,
     fun() -> is_alive() end,
     fun(WasAlive) -> WasAlive orelse net_kernel:stop() end,
     [{timeout, 60, fun run_converges/0},
      {timeout, 60, fun existing_cluster/0},
      {timeout, 60, fun partition_then_heal/0},
      {timeout, 60, fun crash_and_restart/0},
      {timeout, 120, fun sweep_interval_and_rate/0}]}.

run_converges() ->
    Set = {<<"set">>, state_orset},
    Counter = {<<"counter">>, state_pncounter},
    {ok, R} = ?S:run(#{nodes => 3, vars => [Set, Counter],
                       propagation => #{state_interval => 20},
                       phases => [#{duration => 600, rate => 50},
                                  #{duration => 200, rate => 0}],
                       seed => 7}),
    #{nodes := Nodes, vars := #{Set := S, Counter := K}, faults := []} = R,
    ?assertEqual(3, length(Nodes)),
    %% Nodes are stopped at the end.
    ?assertEqual([], [N || N <- Nodes, lists:member(N, erlang:nodes())]),
    ?assert(maps:get(duration_ms, R) >= 800),
    [begin
         ?assertMatch(#{converged := true, agree := true, lost := Lost,
                        acknowledged := 30, failed := 0} when map_size(Lost) =:= 0, V),
         ?assertMatch(#{updates := 30, converged := 30, pending := 0}, maps:get(stats, V)),
         ?assert(maps:get(messages, V) > 0),
         ?assert(maps:get(bytes, V) > maps:get(messages, V)),
         ?assertEqual(maps:get(messages, V) / 30, maps:get(msgs_per_update, V)),
         ?assert(is_list(maps:get(divergence, V)))
     end || V <- [S, K]],
    %% Every node holds the adds minus the removes; some removes happened.
    Expected = maps:get(expected, S),
    ?assert(length(Expected) < 30),
    ?assert(length(Expected) > 0),
    [?assertEqual(Expected, V) || V <- maps:values(maps:get(values, S))],
    ?assert(is_integer(maps:get(expected, K))).

existing_cluster() ->
    WasAlive = is_alive(),
    Var = {<<"reused">>, state_gcounter},
    lasp_converge_cluster:with_cluster(
      2, #{prefix => lc_scn_reuse},
      fun(C) ->
              Spec = #{cluster => C, vars => [Var],
                       propagation => #{state_interval => 5000, propagate_on_update => true},
                       phases => [#{duration => 300, rate => 20}]},
              {ok, #{vars := #{Var := V1}}} = ?S:run(Spec),
              ?assertMatch(#{converged := true, expected := 6, acknowledged := 6}, V1),
              %% One message per update to the other node, no tick in 300 ms.
              ?assertEqual(1.0, maps:get(msgs_per_update, V1)),
              %% Run again on the same cluster: the total carries on.
              {ok, #{vars := #{Var := V2}}} = ?S:run(Spec),
              ?assertMatch(#{converged := true, expected := 12}, V2),
              %% The cluster is still up, and the variable no longer tracked.
              [N1 | _] = lasp_converge_cluster:nodes(C),
              ?assertEqual({error, not_tracked},
                           lasp_converge_cluster:call(C, N1, lasp_converge, stats, [Var])),
              ?assertEqual(ok, ?assertNoLostUpdates(Var, 12, #{cluster => C}))
      end),
    WasAlive orelse net_kernel:stop().

%% Nodes 1+2 and 3+4 apart from 200 ms to 900 ms while both sides add and
%% remove: nothing converges across the cut until the heal, then everything
%% does, with no update lost.
partition_then_heal() ->
    Var = {<<"cut">>, state_orset},
    {ok, R} = ?S:run(#{nodes => 4, vars => [Var],
                       propagation => #{state_interval => 20},
                       phases => [#{duration => 1200, rate => 40, remove_ratio => 0.3}],
                       faults => [{200, partition, [[1, 2], [3, 4]]}, {900, heal}],
                       seed => 11}),
    #{faults := Faults, vars := #{Var := V}} = R,
    ?assertMatch([#{fault := partition, args := [[1, 2], [3, 4]], result := ok},
                  #{fault := heal, args := [], result := ok}], Faults),
    [P, H] = [At || #{at_us := At} <- Faults],
    ?assert(P >= 200000 andalso P < 400000),
    ?assert(H >= 900000 andalso H < 1100000),
    ?assertMatch(#{converged := true, agree := true, acknowledged := 48, failed := 0}, V),
    ?assertEqual(#{}, maps:get(lost, V)),
    %% An update made early in the partition waited for the heal.
    #{max := Max, p50 := P50} = maps:get(stats, V),
    ?assert(Max > 400000),
    ?assert(P50 < Max).

%% Node 3 crashes at 200 ms and comes back empty at 500 ms: the updates sent
%% to it meanwhile fail, the others reach every node, node 3 included.
%% Propagation on update, so that node 3 has sent every update it
%% acknowledged before it crashes (with ticks alone, an add it took in the
%% last interval dies with it, and the run reports it lost).
crash_and_restart() ->
    Var = {<<"crash">>, state_awset},
    {ok, R} = ?S:run(#{nodes => 3, vars => [Var],
                       propagation => #{state_interval => 20, propagate_on_update => true},
                       phases => [#{duration => 900, rate => 30}],
                       faults => [{200, crash, [3]}, {500, restart, [3, #{recover => false}]}],
                       seed => 5}),
    #{faults := Faults, vars := #{Var := V}, nodes := [_, _, N3]} = R,
    ?assertMatch([#{fault := crash, result := ok}, #{fault := restart, result := ok}], Faults),
    ?assertMatch(#{converged := true, agree := true}, V),
    ?assertEqual(#{}, maps:get(lost, V)),
    ?assertEqual(27, maps:get(acknowledged, V) + maps:get(failed, V)),
    ?assert(maps:get(failed, V) >= 1),
    ?assert(maps:is_key(N3, maps:get(values, V))),
    ?assert(maps:get(sent_messages, maps:get(N3, maps:get(per_node, V))) > 0).

sweep_interval_and_rate() ->
    %% Jitter, so that the writers' ticks do not keep one phase against
    %% the evenly spaced updates.
    Base = #{nodes => 3, vars => [{<<"s">>, state_awset}],
             propagation => #{jitter_percent => 50}},
    {ok, Rows} = ?S:sweep(Base, #{rates => [10, 100], intervals => [10, 250],
                                  duration => 1000}),
    ?assertEqual(4, length(Rows)),
    Cell = fun(R, I) ->
                   [Row] = [X || #{rate := R1, state_interval := I1} = X <- Rows,
                                 R1 =:= R, I1 =:= I],
                   Row
           end,
    [?assertMatch(#{converged := true, agree := true}, Row) || Row <- Rows],
    ?assertEqual([10, 100, 10, 100], [U || #{updates := U} <- Rows]),
    [begin
         %% The shorter interval converges sooner, at every rate ...
         ?assert(maps:get(p50, Cell(R, 10)) < maps:get(p50, Cell(R, 250))),
         ?assert(maps:get(p99, Cell(R, 10)) < maps:get(p99, Cell(R, 250)))
     end || R <- [10, 100]],
    [begin
         %% ... and a faster rate shares the ticks among more updates.
         ?assert(maps:get(msgs_per_update, Cell(100, I))
                 < maps:get(msgs_per_update, Cell(10, I)) / 4)
     end || I <- [10, 250]],
    Table = lists:flatten(io_lib:format("~s", [?S:format_table(Rows)])),
    ?debugFmt("~n~s", [Table]),
    [Header, Rule | Lines] = string:split(string:trim(Table, trailing), "\n", all),
    ?assertEqual(4, length(Lines)),
    [?assertEqual(string:length(Header), string:length(L)) || L <- [Rule | Lines]].

spec_errors_test() ->
    ?assertEqual({error, {bad_spec, [vars]}}, ?S:run(#{})),
    ?assertEqual({error, bad_spec}, ?S:run(nope)),
    %% A misspelt key is refused, not ignored.
    ?assertEqual({error, {unknown_key, phase}},
                 ?S:run(#{vars => [{<<"x">>, state_gset}], phase => []})),
    ?assertEqual({error, {bad_spec, [vars]}}, ?S:run(#{vars => [{<<"x">>, no_such_type}]})),
    ?assertEqual({error, {bad_spec, [phases]}},
                 ?S:run(#{vars => [{<<"x">>, state_gset}], phases => [#{rate => 1}]})),
    ?assertEqual({error, {fault_on_aggregator, 1}},
                 ?S:run(#{vars => [{<<"x">>, state_gset}], faults => [{10, crash, [1]}]})),
    ?assertEqual({error, {bad_spec, [faults]}},
                 ?S:run(#{vars => [{<<"x">>, state_gset}], faults => [{10, explode}]})),
    ?assertEqual({error, {bad_spec, [nodes]}},
                 ?S:run(#{vars => [{<<"x">>, state_gset}], nodes => 0})).

format_table_test() ->
    Rows = [#{var => {<<"s">>, state_gset}, rate => 1 / 60, state_interval => 10000,
              updates => 2, p50 => 5012345, p99 => 9990000, max => 9990000,
              msgs_per_update => 123.4, bytes_per_update => 2048.0, converged => true,
              agree => true},
            #{var => {<<"s">>, state_gset}, rate => 200, state_interval => 5,
              updates => 2000, p50 => undefined, p99 => undefined, max => undefined,
              msgs_per_update => undefined, bytes_per_update => undefined,
              converged => false, agree => false}],
    Text = lists:flatten(io_lib:format("~s", [?S:format_table(Rows)])),
    [_Header, _Rule, L1, L2] = string:split(string:trim(Text, trailing), "\n", all),
    ?assertEqual(["s", "1/min", "10000", "2", "5012.3", "9990.0", "9990.0", "123", "2048",
                  "true"], string:lexemes(L1, " ")),
    ?assertEqual(["s", "200/s", "5", "2000", "-", "-", "-", "-", "-", "false"],
                 string:lexemes(L2, " ")).
