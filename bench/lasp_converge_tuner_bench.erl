%% @doc The tuner against fixed intervals (issue 6), on 5 local nodes.
%%
%% Run it the way `make bench' does:
%%
%%   rebar3 compile && mkdir -p _build/bench &&
%%   erlc -o _build/bench bench/lasp_converge_tuner_bench.erl &&
%%   erl -noshell -pa _build/default/lib/*/ebin -pa _build/bench \
%%       -eval 'lasp_converge_tuner_bench:main(), halt().'
%%
%% One awset replicated state-based on 5 peer nodes (fanout all), its
%% update rate changing over time: idle (one
%% update a minute), burst (100/s), steady (5/s), idle. The same schedule
%% runs on a fresh cluster for each configuration:
%%
%% <ul>
%% <li>Lasp's default interval, 10 s, without propagation on update;</li>
%% <li>the best fixed interval: the longest of a few candidates (0.95, 0.8,
%%   0.6, 0.4 times the target) whose p99 convergence meets the target in
%%   every phase, found by running them, longest first (without
%%   propagation on update);</li>
%% <li>the tuner with `{target_p99, Target}', starting from 10 s without
%%   propagation on update, which it drives (`push => auto').</li>
%% </ul>
%%
%% Per phase it prints the updates, the p99 convergence time of the
%% updates made in the phase and the replication messages sent during it
%% (and for the tuner the intervals and propagation on update in force);
%% then, per configuration, the share of 1 s windows (by update time, those
%% with updates) whose p99 meets the target, and the messages in all; last,
%% the tuner's changes.
%% `LASP_CONVERGE_BENCH_QUICK=1' shortens the phases.
-module(lasp_converge_tuner_bench).

-export([main/0]).

-define(CL, lasp_converge_cluster).
-define(R, lasp_converge_replicator).
-define(T, lasp_converge_tuner).
-define(NODES, 5).
-define(TARGET, 1000).
-define(DEFAULT, 10000).

-spec main() -> ok.
main() ->
    Quick = os:getenv("LASP_CONVERGE_BENCH_QUICK") =/= false,
    Phases = phases(Quick),
    io:format("~ntuner bench: ~b nodes, awset, state-based, fanout all; p99 target ~b ms; "
              "phases ~s~n",
              [?NODES, ?TARGET,
               lists:join(", ", [io_lib:format("~s ~b s at ~s/s", [Name, D div 1000, rate(R)])
                                 || {Name, D, R} <- Phases])]),
    Default = run({fixed, ?DEFAULT}, Phases),
    Best = best_fixed(Phases, [round(F * ?TARGET) || F <- [0.95, 0.8, 0.6, 0.4]]),
    Tuner = run({tuner, ?TARGET}, Phases),
    Rows = [{"Lasp default 10 s", Default}, {label(Best), Best}, {"tuner target_p99", Tuner}],
    print(Phases, Rows),
    ok.

phases(true) ->
    [{idle, 6000, 1 / 60}, {burst, 4000, 100}, {steady, 6000, 5}, {idle, 6000, 1 / 60}];
phases(false) ->
    [{idle, 20000, 1 / 60}, {burst, 10000, 100}, {steady, 15000, 5}, {idle, 20000, 1 / 60}].

rate(R) when R < 1 -> io_lib:format("1/~b", [round(1 / R)]);
rate(R) -> integer_to_list(round(R)).

label(#{config := {fixed, I}}) -> io_lib:format("best fixed ~b ms", [I]).

%% The longest candidate meeting the target in every phase (the last one
%% tried when none does).
best_fixed(Phases, [I | Rest]) ->
    R = run({fixed, I}, Phases),
    Meets = lists:all(fun(#{p99 := P}) -> P =:= undefined orelse P =< ?TARGET * 1000 end,
                      maps:get(phases, R)),
    io:format("  fixed ~b ms: ~s~n", [I, case Meets of true -> "meets the target";
                                                     false -> "misses the target" end]),
    case Meets orelse Rest =:= [] of
        true -> R;
        false -> best_fixed(Phases, Rest)
    end.

run(Config, Phases) ->
    {ok, C} = ?CL:start(?NODES, #{prefix => lc_tbench}),
    try
        run(C, Config, Phases)
    after
        ?CL:stop(C)
    end.

run(C, Config, Phases) ->
    Ns = [N1 | _] = ?CL:nodes(C),
    Var = {<<"bench">>, state_awset},
    Start = case Config of
                {fixed, I} -> I;
                {tuner, _} -> ?DEFAULT
            end,
    {ok, _} = ?T:set(#{state_interval => Start, propagate_on_update => false, jitter => false},
                     #{nodes => Ns}),
    ok = ?CL:call(C, N1, lasp_converge, track, [Var, #{nodes => Ns}]),
    {ok, _} = ?CL:call(C, N1, ?R, declare, [Var, state_awset, #{nodes => Ns}]),
    _ = case Config of
            {tuner, T} ->
                {ok, _} = ?CL:call(C, N1, ?T, start, [Var, {target_p99, T}, #{nodes => Ns}]);
            _ ->
                ok
        end,
    Now = fun() -> ?CL:call(C, N1, lasp_converge_tracker, now_us, []) end,
    Msgs = fun() -> lists:sum([msgs(C, N, Var) || N <- Ns]) end,
    Bounds = lists:foldl(
               fun({_, D, Rate}, {K, Acc}) ->
                       T0 = Now(),
                       M0 = Msgs(),
                       K1 = write_phase(C, Ns, Var, D, Rate, K),
                       {K1, [{T0, M0} | Acc]}
               end, {0, []}, Phases),
    {_, Marks} = Bounds,
    End = {Now(), Msgs()},
    %% Let the last updates converge (one default interval at most).
    wait_converged(C, N1, Var, erlang:monotonic_time(millisecond) + ?DEFAULT + 3000),
    Records = ?CL:call(C, N1, lasp_converge, records, [Var]),
    Log = case Config of
              {tuner, _} -> ?CL:call(C, N1, ?T, log, [Var]);
              _ -> []
          end,
    Edges = lists:reverse(Marks) ++ [End],
    PhaseRows = [phase_row(Records, Log, Start, A, B)
                 || {A, B} <- lists:zip(lists:droplast(Edges), tl(Edges))],
    {T0, _} = hd(Edges),
    {TEnd, _} = End,
    #{config => Config, phases => PhaseRows,
      windows => windows([R || #{ts_us := Ts} = R <- Records, Ts >= T0, Ts < TEnd]),
      changes => Log, t0 => T0}.

%% Updates at `Rate' a second, evenly spaced from the phase's start (so an
%% idle phase has one), to the nodes in turn.
write_phase(C, Ns, Var, D, Rate, K0) ->
    T0 = erlang:monotonic_time(millisecond),
    Times = [round(J * 1000 / Rate) || J <- lists:seq(0, ceil(D * Rate / 1000) - 1),
                                       J * 1000 / Rate < D],
    K = lists:foldl(fun(At, K) ->
                            Wait = T0 + At - erlang:monotonic_time(millisecond),
                            _ = Wait > 0 andalso timer:sleep(Wait),
                            N = lists:nth(K rem length(Ns) + 1, Ns),
                            {ok, _} = ?CL:call(C, N, ?R, update, [Var, {add, K}, N]),
                            K + 1
                    end, K0, Times),
    Left = T0 + D - erlang:monotonic_time(millisecond),
    _ = Left > 0 andalso timer:sleep(Left),
    K.

msgs(C, N, Var) ->
    case ?CL:call(C, N, ?R, stats, []) of
        #{vars := #{Var := #{sent_messages := M}}} -> M;
        _ -> 0
    end.

wait_converged(C, N1, Var, Deadline) ->
    case ?CL:call(C, N1, lasp_converge, stats, [Var]) of
        #{pending := 0} ->
            ok;
        _ ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> ok;
                false -> timer:sleep(200), wait_converged(C, N1, Var, Deadline)
            end
    end.

%% The updates made in [A, B): how many, their p99 (µs; unconverged ones
%% count as infinitely slow), the messages sent meanwhile, and for the
%% tuner the intervals in force.
phase_row(Records, Log, Start, {TA, MA}, {TB, MB}) ->
    Vs = [value(R) || #{ts_us := Ts} = R <- Records, Ts >= TA, Ts < TB],
    #{p99 := P} = lasp_converge_tuner_policy:window_figures(Vs),
    InForce = fun(Key, Default) ->
                      Before = [New || #{at_us := At, key := K, new := New} <- Log,
                                       K =:= Key, At < TA],
                      During = [New || #{at_us := At, key := K, new := New} <- Log,
                                       K =:= Key, At >= TA, At < TB],
                      case Before of
                          [] -> [Default | During];
                          _ -> [lists:last(Before) | During]
                      end
              end,
    Is = InForce(state_interval, Start),
    #{updates => length(Vs), p99 => P, messages => MB - MA,
      intervals => {lists:min(Is), lists:max(Is)},
      push => lists:usort(InForce(propagate_on_update, false))}.

value(#{outcome := converged, convergence_us := Us}) -> Us;
value(_) -> unconverged.

%% 1 s windows by update time: how many have updates, how many of those
%% have their p99 within the target.
windows([]) ->
    {0, 0};
windows(Records) ->
    T0 = lists:min([Ts || #{ts_us := Ts} <- Records]),
    Groups = lists:foldl(fun(#{ts_us := Ts} = R, Acc) ->
                                 maps:update_with((Ts - T0) div 1000000,
                                                  fun(L) -> [value(R) | L] end,
                                                  [value(R)], Acc)
                         end, #{}, Records),
    Met = [W || W <- maps:values(Groups),
                case lasp_converge_tuner_policy:window_figures(W) of
                    #{p99 := P} when is_integer(P) -> P =< ?TARGET * 1000;
                    _ -> false
                end],
    {length(Met), maps:size(Groups)}.

print(Phases, Rows) ->
    io:format("~n~-10s ~7s", ["phase", "updates"]),
    [io:format(" | ~27s", [L]) || {L, _} <- Rows],
    io:format("~n~-10s ~7s", ["", ""]),
    [io:format(" | ~9s ~7s ~9s", ["p99 ms", "msgs", "interval"]) || _ <- Rows],
    io:format(" ~6s", ["push"]),
    io:format("~n"),
    lists:foreach(
      fun(K) ->
              {Name, _, _} = lists:nth(K, Phases),
              #{updates := U} = lists:nth(K, maps:get(phases, element(2, hd(Rows)))),
              io:format("~-10s ~7b", [Name, U]),
              [begin
                   #{p99 := P, messages := M, intervals := {Lo, Hi}} =
                       lists:nth(K, maps:get(phases, R)),
                   io:format(" | ~9s ~7b ~9s", [ms(P), M, range(Lo, Hi)])
               end || {_, R} <- Rows],
              #{push := Push} = lists:nth(K, maps:get(phases, element(2, lists:last(Rows)))),
              io:format(" ~6s", [push(Push)]),
              io:format("~n")
      end, lists:seq(1, length(Phases))),
    io:format("~-18s", ["windows met"]),
    [begin
         {Met, All} = maps:get(windows, R),
         io:format(" | ~27s", [io_lib:format("~b/~b (~.1f%)", [Met, All, pct(Met, All)])])
     end || {_, R} <- Rows],
    io:format("~n~-18s", ["messages in all"]),
    Total = fun(R) -> lists:sum([M || #{messages := M} <- maps:get(phases, R)]) end,
    [io:format(" | ~27b", [Total(R)]) || {_, R} <- Rows],
    [{_, _}, {_, BestR}, {_, TunerR}] = Rows,
    io:format("~ntuner: ~b changes; messages ~.2f x the best fixed interval's~n",
              [length(maps:get(changes, TunerR)), Total(TunerR) / max(1, Total(BestR))]),
    T0 = maps:get(t0, TunerR),
    [io:format("  ~6.1f s  ~s ~p -> ~p  ~0p~n", [(At - T0) / 1.0e6, K, O, N, rnd(Why)])
     || #{at_us := At, key := K, old := O, new := N, why := Why} <- maps:get(changes, TunerR)].

%% Floats to two decimals, for the log.
rnd(F) when is_float(F) -> round(F * 100) / 100;
rnd(T) when is_tuple(T) -> list_to_tuple([rnd(E) || E <- tuple_to_list(T)]);
rnd(M) when is_map(M) -> maps:map(fun(_, V) -> rnd(V) end, M);
rnd(X) -> X.

ms(undefined) -> "-";
ms(infinity) -> "unconv.";
ms(Us) -> io_lib:format("~.1f", [Us / 1000]).

push([false]) -> "off";
push([true]) -> "on";
push(_) -> "off/on".

range(I, I) -> integer_to_list(I);
range(Lo, Hi) -> io_lib:format("~b-~b", [Lo, Hi]).

pct(_, 0) -> 100.0;
pct(M, A) -> 100 * M / A.
