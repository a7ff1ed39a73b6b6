%% @doc The tuner's decisions, pure: from a policy, a state and a window's
%% measurement to the next interval (and `propagate_on_update'), with no
%% process, clock or network. `lasp_converge_tuner''s module doc describes
%% the policies, the model and the rules; its controllers
%% (`lasp_converge_tuner_controller') call these functions once a window.
-module(lasp_converge_tuner_policy).

-export([init_state/2, initial/2, decide/3, rounds/2, window_figures/1, push_share/2,
         surge_min/0]).

-type policy() :: lasp_converge_tuner:policy().
-type state() :: lasp_converge_tuner:state().
-type measurement() :: lasp_converge_tuner:measurement().
-type decision() :: lasp_converge_tuner:decision().

%% Updates in part of a window that may show a surge (push off at once),
%% and how far over a surge's rate half as many must be.
-define(SURGE_MIN, 10).
-define(STEEP, 4).
%% Rate smoothing (exponentially weighted, weight of the newest window).
-define(ALPHA, 0.3).
%% Most spread (relative) of the gains of the windows that raise the aim.
-define(SPREAD, 0.06).
%% A share of push under this part of the threshold turns push on after
%% a single window.
-define(FAR, 0.5).
%% A window whose rate is under this part of the mean of the last windows
%% is judged alone when push may go on: the rate fell.
-define(DROP, 0.5).
%% Samples a window needs for its p99 to be a percentile rather than the
%% slowest of a few: `calm + 1' such windows in a row may raise the aim.
-define(RICH, 100).

%% @doc The controller's initial state for `Policy'. `Ctx' gives the
%% interval in force (`interval'), the cluster (`nodes': how many,
%% `fanout', `mode'), whether `propagate_on_update' is in force (default
%% `false') and any of the options `min', `max', `dwell', `hysteresis',
%% `aim', `aim_high', `low', `calm', `latency_ms', `push', `anti_entropy'.
-spec init_state(policy(), map()) -> state().
init_state(Policy, Ctx) ->
    {Min0, Max0} = case Policy of
                       {fixed, Ms} -> {min(Ms, 5), max(Ms, 60000)};
                       {rate_proportional, #{min := Lo, max := Hi}} -> {Lo, Hi};
                       _ -> {5, 60000}
                   end,
    Min = maps:get(min, Ctx, Min0),
    Max = max(Min, maps:get(max, Ctx, Max0)),
    I = clamp(maps:get(interval, Ctx, 10000), Min, Max),
    #{interval => I,
      min => Min,
      max => Max,
      dwell_ms => maps:get(dwell, Ctx, 2000),
      hysteresis => maps:get(hysteresis, Ctx, 0.2),
      aim => maps:get(aim, Ctx, 0.7),
      aim_base => maps:get(aim, Ctx, 0.7),
      aim_high => max(maps:get(aim, Ctx, 0.7), maps:get(aim_high, Ctx, 0.85)),
      rich => 0,
      target => case Policy of
                    {target_p99, T} -> T;
                    _ -> undefined
                end,
      recent => [],
      raise_after => undefined,
      low => maps:get(low, Ctx, 0.5),
      calm => maps:get(calm, Ctx, 2),
      nodes => max(1, maps:get(nodes, Ctx, 1)),
      fanout => maps:get(fanout, Ctx, all),
      mode => maps:get(mode, Ctx, state_based),
      latency_ms => maps:get(latency_ms, Ctx, 2),
      last_change_ms => undefined,
      below => 0,
      rate => undefined,
      gain => undefined,
      push => maps:get(propagate_on_update, Ctx, false),
      push_auto => maps:get(push, Ctx, auto) =:= auto,
      need => I,
      anti_entropy => clamp(maps:get(anti_entropy, Ctx, Max), Min, Max),
      rates => [],
      drop_after => undefined,
      why => init}.

%% @doc The model's first interval for `Policy' (see the module doc), or
%% `keep' when the policy needs a measurement first (`rate_proportional')
%% or the interval in force is already it. `target_p99' starts without
%% propagation on update: where it drives it and finds it on, it turns it
%% off with the model's interval (`#{propagate_on_update => false,
%% interval => Ms}').
-spec initial(policy(), state()) -> {decision(), state()}.
initial({fixed, Ms}, S) ->
    change(Ms, fixed, S);
initial({rate_proportional, _}, S) ->
    {keep, S#{why := no_rate_yet}};
initial({target_p99, T}, #{aim := Aim, latency_ms := L, nodes := N, fanout := F} = S) ->
    R = rounds(N, F),
    Why = {model, #{rounds => R, latency_ms => L, target_ms => T, aim => Aim,
                    interval => round((Aim * T - L) / R)}},
    case pushable(S) andalso maps:get(push, S) of
        true ->
            #{min := Min, max := Max} = S,
            Want = clamp(round((Aim * T - L) / R), Min, Max),
            {#{propagate_on_update => false, interval => Want},
             S#{interval := Want, need := Want, push := false, why := Why}};
        false ->
            {D, S1} = change((Aim * T - L) / R, Why, S),
            {D, S1#{need := maps:get(interval, S1)}}
    end;
initial({budget, B}, #{aim := Aim, nodes := N, fanout := F, mode := Mode} = S) ->
    PerRound = N * peers(N, F) * case Mode of delta_based -> 2; _ -> 1 end,
    change(PerRound * 1000 / (Aim * B), {model, #{messages_per_round => PerRound}}, S).

%% @doc Gossip rounds for an update to reach `N' nodes with `Fanout' peers
%% per round: 1 with `all' (or a fanout of `N - 1' or more), else
%% `ceil(log(N) / log(Fanout + 1))'.
-spec rounds(pos_integer(), pos_integer() | all) -> pos_integer().
rounds(N, F) ->
    case F =:= all orelse F >= N - 1 of
        true -> 1;
        false -> max(1, ceil(math:log(N) / math:log(F + 1)))
    end.

peers(N, all) -> max(0, N - 1);
peers(N, F) -> min(F, max(0, N - 1)).

%% @doc Decide, from the window's `Measurement', whether to change the
%% interval: `{NewInterval, NewState}' or `{keep, NewState}'; `target_p99'
%% may also turn propagation on update on or off, with the interval that
%% goes with it: `{#{propagate_on_update => Bool, interval => Ms},
%% NewState}'. The reason is in the new state's `why'.
-spec decide(policy(), state(), measurement()) -> {decision(), state()}.
decide({fixed, Ms}, S, _M) ->
    change(Ms, fixed, S);
decide({rate_proportional, #{updates_per_interval := K}}, #{rate := R0, max := Max} = S, M) ->
    case maps:find(rate, M) of
        {ok, R1} ->
            R = smooth(R1, R0),
            Want = case R > 0 of
                       true -> K * 1000 / R;
                       false -> Max
                   end,
            gate(Want, {rate, R}, S#{rate := R}, M, direct);
        error ->
            {keep, S#{why := no_rate}}
    end;
decide({target_p99, T}, S0, M) ->
    S = note_rate(M, S0),
    case push_step(T, S, M) of
        none ->
            {D, S1} = interval_step(T, S, M),
            {D, S1#{need := maps:get(interval, S1)}};
        Decision ->
            Decision
    end;
decide({budget, B}, #{interval := I, aim := Aim, low := Low, gain := C0} = S, M) ->
    case maps:find(message_rate, M) of
        error ->
            {keep, S#{why := no_messages}};
        {ok, R} ->
            %% The model: messages a second = gain / interval.
            C = R * I,
            Cs = smooth(C, C0),
            if
                R > B ->
                    Cu = max(C, Cs),
                    gate(Cu / (Aim * B), {over_budget, R}, S#{below := 0, gain := Cu}, M, urgent);
                R < Low * B ->
                    Want = case Cs > 0 of
                               true -> min(I, Cs / (Aim * B));
                               false -> I / 2
                           end,
                    calm(Want, {under_budget, R}, S#{gain := Cs}, M);
                true ->
                    {keep, S#{below := 0, gain := Cs, why := {in_band, R}}}
            end
    end.

%% The interval alone, propagation on update being off.
interval_step(T, #{interval := I, low := Low, latency_ms := L, gain := G0,
                   aim_base := Base} = S, M) ->
    case maps:get(p99, M, undefined) of
        undefined ->
            {keep, S#{why := no_samples}};
        infinity ->
            gate(I / 4, {over_target, #{p99_ms => infinity, target_ms => T,
                                        unconverged => maps:get(unconverged, M, 0),
                                        interval => round(I / 4)}},
                 missed(S, M), M, urgent);
        P99 ->
            %% The model: p99 = gain * interval + latency; the gain is
            %% measured (smoothed), starting from the model's rounds.
            P = P99 / 1000,
            G = max(P - L, 0.0) / I,
            Gs = smooth(G, G0),
            case P > T of
                true ->
                    %% Over: the higher of this window's gain and the
                    %% smoothed one, aiming at the base aim again.
                    Gu = max(G, Gs),
                    Asked = max(0.0, Base * T - L) / Gu,
                    gate(Asked, {over_target, figures(P, T, Gu, Base, L, Asked, M)},
                         (missed(S, M))#{below := 0, gain := Gu}, M, urgent);
                false ->
                    case raise_aim(T, G, S#{gain := Gs}, M) of
                        {raised, Want, S1, Gains} ->
                            %% The aim rises with the interval or not at
                            %% all (a move within the hysteresis or the
                            %% dwell time is tried again next window).
                            Figures = figures(P, T, lists:max(Gains), maps:get(aim, S1), L,
                                              Want, M),
                            Why = {aim, maps:get(aim, S1), Figures#{gains => Gains}},
                            case gate(Want, Why, S1, M, normal) of
                                {keep, S2} -> {keep, S2#{aim := maps:get(aim, S)}};
                                Moved -> Moved
                            end;
                        {same, #{aim := Aim} = S1} ->
                            Goal = max(0.0, Aim * T - L),
                            case P < Low * T of
                                true ->
                                    Want = case Gs > 0 of
                                               true -> max(I, Goal / Gs);
                                               false -> 2 * I
                                           end,
                                    calm(Want, {under_target,
                                                (figures(P, T, Gs, Aim, L, Want, M))#{
                                                  low => Low}}, S1, M);
                                false ->
                                    {keep, S1#{below := 0, why := {in_band, P}}}
                            end
                    end
            end
    end.

%% Over the target: back to the base aim, and no raise for five dwell
%% times.
missed(#{aim_base := Base, dwell_ms := Dwell} = S, M) ->
    S#{aim := Base, recent := [], rich => 0, raise_after := maps:get(at_ms, M) + 5 * Dwell}.

%% The aim rises from `aim' to `aim_high' once the last `2 × calm + 1'
%% windows agree with the model: their gains within ?SPREAD of each other,
%% so that the interval for the higher aim, set from the highest of them,
%% keeps the p99 there (`{raised, Interval, State}'); noisier measurements
%% keep the margin of the base aim (`{same, State}'). When the last `calm
%% + 1' windows each had ?RICH samples or more, their p99s are
%% percentiles rather than the slowest of a few updates, and those
%% windows are enough.
raise_aim(T, G, #{aim := Aim, aim_high := High, recent := R0, calm := Calm,
                  latency_ms := L, raise_after := After} = S, M) ->
    R = lists:sublist([G | R0], 2 * Calm + 1),
    Rich = case maps:get(samples, M, 0) >= ?RICH of
               true -> maps:get(rich, S, 0) + 1;
               false -> 0
           end,
    S1 = S#{recent := R, rich => Rich},
    Held = After =/= undefined andalso maps:get(at_ms, M) < After,
    %% Windows of many samples each: `calm + 1' of them are enough.
    Enough = case Rich > Calm of
                 true -> Calm + 1;
                 false -> 2 * Calm + 1
             end,
    Last = lists:sublist(R, Enough),
    Steady = length(Last) >= Enough andalso lists:min(Last) > 0
        andalso lists:max(Last) =< lists:min(Last) * (1 + ?SPREAD),
    case Aim < High andalso not Held andalso Steady of
        true -> {raised, max(0.0, High * T - L) / lists:max(Last), S1#{aim := High}, Last};
        false -> {same, S1}
    end.

%% ---- propagation on update (target_p99) ----

%% Driven only with `push => auto', on two nodes or more, when a push
%% reaches every other member (fanout `all' or at least `N - 1'): an
%% update is pushed by its writer only, so with a smaller fanout it would
%% still wait for gossip rounds.
pushable(#{push_auto := Auto, nodes := N, fanout := F}) ->
    Auto andalso N >= 2 andalso (F =:= all orelse F >= N - 1).

%% The last `calm + 1' windows' updates and lengths, newest first.
note_rate(#{partial := true}, S) ->
    S;
note_rate(#{updates := U, window_ms := W}, #{rates := Rs, calm := Calm} = S) ->
    S#{rates := lists:sublist([{U, W} | Rs], Calm + 1)};
note_rate(_, S) ->
    S.

mean_rate(Rs) ->
    case lists:sum([W || {_, W} <- Rs]) of
        0 -> undefined;
        Ms -> lists:sum([U || {U, _} <- Rs]) * 1000 / Ms
    end.

%% The rate push_on judges: the mean of the last `calm + 1' windows, or
%% the newest window's alone when it is under ?DROP times the rate of each
%% window before it (the rate fell from a busy spell, to which those
%% windows belong), unless push went off within five dwell times, so that
%% rates that come and go are judged by their mean.
on_rate([{U, W} | Older] = Rs, Calm, Now, After) when W > 0, length(Older) >= Calm ->
    Last = U * 1000 / W,
    Quick = After =:= undefined orelse Now >= After,
    Fell = lists:all(fun({U0, W0}) -> W0 > 0 andalso Last < ?DROP * U0 * 1000 / W0 end,
                     Older),
    case Quick andalso Fell of
        true -> {drop, Last};
        false -> {mean, mean_rate(Rs)}
    end;
on_rate(Rs, _, _, _) ->
    {mean, mean_rate(Rs)}.

%% @doc The messages propagation on update would send at `Rate' updates a
%% second, over those of the interval `Need' that meets the target at the
%% base aim (see the module doc): `Rate * Need / (1000 * N) + Need /
%% AntiEntropy'. Below 1, pushing each update costs fewer messages.
-spec push_share(number(), state()) -> float().
push_share(Rate, #{nodes := N, anti_entropy := AE} = S) ->
    Need = base_need(S),
    Rate * Need / (1000 * N) + Need / AE.

%% The interval push is judged against, and comes back to: the one in
%% force at the base aim, `I × (aim × T − L) / (aim_high × T − L)' while
%% the aim is raised (not under `min'); while pushing, the one kept. The
%% higher aim trims the safety margin because the last windows agreed
%% with the model, and a window over the target brings back the base
%% aim's interval; judged against the longer rounds it allows, pushing
%% would look dearer only because the margin had been trimmed, and the
%% switch's hysteresis band would move with the aim.
base_need(#{push := true, need := Need}) ->
    Need;
base_need(#{interval := I, aim := Aim, aim_base := Base, target := T, latency_ms := L,
            min := Min}) ->
    case is_number(T) andalso Aim > Base andalso Aim * T - L > 0 of
        true -> min(I, max(Min, I * max(0.0, Base * T - L) / (Aim * T - L)));
        false -> I
    end.

%% Turn propagation on update on or off (`none': the interval decides).
push_step(T, #{push := Push} = S, M) ->
    case pushable(S) of
        false -> none;
        true when Push -> push_off(T, S, M);
        true -> push_on(S, M)
    end.

push_on(#{rates := Rs, calm := Calm, hysteresis := H, anti_entropy := AE, aim_base := Base,
          dwell_ms := Dwell, last_change_ms := Last, drop_after := After} = S, M) ->
    Now = maps:get(at_ms, M),
    {Basis, Rate} = on_rate(Rs, Calm, Now, After),
    case Rate =/= undefined andalso (Last =:= undefined orelse Now - Last >= Dwell) of
        true ->
            Share = push_share(Rate, S),
            %% After `calm + 1' windows, or one when pushing costs far
            %% less than the threshold.
            Enough = length(Rs) > Calm orelse Share < ?FAR * (1 - H),
            case Enough andalso Share < 1 - H of
                true ->
                    %% Straight to the anti-entropy interval: the round
                    %% armed with the interval in force still goes out
                    %% (the replicator keeps its timer when the interval
                    %% grows), with what was written before push reached
                    %% the writer. The base aim's interval is kept, the
                    %% one push was judged against; a higher aim is earned
                    %% again from the rounds measured after push.
                    Figures = (share_figures(Rate, Share, S))#{under => 1 - H,
                                                               windows => length(Rs)},
                    Why = case Basis of
                              mean -> Figures;
                              drop -> Figures#{drop => true}
                          end,
                    {#{propagate_on_update => true, interval => AE},
                     S#{push := true, need := round(base_need(S)), aim := Base, recent := [],
                        interval := AE, last_change_ms := Now, below := 0,
                        why := {quiet, Why}}};
                false ->
                    none
            end;
        false ->
            none
    end.

push_off(T, #{rates := Rs, hysteresis := H, need := Need, dwell_ms := Dwell,
              last_change_ms := Last} = S, M) ->
    Now = maps:get(at_ms, M),
    Dwelt = Last =:= undefined orelse Now - Last >= Dwell,
    Window = maps:get(rate, M, undefined),
    Mean = mean_rate(Rs),
    Over = fun(undefined, _) -> false;
              (R, Limit) -> push_share(R, S) > Limit
           end,
    P99 = maps:get(p99, M, undefined),
    %% A surge: off at once, whatever the dwell time. Part of a window
    %% shows one with ?SURGE_MIN updates at least, or with half as many
    %% when its rate is ?STEEP times a surge's.
    Surge = 2 / (1 - H),
    Why = case is_number(Window) andalso push_share(Window, S) of
              false ->
                  undefined;
              Sh ->
                  U = maps:get(updates, M, 0),
                  Shows = not is_map_key(partial, M)
                      orelse (U >= ?SURGE_MIN andalso Sh > Surge)
                      orelse (U >= ?SURGE_MIN div 2 andalso Sh > ?STEEP * Surge),
                  case Shows andalso Sh > Surge of
                      true -> {surge, (share_figures(Window, Sh, S))#{
                                         over => Surge, updates => U,
                                         window_ms => maps:get(window_ms, M, 0)}};
                      false -> undefined
                  end
          end,
    Why1 = case Why of
               undefined when Dwelt ->
                   case Over(Mean, 1 / (1 - H)) of
                       true -> {busy, (share_figures(Mean, push_share(Mean, S), S))#{
                                        over => 1 / (1 - H), windows => length(Rs)}};
                       false -> undefined
                   end;
               _ ->
                   Why
           end,
    %% Pushing and still over the target (lost messages, overload): back
    %% to the interval.
    Why2 = case Why1 of
               undefined when P99 =:= infinity -> {over_target, infinity};
               undefined when is_integer(P99), P99 > T * 1000 -> {over_target, P99 / 1000};
               _ -> Why1
           end,
    case Why2 of
        undefined ->
            {keep, S#{why := {pushing, P99}}};
        _ ->
            {#{propagate_on_update => false, interval => Need},
             S#{push := false, interval := Need, last_change_ms := Now, below := 0,
                drop_after := Now + 5 * Dwell, why := Why2}}
    end.

%% The figures a decision on the interval was made from, for its `why':
%% the window's p99 (ms) and samples, the target, the gain (p99 per ms of
%% interval beyond the latency), the aim and the interval that they ask
%% for (before the bounds, step limits, dwell time and hysteresis).
figures(P, T, Gain, Aim, L, Asked, M) ->
    #{p99_ms => P, samples => maps:get(samples, M, undefined), target_ms => T,
      gain => Gain, aim => Aim, latency_ms => L, interval => round(Asked)}.

%% The figures of the push share: the rate, the interval and the
%% anti-entropy interval it compares, the nodes, and the share.
share_figures(Rate, Share, #{nodes := N, anti_entropy := AE} = S) ->
    #{rate => Rate, share => Share, interval => round(base_need(S)), anti_entropy => AE,
      nodes => N}.

smooth(X, undefined) -> float(X);
smooth(X, Prev) -> ?ALPHA * X + (1 - ?ALPHA) * Prev.

%% A move away from the target (lengthening for target_p99, shortening
%% for budget) waits for `calm' windows in a row.
calm(Want, Why, #{below := B0, calm := Calm} = S, M) ->
    case B0 + 1 of
        B when B >= Calm -> gate(Want, Why, S#{below := B}, M, normal);
        B -> {keep, S#{below := B, why := {calming, B, Why}}}
    end.

%% Bounds, step limits, dwell time and hysteresis. `urgent': the target or
%% budget is exceeded (no hysteresis; a step up to a quarter or four
%% times); `normal': a correction from measurements (a step up to half or
%% double); `direct': a value computed from the smoothed rate (no step
%% limit).
gate(Want0, Why, #{interval := I, min := Min, max := Max, dwell_ms := Dwell,
                   hysteresis := H, last_change_ms := Last} = S, M, Urgency) ->
    Now = maps:get(at_ms, M),
    {Lo, Hi} = case Urgency of
                   urgent -> {I / 4, I * 4};
                   normal -> {I / 2, I * 2};
                   direct -> {Min, Max}
               end,
    Want = clamp(round(clamp(Want0, Lo, Hi)), Min, Max),
    if
        Want =:= I ->
            {keep, S#{why := {no_change, Why}}};
        Last =/= undefined andalso Now - Last < Dwell ->
            {keep, S#{why := {dwell, Why}}};
        Urgency =/= urgent andalso abs(Want - I) < H * I ->
            {keep, S#{why := {hysteresis, Why}}};
        true ->
            {Want, S#{interval := Want, last_change_ms := Now, below := 0, why := Why}}
    end.

%% A change without dwell or hysteresis (the first value).
change(Want0, Why, #{interval := I, min := Min, max := Max} = S) ->
    case clamp(round(Want0), Min, Max) of
        I -> {keep, S#{why := {no_change, Why}}};
        Want -> {Want, S#{interval := Want, why := Why}}
    end.

clamp(X, Lo, Hi) -> max(Lo, min(Hi, X)).

%% @doc p50, p99 and max (µs) of a window's finished updates, given as
%% convergence times in µs or `unconverged' (infinitely slow); `undefined'
%% for an empty window. Nearest rank.
-spec window_figures([non_neg_integer() | unconverged]) ->
          #{p50 := non_neg_integer() | infinity | undefined,
            p99 := non_neg_integer() | infinity | undefined,
            max := non_neg_integer() | infinity | undefined}.
window_figures([]) ->
    #{p50 => undefined, p99 => undefined, max => undefined};
window_figures(Vs) ->
    %% Integers sort before atoms: unconverged ones come last.
    Sorted = list_to_tuple(lists:sort(Vs)),
    N = tuple_size(Sorted),
    Rank = fun(Q) ->
                   case element(max(1, ceil(Q * N)), Sorted) of
                       unconverged -> infinity;
                       V -> V
                   end
           end,
    #{p50 => Rank(0.5), p99 => Rank(0.99), max => Rank(1.0)}.

%% @doc Updates in part of a window that may show a surge: the controller
%% looks at parts with half as many or more.
-spec surge_min() -> pos_integer().
surge_min() ->
    ?SURGE_MIN.
