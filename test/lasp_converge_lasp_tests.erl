%% @doc `lasp_converge_lasp' against the test double of Lasp 0.8
%% (test_support/lasp_double/, modules `lasp', `lasp_config',
%% `lasp_peer_service' on the peers' code path only) on three `peer'
%% nodes: two run the `lasp_converge' application, one does not. Tracking
%% from one node, timed updates on every node, convergence, marks, report
%% and print on the Lasp variable, `lasp_config' set and read back on every
%% member (and set by a tuner's controller), the member without the
%% application reported, untrack stopping
%% the streams' work, a failing callback and a purge of the adapter that
%% leave Lasp's stream processes alive, and the double's own caveats.
-module(lasp_converge_lasp_tests).

-include_lib("eunit/include/eunit.hrl").

-define(CL, lasp_converge_cluster).
-define(L, lasp_converge_lasp).
-define(ID, {<<"lasp_tests">>, state_awset}).

%% Without Lasp on this node, every call says so.
no_lasp_test() ->
    ?assertEqual(non_existing, code:which(lasp)),
    ?assertEqual({error, lasp_not_running}, ?L:members()),
    ?assertEqual({error, lasp_not_running}, ?L:track(?ID)),
    ?assertEqual({error, lasp_not_running}, ?L:update(?ID, {add, 1}, <<"a">>)),
    ?assertEqual({error, lasp_not_running}, ?L:status(?ID)),
    ?assertEqual({error, lasp_not_running}, ?L:get()),
    ?assertEqual({error, lasp_not_running}, ?L:set(#{state_interval => 100})),
    ?assertEqual({error, {bad_settings, [mode, state_interval]}},
                 ?L:set(#{state_interval => 0, mode => fast})),
    ?assertEqual({error, {bad_actor, {1}}}, ?L:update(?ID, {add, 1}, {1})),
    ?assertEqual({error, no_type}, ?L:track(<<"bare">>)),
    ?assertEqual(ok, ?L:local_stop(?ID)),
    ?assertEqual(#{stream => none, observed => 0, errors => 0}, ?L:local_status(?ID)).

lasp_cluster_test_() ->
    {setup, fun setup/0, fun cleanup/1,
     fun(Ctx) ->
             {inorder,
              [{Name, {timeout, 20, fun() -> F(Ctx) end}}
               || {Name, F} <- [{"the double's caveats", fun double_caveats/1},
                                {"members, instrumented or not", fun members/1},
                                {"track, updates on every node, convergence", fun track_update/1},
                                {"marks, report, print", fun marks_report_print/1},
                                {"set and get on every member", fun set_get/1},
                                {"a failing callback, a purge", fun callback_failures/1},
                                {"untrack stops the work, track again", fun untrack_retrack/1},
                                {"no stream process ended", fun no_exits/1}]]}
     end}.

setup() ->
    WasAlive = is_alive(),
    {ok, Ebin} = lasp_converge_lasp_double:build(),
    {ok, C} = ?CL:start(3, #{prefix => lc_lasp, code_paths => [Ebin], apps => [lasp],
                             args => ["-lasp", "state_interval", "100"]}),
    Ns = [N1, N2, N3] = ?CL:nodes(C),
    [{ok, _} = ?CL:call(C, N, application, ensure_all_started, [lasp_converge]) || N <- [N1, N2]],
    ok = ?CL:call(C, N2, lasp_peer_service, join, [N1]),
    ok = ?CL:call(C, N3, lasp_peer_service, join, [N1]),
    wait_until(fun() ->
                       lists:all(fun(N) ->
                                         {ok, Ms} = ?CL:call(C, N, lasp_peer_service, members, []),
                                         Ms =:= lists:sort(Ns)
                                 end, Ns)
               end, 5000),
    #{c => C, nodes => Ns, was_alive => WasAlive}.

cleanup(#{c := C, was_alive := WasAlive}) ->
    ok = ?CL:stop(C),
    WasAlive orelse net_kernel:stop().

%% The double does what the issue says Lasp 0.8 does.
double_caveats(#{c := C, nodes := [_, _, N3]}) ->
    Undeclared = {<<"never_declared">>, state_gset},
    ?assertEqual(ok, ?CL:call(C, N3, lasp, stream, [Undeclared, fun(_) -> ok end])),
    wait_until(fun() ->
                       lists:member({Undeclared, not_found},
                                    ?CL:call(C, N3, lasp_double, stream_exits, []))
               end, 5000),
    V = {<<"value">>, state_gset},
    ?assertMatch({ok, {V, state_gset, _, {state_gset, []}}},
                 ?CL:call(C, N3, lasp, declare, [V, state_gset])),
    Self = self(),
    ok = ?CL:call(C, N3, lasp, stream, [V, fun(X) -> Self ! {streamed, X} end]),
    ?assertMatch({ok, {V, state_gset, _, {state_gset, [1]}}},
                 ?CL:call(C, N3, lasp, update, [V, {add, 1}, <<"actor">>])),
    %% The stream's function gets the value (a set), never the state.
    Streamed = receive_all(streamed, 1000),
    ?assert(length(Streamed) >= 1),
    ?assert(lists:all(fun sets:is_set/1, Streamed)),
    ?assertEqual([1], sets:to_list(lists:last(Streamed))),
    ?assertMatch({ok, {V, state_gset, _, {state_gset, [1]}}},
                 ?CL:call(C, N3, lasp, read, [V, undefined])),
    {ok, Q} = ?CL:call(C, N3, lasp, query, [V]),
    ?assertEqual([1], sets:to_list(Q)),
    ?assertError({exception, {badarg, {1}}, _},
                 ?CL:call(C, N3, lasp, update, [V, {add, 2}, {1}])).

members(#{c := C, nodes := [N1, N2, N3] = Ns}) ->
    [?assertEqual({ok, #{members => Ns, instrumented => [N1, N2], not_instrumented => [N3]}},
                  ?CL:call(C, N, ?L, members, [])) || N <- [N1, N2]],
    %% The node without the application cannot aggregate.
    ?assertEqual({error, {not_instrumented, N3}}, ?CL:call(C, N3, ?L, track, [?ID])).

track_update(#{c := C, nodes := [N1, N2, N3] = Ns}) ->
    ?assertEqual({ok, #{members => Ns, instrumented => [N1, N2], not_instrumented => [N3]}},
                 ?CL:call(C, N1, ?L, track, [?ID])),
    ?assertEqual({error, already_tracked}, ?CL:call(C, N1, ?L, track, [?ID])),
    {ok, St} = ?CL:call(C, N2, ?L, status, [?ID]),
    ?assertMatch(#{id := ?ID, tracked := false, not_instrumented := [N3],
                   nodes := #{N1 := #{stream := active}, N2 := #{stream := active}}}, St),
    ?assertMatch({ok, #{tracked := true}}, ?CL:call(C, N1, ?L, status, [?ID])),
    %% Five adds on every node, the Lasp way: a binary actor.
    Adds = [{N, K} || N <- Ns, K <- lists:seq(1, 5)],
    [?assertMatch({ok, {?ID, state_awset, _, {state_awset, _}}},
                  ?CL:call(C, N, ?L, update, [?ID, {add, {N, K}}, atom_to_binary(N)]))
     || {N, K} <- Adds],
    ?assertEqual({error, {bad_actor, self()}},
                 ?CL:call(C, N1, ?L, update, [?ID, {add, x}, self()])),
    wait_agree(C, Ns, lists:sort(Adds)),
    %% Timed: the ten made on the two instrumented nodes.
    wait_until(fun() ->
                       S = ?CL:call(C, N1, lasp_converge, stats, [?ID]),
                       maps:get(updates, S) =:= 10 andalso maps:get(converged, S) =:= 10
                           andalso maps:get(pending, S) =:= 0
               end, 10000),
    S = ?CL:call(C, N1, lasp_converge, stats, [?ID]),
    ?assertEqual(0, maps:get(unconverged, S)),
    ?assert(is_integer(maps:get(p99, S))),
    ?assert(maps:get(max, S) > 0),
    ?assertEqual(lists:sort([N1, N2]), lists:sort(maps:keys(maps:get(per_node, S)))).

marks_report_print(#{c := C, nodes := [N1 | _]}) ->
    ok = ?CL:call(C, N1, lasp_converge, mark, [#{at_us => 0, fault => lasp_test, args => []}]),
    wait_until(fun() ->
                       lists:member(#{at_us => 0, fault => lasp_test, args => []},
                                    ?CL:call(C, N1, lasp_converge, marks, [?ID]))
               end, 5000),
    Path = filename:absname(filename:join(["_build", "test", "lasp_converge_lasp_report.html"])),
    ok = filelib:ensure_dir(Path),
    ?assertEqual({ok, Path}, ?CL:call(C, N1, lasp_converge_report, write, [Path, [?ID]])),
    {ok, Html} = file:read_file(Path),
    ?assertNotEqual(nomatch, binary:match(Html, <<"lasp_tests">>)),
    ?assertEqual(ok, ?CL:call(C, N1, lasp_converge, print, [?ID])),
    ?assertMatch([_ | _], ?CL:call(C, N1, lasp_converge, records, [?ID])).

set_get(#{c := C, nodes := [N1, N2, N3] = Ns}) ->
    ?assertEqual({ok, Ns}, ?CL:call(C, N2, ?L, set, [#{state_interval => 80, jitter => false,
                                                       mode => state_based}])),
    [?assertEqual(80, ?CL:call(C, N, lasp_config, get, [state_interval, 10000])) || N <- Ns],
    {ok, G} = ?CL:call(C, N1, ?L, get, []),
    ?assertMatch(#{agree := true, disagree := [],
                   settings := #{state_interval := 80, delta_interval := 10000,
                                 propagate_on_update := false, jitter := false,
                                 jitter_percent := 1, mode := state_based}}, G),
    ?assertEqual(lists:sort(Ns), lists:sort(maps:keys(maps:get(per_node, G)))),
    %% A member set by hand disagrees, and is shown.
    ok = ?CL:call(C, N3, lasp_config, set, [jitter_percent, 5]),
    {ok, G1} = ?CL:call(C, N1, ?L, get, []),
    ?assertMatch(#{agree := false, disagree := [jitter_percent],
                   per_node := #{N3 := #{jitter_percent := 5}, N1 := #{jitter_percent := 1}}}, G1),
    ?assertNot(maps:is_key(jitter_percent, maps:get(settings, G1))),
    ?assertEqual({ok, Ns}, ?CL:call(C, N1, ?L, set, [#{jitter_percent => 1,
                                                       state_interval => 100}])),
    ?assertMatch({ok, #{agree := true, settings := #{jitter_percent := 1,
                                                     state_interval := 100}}},
                 ?CL:call(C, N3, ?L, get, [])),
    ?assertEqual({error, {bad_settings, [jitter_percent]}},
                 ?CL:call(C, N1, ?L, set, [#{jitter_percent => 101}])),
    %% `mode' too (the delta interval short, as the double's timer reads it).
    ?assertEqual({ok, Ns}, ?CL:call(C, N1, ?L, set, [#{mode => delta_based,
                                                       delta_interval => 100}])),
    [?assertEqual(delta_based, ?CL:call(C, N, lasp_config, get, [mode, state_based])) || N <- Ns],
    ?assertMatch({ok, #{agree := true, settings := #{mode := delta_based,
                                                     delta_interval := 100}}},
                 ?CL:call(C, N2, ?L, get, [])),
    ?assertEqual({ok, Ns}, ?CL:call(C, N1, ?L, set, [#{mode => state_based}])),
    %% A tuner's controller on the Lasp variable sets Lasp's lasp_config.
    {ok, _} = ?CL:call(C, N1, lasp_converge_tuner, start,
                       [?ID, {fixed, 90}, #{nodes => Ns, key => state_interval, window => 200}]),
    wait_until(fun() ->
                       lists:all(fun(N) ->
                                         ?CL:call(C, N, lasp_config, get, [state_interval, 0]) =:= 90
                                 end, Ns)
               end, 5000),
    ok = ?CL:call(C, N1, lasp_converge_tuner, stop, [?ID]),
    ?assertEqual({ok, Ns}, ?CL:call(C, N1, ?L, set, [#{state_interval => 100}])).

%% Reads that raise on N2 make our callback fail there: the failure is
%% counted, Lasp's stream process lives on, and once reads work again the
%% updates converge. So does a purge of the adapter's code on N2.
callback_failures(#{c := C, nodes := [N1, N2, _]}) ->
    #{errors := E0} = ?CL:call(C, N2, ?L, local_status, [?ID]),
    ok = ?CL:call(C, N2, lasp_double, fail_reads, [true]),
    {ok, _} = ?CL:call(C, N1, ?L, update, [?ID, {add, failing}, <<"n1">>]),
    wait_until(fun() ->
                       maps:get(errors, ?CL:call(C, N2, ?L, local_status, [?ID])) > E0
               end, 5000),
    ?assert(alive_streams(C, N2) >= 1),
    ok = ?CL:call(C, N2, lasp_double, fail_reads, [false]),
    {ok, _} = ?CL:call(C, N1, ?L, update, [?ID, {add, recovered}, <<"n1">>]),
    wait_converged(C, N1),
    %% Two loads in a row purge the version the streams were started under.
    [begin
         _ = ?CL:call(C, N2, code, purge, [?L]),
         {module, ?L} = ?CL:call(C, N2, code, load_file, [?L])
     end || _ <- [1, 2]],
    ?assert(alive_streams(C, N2) >= 1),
    #{observed := O0} = ?CL:call(C, N2, ?L, local_status, [?ID]),
    {ok, _} = ?CL:call(C, N1, ?L, update, [?ID, {add, after_purge}, <<"n1">>]),
    wait_until(fun() ->
                       maps:get(observed, ?CL:call(C, N2, ?L, local_status, [?ID])) > O0
               end, 5000),
    wait_converged(C, N1).

untrack_retrack(#{c := C, nodes := [N1, N2, N3]}) ->
    ?assertEqual(ok, ?CL:call(C, N2, ?L, untrack, [?ID])),
    ?assertEqual({error, not_tracked}, ?CL:call(C, N1, lasp_converge, stats, [?ID])),
    {ok, #{nodes := Nodes}} = ?CL:call(C, N1, ?L, status, [?ID]),
    ?assertMatch(#{N1 := #{stream := inactive}, N2 := #{stream := inactive}}, Nodes),
    Observed = [maps:get(observed, ?CL:call(C, N, ?L, local_status, [?ID])) || N <- [N1, N2]],
    Calls = [?CL:call(C, N, lasp_double, stream_calls, [?ID]) || N <- [N1, N2]],
    {ok, _} = ?CL:call(C, N3, lasp, update, [?ID, {add, untracked}, <<"n3">>]),
    %% Lasp still calls the streams on both nodes; they do nothing.
    wait_until(fun() ->
                       Now = [?CL:call(C, N, lasp_double, stream_calls, [?ID]) || N <- [N1, N2]],
                       lists:all(fun({A, B}) -> A > B end, lists:zip(Now, Calls))
               end, 5000),
    ?assertEqual(Observed,
                 [maps:get(observed, ?CL:call(C, N, ?L, local_status, [?ID])) || N <- [N1, N2]]),
    %% Tracked again, from N2 this time: a new stream on each member, the
    %% old one idle.
    ?assertMatch({ok, #{instrumented := [N1, N2]}}, ?CL:call(C, N2, ?L, track, [?ID])),
    {ok, _} = ?CL:call(C, N1, ?L, update, [?ID, {add, again}, <<"n1">>]),
    wait_until(fun() ->
                       S = ?CL:call(C, N2, lasp_converge, stats, [?ID]),
                       maps:get(updates, S) =:= 1 andalso maps:get(converged, S) =:= 1
               end, 5000),
    ?assertEqual(2, alive_streams(C, N1)),
    ?assertEqual(ok, ?CL:call(C, N1, ?L, untrack, [?ID])).

no_exits(#{c := C, nodes := Ns}) ->
    [?assertEqual([], [E || {Id, _} = E <- ?CL:call(C, N, lasp_double, stream_exits, []),
                            Id =:= ?ID])
     || N <- Ns].

%% ---- helpers ----

alive_streams(C, N) ->
    length([P || {Id, P, true} <- ?CL:call(C, N, lasp_double, streams, []), Id =:= ?ID]).

wait_converged(C, N) ->
    wait_until(fun() ->
                       S = ?CL:call(C, N, lasp_converge, stats, [?ID]),
                       maps:get(pending, S) =:= 0
                           andalso maps:get(converged, S) =:= maps:get(updates, S)
               end, 10000).

wait_agree(C, Ns, Want) ->
    wait_until(fun() ->
                       lists:all(fun(N) ->
                                         {ok, V} = ?CL:call(C, N, lasp, query, [?ID]),
                                         lists:sort(sets:to_list(V)) =:= Want
                                 end, Ns)
               end, 10000).

receive_all(Tag, Ms) ->
    receive {Tag, X} -> [X | receive_all(Tag, 100)]
    after Ms -> []
    end.

wait_until(F, Ms) when Ms > 0 ->
    case F() of
        true ->
            ok;
        false ->
            timer:sleep(20),
            wait_until(F, Ms - 20)
    end;
wait_until(F, _) ->
    ?assert(F()).
