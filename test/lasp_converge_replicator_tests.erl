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
    {timeout, 180, fun three_nodes/0}.

three_nodes() ->
    WasAlive = is_alive(),
    try
        ?CL:with_cluster(3, #{prefix => lc_rep}, fun(C) ->
                                                         timer_run(C),
                                                         on_update_run(C),
                                                         interval_run(C),
                                                         delta_run(C),
                                                         wire_run(C),
                                                         mixed_wire_run(C),
                                                         garbage_run(C),
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

%% The same operations, on every node, in both modes: a cluster sending
%% binaries converges to the terms a cluster sending terms converges to
%% (orset tokens are random: there the values), with nothing refused,
%% though an element is an atom that only the node it was added on knew.
wire_run(C) ->
    Ns = ?CL:nodes(C),
    %% The first run's atom is unknown to the peers until a binary brings it.
    Name = atom_to_binary(fresh_atom(binary)),
    [?assertNot(is_atom(catch ?CL:call(C, N, erlang, binary_to_existing_atom, [Name])))
     || N <- Ns],
    [begin
         Bin = converge_types(C, Mode, maps:from_list([{N, binary} || N <- Ns]), binary),
         Term0 = converge_types(C, Mode, maps:from_list([{N, term} || N <- Ns]), term),
         %% Each run has an atom of its own: compare with the binary run's.
         Term = subst(Term0, fresh_atom(term), fresh_atom(binary)),
         [?assertEqual({Mode, T, maps:get(T, Term)}, {Mode, T, maps:get(T, Bin)})
          || T <- [state_gset, state_gcounter, state_awset, state_pncounter]],
         ?assertEqual(lasp_converge_crdt:query(maps:get(state_orset, Term)),
                      lasp_converge_crdt:query(maps:get(state_orset, Bin)))
     end || Mode <- [state_based, delta_based]],
    ?assertEqual([0, 0, 0], [maps:get(refused, ?CL:call(C, N, ?R, stats, [])) || N <- Ns]).

%% One node keeps terms on the wire (as a node of an older release would),
%% the others send binaries: every node accepts both and they converge.
mixed_wire_run(C) ->
    Ns = [N1 | Rest] = ?CL:nodes(C),
    Wires = maps:from_list([{N1, term} | [{N, binary} || N <- Rest]]),
    [begin
         Mixed = converge_types(C, Mode, Wires, mixed),
         ?assertEqual(sets:from_list(lists:sort(elems(fresh_atom(mixed)))),
                      sets:from_list(sets:to_list(lasp_converge_crdt:query(
                                                    maps:get(state_gset, Mixed)))))
     end || Mode <- [state_based, delta_based]],
    ?assertEqual([0, 0, 0], [maps:get(refused, ?CL:call(C, N, ?R, stats, [])) || N <- Ns]),
    [{ok, _} = ?CL:call(C, N, ?R, set, [#{wire => binary}]) || N <- Ns].

%% Declares one variable per type, applies the same operations with
%% Lasp-like elements and actors on every node, waits until every node
%% holds the same term, and returns the terms.
converge_types(C, Mode, Wires, Tag) ->
    Ns = ?CL:nodes(C),
    [{ok, #{wire := W}} = ?CL:call(C, N, ?R, set,
                                   [#{state_interval => 30, propagate_on_update => false,
                                      fanout => all, mode => Mode, delta_buffer => 1000,
                                      wire => W}])
     || {N, W} <- maps:to_list(Wires)],
    Types = [state_gset, state_gcounter, state_orset, state_awset, state_pncounter],
    Vars = [{T, {<<"wire">>, Mode, Tag, T}} || T <- Types],
    [{ok, _} = ?CL:call(C, hd(Ns), ?R, declare, [V, T, #{nodes => Ns}]) || {T, V} <- Vars],
    Elems = elems(fresh_atom(Tag)),
    Actors = [node_actor, <<"actor-2">>, {lasp, 3}],
    Run = fun(Phase) ->
                  [[{ok, _} = ?CL:call(C, N, ?R, update, [V, Op, actor(Actor, N)])
                    || Op <- ops(Phase, T, I, Elems)]
                   || {I, N, Actor} <- lists:zip3(lists:seq(1, length(Ns)), Ns, Actors),
                      {T, V} <- Vars],
                  [wait_same(C, Ns, V) || {_, V} <- Vars]
          end,
    Run(add),
    Run(remove),
    maps:from_list([{T, element(2, {ok, _} = ?CL:call(C, hd(Ns), ?R, state, [V]))}
                    || {T, V} <- Vars]).

%% An atom this test makes, so that only the node an update runs on knows it.
fresh_atom(Tag) ->
    list_to_atom(lists:flatten(io_lib:format("lc_wire_~s_~s", [Tag, os:getpid()]))).

subst(X, X, To) -> To;
subst(T, From, To) when is_tuple(T) ->
    list_to_tuple(subst(tuple_to_list(T), From, To));
subst([H | T], From, To) -> [subst(H, From, To) | subst(T, From, To)];
subst(M, From, To) when is_map(M) ->
    maps:map(fun(_, V) -> subst(V, From, To) end, M);
subst(X, _, _) -> X.

elems(Fresh) ->
    [1, 2, <<"user">>, {item, 3}, {<<"k">>, 4}, Fresh].

actor(node_actor, N) -> N;
actor(A, _) -> A.

%% Node `I' adds its share of the elements, then removes the first it added.
ops(add, T, I, Elems) when T =:= state_gset; T =:= state_orset; T =:= state_awset ->
    [{add, E} || {K, E} <- lists:zip(lists:seq(1, length(Elems)), Elems), K rem 3 =:= I rem 3];
ops(remove, T, I, Elems) when T =:= state_orset; T =:= state_awset ->
    [{rmv, hd(ops_elems(I, Elems))}];
ops(remove, state_gset, _, _) -> [];
ops(add, state_gcounter, I, _) -> lists:duplicate(I, increment);
ops(remove, state_gcounter, _, _) -> [increment];
ops(add, state_pncounter, I, _) -> lists:duplicate(I + 1, increment);
ops(remove, state_pncounter, _, _) -> [decrement].

ops_elems(I, Elems) ->
    [E || {add, E} <- ops(add, state_gset, I, Elems)].

wait_same(C, Ns, Var) ->
    wait_until(fun() ->
                       length(lists:usort([?CL:call(C, N, ?R, state, [Var]) || N <- Ns])) =:= 1
               end, 10000).

%% Garbage sent to a replicator as replication messages: each is refused,
%% counted in `refused', and the replicator (the same process) keeps its
%% state and keeps replicating.
garbage_run(C) ->
    Ns = [N1, N2 | _] = ?CL:nodes(C),
    [{ok, _} = ?CL:call(C, N, ?R, set, [#{state_interval => 30, mode => state_based,
                                          wire => binary}])
     || N <- Ns],
    Var = {<<"garbage">>, state_gset},
    {ok, _} = ?CL:call(C, N1, ?R, declare, [Var, state_gset, #{nodes => Ns}]),
    {ok, _} = ?CL:call(C, N1, ?R, update, [Var, {add, 1}, N1]),
    wait_agree_set(C, Ns, Var, [1]),
    Pid = ?CL:call(C, N1, erlang, whereis, [?R]),
    #{refused := R0} = counters(C, N1, Var),
    #{refused := Sum0, received_unknown := U0} = ?CL:call(C, N1, ?R, stats, []),
    Gcounter = {state_gcounter, [{a, 1}]},
    Payloads = [<<"LCR", 1, 1, 0, 0, 0, 9>>,             % truncated gset
                <<"LCR", 9, 1, 0, 0, 0, 0>>,             % unknown version
                <<"not a crdt at all">>, <<>>,
                lasp_converge_crdt:to_binary(Gcounter),   % another type
                Gcounter, {state_gset, [b, a]}, 42],
    Msgs = [{lc_rep_state, Var, N2, P} || P <- Payloads]
        ++ [{lc_rep_delta, Var, N2, undefined, 1, state, P} || P <- Payloads],
    [erlang:send({?R, N1}, M) || M <- Msgs],
    erlang:send({?R, N1}, {lc_rep_state, {<<"undeclared">>, state_gset}, N2, <<"junk">>}),
    wait_until(fun() -> maps:get(refused, counters(C, N1, Var)) =:= R0 + length(Msgs) end, 5000),
    ?assertEqual(Pid, ?CL:call(C, N1, erlang, whereis, [?R])),
    ?assertMatch(#{received_unknown := U} when U =:= U0 + 1, ?CL:call(C, N1, ?R, stats, [])),
    ?assertMatch(#{refused := S} when S =:= Sum0 + length(Msgs), ?CL:call(C, N1, ?R, stats, [])),
    ?assertEqual({ok, {state_gset, [1]}}, ?CL:call(C, N1, ?R, state, [Var])),
    {ok, _} = ?CL:call(C, N2, ?R, update, [Var, {add, 2}, N2]),
    wait_agree_set(C, Ns, Var, [1, 2]).

wait_agree_set(C, Ns, Var, Want) ->
    wait_agree(C, Ns, Var, Want).

counters(C, N, Var) ->
    #{vars := #{Var := Counters}} = ?CL:call(C, N, ?R, stats, []),
    Counters.

errors(C) ->
    [N1 | _] = ?CL:nodes(C),
    ?assertEqual({error, not_declared}, ?CL:call(C, N1, ?R, update, [nope, {add, 1}, a])),
    ?assertEqual({error, not_declared}, ?CL:call(C, N1, ?R, value, [nope])),
    ?assertEqual({error, {bad_settings, [fanout]}}, ?CL:call(C, N1, ?R, set, [#{fanout => 0}])),
    ?assertEqual({error, {bad_settings, [wire]}}, ?CL:call(C, N1, ?R, set, [#{wire => json}])),
    ?assertMatch(#{wire := binary}, ?CL:call(C, N1, ?R, settings, [])),
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
