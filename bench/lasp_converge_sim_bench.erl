%% @doc Cost of the gossip simulator (issue 9), from Erlang: wall time of
%% `lasp_converge_sim:run/1' at the scale goal, 10,000 nodes and 10,000
%% updates, in both modes, plus two smaller settings.
%%
%% Run it the way `make bench' runs it:
%%
%%   rebar3 compile && mkdir -p _build/bench &&
%%   erlc -o _build/bench bench/lasp_converge_sim_bench.erl &&
%%   erl -noshell -pa _build/default/lib/*/ebin -pa _build/bench \
%%       -eval 'lasp_converge_sim_bench:main(), halt().'
%%
%% Each row: one run (a NIF call on a dirty CPU scheduler, so one core),
%% best of three. The goal is under 10 s for 10,000 x 10,000.
%%
%% `reality/0' (about 3 minutes, not part of `make bench') runs seven
%% scenarios on a local 5-node cluster (`lasp_converge_cluster', the
%% replicator, the tracker, `lasp_converge_fault') and in the simulator,
%% and prints both, then which agree within 20%. While a scenario runs, the
%% replicators are traced (see `measure/7'); the simulator gets what the
%% traces show (the update times and nodes, each node's first tick, the
%% periods, service times, one-way latencies of states and deltas and of
%% acknowledgements), the faults at the times they were applied, and
%% `until' at the time the cluster's counters were read. Its figures are
%% one prediction: the mean over ten seeds, whose range is printed too.
-module(lasp_converge_sim_bench).

-export([main/0, reality/0, reality/1, tracer/1]).

-define(CL, lasp_converge_cluster).
-define(REP, lasp_converge_replicator).
-define(SEEDS, 10).

-spec main() -> ok.
main() ->
    Scale = #{nodes => 10000, state_interval => 1000, fanout => 3,
              update_rate => 1000, duration => 10000, latency => {lognormal, 7.0, 0.5},
              seed => 1},
    Rows = [{"10k nodes x 10k updates, state_based", Scale},
            {"10k nodes x 10k updates, delta_based", Scale#{mode => delta_based}},
            {"10k x 10k, state_based, with processing",
             Scale#{service_time => {lognormal, 4.0, 1.0}, round_cost => {uniform, 500, 1500}}},
            {"200 nodes, 500 ms, fanout 3, 2% loss", #{nodes => 200, state_interval => 500,
                                                       fanout => 3, update_rate => 5,
                                                       duration => 60000, loss => 0.02}},
            {"1k nodes, fanout all, delta_based", #{nodes => 1000, state_interval => 1000,
                                                    fanout => all, mode => delta_based,
                                                    update_rate => 100, duration => 5000}}],
    io:format("~-40s ~8s ~8s ~10s ~10s ~10s ~8s~n",
              ["simulation", "updates", "wall s", "p50 ms", "p99 ms", "messages", "msg/upd"]),
    lists:foreach(fun row/1, Rows).

row({Name, Spec}) ->
    Times = [begin
                 {T, {ok, R}} = timer:tc(lasp_converge_sim, run, [Spec]),
                 {T, R}
             end || _ <- [1, 2, 3]],
    {T, R} = lists:min(Times),
    #{updates := U, p50 := P50, p99 := P99, messages := M, messages_per_update := MPU} = R,
    io:format("~-40s ~8B ~8.2f ~10.1f ~10.1f ~10B ~8.1f~n",
              [Name, U, T / 1.0e6, P50 / 1000, P99 / 1000, M, MPU]),
    case U >= 10000 andalso T > 10000000 of
        true -> io:format("  over the 10 s goal~n");
        false -> ok
    end.

%% ---- against reality ----

-spec reality() -> ok.
reality() ->
    reality(all).

%% @doc `reality/0' for the settings numbered in `Which' (1..7) only.
-spec reality(all | [pos_integer()]) -> ok.
reality(Which) ->
    Settings0 = [{"state, 100 ms, fanout all", #{mode => state_based, state_interval => 100,
                                                 fanout => all}, none},
                {"state, 250 ms, fanout 2", #{mode => state_based, state_interval => 250,
                                               fanout => 2}, none},
                {"delta, 100 ms, fanout 2, 10% loss", #{mode => delta_based,
                                                         state_interval => 100,
                                                         fanout => 2}, {loss, 0.1}},
                {"state, 100 ms, fanout all, 2+3 partition 2 s",
                 #{mode => state_based, state_interval => 100, fanout => all}, partition},
                {"delta, 100 ms, fanout 2, 2+3 partition 2 s",
                 #{mode => delta_based, state_interval => 100, fanout => 2}, partition},
                {"delta, 500 ms, fanout all, on update", #{mode => delta_based,
                                                          state_interval => 500, fanout => all,
                                                          propagate_on_update => true}, none},
                {"state, 500 ms, fanout 1", #{mode => state_based, state_interval => 500,
                                               fanout => 1}, none}],
    Settings = [S || {K, S} <- lists:zip(lists:seq(1, length(Settings0)), Settings0),
                     Which =:= all orelse lists:member(K, Which)],
    {ok, C} = ?CL:start(5, #{prefix => lc_simreal}),
    try
        Ns = ?CL:nodes(C),
        Lat = latencies(C, Ns),
        io:format("half round trips between peers: median ~b us, p90 ~b us (~b samples)~n",
                  [pct(Lat, 0.5), pct(Lat, 0.9), length(Lat)]),
        io:format("~-46s ~-9s ~7s ~9s ~9s ~9s ~9s~n",
                  ["setting", "", "updates", "p50 ms", "p99 ms", "max ms", "msg/upd"]),
        Rows = [compare(C, Ns, Lat, I, S)
                || {I, S} <- lists:zip(lists:seq(1, length(Settings)), Settings)],
        io:format("~nsimulator against cluster (within 20%: p50, p99)~n"),
        lists:foreach(fun summary/1, Rows)
    after
        ?CL:stop(C)
    end.

summary({Name, #{p50 := RP50, p99 := RP99}, RM, #{p50 := SP50, p99 := SP99}, SM}) ->
    Off = fun(S, R) -> 100 * (S - R) / max(1, R) end,
    Sign = fun(X) when X >= 0 -> "+"; (_) -> "-" end,
    In = fun(S, R) -> case abs(S - R) =< 0.2 * R of true -> "yes"; false -> "no" end end,
    io:format("~-46s p50 ~8.1f / ~8.1f ms (~s~.1f%, ~-3s)  p99 ~8.1f / ~8.1f ms (~s~.1f%, ~-3s)"
              "  msg/upd ~5.1f / ~5.1f~n",
              [Name, RP50 / 1000, SP50 / 1000, Sign(SP50 - RP50), abs(Off(SP50, RP50)),
               In(SP50, RP50), RP99 / 1000, SP99 / 1000, Sign(SP99 - RP99),
               abs(Off(SP99, RP99)), In(SP99, RP99), RM, SM]).

%% Half round trips between the first node and the others, timed there.
latencies(C, [N1 | Rest]) ->
    lists:append([[begin
                       {Us, N} = ?CL:call(C, N1, timer, tc, [erpc, call, [N, erlang, node, []]]),
                       Us div 2
                   end || _ <- lists:seq(1, 50)] || N <- Rest]).

pct(L, Q) ->
    S = lists:sort(L),
    lists:nth(max(1, round(Q * length(S))), S).

compare(C, Ns, Lat, I, {Name, Settings0, Fault}) ->
    [N1 | _] = Ns,
    %% A node keeps the settings it is not given: name every one.
    Settings = maps:merge(#{propagate_on_update => false, jitter_percent => 0}, Settings0),
    Var = {iolist_to_binary(["simreal", integer_to_list(I)]), state_gset},
    _ = [{ok, _} = ?CL:call(C, N, ?REP, set, [Settings]) || N <- Ns],
    ok = ?CL:call(C, N1, lasp_converge, track, [Var, #{nodes => Ns}]),
    {ok, _} = ?CL:call(C, N1, ?REP, declare, [Var, state_gset, #{nodes => Ns}]),
    Tracers = start_tracers(C, Ns),
    timer:sleep(300),
    %% 7 a second: not a multiple of the intervals, so updates do not fall
    %% at one phase of the timers.
    Rate = 7,
    Duration = 20000,
    T0 = erlang:monotonic_time(microsecond),
    T0Sys = erlang:system_time(microsecond),
    Rel = fun() -> (erlang:monotonic_time(microsecond) - T0) / 1000 end,
    Faults = case Fault of
                 {loss, P} -> ok = lasp_converge_fault:drop(C, P), #{loss => P};
                 _ -> #{}
             end,
    {Updates, Parts} = drive(C, Ns, Var, Fault, Rel, Rate, Duration),
    ok = wait(C, N1, Var, length(Updates), 30000),
    Until = Rel(),
    Traces = stop_tracers(Tracers),
    Msgs = lists:sum([maps:get(sent_messages,
                               maps:get(Var, maps:get(vars, ?CL:call(C, N, ?REP, stats, []))))
                      || N <- Ns]),
    ok = lasp_converge_fault:clear(C),
    Real = ?CL:call(C, N1, lasp_converge, stats, [Var]),
    ok = ?CL:call(C, N1, lasp_converge, untrack, [Var]),
    #{state_interval := Interval} = Settings,
    M = measure(Traces, Ns, Var, T0Sys, Until, Interval, length(Updates)),
    %% One prediction: the mean over ten seeds (peers, latencies,
    %% services, round costs and losses drawn anew) of the model given what
    %% was measured on the cluster during this run.
    Sims = [begin
                {ok, S} = lasp_converge_sim:run(
                            (maps:merge(Settings, Faults))#{
                              nodes => 5, updates => maps:get(updates, M, Updates),
                              partitions => Parts,
                              latency => {empirical, maps:get(latency, M, Lat)},
                              ack_latency => {empirical, maps:get(ack_latency, M, Lat)},
                              service_time => {empirical, maps:get(service, M)},
                              round_cost => {empirical, maps:get(round_cost, M)},
                              timer_offsets => maps:get(offsets, M),
                              until => Until, max_samples => 0, seed => Seed}),
                S
            end || Seed <- lists:seq(1, ?SEEDS)],
    Sim = maps:from_list([{K, lists:sum([maps:get(K, S) || S <- Sims]) / ?SEEDS}
                          || K <- [p50, p99, max, messages]]),
    Range = fun(K) -> Vs = [maps:get(K, S) / 1000 || S <- Sims], {lists:min(Vs), lists:max(Vs)} end,
    U = length(Updates),
    Line = fun(Label, #{p50 := P50, p99 := P99, max := Max}, Ms) ->
                   io:format("~-46s ~-9s ~7b ~9.1f ~9.1f ~9.1f ~9.1f~n",
                             [Name, Label, U, P50 / 1000, P99 / 1000, Max / 1000, Ms / U])
           end,
    Line("cluster", Real, Msgs),
    Line("sim", Sim, maps:get(messages, Sim)),
    {P50Lo, P50Hi} = Range(p50),
    {P99Lo, P99Hi} = Range(p99),
    io:format("~-46s over the seeds: p50 ~.1f..~.1f ms, p99 ~.1f..~.1f ms~n",
              ["", P50Lo, P50Hi, P99Lo, P99Hi]),
    Off = maps:get(offsets, M),
    L = maps:get(latency, M, Lat),
    AL = maps:get(ack_latency, M, Lat),
    Acks = case maps:is_key(ack_latency, M) of
               true -> io_lib:format("; acks ~b, ~b", [pct(AL, 0.5), pct(AL, 0.9)]);
               false -> ""
           end,
    io:format("~-46s measured: latency p50 ~b p90 ~b us (~b~s), service p50 ~b p90 ~b us (~b), "
              "round cost mean ~.1f ms, first ticks ~.1f..~.1f ms~n",
              ["", pct(L, 0.5), pct(L, 0.9), length(L), Acks,
               pct(maps:get(service, M), 0.5), pct(maps:get(service, M), 0.9),
               length(maps:get(service, M)),
               lists:sum(maps:get(round_cost, M)) / max(1, length(maps:get(round_cost, M))) / 1000,
               lists:min(Off) + 0.0, lists:max(Off) + 0.0]),
    {Name, Real, Msgs / U, Sim, maps:get(messages, Sim) / U}.

%% ---- what the cluster did, read from traces of the replicators ----

%% A tracer on every node records, with the node's monotonic clock, each
%% replicator's ticks and the start and end of its handling of every
%% replication message and update (call and return traces of
%% handle_info/2 and handle_call/3), and every replication message it sends
%% and receives.
start_tracers(C, Ns) ->
    Self = self(),
    [begin
         Pid = ?CL:call(C, N, erlang, spawn, [?MODULE, tracer, [Self]]),
         receive {Pid, tracing} -> {N, Pid} after 5000 -> error({no_tracer, N}) end
     end || N <- Ns].

stop_tracers(Tracers) ->
    [begin
         Pid ! {self(), stop},
         receive {Pid, Off, Evs} -> {N, Off, Evs} after 10000 -> error({no_trace, N}) end
     end || {N, Pid} <- Tracers].

-spec tracer(pid()) -> ok.
tracer(Owner) ->
    Rep = whereis(?REP),
    Big = [{'>=', {size, '$1'}, 3}],
    Info = [{['$1', '_'], [{is_tuple, '$1'} | Big],
             [{message, {{{element, 1, '$1'}, {element, 2, '$1'}, {element, 3, '$1'}}}},
              {return_trace}]},
            {['$1', '_'], [], [{message, '$1'}, {return_trace}]}],
    Call = [{[{update, '$1', '_', '_'}, '_', '_'], [], [{message, {{update, '$1'}}}, {return_trace}]}],
    _ = erlang:trace_pattern({?REP, handle_info, 2}, Info, [local]),
    _ = erlang:trace_pattern({?REP, handle_call, 3}, Call, [local]),
    1 = erlang:trace(Rep, true, [call, arity, send, 'receive', monotonic_timestamp,
                                 {tracer, self()}]),
    Owner ! {self(), tracing},
    tracer_loop(Owner, Rep, []).

tracer_loop(Owner, Rep, Acc) ->
    receive
        {Owner, stop} ->
            _ = erlang:trace(Rep, false, [all]),
            Owner ! {self(), erlang:time_offset(nanosecond), lists:reverse(Acc)},
            ok;
        {trace_ts, _, call, {_, handle_info, 2}, tick, Ts} ->
            tracer_loop(Owner, Rep, [{call, tick, Ts} | Acc]);
        {trace_ts, _, call, {_, handle_info, 2}, {Tag, Var, From}, Ts} ->
            tracer_loop(Owner, Rep, case rep_tag(Tag) of
                                        true -> [{call, {Tag, Var, From}, Ts} | Acc];
                                        false -> [{call, other, Ts} | Acc]
                                    end);
        {trace_ts, _, call, _, {update, Var}, Ts} ->
            tracer_loop(Owner, Rep, [{call, {update, Var}, Ts} | Acc]);
        {trace_ts, _, call, _, _, Ts} ->
            tracer_loop(Owner, Rep, [{call, other, Ts} | Acc]);
        {trace_ts, _, return_from, _, _, Ts} ->
            tracer_loop(Owner, Rep, [{ret, Ts} | Acc]);
        {trace_ts, _, send, Msg, {?REP, To}, Ts} when is_tuple(Msg), tuple_size(Msg) >= 3 ->
            tracer_loop(Owner, Rep, case rep_tag(element(1, Msg)) of
                                        true -> [{send, To, Msg, Ts} | Acc];
                                        false -> Acc
                                    end);
        {trace_ts, _, 'receive', Msg, Ts} when is_tuple(Msg), tuple_size(Msg) >= 3 ->
            tracer_loop(Owner, Rep, case rep_tag(element(1, Msg)) of
                                        true -> [{recv, element(3, Msg), Msg, Ts} | Acc];
                                        false -> Acc
                                    end);
        _ ->
            tracer_loop(Owner, Rep, Acc)
    end.

rep_tag(T) -> T =:= lc_rep_state orelse T =:= lc_rep_delta orelse T =:= lc_rep_ack.

%% From the traces, in the simulator's terms (times from T0):
%% - `offsets': each node's first tick at or after T0, ms;
%% - `round_cost': every period between ticks less the interval, us;
%% - `service': how long handling each state or delta of `Var', and each
%%   update, took, us;
%% - `latency': per state or delta of `Var', the time from its
%%   sending to its arrival in the receiver's mailbox, plus the time the
%%   receiver then took to start on it when it was not busy (scheduling);
%%   `ack_latency' the same for acknowledgements;
%% - `updates': when each update's handling started, and where.
measure(Traces, Ns, Var, T0Sys, Until, Interval, Made) ->
    Idx = maps:from_list(lists:zip(Ns, lists:seq(1, length(Ns)))),
    %% Node clock (ns, monotonic) to ms from T0.
    Rel = fun(Off, Ts) -> ((Ts + Off) / 1000 - T0Sys) / 1000 end,
    Per = [{N, [setelement(tuple_size(E), E, Rel(Off, element(tuple_size(E), E))) || E <- Evs]}
           || {N, Off, Evs} <- Traces],
    Ticks = [{N, [T || {call, tick, T} <- Evs, T >= 0, T =< Until]} || {N, Evs} <- Per],
    Offsets = [case Ts of [F | _] -> F; [] -> 0.0 end || {_, Ts} <- Ticks],
    RoundCost = lists:append([[max(0, round((B - A - Interval) * 1000))
                               || {A, B} <- lists:zip(lists:droplast(Ts), tl(Ts))]
                              || {_, Ts} <- Ticks, length(Ts) > 1]),
    Spans = [{N, spans(Evs)} || {N, Evs} <- Per],
    Service = [round((E - S) * 1000)
               || {_, Sp} <- Spans, {What, S, E, _} <- Sp, S >= 0, S =< Until,
                  case What of
                      {update, Var} -> true;
                      {Tag, Var, _} -> Tag =/= lc_rep_ack;
                      _ -> false
                  end],
    Upd = [{S, maps:get(N, Idx)} || {N, Sp} <- Spans, {{update, V}, S, _, _} <- Sp, V =:= Var],
    %% The variable's own messages; those of the variables declared for
    %% the earlier settings (still replicated) share the machine with them.
    Tagged = [{T, L} || {T, V, L} <- latencies_traced(Per, Spans), V =:= Var],
    Latency = [L || {T, L} <- Tagged, T =/= lc_rep_ack],
    AckLatency = [L || {lc_rep_ack, L} <- Tagged],
    maps:merge(#{offsets => Offsets, round_cost => nonempty(RoundCost),
                 service => nonempty(Service)},
               maps:from_list([{latency, Latency} || length(Latency) > 20] ++
                              [{ack_latency, AckLatency} || length(AckLatency) > 20] ++
                              [{updates, lists:sort(Upd)} || length(Upd) =:= Made])).

nonempty([]) -> [0];
nonempty(L) -> L.

%% Pair each call with its return: `{What, Start, End, FreeSince}', where
%% FreeSince is when the previous handled call ended.
spans(Evs) ->
    spans(Evs, undefined, -1.0e9, []).

spans([{call, What, S} | Rest], _, Free, Acc) ->
    spans(Rest, {What, S}, Free, Acc);
spans([{ret, E} | Rest], {What, S}, Free, Acc) ->
    spans(Rest, undefined, E, [{What, S, E, Free} | Acc]);
spans([_ | Rest], Open, Free, Acc) ->
    spans(Rest, Open, Free, Acc);
spans([], _, _, Acc) ->
    lists:reverse(Acc).

%% Per link, sends and receives in order (Erlang keeps a link's order): a
%% receive pairs with the oldest send of the same message sent at most
%% 50 ms before it. The receiver's handling of its replication messages
%% starts in mailbox order, so the k-th receive pairs with the k-th
%% replication span; the scheduling delay is the start less the later of
%% the arrival and the end of the previous call.
latencies_traced(Per, Spans) ->
    SpanMap = maps:from_list(Spans),
    lists:append(
      [begin
           Recvs = [{From, Msg, T} || {recv, From, Msg, T} <- Evs],
           RepSpans = [Sp || {{Tag, _, _}, _, _, _} = Sp <- maps:get(To, SpanMap), rep_tag(Tag)],
           Picks = pickups(Recvs, RepSpans),
           lists:append(
             [begin
                  Sends = [{Msg, T} || {send, To1, Msg, T} <- maps:get(From, maps:from_list(Per)),
                                       To1 =:= To],
                  In = [{Msg, T, P} || {{F, Msg, T}, P} <- lists:zip(Recvs, Picks), F =:= From],
                  [{element(1, Msg), element(2, Msg), L} || {Msg, L} <- pair(Sends, In, [])]
              end || {From, _} <- Per, From =/= To])
       end || {To, Evs} <- Per]).

%% Scheduling delay per receive (0 when it cannot be told): a receive's
%% handling is the first replication span for the same message starting
%% at or after it.
pickups([], _) ->
    [];
pickups([{_, _, R} | _] = Recvs, [{_, S, _, _} | Spans]) when S < R ->
    pickups(Recvs, Spans);
pickups([{_, Msg, R} | Recvs], [{Key, S, _, Free} | Spans]) when Key =:= {element(1, Msg), element(2, Msg), element(3, Msg)} ->
    [max(0.0, S - max(R, Free)) | pickups(Recvs, Spans)];
pickups([_ | Recvs], Spans) ->
    [0.0 | pickups(Recvs, Spans)].

pair(_, [], Acc) ->
    Acc;
pair([], _, Acc) ->
    Acc;
pair([{_, ST} | Sends], [{_, RT, _} | _] = In, Acc) when ST < RT - 50 ->
    pair(Sends, In, Acc);
pair([{Msg, ST} | Sends], [{Msg, RT, P} | In], Acc) when ST =< RT ->
    pair(Sends, In, [{Msg, round((RT - ST + P) * 1000)} | Acc]);
pair(Sends, [_ | In], Acc) ->
    pair(Sends, In, Acc).

%% Updates round the nodes at `Rate' a second for `Duration' ms: the
%% `{AtMs, NodeNumber}' list the simulator replays, and the partition
%% applied from 3 s to 5 s when asked.
drive(C, Ns, Var, Fault, Rel, Rate, Duration) ->
    {A, B} = lists:split(2, Ns),
    drive(C, Ns, Var, Fault, Rel, Rate, Duration, 0, [], {undefined, undefined}, A, B).

drive(C, Ns, Var, Fault, Rel, Rate, Duration, K, Acc, {PS, PE}, A, B) ->
    Now = Rel(),
    {PS1, PE1} =
        case Fault of
            partition when PS =:= undefined, Now >= 3000 ->
                ok = lasp_converge_fault:partition(C, [A, B]), {Rel(), PE};
            partition when PE =:= undefined, PS =/= undefined, Now >= 5000 ->
                ok = lasp_converge_fault:heal(C), {PS, Rel()};
            _ -> {PS, PE}
        end,
    Parts = case PS1 of
                undefined -> [];
                _ -> [{PS1, case PE1 of undefined -> Duration * 10; _ -> PE1 end,
                       [[1, 2], [3, 4, 5]]}]
            end,
    case Now >= Duration of
        true ->
            {lists:reverse(Acc), Parts};
        false ->
            Idx = K rem length(Ns) + 1,
            Node = lists:nth(Idx, Ns),
            At = Rel(),
            {ok, _} = ?CL:call(C, Node, ?REP, update, [Var, {add, K}, Node]),
            timer:sleep(1000 div Rate),
            drive(C, Ns, Var, Fault, Rel, Rate, Duration, K + 1, [{At, Idx} | Acc],
                  {PS1, PE1}, A, B)
    end.

wait(C, N1, Var, Made, Ms) when Ms > 0 ->
    S = ?CL:call(C, N1, lasp_converge, stats, [Var]),
    case maps:get(updates, S) >= Made andalso maps:get(pending, S) =:= 0 of
        true -> ok;
        false -> timer:sleep(20), wait(C, N1, Var, Made, Ms - 20)
    end;
wait(_, _, _, _, _) ->
    timeout.
