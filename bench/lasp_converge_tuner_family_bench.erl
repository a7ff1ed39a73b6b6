%% @doc The tuner over a family of schedules drawn from a seed, against
%% the best fixed interval and the offline optimum of each
%% (`lasp_converge_tuner:optimum/2').
%%
%% Run it the way `make bench' does:
%%
%%   rebar3 compile && mkdir -p _build/bench &&
%%   erlc -o _build/bench bench/lasp_converge_tuner_family_bench.erl &&
%%   erl -noshell -pa _build/default/lib/*/ebin -pa _build/bench \
%%       -eval 'lasp_converge_tuner_family_bench:main(), halt().'
%%
%% A schedule: 3 to 6 phases of 2 to 20 s, each at a rate drawn
%% log-uniformly from one update a minute to 200 a second; a p99 target
%% from 200 ms to 5 s (log-uniform); 3 to 5 nodes; state- or delta-based;
%% fanout all. For each, in the simulator (1 ms latency), window by window
%% (`lasp_converge_tuner_optimum'): the tuner's policy in closed loop
%% (`{target_p99, Target}', from Lasp's 10 s, `push => auto'), the best
%% fixed interval (the longest meeting the target in every phase, without
%% propagation on update) and the optimum's per-phase settings. It prints
%% per schedule the share of 1 s windows with updates whose p99 meets the
%% target and the messages, as a ratio to the optimum's; then the worst
%% share, and the median and worst ratios.
%%
%% Environment: `LASP_CONVERGE_FAMILY' (schedules, default 40),
%% `LASP_CONVERGE_FAMILY_SEED' (default 1), `LASP_CONVERGE_FAMILY_CLUSTER'
%% (how many of the schedules, the first ones, also run with the tuner on
%% a cluster of local nodes, replicator and tracker as in production;
%% default 1), `LASP_CONVERGE_FAMILY_SCALE' (phase lengths on the cluster
%% times this, default 1.0), `LASP_CONVERGE_FAMILY_TUNER' (the tuner's
%% options in the simulator, an Erlang map such as "#{aim => 0.8}").
-module(lasp_converge_tuner_family_bench).

-export([main/0, schedules/2]).

-define(O, lasp_converge_tuner_optimum).
-define(CL, lasp_converge_cluster).
-define(R, lasp_converge_replicator).
-define(T, lasp_converge_tuner).

-spec main() -> ok.
main() ->
    Count = env_int("LASP_CONVERGE_FAMILY", 40),
    Seed = env_int("LASP_CONVERGE_FAMILY_SEED", 1),
    OnCluster = env_int("LASP_CONVERGE_FAMILY_CLUSTER", 1),
    Scale = case os:getenv("LASP_CONVERGE_FAMILY_SCALE") of
                false -> 1.0;
                S -> list_to_float(S)
            end,
    Scheds = schedules(Count, Seed),
    io:format("~ntuner family bench: ~b schedules from seed ~b, in the simulator~n",
              [Count, Seed]),
    io:format("~3s ~5s ~2s ~6s ~-34s | ~17s | ~7s ~13s ~13s~n",
              ["#", "mode", "N", "target", "phases (s @ /s)", "windows met T/F/O",
               "opt msg", "fixed / opt", "tuner / opt"]),
    {Time, Rows} = timer:tc(fun() -> [one(K, Sc) || {K, Sc} <- Scheds] end),
    summary(Rows),
    io:format("simulated in ~.1f s~n", [Time / 1.0e6]),
    _ = [cluster(K, Sc, Scale, Row) || {{K, Sc}, Row} <- lists:zip(Scheds, Rows), K =< OnCluster],
    ok.

env_int(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        V -> list_to_integer(V)
    end.

%% @doc `Count' schedules drawn from `Seed': `{K, #{phases, target, nodes,
%% mode}}'.
-spec schedules(pos_integer(), integer()) -> [{pos_integer(), map()}].
schedules(Count, Seed) ->
    R0 = rand:seed_s(exsss, {Seed, 20, 6}),
    {L, _} = lists:mapfoldl(fun(K, R) -> {S, R1} = schedule(R), {{K, S}, R1} end, R0,
                            lists:seq(1, Count)),
    L.

schedule(R0) ->
    {NP, R1} = uniform(3, 6, R0),
    {Phases, R2} = lists:mapfoldl(
                     fun(J, R) ->
                             {D, Ra} = uniform(2, 20, R),
                             {Rate, Rb} = log_uniform(1 / 60, 200, Ra),
                             {{list_to_atom("p" ++ integer_to_list(J)), D * 1000, rate(Rate)}, Rb}
                     end, R1, lists:seq(1, NP)),
    {T, R3} = log_uniform(200, 5000, R2),
    {N, R4} = uniform(3, 5, R3),
    {M, R5} = uniform(1, 2, R4),
    {#{phases => Phases, target => 10 * round(T / 10), nodes => N,
       mode => element(M, {state_based, delta_based})}, R5}.

uniform(Lo, Hi, R) ->
    {X, R1} = rand:uniform_s(Hi - Lo + 1, R),
    {Lo + X - 1, R1}.

log_uniform(Lo, Hi, R) ->
    {U, R1} = rand:uniform_s(R),
    {math:exp(math:log(Lo) + U * (math:log(Hi) - math:log(Lo))), R1}.

%% Rates to three significant figures.
rate(R) ->
    Digits = 2 - floor(math:log10(R)),
    F = math:pow(10, Digits),
    round(R * F) / F.

opts(#{target := T, nodes := N, mode := Mode}) ->
    #{target_p99 => T, nodes => N, mode => Mode, tuner => tuner_opts()}.

%% The tuner's options (`lasp_converge_tuner:start/3''s, e.g. `aim'), from
%% `LASP_CONVERGE_FAMILY_TUNER' as an Erlang map, e.g. "#{aim => 0.8}".
tuner_opts() ->
    case os:getenv("LASP_CONVERGE_FAMILY_TUNER") of
        Text when is_list(Text), Text =/= "" ->
            {ok, Tokens, _} = erl_scan:string(Text ++ "."),
            {ok, Expr} = erl_parse:parse_exprs(Tokens),
            {value, M, _} = erl_eval:exprs(Expr, []),
            true = is_map(M),
            M;
        _ ->
            #{}
    end.

one(K, #{phases := Ph, target := T} = Sc) ->
    Opts = opts(Sc),
    {ok, Opt} = ?O:optimum(Ph, Opts),
    OptRun = ?O:open_loop([C || #{choice := C} <- maps:get(phases, Opt)], Ph, Opts),
    FixedI = case maps:get(best_fixed, Opt) of
                 #{interval := I} -> I;
                 none -> lists:min([I || #{periodic := #{interval := I}} <- maps:get(phases, Opt)])
             end,
    Fixed = ?O:open_loop([{interval, FixedI} || _ <- Ph], Ph, Opts),
    Tuner = ?O:closed_loop({target_p99, T}, Ph, Opts),
    OptM = max(1, maps:get(messages, OptRun)),
    Row = #{k => K, opt => OptRun, fixed => Fixed, tuner => Tuner, fixed_interval => FixedI,
            opt_messages => OptM,
            fixed_ratio => maps:get(messages, Fixed) / OptM,
            tuner_ratio => maps:get(messages, Tuner) / OptM,
            tuner_met => pct(Tuner), fixed_met => pct(Fixed), opt_met => pct(OptRun),
            choices => [C || #{choice := C} <- maps:get(phases, Opt)]},
    print_row(Sc, Row),
    Row.

pct(#{met := M, with_updates := W}) when W > 0 -> 100 * M / W;
pct(_) -> 100.0.

print_row(#{phases := Ph, target := T, nodes := N, mode := Mode},
          #{k := K} = Row) ->
    Phases = lists:join(" ", [io_lib:format("~b@~s", [D div 1000, fmt_rate(R)]) || {_, D, R} <- Ph]),
    io:format("~3b ~5s ~2b ~6b ~-34s | ~5.1f ~5.1f ~5.1f | ~7b ~6.2f ~6b ~6.2f~n",
              [K, case Mode of state_based -> "state"; delta_based -> "delta" end, N, T,
               Phases, maps:get(tuner_met, Row), maps:get(fixed_met, Row),
               maps:get(opt_met, Row), maps:get(opt_messages, Row),
               maps:get(fixed_ratio, Row), maps:get(fixed_interval, Row),
               maps:get(tuner_ratio, Row)]).

fmt_rate(R) when R < 1 -> io_lib:format("1/~b", [round(1 / R)]);
fmt_rate(R) -> io_lib:format("~s", [float_to_list(float(R), [{decimals, 1}, compact])]).

summary(Rows) ->
    Met = [maps:get(tuner_met, R) || R <- Rows],
    Ratios = lists:sort([maps:get(tuner_ratio, R) || R <- Rows]),
    FRatios = lists:sort([maps:get(fixed_ratio, R) || R <- Rows]),
    io:format("~ntuner: windows meeting the target: worst schedule ~.1f %, ~b of ~b "
              "schedules at 95 % or more (fixed: worst ~.1f %)~n",
              [lists:min(Met), length([M || M <- Met, M >= 95]), length(Rows),
               lists:min([maps:get(fixed_met, R) || R <- Rows])]),
    io:format("tuner messages / optimum: median ~.3f, worst ~.3f (best fixed: median ~.2f, "
              "worst ~.2f)~n",
              [median(Ratios), lists:last(Ratios), median(FRatios), lists:last(FRatios)]),
    Worst = lists:sublist(lists:reverse(lists:keysort(2, [{maps:get(k, R), maps:get(tuner_ratio, R)}
                                                          || R <- Rows])), 3),
    io:format("dearest schedules (tuner / optimum): ~s~n",
              [lists:join(", ", [io_lib:format("#~b ~.2f", [K, X]) || {K, X} <- Worst])]).

median(L) ->
    N = length(L),
    case N rem 2 of
        1 -> lists:nth(N div 2 + 1, L);
        0 -> (lists:nth(N div 2, L) + lists:nth(N div 2 + 1, L)) / 2
    end.

%% ---- the check on a cluster ----

%% The tuner on local nodes for one schedule (phase lengths times
%% `Scale'): its windows meeting the target and its messages, next to the
%% simulator's figures for the same schedule.
cluster(K, #{phases := Ph0, target := T, nodes := N, mode := Mode}, Scale, Row) ->
    Ph = [{Name, max(1000, round(D * Scale / 1000) * 1000), R} || {Name, D, R} <- Ph0],
    {ok, C} = ?CL:start(N, #{prefix => list_to_atom("lc_fam" ++ os:getpid())}),
    try
        Ns = [N1 | _] = ?CL:nodes(C),
        Var = {<<"family">>, state_awset},
        Key = case Mode of state_based -> state_interval; delta_based -> delta_interval end,
        _ = [{ok, _} = ?CL:call(C, Nd, ?R, set, [#{mode => Mode}]) || Nd <- Ns],
        {ok, _} = ?T:set(#{Key => 10000, propagate_on_update => false, jitter => false},
                         #{nodes => Ns}),
        ok = ?CL:call(C, N1, lasp_converge, track, [Var, #{nodes => Ns}]),
        {ok, _} = ?CL:call(C, N1, ?R, declare, [Var, state_awset, #{nodes => Ns}]),
        {ok, _} = ?CL:call(C, N1, ?T, start, [Var, {target_p99, T}, #{nodes => Ns}]),
        Now = fun() -> ?CL:call(C, N1, lasp_converge_tracker, now_us, []) end,
        Msgs = fun() -> lists:sum([msgs(C, Nd, Var) || Nd <- Ns]) end,
        T0 = Now(),
        M0 = Msgs(),
        Start = erlang:monotonic_time(millisecond),
        lists:foreach(fun({At, Nd}) ->
                              Wait = Start + At - erlang:monotonic_time(millisecond),
                              _ = Wait > 0 andalso timer:sleep(Wait),
                              Node = lists:nth(Nd, Ns),
                              {ok, _} = ?CL:call(C, Node, ?R, update, [Var, {add, At}, Node])
                      end, ?O:updates(Ph, N)),
        Left = Start + lists:sum([D || {_, D, _} <- Ph]) - erlang:monotonic_time(millisecond),
        _ = Left > 0 andalso timer:sleep(Left),
        M1 = Msgs(),
        T1 = Now(),
        timer:sleep(min(10000, 3 * T)),
        Records = [R || #{ts_us := Ts} = R <- ?CL:call(C, N1, lasp_converge, records, [Var]),
                        Ts >= T0, Ts < T1],
        Log = ?CL:call(C, N1, ?T, log, [Var]),
        {Met, All} = windows(Records, T0, T),
        SimOpt = case Scale of
                     1.0 -> io_lib:format("~.2f", [(M1 - M0) / maps:get(opt_messages, Row)]);
                     _ -> "-"
                 end,
        io:format("~ncluster check, schedule #~b (~b local nodes, phases x ~.2f): tuner windows "
                  "met ~b/~b (~.1f %), messages ~b (~s x the simulated optimum; simulated "
                  "tuner ~.2f x), ~b changes~n",
                  [K, N, Scale, Met, All, 100 * Met / max(1, All), M1 - M0, SimOpt,
                   maps:get(tuner_ratio, Row), length(Log)]),
        [io:format("  ~6.1f s  ~s ~p -> ~p  ~0p~n", [(At - T0) / 1.0e6, Ky, O, New, Why])
         || #{at_us := At, key := Ky, old := O, new := New, why := Why} <- Log]
    after
        ?CL:stop(C)
    end.

msgs(C, N, Var) ->
    case ?CL:call(C, N, ?R, stats, []) of
        #{vars := #{Var := #{sent_messages := M}}} -> M;
        _ -> 0
    end.

windows(Records, T0, Target) ->
    Groups = lists:foldl(fun(#{ts_us := Ts} = R, Acc) ->
                                 maps:update_with((Ts - T0) div 1000000,
                                                  fun(L) -> [value(R) | L] end,
                                                  [value(R)], Acc)
                         end, #{}, Records),
    Met = [W || W <- maps:values(Groups),
                case lasp_converge_tuner_policy:window_figures(W) of
                    #{p99 := P} when is_integer(P) -> P =< Target * 1000;
                    _ -> false
                end],
    {length(Met), maps:size(Groups)}.

value(#{outcome := converged, convergence_us := Us}) -> Us;
value(_) -> unconverged.
