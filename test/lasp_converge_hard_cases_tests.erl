%% @doc The hard cases, each on its own local cluster (`lasp_converge_cluster')
%% with faults injected by `lasp_converge_fault': a 2+3 partition with
%% concurrent adds and removes of the same elements, updates much faster and
%% much slower than `state_interval', a slow link and a paused node, a crash
%% and restart with and without recovery, 30% message loss, and delta-based
%% against state-based replication.
%%
%% Each case asserts convergence (every node's value equal) and that no
%% acknowledged update is lost: the final value on every node is exactly
%% the one the updates the test made imply (add-wins for concurrent adds and
%% removes of an awset), and (but for the last case, which compares the two
%% modes) the tracker saw every update converge. Waits poll with deadlines;
%% nothing is asserted from a fixed sleep.
-module(lasp_converge_hard_cases_tests).

-include_lib("eunit/include/eunit.hrl").

-define(CL, lasp_converge_cluster).
-define(R, lasp_converge_replicator).
-define(F, lasp_converge_fault).
-define(T, state_awset).
-define(WAIT_MS, 15000).

hard_cases_test_() ->
    {setup,
     fun() -> is_alive() end,
     fun(WasAlive) -> WasAlive orelse net_kernel:stop() end,
     [{timeout, 60, {"2+3 partition, concurrent adds and removes, heal", fun partition/0}},
      {timeout, 60, {"updates 10x faster than state_interval", fun fast_updates/0}},
      {timeout, 60, {"one update per 50 intervals", fun slow_updates/0}},
      {timeout, 60, {"200 ms slow link and a paused node", fun slow_link_and_pause/0}},
      {timeout, 60, {"crash and restart, without and with recovery", fun crash_restart/0}},
      {timeout, 60, {"30% message loss", fun loss/0}},
      {timeout, 60, {"delta_based and state_based: same state, fewer bytes",
                     fun delta_vs_state/0}}]}.

%% ---- 1. partition ----

partition() ->
    cluster(5, fun(C) ->
        Ns = [N1, N2, N3, N4, N5] = ?CL:nodes(C),
        setup(C, #{state_interval => 50}),
        Var = var(C, <<"partition">>),
        %% 1..20 everywhere before the partition.
        [upd(C, lists:nth(E rem 5 + 1, Ns), Var, {add, E}) || E <- lists:seq(1, 20)],
        wait_values(C, Ns, Var, lists:seq(1, 20)),
        A = [N1, N2],
        B = [N3, N4, N5],
        ok = ?F:partition(C, [A, B]),
        T0 = erlang:monotonic_time(millisecond),
        %% Both sides at once, alternating between their nodes; a remove of
        %% an element added during the partition runs where it was added.
        At = fun(Side, E) -> lists:nth(E rem length(Side) + 1, Side) end,
        OpsA = [{At(A, E), {rmv, E}} || E <- lists:seq(1, 15)]       % 1..5 re-added by B
            ++ [{At(A, E), {add, E}} || E <- lists:seq(21, 30)]       % 21..25 added by B too
            ++ [{At(A, E), {rmv, E}} || E <- [26, 27, 28]]
            ++ [{At(A, E), {add, E}} || E <- lists:seq(31, 35)],
        OpsB = [{At(B, E), {add, E}} || E <- lists:seq(1, 5)]
            ++ [{At(B, E), {rmv, E}} || E <- lists:seq(11, 15)]
            ++ [{At(B, E), {add, E}} || E <- lists:seq(21, 25)]
            ++ [{At(B, E), {add, E}} || E <- lists:seq(41, 45)],
        run_concurrently([fun() -> apply_ops(C, Var, OpsA) end,
                          fun() -> apply_ops(C, Var, OpsB) end]),
        %% Each side agrees on its own updates and sees none of the other's.
        SideA = lists:seq(16, 25) ++ [29, 30] ++ lists:seq(31, 35),
        SideB = lists:seq(1, 10) ++ lists:seq(16, 25) ++ lists:seq(41, 45),
        wait_values(C, A, Var, SideA),
        wait_values(C, B, Var, SideB),
        ?assert(lists:sum([dropped(C, N) || N <- Ns]) > 0),
        %% Held for 2 s, then healed.
        timer:sleep(max(0, T0 + 2000 - erlang:monotonic_time(millisecond))),
        wait_values(C, A, Var, SideA),
        wait_values(C, B, Var, SideB),
        ok = ?F:heal(C),
        Want = lists:seq(1, 5) ++ lists:seq(16, 25) ++ [29, 30] ++ lists:seq(31, 35)
            ++ lists:seq(41, 45),
        wait_values(C, Ns, Var, Want),
        wait_tracked(C, N1, Var, 20 + length(OpsA) + length(OpsB)),
        ?assertMatch([#{fault := partition, args := [[A, B]]}, #{fault := heal, args := []}],
                     ?F:events(C)),
        [#{at_us := P}, #{at_us := H}] = ?F:events(C),
        ?assert(H - P >= 2000000),
        %% The tracker marks the faults too.
        ?assertMatch([#{fault := partition}, #{fault := heal}],
                     ?CL:call(C, N1, lasp_converge, marks, [Var]))
    end).

%% ---- 2. update rate against state_interval ----

%% 100 ms interval, an update every 10 ms for a second (delta_based).
fast_updates() ->
    cluster(4, fun(C) ->
        Ns = [N1 | _] = ?CL:nodes(C),
        setup(C, #{state_interval => 100, mode => delta_based}),
        Var = var(C, <<"fast">>),
        Ops = rate_ops(Ns, 100),
        T0 = erlang:monotonic_time(millisecond),
        lists:foreach(fun({K, {N, Op}}) ->
                              upd(C, N, Var, Op),
                              sleep_until(T0 + K * 10)
                      end, lists:enumerate(Ops)),
        wait_values(C, Ns, Var, expected(Ops)),
        wait_tracked(C, N1, Var, length(Ops))
    end).

%% 10 ms interval, one update per 500 ms (50 intervals): each update reaches
%% every node before the next one is made.
slow_updates() ->
    cluster(4, fun(C) ->
        Ns = [N1 | _] = ?CL:nodes(C),
        setup(C, #{state_interval => 10}),
        Var = var(C, <<"slow">>),
        Ops = rate_ops(Ns, 4),
        lists:foldl(fun({N, Op}, Done) ->
                            T0 = erlang:monotonic_time(millisecond),
                            upd(C, N, Var, Op),
                            Done1 = Done ++ [{N, Op}],
                            wait_values(C, Ns, Var, expected(Done1)),
                            sleep_until(T0 + 500),
                            Done1
                    end, [], Ops),
        wait_tracked(C, N1, Var, length(Ops)),
        %% Idle intervals cost full states: about 3 per node and interval.
        Sent = lists:sum([maps:get(sent_messages, ?CL:call(C, N, ?R, stats, [])) || N <- Ns]),
        ?assert(Sent > 4 * 3 * 100, Sent)
    end).

%% ---- 3. a slow link and a paused node ----

slow_link_and_pause() ->
    cluster(5, fun(C) ->
        Ns = [N1, N2, N3, N4, N5] = ?CL:nodes(C),
        setup(C, #{state_interval => 50}),
        Var = var(C, <<"slow_link">>),
        %% The delay alone decides when N2 gets N1's update.
        ok = ?F:delay(C, N1, N2, 200),
        ok = ?F:delay(C, N2, N1, 200),
        ok = ?F:partition(C, [[N1, N2], [N3, N4, N5]]),
        T0 = erlang:monotonic_time(millisecond),
        upd(C, N1, Var, {add, 0}),
        wait_values(C, [N2], Var, [0]),
        ?assert(erlang:monotonic_time(millisecond) - T0 >= 200),
        ok = ?F:heal(C),
        wait_values(C, Ns, Var, [0]),
        %% N5 frozen; everybody updates, N5 too.
        ok = ?F:pause(C, N5),
        Ops = [{N, {add, {N, K}}} || K <- lists:seq(1, 4), N <- Ns],
        [upd(C, N, Var, Op) || {N, Op} <- Ops],
        Others = [Op || {N, Op} <- Ops, N =/= N5],
        wait_values(C, [N1, N2, N3, N4], Var, expected([{N1, {add, 0}} | [{N1, O} || O <- Others]])),
        %% N5 has neither sent nor taken anything in.
        ?assertEqual(expected([{N1, {add, 0}} | [{N5, O} || {N, O} <- Ops, N =:= N5]]),
                     value(C, N5, Var)),
        ok = ?F:resume(C, N5),
        wait_values(C, Ns, Var, expected([{N1, {add, 0}} | Ops])),
        wait_tracked(C, N1, Var, 1 + length(Ops)),
        ok = ?F:clear(C),
        ?assertEqual([delay, delay, partition, heal, pause, resume, clear],
                     [F || #{fault := F} <- ?F:events(C)])
    end).

%% ---- 4. crash and restart ----

crash_restart() ->
    cluster(4, fun(C) ->
        Ns = [N1, N2, N3, N4] = ?CL:nodes(C),
        setup(C, #{state_interval => 50, mode => delta_based}),
        Var = var(C, <<"crash">>),
        Ops1 = [{N, {add, {N, K}}} || K <- [1, 2, 3], N <- Ns],
        [upd(C, N, Var, Op) || {N, Op} <- Ops1],
        %% N3's own updates have reached the others before it crashes.
        wait_values(C, Ns, Var, expected(Ops1)),

        %% Without recovery: N3 comes back empty and catches up.
        ok = ?F:crash(C, N3),
        ?assertEqual(Ns, ?CL:nodes(C)),
        ?assertEqual([N1, N2, N4], ?CL:live_nodes(C)),
        Ops2 = [{N1, {rmv, {N3, 1}}}, {N2, {add, {N2, 9}}}, {N4, {rmv, {N1, 1}}}],
        [upd(C, N, Var, Op) || {N, Op} <- Ops2],
        wait_values(C, [N1, N2, N4], Var, expected(Ops1 ++ Ops2)),
        ok = ?F:restart(C, N3, #{recover => false}),
        ?assertEqual(Ns, ?CL:live_nodes(C)),
        wait_member(C, N1, Var, N3),
        ?assertMatch(#{mode := delta_based, state_interval := 50},
                     ?CL:call(C, N3, ?R, settings, [])),
        wait_values(C, Ns, Var, expected(Ops1 ++ Ops2)),
        Ops3 = [{N3, {add, {N3, 7}}}, {N1, {add, {N1, 7}}}],
        [upd(C, N, Var, Op) || {N, Op} <- Ops3],
        wait_values(C, Ns, Var, expected(Ops1 ++ Ops2 ++ Ops3)),

        %% With recovery: N4 holds everything as soon as it is back.
        ok = ?F:crash(C, N4),
        Ops4 = [{N2, {rmv, {N2, 9}}}, {N3, {add, {N3, 8}}}],
        [upd(C, N, Var, Op) || {N, Op} <- Ops4],
        All = Ops1 ++ Ops2 ++ Ops3 ++ Ops4,
        wait_values(C, [N1, N2, N3], Var, expected(All)),
        ok = ?F:restart(C, N4, #{recover => true}),
        ?assertEqual(expected(All), value(C, N4, Var)),
        wait_member(C, N1, Var, N4),
        Ops5 = [{N4, {add, {N4, 8}}}, {N4, {rmv, {N3, 8}}}],
        [upd(C, N, Var, Op) || {N, Op} <- Ops5],
        wait_values(C, Ns, Var, expected(All ++ Ops5)),
        wait_tracked(C, N1, Var, length(All ++ Ops5)),
        ?assertMatch([crash, restart, crash, restart], [F || #{fault := F} <- ?F:events(C)])
    end).

%% ---- 5. message loss ----

loss() ->
    cluster(4, fun(C) ->
        Ns = [N1 | _] = ?CL:nodes(C),
        lists:foreach(
          fun(Mode) ->
                  setup(C, #{state_interval => 30, mode => Mode}),
                  Var = var(C, atom_to_binary(Mode)),
                  ok = ?F:drop(C, 0.3),
                  S0 = sums(C),
                  Ops = rate_ops(Ns, 80),
                  [begin upd(C, N, Var, Op), timer:sleep(10) end || {N, Op} <- Ops],
                  wait_values(C, Ns, Var, expected(Ops)),
                  wait_tracked(C, N1, Var, length(Ops)),
                  ok = ?F:drop(C, 0.0),
                  #{sent_messages := Sent, dropped := Lost} = diff(sums(C), S0),
                  io:format(user, "~n~p, 30% loss: ~p of ~p messages lost~n",
                            [Mode, Lost, Sent]),
                  ?assert(Sent > 100, Sent),
                  ?assert(Lost > 0.15 * Sent andalso Lost < 0.45 * Sent, {Lost, Sent})
          end, [state_based, delta_based])
    end).

%% ---- 6. delta_based against state_based ----

delta_vs_state() ->
    cluster(4, fun(C) ->
        Ns = ?CL:nodes(C),
        %% The same updates (disjoint elements per node, removes of a node's
        %% own elements) over the same window in both modes.
        Ops = [{N, Op} || K <- lists:seq(1, 15), N <- Ns,
                          Op <- [{add, {N, K}}] ++ [{rmv, {N, K - 1}} || K rem 3 =:= 0]],
        Run = fun(Mode) ->
                      setup(C, #{state_interval => 40, mode => Mode}),
                      Var = var(C, atom_to_binary(Mode)),
                      T0 = erlang:monotonic_time(millisecond),
                      [begin upd(C, N, Var, Op), timer:sleep(10) end || {N, Op} <- Ops],
                      wait_values(C, Ns, Var, expected(Ops)),
                      sleep_until(T0 + 2000),
                      Bytes = lists:sum([var_counter(C, N, Var, sent_bytes) || N <- Ns]),
                      Msgs = lists:sum([var_counter(C, N, Var, sent_messages) || N <- Ns]),
                      {ok, S} = ?CL:call(C, hd(Ns), ?R, state, [Var]),
                      {Bytes, Msgs, S}
              end,
        {SB, SM, SS} = Run(state_based),
        {DB, DM, DS} = Run(delta_based),
        io:format(user, "~nsame updates, 4 nodes, 40 ms interval, 2 s: state_based ~p bytes "
                  "in ~p messages, delta_based ~p bytes in ~p messages~n", [SB, SM, DB, DM]),
        ?assert(lasp_converge_crdt:equal(SS, DS)),
        ?assertEqual(lasp_converge_crdt:query(SS), lasp_converge_crdt:query(DS)),
        ?assert(DB < SB, {DB, SB})
    end).

%% ---- helpers ----

cluster(N, Fun) ->
    ?CL:with_cluster(N, #{prefix => lc_hard}, Fun).

setup(C, Settings) ->
    [{ok, _} = ?CL:call(C, N, ?R, set, [Settings]) || N <- ?CL:live_nodes(C)],
    ok.

%% Declared on every node, tracked from the first.
var(C, Name) ->
    Ns = [N1 | _] = ?CL:nodes(C),
    Var = {Name, ?T},
    ok = ?CL:call(C, N1, lasp_converge, track, [Var, #{nodes => Ns}]),
    {ok, _} = ?CL:call(C, N1, ?R, declare, [Var, ?T, #{nodes => Ns}]),
    Var.

upd(C, N, Var, Op) ->
    {ok, _} = ?CL:call(C, N, ?R, update, [Var, Op, N]),
    ok.

apply_ops(C, Var, Ops) ->
    lists:foreach(fun({N, Op}) -> upd(C, N, Var, Op), timer:sleep(15) end, Ops).

run_concurrently(Funs) ->
    Ps = [spawn_monitor(fun() -> exit({done, catch F()}) end) || F <- Funs],
    Rs = [receive {'DOWN', Ref, process, Pid, R} -> R end || {Pid, Ref} <- Ps],
    [?assertEqual({done, ok}, R) || R <- Rs].

%% `Count' updates round the nodes: adds of distinct elements, and every
%% 5th a remove of the element the same node added one round before.
rate_ops(Ns, Count) ->
    L = length(Ns),
    IsRmv = fun(K) -> K rem 5 =:= 0 andalso K > L andalso (K - L) rem 5 =/= 0 end,
    [begin
         N = lists:nth(K rem L + 1, Ns),
         case IsRmv(K) of
             true -> {N, {rmv, {N, K - L}}};
             false -> {N, {add, {N, K}}}
         end
     end || K <- lists:seq(1, Count)].

%% The value the updates imply when each remove follows (causally) every
%% add of its element: an element is in iff its last operation is an add.
expected(Ops) ->
    Last = lists:foldl(fun({_, {add, E}}, M) -> M#{E => in};
                          ({_, {rmv, E}}, M) -> M#{E => out}
                       end, #{}, Ops),
    lists:sort([E || {E, in} <- maps:to_list(Last)]).

value(C, N, Var) ->
    {ok, V} = ?CL:call(C, N, ?R, value, [Var]),
    lists:sort(sets:to_list(V)).

wait_values(C, Ns, Var, Want) ->
    wait_values(C, Ns, Var, Want, ?WAIT_MS).

wait_values(C, Ns, Var, Want, Ms) ->
    wait_until(fun() -> [N || N <- Ns, value(C, N, Var) =/= Want] =:= [] end,
               fun() -> #{want => Want, have => [{N, value(C, N, Var)} || N <- Ns]} end,
               Ms).

%% The tracker on `N' saw `Count' updates, all converged.
wait_tracked(C, N, Var, Count) ->
    Stats = fun() -> ?CL:call(C, N, lasp_converge, stats, [Var]) end,
    wait_until(fun() ->
                       case Stats() of
                           #{updates := Count, converged := Count, pending := 0} -> true;
                           _ -> false
                       end
               end,
               fun() -> maps:with([updates, converged, pending, unconverged], Stats()) end,
               ?WAIT_MS).

%% The tracker on `N' counts `Member' again (a restarted node rejoins).
wait_member(C, N, Var, Member) ->
    Nodes = fun() -> maps:get(nodes, ?CL:call(C, N, lasp_converge, stats, [Var])) end,
    wait_until(fun() -> lists:member(Member, Nodes()) end, Nodes, ?WAIT_MS).

wait_until(Done, Show, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    wait_loop(Done, Show, Deadline, Ms).

wait_loop(Done, Show, Deadline, Ms) ->
    case Done() of
        true ->
            ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> erlang:error({timeout_after_ms, Ms, Show()});
                false -> timer:sleep(10), wait_loop(Done, Show, Deadline, Ms)
            end
    end.

sleep_until(T) ->
    timer:sleep(max(0, T - erlang:monotonic_time(millisecond))).

dropped(C, N) ->
    maps:get(dropped, ?CL:call(C, N, ?R, stats, [])).

var_counter(C, N, Var, K) ->
    #{vars := #{Var := Counters}} = ?CL:call(C, N, ?R, stats, []),
    maps:get(K, Counters).

sums(C) ->
    Ss = [?CL:call(C, N, ?R, stats, []) || N <- ?CL:live_nodes(C)],
    maps:from_list([{K, lists:sum([maps:get(K, S) || S <- Ss])}
                    || K <- [sent_messages, dropped]]).

diff(A, B) ->
    maps:map(fun(K, V) -> V - maps:get(K, B) end, A).
