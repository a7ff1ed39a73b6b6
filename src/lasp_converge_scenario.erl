%% @doc Declarative convergence scenarios on a local cluster: nodes,
%% variables, propagation settings, phases of updates at given rates,
%% faults at given times; measured with the tracker and the replicators'
%% counters.
%%
%% == Spec ==
%%
%% <ul>
%% <li>`nodes' (default 3): how many peer nodes to start
%%     (`lasp_converge_cluster:start/2' with `cluster_opts'); they are
%%     stopped at the end. Or `cluster': a running cluster to use (left
%%     running; the variables are untracked at the end).</li>
%% <li>`vars': Lasp ids `{Name, Type}', each declared with the replicator
%%     on every node and tracked; or maps `#{var := Var, type := Type,
%%     op => fun((Seq) -> Op)}' for a type without a built-in operation
%%     generator or other ops.</li>
%% <li>`propagation': the replicator settings set on every node
%%     (`lasp_converge_replicator:set/1'): `state_interval', `fanout',
%%     `propagate_on_update', `jitter_percent', `mode'.</li>
%% <li>`phases': `[#{duration := Ms, rate := UpdatesPerSecond,
%%     remove_ratio => 0.0..1.0}]', run one after the other. Each variable
%%     gets `rate' updates a second (a float: `1/60' is one a minute),
%%     evenly spaced, sent to the nodes in turn. The operations follow the
%%     type: unique adds and removes of elements present on the writing
%%     node for the sets (gset: adds only), increments and decrements for
%%     the counters, sets for the registers, enable/disable for the flags;
%%     `remove_ratio' (default 0.25) of them remove, decrement or
%%     disable.</li>
%% <li>`faults': `[{AtMs, Fault} | {AtMs, Fault, Args}]', applied at
%%     `AtMs' from the start with `lasp_converge_fault', nodes given by
%%     their 1-based index: `{1000, partition, [[1, 2], [3, 4, 5]]}',
%%     `{3000, heal}', `{500, delay, [1, 2, 200]}', `{0, drop, [0.3]}',
%%     `{1000, crash, [3]}', `{2000, restart, [3, #{recover => false}]}',
%%     `{_, pause, [2]}', `{_, resume, [2]}', `{_, clear}'. The aggregating
%%     node cannot be crashed. A crashed node not restarted is left out of
%%     the convergence check; updates sent to it fail. On a cluster given as
%%     `cluster', the traffic faults are cleared at the end.</li>
%% <li>`duration' (ms): the run's length, at least the phases' and the
%%     last fault's time.</li>
%% <li>`converge_timeout' (ms, default 5000 + 2 `state_interval'): how long
%%     to wait for convergence after the run.</li>
%% <li>`aggregator' (default 1): the index of the node that tracks.</li>
%% <li>`track': more `lasp_converge:track/2' options.</li>
%% <li>`seed': seeds the choice of operations.</li>
%% </ul>
%%
%% Nodes are named by their 1-based index in the spec. A spec that is not a
%% map is `{error, bad_spec}'; a key not listed here `{error, {unknown_key,
%% K}}'; a value of the wrong kind `{error, {bad_spec, Keys}}'.
%%
%% == Result ==
%%
%% `{ok, #{nodes, duration_ms, faults, vars => #{Var => VarResult}}}',
%% `faults' listing every fault applied as `#{at_us, fault, args, result}'
%% (`at_us' from the start of the run, `result' what `lasp_converge_fault'
%% returned, or `{error, {Class, Reason}}' when it raised),
%% each `VarResult' with the tracker's `stats' and `divergence', the
%% update counts (`updates' attempted, `acknowledged', `failed'), the
%% replicators' `messages' and `bytes' sent for the variable during the run
%% and until convergence, `msgs_per_update' and `bytes_per_update' (per
%% acknowledged update), `converged' (the tracker saw every update
%% everywhere and the replicas agree, within `converge_timeout'),
%% `converge_wait_ms', `agree' (every live node ended with the same value),
%% `values' per node, and for the sets and counters the `expected' final
%% value (adds minus removes, or the counter's total) and what each node
%% `lost'.
%%
%% `sweep/2' runs a grid of rates and intervals and returns one row per
%% cell and variable; `format_table/1' prints rows as a table.
-module(lasp_converge_scenario).

-export([run/1, sweep/2, format_table/1]).
-export([apply_update/4]).

-type var() :: lasp_converge:var().
-type var_spec() :: {term(), atom()}
                  | #{var := var(), type := atom(), op => fun((pos_integer()) -> term())}.
-type phase() :: #{duration := non_neg_integer(),
                   rate := number(),
                   remove_ratio => float()}.
-type spec() :: #{nodes => pos_integer(),
                  cluster => lasp_converge_cluster:cluster(),
                  cluster_opts => lasp_converge_cluster:opts(),
                  vars := [var_spec()],
                  propagation => map(),
                  phases => [phase()],
                  faults => [term()],
                  duration => non_neg_integer(),
                  converge_timeout => non_neg_integer(),
                  aggregator => pos_integer(),
                  track => lasp_converge:track_opts(),
                  seed => integer()}.
-type var_result() :: #{atom() => term()}.
-type result() :: #{nodes := [node()],
                    duration_ms := non_neg_integer(),
                    faults := [map()],
                    vars := #{var() => var_result()}}.
-type grid() :: #{rates := [number()],
                  intervals := [pos_integer()],
                  duration => pos_integer(),
                  min_updates => non_neg_integer()}.
-type row() :: #{var := var(),
                 rate := number(),
                 state_interval := pos_integer(),
                 updates := non_neg_integer(),
                 p50 := non_neg_integer() | undefined,
                 p99 := non_neg_integer() | undefined,
                 max := non_neg_integer() | undefined,
                 msgs_per_update := float() | undefined,
                 bytes_per_update := float() | undefined,
                 converged := boolean(),
                 atom() => term()}.
-export_type([spec/0, phase/0, var_spec/0, result/0, var_result/0, grid/0, row/0]).

-define(CALL_TIMEOUT, 30000).
-define(DEFAULT_INTERVAL, 10000).

%% ---- run ----

%% @doc Run the scenario `Spec' (see the module doc) and return what was
%% measured, per variable.
-spec run(spec()) -> {ok, result()} | {error, term()}.
run(Spec) when is_map(Spec) ->
    case validate(Spec) of
        ok -> with_cluster(Spec, fun(C, Started) -> run(Spec, C, Started) end);
        {error, _} = E -> E
    end;
run(_) ->
    {error, bad_spec}.

with_cluster(#{cluster := C}, F) ->
    F(C, false);
with_cluster(Spec, F) ->
    N = maps:get(nodes, Spec, 3),
    case lasp_converge_cluster:start(N, maps:get(cluster_opts, Spec, #{prefix => lc_scn})) of
        {ok, C} ->
            try F(C, true)
            after lasp_converge_cluster:stop(C)
            end;
        {error, R} ->
            {error, {cluster_start_failed, R}}
    end.

run(Spec, C, Started) ->
    Nodes = lasp_converge_cluster:nodes(C),
    Vars = [var_spec(V) || V <- maps:get(vars, Spec)],
    AggIx = maps:get(aggregator, Spec, 1),
    case AggIx =< length(Nodes) of
        false -> {error, {bad_aggregator, AggIx}};
        true -> run(Spec, C, Started, Nodes, Vars, lists:nth(AggIx, Nodes))
    end.

run(Spec, C, Started, Nodes, Vars, Agg) ->
    Prop = maps:get(propagation, Spec, #{}),
    case setup(C, Nodes, Vars, Agg, Prop, maps:get(track, Spec, #{})) of
        ok ->
            try
                measure(Spec, C, Nodes, Vars, Agg)
            after
                %% A cluster we did not start is left without traffic faults
                %% and without our trackers.
                leave(Started, maps:get(faults, Spec, []) =/= [], C, Agg, Vars)
            end;
        {error, _} = E ->
            E
    end.

leave(true, _Faults, _C, _Agg, _Vars) ->
    ok;
leave(false, Faults, C, Agg, Vars) ->
    _ = Faults andalso (catch lasp_converge_fault:clear(C)) =:= ok,
    _ = [catch erpc:call(Agg, lasp_converge, untrack, [V], 5000) || #{var := V} <- Vars],
    ok.

setup(C, Nodes, Vars, Agg, Prop, TrackOpts) ->
    Steps = [fun() -> each(Nodes, fun(N) -> ok_tuple(call(C, N, lasp_converge_replicator, set, [Prop])) end) end,
             fun() -> each(Vars, fun(#{var := V, type := T}) ->
                                         ok_tuple(call(C, Agg, lasp_converge_replicator, declare,
                                                       [V, T, #{nodes => Nodes}]))
                                 end) end,
             fun() -> each(Vars, fun(#{var := V}) -> track(C, Agg, V, TrackOpts#{nodes => Nodes}) end) end],
    lists:foldl(fun(Step, ok) -> Step(); (_, E) -> E end, ok, Steps).

track(C, Agg, V, Opts) ->
    case call(C, Agg, lasp_converge, track, [V, Opts]) of
        ok -> ok;
        {error, already_tracked} -> call(C, Agg, lasp_converge, reset, [V]);
        E -> E
    end.

each([], _F) -> ok;
each([X | Xs], F) ->
    case F(X) of
        ok -> each(Xs, F);
        {error, _} = E -> E
    end.

ok_tuple({ok, _}) -> ok;
ok_tuple({error, _} = E) -> E;
ok_tuple(Other) -> {error, Other}.

call(C, N, M, F, A) ->
    try lasp_converge_cluster:call(C, N, M, F, A)
    catch Class:R -> {error, {Class, R}}
    end.

measure(Spec, C, Nodes, Vars, Agg) ->
    Phases = maps:get(phases, Spec, []),
    PhaseEnd = lists:sum([maps:get(duration, P) || P <- Phases]),
    Faults = lists:sort([fault_spec(F) || F <- maps:get(faults, Spec, [])]),
    LastFault = lists:max([0 | [At || {At, _, _} <- Faults]]),
    Total = lists:max([PhaseEnd, maps:get(duration, Spec, 0), LastFault]),
    Rand = rand:seed_s(exsss, maps:get(seed, Spec, erlang:unique_integer())),
    Initial = maps:from_list([{V, initial(C, Agg, V)} || #{var := V} <- Vars]),
    Before = counters(C, Nodes),
    Events = lists:keysort(1, updates(Phases, Vars, length(Nodes))
                           ++ [{At * 1000, {fault, F, A}} || {At, F, A} <- Faults]),
    T0 = erlang:monotonic_time(microsecond),
    St0 = #{c => C, nodes => Nodes, t0 => T0, rand => Rand, pending => #{},
            done => [], down => [], fault_log => [], seq => #{},
            base => Before, acc => #{}},
    St1 = drive(Events, St0),
    St2 = wait_time(T0 + Total * 1000, St1),
    RunMs = (erlang:monotonic_time(microsecond) - T0) div 1000,
    Interval = maps:get(state_interval, maps:get(propagation, Spec, #{}), ?DEFAULT_INTERVAL),
    ConvTimeout = maps:get(converge_timeout, Spec, 5000 + 2 * Interval),
    Live = live(C, Nodes -- maps:get(down, St2)),
    Conv = [{V, converge(V, Live, Agg, ConvTimeout)} || #{var := V} <- Vars],
    St3 = collect_all(St2, erlang:monotonic_time(millisecond) + 1000),
    After = counters(C, Nodes),
    Results = maps:from_list(
                [{V, var_result(VS, Agg, Live, St3, After, maps:get(V, Initial),
                                proplists:get_value(V, Conv), maps:get(done, St3),
                                maps:get(pending, St3))}
                 || #{var := V} = VS <- Vars]),
    {ok, #{nodes => Nodes, duration_ms => RunMs,
           faults => lists:reverse(maps:get(fault_log, St3)),
           vars => Results}}.

%% The update schedule: per phase and variable, `rate' a second, evenly
%% spaced from half an interval in; the k-th update of a variable goes to
%% node k mod N.
updates(Phases, Vars, N) ->
    {Events, _, _} =
        lists:foldl(
          fun(#{duration := D, rate := R} = P, {Acc, Start, Counts}) ->
                  Ratio = maps:get(remove_ratio, P, 0.25),
                  {New, Counts1} =
                      lists:foldl(
                        fun(#{var := V} = VS, {A, Cs}) ->
                                K0 = maps:get(V, Cs, 0),
                                Ts = times(Start * 1000, D * 1000, R),
                                Es = [{T, {update, VS, (K0 + I) rem N + 1, Ratio}}
                                      || {I, T} <- lists:enumerate(0, Ts)],
                                {Es ++ A, Cs#{V => K0 + length(Ts)}}
                        end, {[], Counts}, Vars),
                  {New ++ Acc, Start + D, Counts1}
          end, {[], 0, #{}}, Phases),
    Events.

%% Update times (µs) in a phase from `Start' lasting `D' µs at `R' a second.
times(_Start, _D, R) when R == 0 ->
    [];
times(Start, D, R) ->
    Step = 1.0e6 / R,
    [round(Start + (I + 0.5) * Step) || I <- lists:seq(0, max(0, ceil(D / Step) - 1)),
                                        (I + 0.5) * Step < D].

drive([], St) ->
    St;
drive([{At, Ev} | Rest], #{t0 := T0} = St) ->
    St1 = wait_time(T0 + At, St),
    drive(Rest, event(Ev, St1)).

%% Wait until monotonic time `Until' (µs), collecting update replies.
wait_time(Until, St) ->
    Left = Until - erlang:monotonic_time(microsecond),
    case Left > 0 of
        false -> St;
        true ->
            receive
                {lc_scn_reply, Ref, Reply} -> wait_time(Until, reply(Ref, Reply, St))
            after (Left + 999) div 1000 ->
                    St
            end
    end.

collect_all(#{pending := P} = St, _Deadline) when map_size(P) =:= 0 ->
    St;
collect_all(St, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {lc_scn_reply, Ref, Reply} -> collect_all(reply(Ref, Reply, St), Deadline)
    after Left ->
            St
    end.

reply(Ref, Reply, #{pending := P, done := D} = St) ->
    case maps:take(Ref, P) of
        {Upd, P1} -> St#{pending := P1, done := [{Upd, Reply} | D]};
        error -> St
    end.

event({fault, F, A}, St) ->
    fault(F, A, St);
event({update, #{var := V} = VS, Ix, Ratio}, #{nodes := Nodes, rand := R0, seq := Seqs,
                                              pending := P} = St) ->
    {X, R1} = rand:uniform_s(R0),
    Kind = case X < Ratio of true -> remove; false -> add end,
    Seq = maps:get(V, Seqs, 0) + 1,
    Node = lists:nth(Ix, Nodes),
    {M, F, A} = case VS of
                    #{op := OpFun} -> {?MODULE, apply_update, [V, {op, OpFun(Seq)}, Kind, Seq]};
                    #{type := T} -> {?MODULE, apply_update, [V, T, Kind, Seq]}
                end,
    Self = self(),
    Ref = make_ref(),
    _ = spawn(fun() ->
                      Reply = try erpc:call(Node, M, F, A, ?CALL_TIMEOUT)
                              catch Class:Why -> {error, {Class, Why}}
                              end,
                      Self ! {lc_scn_reply, Ref, Reply}
              end),
    St#{rand := R1, seq := Seqs#{V => Seq}, pending := P#{Ref => {V, Node, Kind, Seq}}}.

%% @private Run on the writing node: build the operation for `Type' (or
%% take `{op, Op}') and apply it with `lasp_converge_replicator:update/3'.
%% Returns `{ok, Op}' (the operation applied) or `{error, Reason}'.
%%
%% The actor is `{node(), Creation}', Creation being this incarnation's
%% distribution creation: a node restarted without its state must not write
%% under its earlier incarnation's actor, or its new dots (awset, flags,
%% registers) and counter entries would repeat ones the others already hold
%% and be lost in the merge.
-spec apply_update(var(), atom() | {op, term()}, add | remove, pos_integer()) ->
          {ok, term()} | {error, term()}.
apply_update(Var, {op, Op}, _Kind, _Seq) ->
    case lasp_converge_replicator:update(Var, Op, actor()) of
        {ok, _} -> {ok, Op};
        {error, _} = E -> E
    end;
apply_update(Var, Type, Kind, Seq) ->
    Op = case op(Type, Kind, Seq) of
             {pick, Make, Fallback} ->
                 case lasp_converge_replicator:value(Var) of
                     {ok, Value} ->
                         case elements(Value) of
                             [] -> Fallback;
                             Es -> Make(lists:nth(rand:uniform(length(Es)), Es))
                         end;
                     {error, _} = E -> E
                 end;
             Other -> Other
         end,
    case Op of
        {error, _} = Err -> Err;
        _ ->
            apply_update(Var, {op, Op}, Kind, Seq)
    end.

actor() ->
    {node(), erlang:system_info(creation)}.

elements(V) ->
    case sets:is_set(V) of
        true -> sets:to_list(V);
        false -> []
    end.

%% Elements are the update's sequence number, unique per variable.
op(state_gset, _, Seq) -> {add, Seq};
op(T, remove, Seq) when T =:= state_twopset; T =:= state_orset; T =:= state_awset;
                        T =:= state_awset_ps ->
    {pick, fun(E) -> {rmv, E} end, {add, Seq}};
op(T, add, Seq) when T =:= state_twopset; T =:= state_orset; T =:= state_awset;
                     T =:= state_awset_ps ->
    {add, Seq};
op(T, _, _) when T =:= state_gcounter; T =:= state_max_int -> increment;
op(T, remove, _) when T =:= state_pncounter; T =:= state_lexcounter -> decrement;
op(T, add, _) when T =:= state_pncounter; T =:= state_lexcounter -> increment;
op(state_boolean, _, _) -> true;
op(T, remove, _) when T =:= state_ewflag; T =:= state_dwflag -> disable;
op(T, add, _) when T =:= state_ewflag; T =:= state_dwflag -> enable;
op(T, _, Seq) when T =:= state_lwwregister; T =:= state_mvregister ->
    {set, erlang:system_time(microsecond), Seq};
op(T, _, _) ->
    {error, {no_op_generator, T}}.

converge(V, Live, Agg, Timeout) ->
    T0 = erlang:monotonic_time(millisecond),
    R = lasp_converge_assert:wait(V, Timeout, #{nodes => Live, via => Agg}),
    {R, erlang:monotonic_time(millisecond) - T0}.

initial(C, Agg, V) ->
    case call(C, Agg, lasp_converge_replicator, value, [V]) of
        {ok, X} -> plain(X);
        _ -> undefined
    end.

%% The members still up (a node crashed by hand is left out too).
live(C, Nodes) ->
    Up = try lasp_converge_cluster:live_nodes(C)
         catch _:_ -> Nodes
         end,
    [N || N <- Nodes, lists:member(N, Up)].

counters(C, Nodes) ->
    maps:from_list([{N, case call(C, N, lasp_converge_replicator, stats, []) of
                            #{vars := Vs} -> Vs;
                            _ -> #{}
                        end} || N <- Nodes]).

var_result(#{var := V, type := T}, Agg, Live, #{base := Base, acc := Acc}, After, Initial,
           {{Verdict, Info}, WaitMs}, Done, Pending) ->
    Mine = [R || {{V1, _, _, _}, R} <- Done, V1 =:= V],
    Acked = [ack(R) || R <- Mine, is_ok(R)],
    NFailed = length(Mine) - length(Acked),
    NLost = length([x || {_, {V1, _, _, _}} <- maps:to_list(Pending), V1 =:= V]),
    PerNode = maps:map(fun(N, Vs) ->
                               add(maps:get(V, maps:get(N, Acc, #{}), #{}),
                                   sent(maps:get(V, Vs, #{}),
                                        maps:get(V, maps:get(N, Base, #{}), #{})))
                       end, After),
    Msgs = lists:sum([M || #{sent_messages := M} <- maps:values(PerNode)]),
    Bytes = lists:sum([B || #{sent_bytes := B} <- maps:values(PerNode)]),
    NAcked = length(Acked),
    Values = maps:get(values, Info),
    LiveValues = [maps:get(N, Values, undefined) || N <- Live],
    Expected = expected(T, Initial, Acked, NFailed + NLost),
    Stats = remote(Agg, lasp_converge, stats, [V]),
    #{type => T,
      stats => Stats,
      divergence => remote(Agg, lasp_converge, divergence, [V]),
      updates => NAcked + NFailed + NLost,
      acknowledged => NAcked,
      failed => NFailed + NLost,
      messages => Msgs,
      bytes => Bytes,
      per_node => PerNode,
      msgs_per_update => per(Msgs, NAcked),
      bytes_per_update => per(Bytes, NAcked),
      converged => Verdict =:= ok,
      converge_wait_ms => WaitMs,
      lagging => maps:get(lagging, Info),
      agree => LiveValues =/= [] andalso
          lists:all(fun(X) -> X =:= hd(LiveValues) end, LiveValues),
      values => Values,
      expected => Expected,
      lost => lost(Expected, T, Acked, Live, Values)}.

%% An update answers {ok, Op} (the operation applied) or an error.
is_ok({ok, _}) -> true;
is_ok(_) -> false.

ack({ok, Op}) -> Op.

add(A, B) ->
    maps:fold(fun(K, X, M) -> maps:update_with(K, fun(Y) -> X + Y end, X, M) end, B, A).

sent(Now, Then) ->
    #{sent_messages => maps:get(sent_messages, Now, 0) - maps:get(sent_messages, Then, 0),
      sent_bytes => maps:get(sent_bytes, Now, 0) - maps:get(sent_bytes, Then, 0)}.

per(_, 0) -> undefined;
per(X, N) -> X / N.

remote(Node, M, F, A) ->
    try erpc:call(Node, M, F, A, ?CALL_TIMEOUT)
    catch Class:R -> {error, {Class, R}}
    end.

plain(V) ->
    case sets:is_set(V) of
        true -> lists:sort(sets:to_list(V));
        false -> V
    end.

%% What every node must hold: for the sets, the elements this run added and
%% did not remove (each element is added once, and removed only where it
%% was seen, so a remove covers every add of it); for the counters, the
%% total when no update failed.
expected(T, Initial, Acked, _) when T =:= state_gset; T =:= state_twopset;
                                    T =:= state_orset; T =:= state_awset;
                                    T =:= state_awset_ps ->
    Removed = [E || {rmv, E} <- Acked],
    Base = case is_list(Initial) of true -> Initial; false -> [] end,
    lists:usort(Base ++ [E || {add, E} <- Acked]) -- Removed;
expected(T, Initial, Acked, 0) when (T =:= state_gcounter orelse T =:= state_pncounter
                                     orelse T =:= state_lexcounter),
                                    is_integer(Initial) ->
    Initial + length([x || increment <- Acked]) - length([x || decrement <- Acked]);
expected(_, _, _, _) ->
    undefined.

lost(undefined, _, _, _, _) ->
    #{};
lost(Expected, _T, Acked, Live, Values) when is_list(Expected) ->
    Removed = maps:from_keys([E || {rmv, E} <- Acked], true),
    maps:from_list(
      [{N, #{missing => Missing, resurrected => Back}}
       || N <- Live,
          Value <- [maps:get(N, Values, undefined)],
          Have <- [case is_list(Value) of true -> maps:from_keys(Value, true); false -> #{} end],
          Missing <- [[E || E <- Expected, not is_map_key(E, Have)]],
          Back <- [[E || E <- maps:keys(Have), is_map_key(E, Removed)]],
          Missing =/= [] orelse Back =/= []]);
lost(Expected, _T, _Acked, Live, Values) ->
    maps:from_list([{N, #{value => V, expected => Expected}}
                    || N <- Live, (V = maps:get(N, Values, undefined)) =/= Expected]).

%% ---- spec ----

validate(Spec) ->
    Checks = [{vars, fun(Vs) -> is_list(Vs) andalso Vs =/= []
                                    andalso lists:all(fun valid_var/1, Vs) end},
              {nodes, fun(N) -> is_integer(N) andalso N > 0 end},
              {phases, fun(Ps) -> is_list(Ps) andalso lists:all(fun valid_phase/1, Ps) end},
              {faults, fun(Fs) -> is_list(Fs) andalso lists:all(fun valid_fault/1, Fs) end},
              {propagation, fun is_map/1},
              {duration, fun non_neg/1},
              {converge_timeout, fun non_neg/1},
              {aggregator, fun(A) -> is_integer(A) andalso A > 0 end},
              {track, fun is_map/1},
              {seed, fun is_integer/1}],
    Known = [cluster, cluster_opts | [K || {K, _} <- Checks]],
    Unknown = [K || K <- lists:sort(maps:keys(Spec)), not lists:member(K, Known)],
    Bad = [K || {K, F} <- Checks, maps:is_key(K, Spec), not F(maps:get(K, Spec))],
    AggIx = maps:get(aggregator, Spec, 1),
    OnAgg = [F || [] =:= Bad, {_, F, [I | _]} <- [fault_spec(X) || X <- maps:get(faults, Spec, [])],
                  lists:member(F, [crash, restart]), I =:= AggIx],
    case {maps:is_key(vars, Spec), Bad, OnAgg} of
        _ when Unknown =/= [] -> {error, {unknown_key, hd(Unknown)}};
        {false, _, _} -> {error, {bad_spec, [vars]}};
        {true, [], []} -> ok;
        {true, [], _} -> {error, {fault_on_aggregator, AggIx}};
        {true, _, _} -> {error, {bad_spec, Bad}}
    end.

non_neg(X) -> is_integer(X) andalso X >= 0.

valid_var({_Name, T}) -> lists:member(T, lasp_converge_crdt:types());
valid_var(#{var := _, type := T} = V) ->
    lists:member(T, lasp_converge_crdt:types())
        andalso (not maps:is_key(op, V) orelse is_function(maps:get(op, V), 1));
valid_var(_) -> false.

valid_phase(#{duration := D, rate := R} = P) ->
    non_neg(D) andalso is_number(R) andalso R >= 0
        andalso (not maps:is_key(remove_ratio, P)
                 orelse (is_number(maps:get(remove_ratio, P))
                         andalso maps:get(remove_ratio, P) >= 0
                         andalso maps:get(remove_ratio, P) =< 1));
valid_phase(_) -> false.

valid_fault(F) ->
    case F of
        {At, Name} -> non_neg(At) andalso is_atom(Name) andalso known_fault(Name);
        {At, Name, Args} -> non_neg(At) andalso is_atom(Name) andalso is_list(Args)
                                andalso known_fault(Name);
        _ -> false
    end.

var_spec({_Name, T} = V) -> #{var => V, type => T};
var_spec(#{} = V) -> V.

%% ---- faults ----

fault_spec({At, F}) -> {At, F, []};
fault_spec({At, F, A}) -> {At, F, A}.

known_fault(F) ->
    lists:member(F, [partition, heal, delay, drop, crash, restart, pause, resume, clear]).

%% Apply a fault through `lasp_converge_fault', nodes named by their index.
%% The outcome is logged (a fault that fails does not stop the run).
fault(crash, [I] = A, #{c := C, nodes := Nodes, base := Base, acc := Acc} = St)
  when is_integer(I), I >= 1, I =< length(Nodes) ->
    %% The node's counters die with it: bank what it sent so far.
    N = node_at(Nodes, I),
    #{N := Vs} = counters(C, [N]),
    Mine = maps:get(N, Acc, #{}),
    Old = maps:get(N, Base, #{}),
    Banked = maps:fold(fun(V, Cs, M) ->
                               M#{V => add(maps:get(V, M, #{}), sent(Cs, maps:get(V, Old, #{})))}
                       end, Mine, Vs),
    fault_apply(crash, A, St#{base := Base#{N => #{}}, acc := Acc#{N => Banked}});
fault(F, A, St) ->
    fault_apply(F, A, St).

fault_apply(F, A, #{c := C, nodes := Nodes, t0 := T0, fault_log := Log, down := Down} = St) ->
    At = erlang:monotonic_time(microsecond) - T0,
    Result = try apply_fault(C, F, [resolve(Nodes, F, X) || X <- args(F, A)])
             catch Class:Why -> {error, {Class, Why}}
             end,
    Down1 = case {F, Result} of
                {crash, ok} -> lists:usort([node_at(Nodes, hd(A)) | Down]);
                {restart, ok} -> Down -- [node_at(Nodes, hd(A))];
                _ -> Down
            end,
    St#{fault_log := [#{at_us => At, fault => F, args => A, result => Result} | Log],
        down := Down1}.

args(partition, Groups) -> [Groups];
args(restart, [I]) -> [I, #{}];
args(_, A) -> A.

%% Which arguments are node indexes.
resolve(Nodes, partition, Groups) when is_list(Groups) ->
    [[node_at(Nodes, I) || I <- G] || G <- Groups];
resolve(Nodes, F, I) when is_integer(I), F =/= drop ->
    node_at(Nodes, I);
resolve(_Nodes, _F, X) ->
    X.

node_at(Nodes, I) when is_integer(I), I >= 1, I =< length(Nodes) -> lists:nth(I, Nodes);
node_at(_Nodes, I) -> erlang:error({no_such_node, I}).

apply_fault(C, partition, [Groups]) -> lasp_converge_fault:partition(C, Groups);
apply_fault(C, heal, []) -> lasp_converge_fault:heal(C);
apply_fault(C, delay, [From, To, Ms]) -> lasp_converge_fault:delay(C, From, To, Ms);
apply_fault(C, drop, [P]) -> lasp_converge_fault:drop(C, float(P));
apply_fault(C, crash, [N]) -> lasp_converge_fault:crash(C, N);
apply_fault(C, restart, [N, Opts]) when is_list(Opts) ->
    lasp_converge_fault:restart(C, N, maps:from_list(Opts));
apply_fault(C, restart, [N, Opts]) -> lasp_converge_fault:restart(C, N, Opts);
apply_fault(C, pause, [N]) -> lasp_converge_fault:pause(C, N);
apply_fault(C, resume, [N]) -> lasp_converge_fault:resume(C, N);
apply_fault(C, clear, []) -> lasp_converge_fault:clear(C);
apply_fault(_C, F, A) -> {error, {bad_fault, F, A}}.

%% ---- sweep ----

%% @doc Run `Base' once per cell of the grid, every rate with every
%% interval (`state_interval' set in `propagation', each phase's rate
%% replaced), and return one row per cell and variable: `rate' (updates a
%% second), `state_interval' (ms), `updates', `p50', `p99', `max'
%% (convergence time, µs), `msgs_per_update', `bytes_per_update',
%% `converged', `agree', `duration_ms'. `duration' (ms) replaces the
%% phases by one of that length; `min_updates' (default 3) stretches a
%% cell's phases until it makes at least that many updates. Each cell
%% starts its own cluster unless `Base' names one.
-spec sweep(spec(), grid()) -> {ok, [row()]} | {error, term()}.
sweep(Base, #{rates := Rates, intervals := Intervals} = Grid) ->
    Phases0 = case Grid of
                  #{duration := D} -> [#{duration => D, rate => 1}];
                  _ -> maps:get(phases, Base, [#{duration => 1000, rate => 1}])
              end,
    MinUpdates = maps:get(min_updates, Grid, 3),
    Cells = [{I, R} || I <- Intervals, R <- Rates],
    sweep_cells(Base, Phases0, MinUpdates, Cells, []).

sweep_cells(_Base, _Phases, _Min, [], Acc) ->
    {ok, lists:append(lists:reverse(Acc))};
sweep_cells(Base, Phases0, Min, [{I, R} | Cells], Acc) ->
    Phases = stretch([P#{rate => R} || P <- Phases0], R, Min),
    Prop = maps:get(propagation, Base, #{}),
    Spec = Base#{phases => Phases, propagation => Prop#{state_interval => I}},
    case run(Spec) of
        {ok, #{vars := Vs, duration_ms := Ms}} ->
            Rows = [row(V, R, I, Ms, VR) || {V, VR} <- lists:sort(maps:to_list(Vs))],
            sweep_cells(Base, Phases0, Min, Cells, [Rows | Acc]);
        {error, Why} ->
            {error, {cell, #{rate => R, state_interval => I}, Why}}
    end.

stretch(Phases, R, Min) ->
    Total = lists:sum([D || #{duration := D} <- Phases]),
    Need = ceil(Min * 1000 / max(R, 1.0e-9)),
    case Total >= Need orelse Total =:= 0 of
        true -> Phases;
        false -> [P#{duration => ceil(D * Need / Total)} || #{duration := D} = P <- Phases]
    end.

row(V, R, I, Ms, VR) ->
    S = case maps:get(stats, VR) of
            #{} = M -> M;
            _ -> #{}
        end,
    #{var => V, rate => R, state_interval => I,
      updates => maps:get(acknowledged, VR),
      p50 => maps:get(p50, S, undefined), p99 => maps:get(p99, S, undefined),
      max => maps:get(max, S, undefined),
      msgs_per_update => maps:get(msgs_per_update, VR),
      bytes_per_update => maps:get(bytes_per_update, VR),
      converged => maps:get(converged, VR), agree => maps:get(agree, VR),
      duration_ms => Ms}.

%% @doc Rows of `sweep/2' as an aligned text table (times in ms).
-spec format_table([row()]) -> iolist().
format_table(Rows) ->
    Header = ["var", "rate", "interval ms", "updates", "p50 ms", "p99 ms", "max ms",
              "msgs/update", "bytes/update", "converged"],
    Cells = [[var_name(maps:get(var, R)), rate(maps:get(rate, R)),
              integer_to_list(maps:get(state_interval, R)),
              integer_to_list(maps:get(updates, R)),
              ms(maps:get(p50, R)), ms(maps:get(p99, R)), ms(maps:get(max, R)),
              num(maps:get(msgs_per_update, R)), num(maps:get(bytes_per_update, R)),
              atom_to_list(maps:get(converged, R) andalso maps:get(agree, R, true))]
             || R <- Rows],
    Widths = [lists:max([string:length(C) || C <- Col])
              || Col <- transpose([Header | Cells])],
    Line = fun(Cs) ->
                   [lists:join("  ", [pad(K, C, W) || {K, C, W} <- zip3(Cs, Widths)]), $\n]
           end,
    [Line(Header), Line([lists:duplicate(W, $-) || W <- Widths]) | [Line(C) || C <- Cells]].

zip3(Cs, Ws) -> [{K, C, W} || {K, {C, W}} <- lists:enumerate(lists:zip(Cs, Ws))].

%% The first column (the variable) to the left, the figures to the right.
pad(1, C, W) -> string:pad(C, W, trailing);
pad(_, C, W) -> string:pad(C, W, leading).

transpose([[] | _]) -> [];
transpose(Rows) -> [[hd(R) || R <- Rows] | transpose([tl(R) || R <- Rows])].

var_name({Name, _Type}) when is_binary(Name) -> unicode:characters_to_list(Name);
var_name(V) -> lists:flatten(io_lib:format("~0p", [V])).

rate(R) when R < 1 ->
    PerMin = R * 60,
    case abs(PerMin - round(PerMin)) < 1.0e-9 of
        true -> integer_to_list(round(PerMin)) ++ "/min";
        false -> float_to_list(R, [{decimals, 3}, compact]) ++ "/s"
    end;
rate(R) when is_integer(R) -> integer_to_list(R) ++ "/s";
rate(R) -> float_to_list(float(R), [{decimals, 2}, compact]) ++ "/s".

ms(undefined) -> "-";
ms(Us) -> float_to_list(Us / 1000, [{decimals, 1}]).

num(undefined) -> "-";
num(X) when X >= 100 -> integer_to_list(round(X));
num(X) when X >= 1 -> float_to_list(float(X), [{decimals, 1}]);
num(X) -> float_to_list(float(X), [{decimals, 3}]).
