%% @doc What propagation could cost on a schedule of update rates, and what
%% the tuner's policy costs on it, both worked out with the simulator
%% (`lasp_converge_sim').
%%
%% == Schedules ==
%%
%% A schedule is a list of phases `{Name, DurationMs, Rate}': `Rate'
%% updates a second over the whole cluster for `DurationMs', evenly
%% spaced from the phase's start (a phase whose rate gives less than one
%% update has one, at its start), written on the nodes in turn
%% (`updates/2').
%%
%% == The offline optimum ==
%%
%% `optimum(Phases, Opts)' knows the whole schedule in advance and picks,
%% for each phase on its own, the cheapest in messages of two settings
%% whose p99 convergence (over the phase's updates, the worst of `seeds'
%% runs) meets `target_p99':
%% <ul>
%% <li>propagation on update, with the anti-entropy interval
%%     (`anti_entropy', default `max');</li>
%% <li>the longest periodic interval without it, found by bisection over
%%     intervals from `min' to `max' spaced by 2 % (the p99 grows with the
%%     interval).</li>
%% </ul>
%% Its total is the fewest messages any setting fixed per phase sends
%% while meeting the target in every phase: a controller, which learns
%% the rate as it goes, cannot do better than that on average. The result
%% also gives the best fixed interval: the shortest of the phases' longest
%% intervals, one interval for the whole schedule without propagation on
%% update.
%%
%% == The policy against the simulator ==
%%
%% `closed_loop(Policy, Phases, Opts)' runs a tuner policy
%% (`lasp_converge_tuner_policy') against the simulator as the plant,
%% window by window: the policy's settings are simulated over the
%% window's updates, and the window's measurement (updates, rate,
%% messages, and the p99 of the updates made since the sample window
%% began, extended until it holds `min_samples' of them or lasts
%% `max_window', as the controller does) goes back to the policy, whose
%% decision holds from the next window. `open_loop(Choices, Phases, Opts)'
%% runs settings chosen per phase (the optimum's, a fixed interval's)
%% through the same plant, so their messages and windows compare with
%% the policy's. Each window is its own run: timers start at random
%% phases, and an update made in a window converges under that window's
%% settings. While pushing, the controller's surge checks run within the
%% window (twenty a window) and a change there splits the window in two
%% runs, whose p99 is then the worse of the two parts'. Not modelled: the
%% controller's own timing (windows here are exact, measured at once).
%%
%% == Options ==
%%
%% `target_p99' (ms; required by `optimum/2', the policy's target
%% otherwise), `nodes' (3), `mode' (`state_based' | `delta_based'),
%% `fanout' (`all'), `latency' (as in `lasp_converge_sim:run/1'), `min' (5)
%% and `max' (60 000) ms, `anti_entropy' (`max'), `seeds' (2), `seed' (1),
%% `window' (1000 ms), `start' (10 000 ms: the interval in force when a
%% policy starts), `tuner' (options for `lasp_converge_tuner_policy:
%% init_state/2', such as `aim').
-module(lasp_converge_tuner_optimum).

-export([optimum/2, closed_loop/3, open_loop/3, simulate/4, updates/2]).

-type phase() :: {term(), pos_integer(), number()}.
-type settings() :: #{interval := pos_integer(), push := boolean()}.
-type choice() :: push | {interval, pos_integer()}.
-type cost() :: #{updates := non_neg_integer(),
                  p99 := non_neg_integer() | infinity | undefined,
                  messages := non_neg_integer()}.
-export_type([phase/0, settings/0, choice/0, cost/0]).

%% Spacing of the intervals the bisection looks at.
-define(STEP, 1.02).

%% @doc The offline optimum of `Phases' for `target_p99' (see the module
%% doc). Returns `{ok, #{messages, phases, best_fixed}}': per phase its
%% `name', `updates', the `choice' (`push' or `{interval, Ms}'), its
%% `messages' and `p99' (µs), and both candidates (`push' and `periodic'
%% as `#{interval, messages, p99, meets}'); `best_fixed' is `#{interval,
%% messages, meets}' (`none' when no interval meets the target in some
%% phase). A phase where neither meets the target takes the lower p99,
%% and `meets => false' is said of it. `{error, Reason}' for bad options
%% or a spec the simulator refuses.
-spec optimum([phase()], map()) -> {ok, map()} | {error, term()}.
optimum(Phases, #{target_p99 := T} = Opts) when is_number(T), T > 0 ->
    case valid_phases(Phases) of
        false ->
            {error, bad_schedule};
        true ->
            try
                Rows = [phase_optimum(P, Opts) || P <- Phases],
                Longest = [I || #{periodic := #{interval := I, meets := true}} <- Rows],
                Best = case length(Longest) =:= length(Rows) of
                           true -> fixed_cost(lists:min(Longest), Phases, Opts);
                           false -> none
                       end,
                {ok, #{messages => lists:sum([M || #{messages := M} <- Rows]),
                       meets => lists:all(fun(#{meets := Mt}) -> Mt end, Rows),
                       phases => Rows,
                       best_fixed => Best}}
            catch throw:{sim_error, Reason} ->
                    {error, Reason}
            end
    end;
optimum(_, _) ->
    {error, {bad_opts, target_p99}}.

phase_optimum({Name, D, Rate}, Opts) ->
    Us = phase_updates(D, Rate, node_count(Opts), 0),
    T = maps:get(target_p99, Opts) * 1000,
    Push = eval(#{interval => anti_entropy(Opts), push => true}, Us, D, Opts, T),
    Periodic = longest(Us, D, Opts, T),
    Choice = case {Push, Periodic} of
                 {#{meets := true, messages := A}, #{meets := true, messages := B}} when A =< B ->
                     {push, Push};
                 {_, #{meets := true}} -> {{interval, maps:get(interval, Periodic)}, Periodic};
                 {#{meets := true}, _} -> {push, Push};
                 _ -> case lower(maps:get(p99, Push), maps:get(p99, Periodic)) of
                          true -> {push, Push};
                          false -> {{interval, maps:get(interval, Periodic)}, Periodic}
                      end
             end,
    {C, #{messages := M, p99 := P, meets := Meets}} = Choice,
    #{name => Name, duration => D, rate => Rate, updates => length(Us), choice => C,
      messages => M, p99 => P, meets => Meets, push => Push, periodic => Periodic}.

lower(A, B) -> rank(A) < rank(B).

rank(undefined) -> -1;
rank(infinity) -> 1.0e300;
rank(X) -> X.

%% The longest interval of the grid that meets the target (bisection), or
%% the shortest one's figures when none does.
longest(Us, D, Opts, T) ->
    Grid = list_to_tuple(grid(min_of(Opts), max_of(Opts))),
    bisect(Grid, 1, tuple_size(Grid), Us, D, Opts, T, none, none).

bisect(_G, Lo, Hi, _Us, _D, _O, _T, Best, Miss) when Lo > Hi ->
    case Best of
        none -> Miss;
        _ -> Best
    end;
bisect(G, Lo, Hi, Us, D, Opts, T, Best, Miss) ->
    Mid = (Lo + Hi) div 2,
    case eval(#{interval => element(Mid, G), push => false}, Us, D, Opts, T) of
        #{meets := true} = E -> bisect(G, Mid + 1, Hi, Us, D, Opts, T, E, Miss);
        E -> bisect(G, Lo, Mid - 1, Us, D, Opts, T, Best, E)
    end.

grid(Min, Max) ->
    grid(Min, Max, [Min]).

grid(Min, Max, [Last | _] = Acc) ->
    case max(Last + 1, round(Last * ?STEP)) of
        Next when Next >= Max -> lists:reverse([Max | Acc]);
        Next -> grid(Min, Max, [Next | Acc])
    end.

%% A setting over a phase's updates, with every seed: the worst p99, the
%% mean messages.
eval(Set, Us, D, Opts, T) ->
    Seeds = maps:get(seeds, Opts, 2),
    Base = maps:get(seed, Opts, 1) * 1000,
    Rs = [simulate(Set, Us, D, Opts#{seed => Base + K}) || K <- lists:seq(1, Seeds)],
    P99 = lists:foldl(fun(#{p99 := P}, Acc) -> worse(P, Acc) end, undefined, Rs),
    #{interval => maps:get(interval, Set),
      messages => round(lists:sum([M || #{messages := M} <- Rs]) / Seeds),
      p99 => P99,
      meets => meets(P99, T)}.

worse(A, B) ->
    case rank(A) >= rank(B) of
        true -> A;
        false -> B
    end.

meets(undefined, _) -> true;
meets(infinity, _) -> false;
meets(P, T) -> P =< T.

fixed_cost(I, Phases, Opts) ->
    T = maps:get(target_p99, Opts) * 1000,
    Es = [eval(#{interval => I, push => false}, phase_updates(D, R, node_count(Opts), 0), D, Opts, T)
          || {_, D, R} <- Phases],
    #{interval => I, messages => lists:sum([M || #{messages := M} <- Es]),
      meets => lists:all(fun(#{meets := Mt}) -> Mt end, Es)}.

%% @doc One run of the plant: `Settings' in force over `DurationMs' with
%% the updates `[{AtMs, Node}]' (from 0): how many updates, their p99
%% convergence time (µs; `infinity' when one did not converge within the
%% horizon, `undefined' without updates) and the replication messages
%% sent within the `DurationMs' (acknowledgements included). Throws
%% `{sim_error, Reason}' when the simulator refuses the spec.
-spec simulate(settings(), [{number(), pos_integer()}], pos_integer(), map()) -> cost().
simulate(#{interval := I, push := Push}, Us, D, Opts) ->
    Mode = maps:get(mode, Opts, state_based),
    Spec = maps:merge(maps:with([latency, fanout], Opts),
                      #{nodes => node_count(Opts), mode => Mode, state_interval => I,
                        propagate_on_update => Push, seed => maps:get(seed, Opts, 1),
                        horizon => 2 * max_of(Opts) + 1000, max_samples => 0}),
    case Us of
        [] ->
            #{messages := M} = sim(Spec#{updates => [], until => D}),
            #{updates => 0, p99 => undefined, messages => M};
        _ ->
            #{messages := M0, end_us := End} = R = sim(Spec#{updates => Us}),
            M = case End =< D * 1000 of
                    %% Converged before the end: the rounds left.
                    true when Mode =:= state_based, End < D * 1000 ->
                        Left = max(1, (D * 1000 - End) div 1000),
                        #{messages := ML} = sim(Spec#{updates => [], until => Left,
                                                      seed => maps:get(seed, Spec) + 7}),
                        M0 + ML;
                    true ->
                        M0;
                    false ->
                        #{messages := MD} = sim(Spec#{updates => Us, until => D}),
                        MD
                end,
            #{updates => length(Us), p99 => p99(R), messages => M}
    end.

sim(Spec) ->
    case lasp_converge_sim:run(Spec) of
        {ok, R} -> R;
        {error, Reason} -> throw({sim_error, Reason})
    end.

p99(#{unconverged := U, pending := P}) when U + P > 0 -> infinity;
p99(#{p99 := P}) -> P.

%% @doc The updates of a schedule, `[{AtMs, Node}]' from 0, on `Nodes'
%% nodes in turn (see the module doc).
-spec updates([phase()], pos_integer()) -> [{non_neg_integer(), pos_integer()}].
updates(Phases, Nodes) ->
    {_, _, Acc} = lists:foldl(
                    fun({_, D, R}, {T0, K, A}) ->
                            Us = phase_updates(D, R, Nodes, K),
                            {T0 + D, K + length(Us), [[{T0 + At, N} || {At, N} <- Us] | A]}
                    end, {0, 0, []}, Phases),
    lists:append(lists:reverse(Acc)).

phase_updates(D, Rate, Nodes, K0) ->
    Times = [round(J * 1000 / Rate) || J <- lists:seq(0, max(1, ceil(D * Rate / 1000)) - 1),
                                       J * 1000 / Rate < D],
    [{At, (K0 + J) rem Nodes + 1} || {J, At} <- lists:zip(lists:seq(0, length(Times) - 1), Times)].

%% ---- the plant, window by window ----

%% @doc `Policy' (a `lasp_converge_tuner:policy()') against the simulator
%% over `Phases' (see the module doc). Returns `#{windows, messages, met,
%% with_updates, log}': per window `at_ms' (its start), `updates', `p99'
%% (µs), `messages', and the `interval' and `push' in force at its start;
%% `met' of the `with_updates' windows that had updates met `target_p99';
%% `log' the policy's changes, `#{at_ms, interval, push, why,
%% measurement}'.
-spec closed_loop(lasp_converge_tuner:policy(), [phase()], map()) -> map() | {error, term()}.
closed_loop(Policy, Phases, Opts) ->
    W = maps:get(window, Opts, 1000),
    Ctx = maps:merge(#{dwell => 2 * W},
                     maps:get(tuner, Opts, #{})),
    S0 = lasp_converge_tuner_policy:init_state(
           Policy, Ctx#{interval => maps:get(start, Opts, 10000), nodes => node_count(Opts),
                        fanout => maps:get(fanout, Opts, all),
                        mode => maps:get(mode, Opts, state_based),
                        propagate_on_update => false, min => min_of(Opts),
                        max => max_of(Opts), anti_entropy => anti_entropy(Opts)}),
    Set0 = #{interval => maps:get(start, Opts, 10000), push => false},
    {D0, S1} = lasp_converge_tuner_policy:initial(Policy, S0),
    Set1 = apply_decision(D0, Set0),
    Log0 = log_entry(0, D0, Set1, S1, none),
    %% A window's end, or (`{partial, Parts}') a surge check while pushing:
    %% the first part that changes something, else the last one's state.
    Step = fun({window, M}, Set, {S, Lg}) ->
                   {D, S2} = lasp_converge_tuner_policy:decide(Policy, S, M),
                   Set2 = apply_decision(D, Set),
                   {Set2, D =/= keep, {S2, log_entry(maps:get(at_ms, M), D, Set2, S2, M) ++ Lg}};
              ({partial, Parts}, Set, {S, Lg}) ->
                   Try = fun Try([M | Rest]) ->
                                 case lasp_converge_tuner_policy:decide(Policy, S, M) of
                                     {keep, S2} when Rest =:= [] -> {Set, false, {S2, Lg}};
                                     {keep, _} -> Try(Rest);
                                     {D, S2} ->
                                         Set2 = apply_decision(D, Set),
                                         {Set2, true,
                                          {S2, log_entry(maps:get(at_ms, M), D, Set2, S2, M)
                                           ++ Lg}}
                                 end
                         end,
                   Try(Parts)
           end,
    try plant(Phases, Opts, Set1, Step, {S1, Log0}) of
        {Res, {_, Log}} -> Res#{log => lists:reverse(Log)}
    catch throw:{sim_error, Reason} -> {error, Reason}
    end.

%% @doc Settings chosen per phase (`Choices', one `push' or `{interval,
%% Ms}' per phase, as `optimum/2' gives them) through the same plant as
%% `closed_loop/3', for comparison; a window takes the choice of the phase
%% it starts in.
-spec open_loop([choice()], [phase()], map()) -> map() | {error, term()}.
open_loop(Choices, Phases, Opts) when length(Choices) =:= length(Phases) ->
    Starts = element(2, lists:foldl(fun({_, D, _}, {T, A}) -> {T + D, [T | A]} end,
                                    {0, []}, Phases)),
    Table = lists:zip(lists:reverse(Starts), Choices),
    AE = anti_entropy(Opts),
    For = fun(At) ->
                  {_, C} = lists:last([E || {T0, _} = E <- Table, T0 =< At]),
                  case C of
                      push -> #{interval => AE, push => true};
                      {interval, I} -> #{interval => I, push => false}
                  end
          end,
    Step = fun({window, #{at_ms := At}}, Set, Acc) ->
                   Next = For(At),
                   {Next, Next =/= Set, Acc};
              ({partial, _}, Set, Acc) ->
                   {Set, false, Acc}
           end,
    try plant(Phases, Opts, For(0), Step, none) of
        {Res, _} -> Res
    catch throw:{sim_error, Reason} -> {error, Reason}
    end;
open_loop(_, _, _) ->
    {error, bad_choices}.

%% Window by window: while pushing, the surge checks (which may change the
%% settings within the window: the window is then simulated in two
%% parts), then the window's measurement, from which `Step' gives the next
%% settings and whether they changed (the sample window restarts).
plant(Phases, Opts, Set0, Step, Acc0) ->
    W = maps:get(window, Opts, 1000),
    Total = lists:sum([D || {_, D, _} <- Phases]),
    All = updates(Phases, node_count(Opts)),
    T = maps:get(target_p99, Opts, undefined),
    Seed = maps:get(seed, Opts, 1),
    Loop = fun Loop(At, _Set, _Span, Acc, Rows) when At >= Total ->
                   {lists:reverse(Rows), Acc};
               Loop(At, Set, SpanStart0, Acc0_, Rows) ->
                   Len = min(W, Total - At),
                   Us = in(All, At, At + Len),
                   WSeed = Seed * 100000 + At div W,
                   {Split, SetB, Acc} = surge_checks(Set, Us, At, Len, Step, Acc0_),
                   Cost = case Split of
                              Len ->
                                  simulate(Set, Us, Len, Opts#{seed => WSeed});
                              _ ->
                                  add(simulate(Set, in(Us, 0, Split), Split,
                                               Opts#{seed => WSeed}),
                                      simulate(SetB, in(Us, Split, Len), Len - Split,
                                               Opts#{seed => WSeed + 70000}))
                          end,
                   SpanStart = case Split of
                                   Len -> SpanStart0;
                                   _ -> At + Split
                               end,
                   Span = case SpanStart of
                              At -> {Cost, Len};
                              _ -> {span, in(All, SpanStart, At + Len), At + Len - SpanStart,
                                    SetB, WSeed + 50000}
                          end,
                   M = measurement(At + Len, Len, Cost, Span, Opts),
                   {Next, Changed, Acc1} = Step({window, M}, SetB, Acc),
                   SpanNext = case Changed orelse sample_done(Span, Opts) of
                                  true -> At + Len;
                                  false -> SpanStart
                              end,
                   Row = Cost#{at_ms => At, interval => maps:get(interval, Set),
                               push => maps:get(push, Set)},
                   Loop(At + Len, Next, SpanNext, Acc1, [Row | Rows])
           end,
    {Rows, Acc} = Loop(0, Set0, 0, Acc0, []),
    With = [R || #{updates := U} = R <- Rows, U > 0],
    Met = [R || #{p99 := P} = R <- With, T =:= undefined orelse meets(P, T * 1000)],
    {#{windows => Rows, messages => lists:sum([M || #{messages := M} <- Rows]),
       met => length(Met), with_updates => length(With)}, Acc}.

%% The controller's checks while pushing, every `max(25, W / 20)' ms: the
%% updates since the window began and since the latest earlier check with
%% half `surge_min()' of them or more. `{SplitMs, Settings, Acc}': where
%% the settings changed (the window's length when they did not).
surge_checks(#{push := false} = Set, _Us, _At, Len, _Step, Acc) ->
    {Len, Set, Acc};
surge_checks(Set, Us, At, Len, Step, Acc) ->
    Every = max(25, Len div 20),
    Half = lasp_converge_tuner_policy:surge_min() div 2,
    Count = fun(C) -> length([x || {T, _} <- Us, T < C]) end,
    Check = fun Check(C, _Checks, A) when C >= Len ->
                    {Len, Set, A};
                Check(C, Checks, A) ->
                    U = Count(C),
                    Part = fun(From, U0) ->
                                   Ms = max(1, C - From),
                                   #{at_ms => At + C, window_ms => Ms, partial => true,
                                     updates => U - U0, rate => (U - U0) * 1000 / Ms}
                           end,
                    Recent = [Part(T0, U0) || {T0, U0} <- Checks, U - U0 >= Half],
                    case Step({partial, [Part(0, 0) | lists:sublist(Recent, 1)]}, Set, A) of
                        {Next, true, A1} -> {C, Next, A1};
                        {_, false, A1} -> Check(C + Every, [{C, U} | Checks], A1)
                    end
            end,
    Check(Every, [], Acc).

add(#{updates := U1, p99 := P1, messages := M1}, #{updates := U2, p99 := P2, messages := M2}) ->
    %% The window's p99: the worse of its two parts' (an upper bound).
    P = case {U1, U2} of
            {0, _} -> P2;
            {_, 0} -> P1;
            _ -> worse(P1, P2)
        end,
    #{updates => U1 + U2, p99 => P, messages => M1 + M2}.

in(Us, A, B) ->
    [{At - A, N} || {At, N} <- Us, At >= A, At < B].

%% Whether the sample window is complete: `min_samples' updates, or
%% `max_window' ms long.
sample_done({#{updates := U}, Len}, Opts) ->
    U >= min_samples(Opts) orelse Len >= max_window(Opts);
sample_done({span, Us, Len, _, _}, Opts) ->
    length(Us) >= min_samples(Opts) orelse Len >= max_window(Opts).

min_samples(Opts) -> maps:get(min_samples, maps:get(tuner, Opts, #{}), 10).

max_window(Opts) ->
    maps:get(max_window, maps:get(tuner, Opts, #{}), 10 * maps:get(window, Opts, 1000)).

%% The window's measurement, as the controller makes it: the counters of
%% the window, and the p99 of the sample window once it is complete.
measurement(AtMs, W, #{updates := U, messages := M}, Span, Opts) ->
    Base = #{at_ms => AtMs, window_ms => W, updates => U, rate => U * 1000 / W,
             finished => U, messages => M, message_rate => M * 1000 / W},
    case sample_done(Span, Opts) of
        false ->
            Base;
        true ->
            #{p99 := P, updates := N} =
                case Span of
                    {Cost, _} -> Cost;
                    {span, Us, Len, Set, Seed} -> simulate(Set, Us, Len, Opts#{seed => Seed})
                end,
            case P of
                undefined -> Base;
                _ -> Base#{p99 => P, samples => N}
            end
    end.

apply_decision(keep, Set) -> Set;
apply_decision(I, Set) when is_integer(I) -> Set#{interval := I};
apply_decision(#{} = D, Set) ->
    Set#{interval := maps:get(interval, D, maps:get(interval, Set)),
         push := maps:get(propagate_on_update, D, maps:get(push, Set))}.

log_entry(_, keep, _, _, _) -> [];
log_entry(At, _, Set, S, M) ->
    [Set#{at_ms => At, why => maps:get(why, S), measurement => M}].

%% ---- options ----

node_count(Opts) -> maps:get(nodes, Opts, 3).
min_of(Opts) -> maps:get(min, Opts, 5).
max_of(Opts) -> max(min_of(Opts), maps:get(max, Opts, 60000)).
anti_entropy(Opts) -> maps:get(anti_entropy, Opts, max_of(Opts)).

valid_phases(Ps) when is_list(Ps), Ps =/= [] ->
    lists:all(fun({_, D, R}) -> is_integer(D) andalso D > 0 andalso is_number(R) andalso R > 0;
                 (_) -> false
              end, Ps);
valid_phases(_) ->
    false.
