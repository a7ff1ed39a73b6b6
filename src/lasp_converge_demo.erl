%% @doc `make demo': a local cluster replicating a variable, with a burst,
%% a partition and its heal, measured while it runs and drawn at the end.
%%
%% `main/0' starts 5 peer nodes (`lasp_converge_cluster'), declares an awset
%% replicated state-based, starting every 250 ms (`lasp_converge_replicator'),
%% tracks it from the first node (`lasp_converge'), puts the tuner on it
%% (`lasp_converge_tuner', `{target_p99, 400}' ms, intervals 50 ms to 2 s),
%% and runs four phases: steady updates (5/s), a burst (100/s), a 2+3
%% partition with concurrent adds and removes of the same elements on both
%% sides (10/s, `lasp_converge_fault'), then the heal and a quiet spell.
%% Once a second it prints what the tracker measures (updates, pending,
%% p50/p99, how many updates each node misses) and the interval in force; at
%% the end the summary (`lasp_converge:print/1'), the tuner's changes, the
%% messages sent, the final values (equal on every node, every update
%% accounted for), and the path of the HTML report (`lasp_converge_report').
%% Then a small simulated sweep of update rate × propagation interval for a
%% cluster of the same size (`lasp_converge_sim:sweep/2'), drawn as a sweep
%% page (`lasp_converge_report:write_sweep/3'). About 35 seconds.
%%
%% `merge/0,1' is the single-node demo: two replicas of an orset and of an
%% awset diverge through `mutate/3', merge natively, and the terminal shows
%% their values and the merge time next to plain Erlang.
-module(lasp_converge_demo).

-export([main/0, main/1, merge/0, merge/1]).

-define(ELEMENTS, 10000).
-define(CL, lasp_converge_cluster).
-define(REP, lasp_converge_replicator).
-define(VAR, {<<"demo">>, state_awset}).

-type result() :: #{updates := non_neg_integer(), agree := boolean(), kept := boolean(),
                    converged := non_neg_integer(), report := file:filename_all(),
                    sweep := file:filename_all()}.
-export_type([result/0]).

%% @equiv main(#{})
-spec main() -> result().
main() ->
    main(#{}).

%% @doc The cluster demo. Options: `nodes' (default 5), `state_interval'
%% (ms, the starting one, default 250), `tuner' (a `lasp_converge_tuner'
%% policy, default `{target_p99, 400}', or `none'), `report' (the HTML file, default
%% `_build/demo/lasp_converge_report.html'), `sweep' (the sweep page, default
%% `_build/demo/lasp_converge_sweep.html'), `scale' (multiplies every
%% phase's duration, default 1.0).
-spec main(map()) -> result().
main(Opts) when is_map(Opts) ->
    N = maps:get(nodes, Opts, 5),
    Interval = maps:get(state_interval, Opts, 250),
    Path = filename:absname(maps:get(report, Opts, "_build/demo/lasp_converge_report.html")),
    Scale = maps:get(scale, Opts, 1.0),
    Tuner = maps:get(tuner, Opts, {target_p99, 400}),
    %% Sparklines and units print as UTF-8.
    ok = io:setopts([{encoding, unicode}]),
    io:format("~nlasp_converge demo: ~b local nodes, an awset replicated state-based "
              "every ~b ms~n~n", [N, Interval]),
    SweepPath = filename:absname(maps:get(sweep, Opts, "_build/demo/lasp_converge_sweep.html")),
    {ok, C} = ?CL:start(N, #{prefix => lc_demo}),
    Result = try
                 run_cluster(C, Interval, Path, Scale, Tuner)
             after
                 ?CL:stop(C)
             end,
    Result#{sweep => sweep(N, SweepPath)}.

%% What the same cluster would do at other rates and intervals, simulated:
%% 4 rates × 4 intervals, a second or so.
sweep(N, Path) ->
    io:format("simulating ~b nodes at 4 update rates x 4 intervals...~n", [N]),
    {ok, Rows} = lasp_converge_sim:sweep(#{var => ?VAR, nodes => N, latency => {uniform, 200, 2000},
                                           duration => 10000},
                                         #{rates => [0.2, 2, 20, 200],
                                           intervals => [50, 250, 1000, 2000], min_updates => 20}),
    io:put_chars(lasp_converge_scenario:format_table(Rows)),
    {ok, Written} = lasp_converge_report:write_sweep(
                      Path, Rows, #{title => "lasp_converge demo: update speed vs convergence "
                                             "speed, simulated"}),
    io:format("~nsweep: ~ts~n~n", [Written]),
    Written.

run_cluster(C, Interval, Path, Scale, Tuner) ->
    Ns = [N1 | _] = ?CL:nodes(C),
    io:format("nodes: ~p~n", [Ns]),
    _ = [{ok, _} = ?CL:call(C, Nd, ?REP, set, [#{state_interval => Interval}]) || Nd <- Ns],
    ok = ?CL:call(C, N1, lasp_converge, track, [?VAR, #{nodes => Ns}]),
    {ok, _} = ?CL:call(C, N1, ?REP, declare, [?VAR, state_awset, #{nodes => Ns}]),
    _ = case Tuner of
            none ->
                ok;
            Policy ->
                {ok, _} = ?CL:call(C, N1, lasp_converge_tuner, start,
                                   [?VAR, Policy, #{nodes => Ns, min => 50, max => 2000,
                                                    window => 1000}]),
                io:format("tuner: ~p on ~p~n", [Policy, ?VAR])
        end,
    {A, B} = lists:split(2, Ns),
    Ms = fun(S) -> round(S * 1000 * Scale) end,
    Phases = [{"steady, 5 updates/s", Ms(8), 5, Ns, fun() -> ok end},
              {"burst, 100 updates/s", Ms(4), 100, Ns, fun() -> ok end},
              {"partition 2+3, 10 updates/s on both sides", Ms(5), 10, Ns,
               fun() -> ok = lasp_converge_fault:partition(C, [A, B]) end},
              {"healed, 5 updates/s", Ms(5), 5, Ns,
               fun() -> ok = lasp_converge_fault:heal(C) end},
              {"quiet", Ms(3), 0, Ns, fun() -> ok end}],
    T0 = erlang:monotonic_time(millisecond),
    io:format("~n~6s  ~-42s ~8s ~9s ~9s ~9s ~9s  ~s~n",
              ["time", "phase", "updates", "pending", "p50", "p99", "interval",
               "unseen per node"]),
    Log = lists:foldl(fun(Phase, Acc) -> phase(C, N1, Phase, T0, Acc) end,
                      #{made => 0, ops => []}, Phases),
    #{made := Made, ops := Ops} = Log,
    io:format("~nwaiting for every update to converge...~n"),
    _ = wait_converged(C, N1, Made, 60000),
    finish(C, Ns, N1, Made, lists:reverse(Ops), Path).

%% Run one phase: its fault (if any), then `Rate' updates a second spread
%% over the nodes, printing a line every second.
phase(C, N1, {Name, Ms, Rate, Ns, Start}, T0, Log0) ->
    ok = Start(),
    End = erlang:monotonic_time(millisecond) + Ms,
    loop(C, N1, Name, Rate, Ns, End, T0, Log0, erlang:monotonic_time(millisecond)).

loop(C, N1, Name, Rate, Ns, End, T0, Log, NextPrint) ->
    Now = erlang:monotonic_time(millisecond),
    case Now >= End of
        true ->
            progress(C, N1, Name, T0, Log),
            Log;
        false ->
            Log1 = case Rate of
                       0 -> Log;
                       _ -> update(C, Ns, Log)
                   end,
            NextPrint1 = case Now >= NextPrint of
                             true -> progress(C, N1, Name, T0, Log1), Now + 1000;
                             false -> NextPrint
                         end,
            Sleep = case Rate of
                        0 -> min(100, End - Now);
                        _ -> max(0, 1000 div Rate - 1)
                    end,
            timer:sleep(Sleep),
            loop(C, N1, Name, Rate, Ns, End, T0, Log1, NextPrint1)
    end.

%% Adds of fresh elements round the nodes; every 4th update removes an
%% element added two rounds earlier, and every 7th re-adds one removed, so
%% both sides of a partition touch the same elements.
update(C, Ns, Log = #{made := K, ops := Ops}) ->
    Node = lists:nth(K rem length(Ns) + 1, Ns),
    Op = if K rem 4 =:= 3, K > 10 -> {rmv, K - 2 * length(Ns)};
            K rem 7 =:= 6, K > 20 -> {add, K - 9};
            true -> {add, K}
         end,
    case ?CL:call(C, Node, ?REP, update, [?VAR, Op, Node]) of
        {ok, _} -> Log#{made := K + 1, ops := [Op | Ops]};
        {error, _} -> Log#{made := K + 1}
    end.

progress(C, N1, Name, T0, #{made := Made}) ->
    S = ?CL:call(C, N1, lasp_converge, stats, [?VAR]),
    Unseen = case ?CL:call(C, N1, lasp_converge, divergence, [?VAR]) of
                 [_ | _] = Div ->
                     #{nodes := Nodes} = lists:last(Div),
                     [maps:get(unseen, maps:get(Nd, Nodes, #{}), 0)
                      || Nd <- lists:sort(maps:keys(Nodes))];
                 _ -> []
             end,
    Interval = case ?CL:call(C, N1, ?REP, settings, []) of
                   #{state_interval := I} -> io_lib:format("~b ms", [I]);
                   _ -> "-"
               end,
    io:format("~5.1fs  ~-42s ~8b ~9b ~9ts ~9ts ~9ts  ~w~n",
              [(erlang:monotonic_time(millisecond) - T0) / 1000, Name, Made,
               maps:get(pending, S, 0), us(maps:get(p50, S, undefined)),
               us(maps:get(p99, S, undefined)), Interval, Unseen]).

us(undefined) -> "-";
us(U) -> lasp_converge_svg:fmt_us(U).

wait_converged(C, N1, Made, Ms) when Ms > 0 ->
    S = ?CL:call(C, N1, lasp_converge, stats, [?VAR]),
    case maps:get(updates, S) >= Made andalso maps:get(pending, S) =:= 0 of
        true -> ok;
        false -> timer:sleep(200), wait_converged(C, N1, Made, Ms - 200)
    end;
wait_converged(_, _, _, _) ->
    timeout.

%% A tuner change: an interval, or propagate_on_update turned on or off.
change(#{key := propagate_on_update, new := N, why := W}) ->
    io_lib:format("push ~ts (~0tp)", [case N of true -> "on"; false -> "off" end, W]);
change(#{old := O, new := N, why := W}) ->
    io_lib:format("~b→~b ms (~0tp)", [O, N, W]).

finish(C, Ns, N1, Made, Ops, Path) ->
    {ok, Data} = ?CL:call(C, N1, lasp_converge_report, collect, [?VAR]),
    io:format("~n"),
    io:put_chars(lasp_converge_report:format(Data)),
    case ?CL:call(C, N1, lasp_converge_tuner, log, [?VAR]) of
        Log when is_list(Log) ->
            io:format("tuner changes: ~ts~n",
                      [lists:join(", ", [change(E) || E <- Log])]),
            _ = ?CL:call(C, N1, lasp_converge_tuner, stop, [?VAR]);
        _ ->
            ok
    end,
    Stats = [?CL:call(C, Nd, ?REP, stats, []) || Nd <- Ns],
    Msgs = lists:sum([maps:get(sent_messages, S) || S <- Stats]),
    Bytes = lists:sum([maps:get(sent_bytes, S) || S <- Stats]),
    io:format("replication: ~b messages, ~.1f MB sent for ~b updates (~.1f messages an update)~n",
              [Msgs, Bytes / 1.0e6, Made, Msgs / max(1, Made)]),
    Values = [begin {ok, V} = ?CL:call(C, Nd, ?REP, value, [?VAR]),
                    lists:sort(sets:to_list(V)) end || Nd <- Ns],
    {MustHave, MayHave} = expected(Ops),
    Same = lists:usort(Values) =:= [hd(Values)],
    V = hd(Values),
    Kept = MustHave -- V =:= [] andalso V -- MayHave =:= [],
    io:format("final value: ~b elements, equal on all ~b nodes: ~p; every element added and "
              "never removed is there (~b), and nothing never added: ~p~n",
              [length(V), length(Ns), Same, length(MustHave), Kept]),
    io:format("faults: ~p~n", [[{F, A} || #{fault := F, args := A} <- lasp_converge_fault:events(C)]]),
    {ok, Written} = ?CL:call(C, N1, lasp_converge_report, write,
                             [Path, [?VAR], #{title => "lasp_converge demo"}]),
    io:format("~nreport: ~ts~n~n", [Written]),
    #{updates => Made, converged => maps:get(converged, maps:get(stats, Data)),
      agree => Same, kept => Kept, report => Written}.

%% What the updates imply for the final value: every element added and
%% never removed must be there, and nothing that was never added. (A remove
%% that runs where the add has not arrived yet, as during the partition,
%% removes nothing: add-wins.)
expected(Ops) ->
    Added = lists:usort([E || {add, E} <- Ops]),
    Removed = lists:usort([E || {rmv, E} <- Ops]),
    {Added -- Removed, Added}.

%% @doc Run the merge demo with 10,000 elements per replica.
-spec merge() -> ok.
merge() ->
    merge(?ELEMENTS).

%% @doc Run the merge demo with `N' elements per replica.
-spec merge(pos_integer()) -> ok.
merge(N) ->
    io:format("~nlasp_converge merge demo: two replicas diverge, then merge~n"
              "==========================================================~n~n"),
    lists:foreach(fun(Type) -> run(Type, N) end, [state_orset, state_awset]),
    ok.

run(Type, N) ->
    io:format("~s, ~b elements per replica~n", [Type, N]),
    Bottom = lasp_converge_crdt:new(Type),
    %% Common history: both replicas start from the same N/2 elements.
    {Common, _} = timed(fun() -> apply_ops(Bottom, [{add_all, lists:seq(1, N div 2)}], <<"origin">>) end),
    %% Divergence: A adds the upper half and removes every 3rd common
    %% element; B concurrently re-adds some of those, adds its own and
    %% removes others. Each replica applies its operations one batch at a
    %% time (`add_all', `rmv_all') and singly at the end.
    OpsA = [{add_all, lists:seq(N div 2 + 1, N)},
            {rmv_all, lists:seq(3, N div 2, 3)}]
        ++ [{add, {a, E}} || E <- lists:seq(1, 200)],
    OpsB = [{add_all, lists:seq(3, N div 2, 9)},
            {add_all, [{b, E} || E <- lists:seq(1, N div 2)]},
            {rmv_all, lists:seq(2, N div 2, 5)}]
        ++ [{rmv, E} || E <- lists:seq(4, 400, 10)],
    {A, UsA} = timed(fun() -> apply_ops(Common, OpsA, <<"replica-a">>) end),
    {B, UsB} = timed(fun() -> apply_ops(Common, OpsB, <<"replica-b">>) end),
    io:format("  replica a: ~b operations (~b elements) in ~s, value has ~b elements~n",
              [length(OpsA), op_elements(OpsA), fmt_us(UsA), size_of(A)]),
    io:format("  replica b: ~b operations (~b elements) in ~s, value has ~b elements~n",
              [length(OpsB), op_elements(OpsB), fmt_us(UsB), size_of(B)]),
    {AB, UsAB} = best_of(fun() -> lasp_converge_crdt:merge(A, B) end),
    {BA, _} = best_of(fun() -> lasp_converge_crdt:merge(B, A) end),
    Agree = lasp_converge_crdt:equal(AB, BA),
    Value = lasp_converge_crdt:query(AB),
    io:format("  merged:    ~b elements; merge(a, b) and merge(b, a) agree: ~p~n",
              [sets:size(Value), Agree]),
    Sample = lists:sublist(lists:sort(sets:to_list(Value)), 8),
    io:format("             first elements: ~w ...~n", [Sample]),
    {Plain, UsPlain} = best_of(fun() -> plain_merge(A, B) end),
    Same = Plain =:= AB,
    io:format("  merge time: native ~s, plain Erlang ~s (~.1fx), same term: ~p~n",
              [fmt_us(UsAB), fmt_us(UsPlain), UsPlain / max(UsAB, 1), Same]),
    Delta = lasp_converge_crdt:delta(B, A),
    io:format("  delta(b, a): what a is missing from b, ~b of b's ~b elements'"
              " entries~n~n", [payload_size(Delta), payload_size(B)]),
    ok.

apply_ops(State, Ops, Actor) ->
    lists:foldl(fun(Op, S) ->
                        case lasp_converge_crdt:mutate(Op, Actor, S) of
                            {ok, S1} -> S1;
                            {error, _} -> S   % e.g. removing an absent element
                        end
                end, State, Ops).

op_elements(Ops) ->
    lists:sum([case Op of
                   {_, Es} when is_list(Es) -> length(Es);
                   _ -> 1
               end || Op <- Ops]).

size_of(S) ->
    sets:size(lasp_converge_crdt:query(S)).

payload_size({state_orset, P}) -> length(P);
payload_size({state_awset, {DotMap, _}}) -> length(DotMap).

%% The same merges, written plainly on orddict/ordsets as types does.
plain_merge({state_orset, A}, {state_orset, B}) ->
    {state_orset,
     orddict:merge(fun(_, T1, T2) ->
                           orddict:merge(fun(_, X, Y) -> X andalso Y end, T1, T2)
                   end, A, B)};
plain_merge({state_awset, {M1, C1}}, {state_awset, {M2, C2}}) ->
    {state_awset, {dot_map_merge(M1, C1, M2, C2), cc_union(C1, C2)}}.

%% Walk both dot maps in key order, as types' dot_map:merge does; a key
%% whose merged dot set is empty is dropped.
dot_map_merge(M1, C1, M2, C2) ->
    dot_map_merge(M1, C1, M2, C2, []).

dot_map_merge([], _, [], _, Acc) ->
    lists:reverse(Acc);
dot_map_merge([{K, D1} | R1], C1, [{K, D2} | R2], C2, Acc) ->
    dot_map_merge(R1, C1, R2, C2, keep(K, dot_set_merge(D1, C1, D2, C2), Acc));
dot_map_merge([{K1, D1} | R1], C1, [{K2, _} | _] = M2, C2, Acc) when K1 < K2 ->
    dot_map_merge(R1, C1, M2, C2, keep(K1, dot_set_merge(D1, C1, [], C2), Acc));
dot_map_merge([], C1, [{K2, D2} | R2], C2, Acc) ->
    dot_map_merge([], C1, R2, C2, keep(K2, dot_set_merge([], C1, D2, C2), Acc));
dot_map_merge(M1, C1, [{K2, D2} | R2], C2, Acc) when M1 =:= [] orelse element(1, hd(M1)) > K2 ->
    dot_map_merge(M1, C1, R2, C2, keep(K2, dot_set_merge([], C1, D2, C2), Acc));
dot_map_merge([{K1, D1} | R1], C1, [], C2, Acc) ->
    dot_map_merge(R1, C1, [], C2, keep(K1, dot_set_merge(D1, C1, [], C2), Acc)).

keep(_, [], Acc) -> Acc;
keep(K, D, Acc) -> [{K, D} | Acc].

dot_set_merge(D1, C1, D2, C2) ->
    ordsets:union(ordsets:intersection(D1, D2),
                  ordsets:union([D || D <- D1, not in_cc(D, C2)],
                                [D || D <- D2, not in_cc(D, C1)])).

in_cc({Actor, Seq} = Dot, {Compressed, Cloud}) ->
    case orddict:find(Actor, Compressed) of
        {ok, Max} when Seq =< Max -> true;
        _ -> ordsets:is_element(Dot, Cloud)
    end.

cc_union({Co1, Cl1}, {Co2, Cl2}) ->
    Co = orddict:merge(fun(_, X, Y) -> max(X, Y) end, Co1, Co2),
    Cl = ordsets:union(Cl1, Cl2),
    lists:foldl(fun({Actor, Seq} = Dot, {CoAcc, ClAcc}) ->
                        Cur = case orddict:find(Actor, CoAcc) of
                                  {ok, V} -> V;
                                  error -> 0
                              end,
                        if Seq =:= Cur + 1 -> {orddict:store(Actor, Seq, CoAcc), ClAcc};
                           Seq > Cur + 1 -> {CoAcc, ordsets:add_element(Dot, ClAcc)};
                           true -> {CoAcc, ClAcc}
                        end
                end, {Co, []}, Cl).

timed(F) ->
    T0 = erlang:monotonic_time(microsecond),
    R = F(),
    {R, erlang:monotonic_time(microsecond) - T0}.

best_of(F) ->
    Runs = [timed(F) || _ <- lists:seq(1, 5)],
    {R, _} = hd(Runs),
    {R, lists:min([Us || {_, Us} <- Runs])}.

fmt_us(Us) when Us >= 1000000 -> io_lib:format("~.2f s", [Us / 1000000]);
fmt_us(Us) when Us >= 1000 -> io_lib:format("~.2f ms", [Us / 1000]);
fmt_us(Us) -> io_lib:format("~b us", [Us]).
