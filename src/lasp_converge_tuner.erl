%% @doc Propagation control: one call to set how fast state propagates on
%% every node of a cluster, and a controller per variable that sets it from
%% what it measures.
%%
%% == Settings ==
%%
%% `set(Settings)' applies `state_interval', `delta_interval' (ms),
%% `propagate_on_update', `jitter' (booleans) and `jitter_percent' (0..100)
%% on every member node. A node where Lasp runs (its `lasp' application is
%% started and `lasp_config' is loaded) gets them through
%% `lasp_config:set/2', one call per key, as Lasp reads them. Any other node
%% where the `lasp_converge' application runs gets them through
%% `lasp_converge_replicator:set/1', mapped onto the replicator's knobs:
%% the replicator runs one timer, for the mode in force, so `state_interval'
%% sets it in `state_based' mode and `delta_interval' in `delta_based' mode
%% (the other interval is kept on the node and takes over when it is set
%% again after a mode change); `jitter => false' sets the replicator's
%% `jitter_percent' to 0, `jitter => true' to the node's `jitter_percent'.
%% `get()' reads the five settings back from every member and says whether
%% they agree. Where a node has no value, Lasp's defaults are assumed:
%% 10 000 ms for both intervals, no propagation on update, no jitter, 1 %.
%%
%% == Controllers ==
%%
%% `start(Var, Policy, Opts)' runs a controller for the variable `Var' (a
%% `temporary' child of `lasp_converge_sup' on the calling node) that sets
%% the propagation interval of every member: `state_interval', or
%% `delta_interval' when the calling node's replicator runs `delta_based'
%% (option `key'). Policies:
%%
%% <ul>
%% <li>`{fixed, Ms}': the interval is `Ms'.</li>
%% <li>`{rate_proportional, #{updates_per_interval := K, min := Ms, max :=
%%     Ms}}': the interval is the time the variable takes to receive `K'
%%     updates at the measured rate (smoothed), within the bounds; `max'
%%     when nothing is updated.</li>
%% <li>`{target_p99, Ms}': the slowest propagation (the longest interval,
%%     the fewest messages) whose measured p99 convergence time stays under
%%     `Ms'. A window whose p99 is over the target shortens the interval at
%%     once, aiming at `aim' (default 0.7) times the target; the interval
%%     is lengthened, aiming at the same point, only after `calm' (default
%%     2) windows in a row under `low' (default 0.5) times the target.
%%     Between the two the interval stays. The aim rises to `aim_high'
%%     (default 0.85) when the last `2 × calm + 1' windows agree with the
%%     model, their gains (below) within 6 % of each other: the interval is
%%     then set for the higher aim from the highest of those gains (the aim
%%     rises with the interval: a move that the hysteresis or the dwell
%%     time holds back leaves the aim where it was, to be tried again). A
%%     window over the target brings the aim back to `aim', and it does
%%     not rise again for five dwell times. Push going on brings it back
%%     too (the interval kept is the base aim's), and it rises again once
%%     `2 × calm + 1' windows of rounds agree. Noisier measurements keep
%%     the margin of `aim'. With `push => auto' (the default) it also
%%     drives `propagate_on_update', below.</li>
%% <li>`{budget, MessagesPerSecond}': the fastest convergence (the
%%     shortest interval) whose replication messages for the variable,
%%     summed over the members (`lasp_converge_replicator:stats/0'), stay
%%     within the budget: over it the interval grows at once, under `low'
%%     times it for `calm' windows it shrinks, aiming at `aim' times the
%%     budget. Lasp nodes count no messages here.</li>
%% </ul>
%%
%% Against oscillation: the interval stays within `min'..`max' (default 5
%% to 60 000 ms; `rate_proportional' brings its own); a change smaller than
%% `hysteresis' (default 0.2, relative) is not made unless the target or
%% budget is exceeded; no change is made within `dwell' ms (default 2
%% windows) of the previous one; one change at most halves or doubles the
%% interval (quarters or quadruples it when the target or budget is
%% exceeded); the update rate is smoothed over windows.
%%
%% The first value comes from a model: a push gossip round reaches
%% `fanout + 1' times as many nodes, so an update needs about
%% `ceil(log(N) / log(fanout + 1))' rounds (one with `fanout => all'), each
%% waiting up to an interval, so p99 ≈ rounds × interval + latency
%% (`latency_ms', default 2); a round sends `peers' messages from each of
%% the `N' members (twice that in `delta_based' mode, with the
%% acknowledgements). Later values correct the model from measurements:
%% the measured p99 is taken as proportional to the interval beyond the
%% latency (the message rate as inversely proportional to it); the factor,
%% the gain, is measured each window and smoothed, and the interval is set
%% to bring the figure to the aim. Over the target or budget the higher
%% of the window's gain and the smoothed one is used.
%%
%% == Propagation on update (target_p99) ==
%%
%% With full-state gossip the p99 follows the interval whatever the update
%% rate, so the interval alone cannot send fewer messages than the one
%% interval that meets the target. Pushing each update as it is made
%% (`propagate_on_update') converges in about the latency, and costs
%% messages per update instead of per interval: `peers' for each update,
%% against `N × peers' each interval. The controller compares the two at
%% the measured rate `R' (updates a second, the mean of the last `calm + 1'
%% windows; to turn push on, the newest window's alone when its rate is
%% under half of each of the others': the rate fell from a busy spell, to
%% which they belong; not within five dwell times of push going off, so
%% that rates that come and go are judged by their mean), the interval
%% `I' the target needs at the base aim and the anti-entropy interval `A'
%% kept while pushing (`anti_entropy', default `max'):
%%
%% `share = R × I / (1000 × N) + I / A'
%%
%% the messages pushing would send over those of the interval: below 1
%% pushing is cheaper, so pushing pays below about `N' updates per
%% interval. `I' is the interval in force, or with the aim raised to
%% `aim_high' the interval the base aim would set from the same
%% measurements, `I × (aim × T − L) / (aim_high × T − L)' (698 ms for
%% 848): the higher aim trims the safety margin while the windows agree
%% with the model, and a window over the target takes it back, so the
%% switch is judged against rounds that do not depend on it, and its
%% hysteresis band does not move with the aim. That counts full-state
%% rounds; in `delta_based' mode a round sends a peer only what it
%% lacks, so at low rates the interval costs about what pushing does and
%% the switch buys convergence time rather than fewer messages. Push is
%% turned on when the share is under `1 - hysteresis' (0.8), after `calm +
%% 1' windows of measurements (after one when it is under half that, 0.4)
%% and not within the dwell time of the last change; `I' is kept (the aim
%% goes back to `aim', to rise again from the rounds measured after push),
%% and the interval goes to `A' (anti-entropy only). The replicator keeps its timer when the interval grows, as Lasp
%% does, so the round armed with the interval in force still goes out,
%% with any update written before push reached its writer. Push is turned
%% off, with that
%% interval back, when the share of the mean is over `1 / (1 - hysteresis)'
%% (1.25; after the dwell time), at once when a single window's is over
%% twice that (a surge: pushing costs messages per update; while pushing
%% the updates are also counted twenty times a window, since the window
%% began and since the most recent of the window's counts 5 updates ago,
%% and a part of a window counts with 10 updates or more whose rate is a
%% surge, or with 5 or more at four times a surge's rate), or when the
%% p99 measured while pushing is over the target (lost pushes, overload).
%% While pushing, the p99 does not move the interval. It starts without
%% push (turning it off if it finds it on), from the model's interval.
%% `push => never' leaves `propagate_on_update' alone; so does a fanout
%% smaller than `N - 1' (only the writer pushes, so an update would still
%% wait for gossip rounds), and a single node.
%%
%% == Measurements ==
%%
%% Every `window' ms (default 1000) the controller reads the tracker's
%% counters (`lasp_converge:stats/1', from the variable's aggregating node)
%% and the members' message counters, and takes the difference with the
%% previous reading: updates, update rate, finished updates, messages and
%% message rate over the window. The tracker's figures are cumulative and
%% are not reset: its percentiles cover the whole measurement, which other
%% readers (scenarios, reports) need, and `reset/1' would also clear its
%% marks. The window's p50/p99/max are computed from the raw records of
%% the updates that finished in the window and were made after the
%% interval in force was set (the newest of the tracker's `record_window'
%% records, `lasp_converge:records/1'), an unconverged update
%% counting as infinitely slow: an update made under the previous settings
%% says nothing about these. `target_p99' reads them, the other
%% policies only the counters. The window of samples is extended while it
%% has fewer than `min_samples' (default 10) such updates, until it lasts
%% `max_window' ms (default 10 windows); the counters (the rate that
%% drives propagation on update) are still taken every window, and a
%% window without p99 moves no interval.
%%
%% The decision logic is pure: `decide(Policy, State, Measurement)' returns
%% the new interval, `#{propagate_on_update => Bool, interval => Ms}' or
%% `keep', and the next state; `initial/2' the model's first value. Every
%% change is logged with its time, the key (the interval's or
%% `propagate_on_update'), the old and new value, the reason and the
%% measurement that caused it (`log/1'), and recorded as a tracker mark
%% `#{at_us, tuner, key, old, new, why}' on the variable's aggregating node
%% (`lasp_converge:mark/1'), so reports can draw interval changes next to
%% convergence.
%%
%% The gossip model: Demers et al., "Epidemic Algorithms for Replicated
%% Database Maintenance", PODC 1987 (push rumour spreading reaches all N
%% nodes in O(log N) rounds).
-module(lasp_converge_tuner).
-behaviour(gen_server).

-compile({no_auto_import, [get/0, get/1]}).

-export([set/1, set/2, get/0, get/1,
         start/2, start/3, stop/1, log/1, status/1, running/0, recommend/1]).
-export([init_state/2, initial/2, decide/3, rounds/2, window_figures/1, push_share/2]).
%% Called on each member by set/2 and get/1.
-export([set_local/1, get_local/0]).
-export([start_link/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-type var() :: term().
-type key() :: state_interval | delta_interval.
-type settings() :: #{state_interval => pos_integer(),
                      delta_interval => pos_integer(),
                      propagate_on_update => boolean(),
                      jitter => boolean(),
                      jitter_percent => 0..100}.
-type backend() :: lasp | replicator.
-type set_opts() :: #{nodes => [node()]}.
-type report() :: #{settings := settings(),
                    per_node := #{node() => settings() | {error, term()}},
                    backends := #{node() => backend() | none},
                    agree := boolean(),
                    disagree := [atom()]}.
-type policy() :: {fixed, pos_integer()}
                | {rate_proportional, #{updates_per_interval := number(),
                                        min := pos_integer(),
                                        max := pos_integer()}}
                | {target_p99, pos_integer()}
                | {budget, number()}.
-type opts() :: #{nodes => [node()],
                  key => key(),
                  window => pos_integer(),
                  max_window => pos_integer(),
                  min_samples => non_neg_integer(),
                  min => pos_integer(),
                  max => pos_integer(),
                  dwell => non_neg_integer(),
                  hysteresis => float(),
                  aim => float(),
                  aim_high => float(),
                  low => float(),
                  calm => pos_integer(),
                  latency_ms => number(),
                  fanout => pos_integer() | all,
                  push => auto | never,
                  anti_entropy => pos_integer(),
                  mark => boolean()}.
-type measurement() :: #{at_ms := integer(),
                         window_ms := non_neg_integer(),
                         updates => non_neg_integer(),
                         rate => float(),
                         finished => non_neg_integer(),
                         samples => non_neg_integer(),
                         unconverged => non_neg_integer(),
                         p50 => non_neg_integer() | infinity | undefined,
                         p99 => non_neg_integer() | infinity | undefined,
                         max => non_neg_integer() | infinity | undefined,
                         samples_ms => non_neg_integer(),
                         partial => true,
                         messages => non_neg_integer(),
                         message_rate => float()}.
-type state() :: #{interval := pos_integer(),
                   min := pos_integer(),
                   max := pos_integer(),
                   dwell_ms := non_neg_integer(),
                   hysteresis := float(),
                   aim := float(),
                   aim_base := float(),
                   aim_high := float(),
                   target := pos_integer() | undefined,
                   recent := [float()],
                   raise_after := integer() | undefined,
                   low := float(),
                   calm := pos_integer(),
                   nodes := pos_integer(),
                   fanout := pos_integer() | all,
                   mode := state_based | delta_based,
                   latency_ms := number(),
                   last_change_ms := integer() | undefined,
                   below := non_neg_integer(),
                   rate := float() | undefined,
                   gain := float() | undefined,
                   push := boolean(),
                   push_auto := boolean(),
                   need := pos_integer(),
                   anti_entropy := pos_integer(),
                   rates := [{non_neg_integer(), non_neg_integer()}],
                   drop_after := integer() | undefined,
                   why := term()}.
%% A decision: keep everything, a new interval, or new values of the
%% interval and `propagate_on_update' together.
-type decision() :: keep | pos_integer()
                  | #{interval => pos_integer(), propagate_on_update => boolean()}.
-type log_entry() :: #{at_ms := integer(),
                       at_us := integer(),
                       key := key() | propagate_on_update,
                       old := pos_integer() | boolean(),
                       new := pos_integer() | boolean(),
                       why := term(),
                       measurement := measurement() | none,
                       result := ok | {error, term()}}.
-export_type([settings/0, report/0, policy/0, opts/0, measurement/0, state/0,
              log_entry/0, key/0, decision/0]).

-define(KEYS, [state_interval, delta_interval, propagate_on_update, jitter, jitter_percent]).
-define(LASP_DEFAULTS, #{state_interval => 10000, delta_interval => 10000,
                         propagate_on_update => false, jitter => false,
                         jitter_percent => 1}).
-define(ENV, tuner_settings).
-define(TIMEOUT, 15000).
-define(SUP, lasp_converge_sup).
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

%% ---- settings ----

%% @equiv set(Settings, #{})
-spec set(settings()) -> {ok, #{node() => backend()}} | {error, term()}.
set(Settings) ->
    set(Settings, #{}).

%% @doc Apply `Settings' on every member: `nodes' (default this node and
%% every connected node where Lasp or the `lasp_converge' application
%% runs). Returns where each node took them (`lasp' or `replicator'), or
%% `{error, {set_failed, [{Node, Reason}]}}' naming the nodes that did not
%% take them (the others did).
-spec set(settings(), set_opts()) -> {ok, #{node() => backend()}} | {error, term()}.
set(Settings, Opts) when is_map(Settings), is_map(Opts) ->
    case valid(Settings) of
        ok ->
            Rs = [{N, set_on(N, Settings)} || N <- members(Opts)],
            case [{N, E} || {N, {error, E}} <- Rs] of
                [] -> {ok, maps:from_list(Rs)};
                Bad -> {error, {set_failed, Bad}}
            end;
        E ->
            E
    end;
set(_, _) ->
    {error, bad_settings}.

%% @equiv get(#{})
-spec get() -> report().
get() ->
    get(#{}).

%% @doc Read the settings back from every member (`nodes' as for
%% `set/2'): `per_node' holds each node's five settings, `settings' those
%% on which every node agrees, `disagree' the keys on which they do not,
%% `agree' whether that list is empty and every node answered.
-spec get(set_opts()) -> report().
get(Opts) when is_map(Opts) ->
    Ns = members(Opts),
    Per = [{N, B, get_on(N, B)} || N <- Ns, B <- [backend(N)]],
    Good = [S || {_, _, S} <- Per, is_map(S)],
    Disagree = [K || K <- ?KEYS,
                     length(lists:usort([maps:get(K, S) || S <- Good])) > 1],
    Agreed = case Good of
                 [] -> #{};
                 [S0 | _] -> maps:without(Disagree, S0)
             end,
    #{settings => Agreed,
      per_node => maps:from_list([{N, S} || {N, _, S} <- Per]),
      backends => maps:from_list([{N, B} || {N, B, _} <- Per]),
      agree => Disagree =:= [] andalso length(Good) =:= length(Per),
      disagree => Disagree}.

%% @private Apply `Settings' to this node's replicator (see the module doc
%% for the mapping).
-spec set_local(settings()) -> ok | {error, term()}.
set_local(Settings) ->
    Stored0 = application:get_env(lasp_converge, ?ENV, #{}),
    Cur = lasp_converge_replicator:settings(),
    Mode = maps:get(mode, Cur, state_based),
    Interval = [{state_interval, V} || {ok, V} <- [maps:find(interval_key(Mode), Settings)]],
    Propagate = [{propagate_on_update, V}
                 || {ok, V} <- [maps:find(propagate_on_update, Settings)]],
    #{jitter := J0, jitter_percent := P0} = read_local(Cur, Stored0),
    J = maps:get(jitter, Settings, J0),
    P = maps:get(jitter_percent, Settings, P0),
    {Jitter, Stored} =
        case maps:is_key(jitter, Settings) orelse maps:is_key(jitter_percent, Settings) of
            true ->
                {[{jitter_percent, case J of true -> P; false -> 0 end}],
                 maps:merge(Stored0, Settings#{jitter => J, jitter_percent => P})};
            false ->
                {[], maps:merge(Stored0, Settings)}
        end,
    case lasp_converge_replicator:set(maps:from_list(Interval ++ Propagate ++ Jitter)) of
        {ok, _} ->
            application:set_env(lasp_converge, ?ENV, Stored);
        {error, _} = E ->
            E
    end.

%% @private This node's settings as the replicator runs them.
-spec get_local() -> settings().
get_local() ->
    read_local(lasp_converge_replicator:settings(),
               application:get_env(lasp_converge, ?ENV, #{})).

read_local(Cur, Stored) ->
    Mode = maps:get(mode, Cur, state_based),
    Interval = maps:get(state_interval, Cur),
    Ints = maps:from_list([{K, case interval_key(Mode) of
                                   K -> Interval;
                                   _ -> maps:get(K, Stored, maps:get(K, ?LASP_DEFAULTS))
                               end} || K <- [state_interval, delta_interval]]),
    P = maps:get(jitter_percent, Cur, 0),
    %% The stored jitter flag wins when the replicator runs none, so that
    %% `jitter => true' with `jitter_percent => 0' reads back as set.
    Jitter = case P of
                 0 -> maps:get(jitter, Stored, false)
                          andalso maps:get(jitter_percent, Stored, 1) =:= 0;
                 _ -> true
             end,
    Ints#{propagate_on_update => maps:get(propagate_on_update, Cur, false),
          jitter => Jitter,
          jitter_percent => case P of
                                0 -> maps:get(jitter_percent, Stored,
                                              maps:get(jitter_percent, ?LASP_DEFAULTS));
                                _ -> P
                            end}.

interval_key(delta_based) -> delta_interval;
interval_key(_) -> state_interval.

set_on(N, Settings) ->
    try
        case backend(N) of
            lasp ->
                lists:foreach(fun({K, V}) -> erpc:call(N, lasp_config, set, [K, V], ?TIMEOUT) end,
                              lists:sort(maps:to_list(Settings))),
                lasp;
            replicator ->
                case erpc:call(N, ?MODULE, set_local, [Settings], ?TIMEOUT) of
                    ok -> replicator;
                    {error, _} = E -> E
                end;
            none ->
                {error, not_running}
        end
    catch C:R ->
            {error, {C, R}}
    end.

get_on(N, B) ->
    try
        case B of
            lasp ->
                maps:map(fun(K, D) -> erpc:call(N, lasp_config, get, [K, D], ?TIMEOUT) end,
                         ?LASP_DEFAULTS);
            replicator ->
                erpc:call(N, ?MODULE, get_local, [], ?TIMEOUT);
            none ->
                {error, not_running}
        end
    catch C:R ->
            {error, {C, R}}
    end.

members(#{nodes := Ns}) ->
    lists:usort(Ns);
members(_) ->
    [N || N <- lists:usort([node() | nodes()]), backend(N) =/= none].

%% Lasp when its application runs there and `lasp_config' loads; else the
%% replicator when the lasp_converge application runs.
backend(N) ->
    try
        Lasp = lists:keymember(lasp, 1, erpc:call(N, application, which_applications,
                                                  [], ?TIMEOUT))
            andalso element(1, erpc:call(N, code, ensure_loaded, [lasp_config], ?TIMEOUT))
                =:= module,
        case Lasp of
            true ->
                lasp;
            false ->
                case erpc:call(N, erlang, whereis, [?SUP], ?TIMEOUT) of
                    P when is_pid(P) -> replicator;
                    _ -> none
                end
        end
    catch _:_ ->
            none
    end.

valid(Settings) ->
    case [K || {K, V} <- maps:to_list(Settings), not valid(K, V)] of
        [] -> ok;
        Bad -> {error, {bad_settings, lists:sort(Bad)}}
    end.

valid(state_interval, I) -> is_integer(I) andalso I > 0;
valid(delta_interval, I) -> is_integer(I) andalso I > 0;
valid(propagate_on_update, B) -> is_boolean(B);
valid(jitter, B) -> is_boolean(B);
valid(jitter_percent, P) -> is_integer(P) andalso P >= 0 andalso P =< 100;
valid(_, _) -> false.

%% ---- decisions (pure) ----

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
    Why = {model, #{rounds => R, latency_ms => L}},
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
            gate(I / 4, {over_target, infinity}, missed(S, M), M, urgent);
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
                    gate(max(0.0, Base * T - L) / Gu, {over_target, P},
                         (missed(S, M))#{below := 0, gain := Gu}, M, urgent);
                false ->
                    case raise_aim(T, G, S#{gain := Gs}, M) of
                        {raised, Want, S1} ->
                            %% The aim rises with the interval or not at
                            %% all (a move within the hysteresis or the
                            %% dwell time is tried again next window).
                            case gate(Want, {aim, maps:get(aim, S1), P}, S1, M, normal) of
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
                                    calm(Want, {under_target, P}, S1, M);
                                false ->
                                    {keep, S1#{below := 0, why := {in_band, P}}}
                            end
                    end
            end
    end.

%% Over the target: back to the base aim, and no raise for five dwell
%% times.
missed(#{aim_base := Base, dwell_ms := Dwell} = S, M) ->
    S#{aim := Base, recent := [], raise_after := maps:get(at_ms, M) + 5 * Dwell}.

%% The aim rises from `aim' to `aim_high' once the last `2 × calm + 1'
%% windows agree with the model: their gains within ?SPREAD of each other,
%% so that the interval for the higher aim, set from the highest of them,
%% keeps the p99 there (`{raised, Interval, State}'); noisier measurements
%% keep the margin of the base aim (`{same, State}').
raise_aim(T, G, #{aim := Aim, aim_high := High, recent := R0, calm := Calm,
                  latency_ms := L, raise_after := After} = S, M) ->
    R = lists:sublist([G | R0], 2 * Calm + 1),
    S1 = S#{recent := R},
    Held = After =/= undefined andalso maps:get(at_ms, M) < After,
    Steady = length(R) > 2 * Calm andalso lists:min(R) > 0
        andalso lists:max(R) =< lists:min(R) * (1 + ?SPREAD),
    case Aim < High andalso not Held andalso Steady of
        true -> {raised, max(0.0, High * T - L) / lists:max(R), S1#{aim := High}};
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
                    Why = case Basis of
                              mean -> #{rate => Rate, share => Share};
                              drop -> #{rate => Rate, share => Share, drop => true}
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
                      true -> {surge, #{rate => Window, share => Sh}};
                      false -> undefined
                  end
          end,
    Why1 = case Why of
               undefined when Dwelt ->
                   case Over(Mean, 1 / (1 - H)) of
                       true -> {busy, #{rate => Mean, share => push_share(Mean, S)}};
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

%% ---- controllers ----

%% @equiv start(Var, Policy, #{})
-spec start(var(), policy()) -> {ok, pid()} | {error, term()}.
start(Var, Policy) ->
    start(Var, Policy, #{}).

%% @doc Start a controller for `Var' with `Policy' on this node (see the
%% module doc for the policies and options). `Var' must be tracked
%% (`lasp_converge:track/2') for `target_p99' and `rate_proportional'.
%% One controller per variable: `{error, already_started}'.
-spec start(var(), policy(), opts()) -> {ok, pid()} | {error, term()}.
start(Var, Policy, Opts) when is_map(Opts) ->
    case valid_policy(Policy) of
        false ->
            {error, {bad_policy, Policy}};
        true ->
            Spec = #{id => {?MODULE, Var},
                     start => {?MODULE, start_link, [Var, Policy, Opts]},
                     restart => temporary, shutdown => 5000, type => worker,
                     modules => [?MODULE]},
            try supervisor:start_child(?SUP, Spec) of
                {ok, Pid} -> {ok, Pid};
                {error, {already_started, _}} -> {error, already_started};
                {error, already_present} -> {error, already_started};
                {error, {Reason, _Child}} when not is_tuple(Reason) -> {error, Reason};
                {error, {{error, Reason}, _}} -> {error, Reason};
                {error, Reason} -> {error, Reason}
            catch exit:{noproc, _} ->
                    {error, not_started}
            end
    end;
start(_, _, _) ->
    {error, bad_opts}.

%% @doc Stop `Var''s controller on this node. The settings stay as they are.
-spec stop(var()) -> ok | {error, not_running}.
stop(Var) ->
    case supervisor:terminate_child(?SUP, {?MODULE, Var}) of
        ok ->
            _ = supervisor:delete_child(?SUP, {?MODULE, Var}),
            ok;
        {error, not_found} ->
            {error, not_running}
    end.

%% @doc The changes `Var''s controller made, oldest first: `at_ms' (system
%% time), `at_us' (the tracker's clock, as marks), `key', `old', `new',
%% `why', the `measurement' that caused it (`none' for the model's first
%% value) and the `result' of applying it (`{error, {set_failed, Bad}}'
%% names the nodes that did not take it; the others did, and the
%% controller goes on from the new value unless none took it).
-spec log(var()) -> [log_entry()] | {error, not_running}.
log(Var) ->
    call_running(Var, log).

%% @doc What `Var''s controller runs on: its `policy', `key', `nodes', the
%% decision `state' (the interval in force, and in `why' the reason of the
%% last decision) and the `last' window's measurement (`none' before the
%% first).
-spec status(var()) -> #{policy := policy(), key := key(), nodes := [node()],
                         state := state(), last := measurement() | none}
                     | {error, not_running}.
status(Var) ->
    call_running(Var, status).

%% @doc Settings to start from, before deploying or before a controller has
%% measured anything: the cheapest `state_interval' and `fanout' whose p99
%% convergence, simulated by `lasp_converge_sim' for `nodes' nodes at
%% `update_rate' updates a second, meets `target_p99' (ms). The same as
%% `lasp_converge_sim:recommend/1', which documents the options.
-spec recommend(map()) -> {ok, map()} | {error, term()}.
recommend(Spec) ->
    lasp_converge_sim:recommend(Spec).

%% @doc The variables with a controller on this node.
-spec running() -> [var()].
running() ->
    try supervisor:which_children(?SUP) of
        Cs -> [V || {{?MODULE, V}, P, _, _} <- Cs, is_pid(P)]
    catch exit:_ -> []
    end.

%% Ask `Var''s controller, or say that none runs (none started, or it
%% stopped before answering).
call_running(Var, Msg) ->
    case pid(Var) of
        {ok, Pid} ->
            try gen_server:call(Pid, Msg, ?TIMEOUT)
            catch exit:_ -> {error, not_running}
            end;
        error ->
            {error, not_running}
    end.

pid(Var) ->
    try supervisor:which_children(?SUP) of
        Cs ->
            case [P || {{?MODULE, V}, P, _, _} <- Cs, V =:= Var, is_pid(P)] of
                [P | _] -> {ok, P};
                [] -> error
            end
    catch exit:_ -> error
    end.

valid_policy({fixed, Ms}) -> is_integer(Ms) andalso Ms > 0;
valid_policy({rate_proportional, #{updates_per_interval := K, min := Lo, max := Hi}}) ->
    is_number(K) andalso K > 0 andalso is_integer(Lo) andalso Lo > 0
        andalso is_integer(Hi) andalso Hi >= Lo;
valid_policy({target_p99, Ms}) -> is_integer(Ms) andalso Ms > 0;
valid_policy({budget, R}) -> is_number(R) andalso R > 0;
valid_policy(_) -> false.

%% @private
-spec start_link(var(), policy(), opts()) -> {ok, pid()} | {error, term()}.
start_link(Var, Policy, Opts) ->
    gen_server:start_link(?MODULE, {Var, Policy, Opts}, []).

-record(c, {var :: var(),
            policy :: policy(),
            nodes :: [node()],
            key :: key(),
            window :: pos_integer(),
            max_window :: pos_integer(),
            min_samples :: non_neg_integer(),
            records :: boolean(),
            mark :: boolean(),
            dstate :: state(),
            %% The previous tick's snapshot, and the one that starts the
            %% window of samples (target_p99 extends it).
            prev :: map() | undefined,
            sprev :: map() | undefined,
            last = none :: measurement() | none,
            %% While pushing, the update counts of the surge checks of the
            %% last window, newest first: `{AtMs, Updates}'.
            checks = [] :: [{integer(), non_neg_integer()}],
            %% When the interval in force was set (the aggregating node's
            %% clock): updates made earlier are not measured.
            since_us = 0 :: integer(),
            log = [] :: [log_entry()]}).

%% @private
init({Var, Policy, Opts}) ->
    Nodes = members(Opts),
    Needs = element(1, Policy) =:= target_p99 orelse element(1, Policy) =:= rate_proportional,
    case Needs andalso not is_map(lasp_converge:stats(Var)) of
        true ->
            {stop, {error, not_tracked}};
        false ->
            Local = local_settings(),
            Mode = maps:get(mode, Local, state_based),
            Key = maps:get(key, Opts, interval_key(Mode)),
            Report = get(#{nodes => Nodes}),
            InForce = fun(K) ->
                              case Report of
                                  #{settings := #{K := V}} -> V;
                                  #{per_node := Per} ->
                                      hd([maps:get(K, S) || S <- maps:values(Per), is_map(S)]
                                         ++ [maps:get(K, ?LASP_DEFAULTS)])
                              end
                      end,
            Cur = InForce(Key),
            Window = maps:get(window, Opts, 1000),
            Ctx = maps:merge(#{dwell => 2 * Window}, Opts),
            S0 = init_state(Policy, maps:merge(#{fanout => maps:get(fanout, Local, all),
                                                 mode => Mode},
                                               Ctx#{interval => Cur, nodes => length(Nodes),
                                                    propagate_on_update =>
                                                        InForce(propagate_on_update)})),
            C0 = #c{var = Var, policy = Policy, nodes = Nodes, key = Key, window = Window,
                    max_window = maps:get(max_window, Opts, 10 * Window),
                    min_samples = case Policy of
                                      {target_p99, _} -> maps:get(min_samples, Opts, 10);
                                      _ -> 0
                                  end,
                    records = element(1, Policy) =:= target_p99,
                    mark = maps:get(mark, Opts, true),
                    dstate = S0#{interval := Cur}},
            {D, S1} = initial(Policy, C0#c.dstate),
            C1 = act(D, S1, none, C0),
            erlang:send_after(Window, self(), tick),
            erlang:send_after(surge_every(Window), self(), surge_check),
            Snap = snapshot(C1),
            {ok, C1#c{prev = Snap, sprev = Snap}}
    end.

%% @private
handle_call(log, _From, C) ->
    {reply, lists:reverse(C#c.log), C};
handle_call(status, _From, C) ->
    {reply, #{policy => C#c.policy, key => C#c.key, nodes => C#c.nodes,
              state => C#c.dstate, last => C#c.last}, C};
handle_call(_, _From, C) ->
    {reply, {error, bad_call}, C}.

%% @private
handle_cast(_, C) ->
    {noreply, C}.

%% @private
handle_info(tick, #c{prev = Prev, sprev = SPrev, window = W} = C) ->
    erlang:send_after(W, self(), tick),
    Now = snapshot(C),
    case measure(Prev, SPrev, Now, C) of
        restart ->
            {noreply, C#c{prev = Now, sprev = Now}};
        {M, Closed} ->
            {D, S} = decide(C#c.policy, C#c.dstate, M),
            SNext = case Closed of
                        true -> Now;
                        false -> SPrev
                    end,
            {noreply, (act(D, S, M, C))#c{prev = Now, sprev = SNext, last = M}}
    end;
handle_info(surge_check, #c{window = W, prev = Prev, dstate = #{push := Push}} = C) ->
    %% Pushing, each update costs messages: look at the updates since the
    %% last window twenty times as often, and at those since each of the
    %% last window's checks (the shortest such span with half ?SURGE_MIN
    %% updates), so that a steep surge shows within a few updates.
    erlang:send_after(surge_every(W), self(), surge_check),
    Counts = case Push of
                 true -> tracker_counts(C#c.var);
                 false -> #{}
             end,
    case {Push, Prev, Counts} of
        {true, #{updates := U0, at_ms := T0}, #{updates := U1}} when U1 >= U0 ->
            Now = erlang:monotonic_time(millisecond),
            Part = fun(T, U) ->
                           Ms = max(1, Now - T),
                           #{at_ms => Now, window_ms => Ms, partial => true,
                             updates => U1 - U, rate => (U1 - U) * 1000 / Ms}
                   end,
            Checks = [{T, U} || {T, U} <- C#c.checks, T >= Now - W, U =< U1],
            Recent = [Part(T, U) || {T, U} <- Checks, U1 - U >= ?SURGE_MIN div 2],
            C1 = C#c{checks = [{Now, U1} | Checks]},
            {D, S, M} = surge_decide(C1, [Part(T0, U0) | lists:sublist(Recent, 1)]),
            {noreply, act(D, S, M, C1)};
        _ ->
            {noreply, C#c{checks = []}}
    end;
handle_info(_, C) ->
    {noreply, C}.

surge_every(Window) ->
    max(25, Window div 20).

%% The first of the parts of a window that turns push off, else the last.
surge_decide(#c{policy = P, dstate = S0}, [M]) ->
    {D, S} = decide(P, S0, M),
    {D, S, M};
surge_decide(#c{policy = P, dstate = S0} = C, [M | Ms]) ->
    case decide(P, S0, M) of
        {keep, _} -> surge_decide(C, Ms);
        {D, S} -> {D, S, M}
    end.

%% Apply and log a decision: one call to set/2 for what changes, one log
%% entry and mark per key (propagate_on_update first).
act(keep, S, _M, C) ->
    C#c{dstate = S};
act(New, S, M, C) when is_integer(New) ->
    act(#{interval => New}, S, M, C);
act(Changes, #{why := Why} = S, M,
    #c{dstate = #{interval := OldI} = S0, key = Key, nodes = Ns} = C) ->
    OldP = maps:get(push, S0, false),
    Diff = [{K, Old, New}
            || {K, Old} <- [{propagate_on_update, OldP}, {Key, OldI}],
               {ok, New} <- [maps:find(case K of
                                            propagate_on_update -> K;
                                            _ -> interval
                                        end, Changes)],
               New =/= Old],
    case Diff of
        [] ->
            C#c{dstate = S};
        _ ->
            Settings = maps:from_list([{K, New} || {K, _, New} <- Diff]),
            {Result, Applied} = case set(Settings, #{nodes => Ns}) of
                                    {ok, _} -> {ok, true};
                                    %% Taken where the node answered.
                                    {error, {set_failed, Bad}} = E ->
                                        {E, length(Bad) < length(Ns)};
                                    {error, _} = E -> {E, false}
                                end,
            AtMs = erlang:system_time(millisecond),
            AtUs = agg_now(C#c.var),
            Entries = [#{at_ms => AtMs, at_us => AtUs, key => K, old => Old, new => New,
                         why => Why, measurement => M, result => Result}
                       || {K, Old, New} <- Diff],
            _ = C#c.mark andalso Applied andalso [mark(C#c.var, E) || E <- Entries],
            _ = Applied andalso lasp_converge_telemetry:tuner_changes(C#c.var, Entries),
            Log = lists:reverse(Entries) ++ C#c.log,
            case Applied of
                true -> C#c{dstate = S, log = Log, since_us = AtUs};
                false -> C#c{dstate = S#{interval := OldI, push := OldP}, log = Log}
            end
    end.

%% Now on the clock of the variable's aggregating node, which timestamps
%% the tracker's records and marks.
agg_now(Var) ->
    try lasp_converge_tracker:lookup(Var) of
        {ok, {_, Agg, _, _}} when node(Agg) =/= node() ->
            erpc:call(node(Agg), lasp_converge_tracker, now_us, [], ?TIMEOUT);
        _ ->
            lasp_converge_tracker:now_us()
    catch _:_ ->
            lasp_converge_tracker:now_us()
    end.

mark(Var, #{at_us := T, key := K, old := O, new := N, why := Why}) ->
    Mark = #{at_us => T, tuner => Var, key => K, old => O, new => N, why => Why},
    try lasp_converge_tracker:lookup(Var) of
        {ok, {_, Agg, _, _}} -> erpc:cast(node(Agg), lasp_converge, mark, [Mark]);
        _ -> ok
    catch _:_ -> ok
    end.

local_settings() ->
    try lasp_converge_replicator:settings()
    catch _:_ -> #{}
    end.

%% Counters now: the tracker's (with its records for target_p99) and the
%% members' messages for the variable.
snapshot(#c{var = Var, nodes = Ns, records = Records}) ->
    Counts = tracker_counts(Var),
    Tracker = case Records of
                  true -> Counts#{records => tracker_records(Var)};
                  false -> Counts
              end,
    Msgs = lists:sum([node_messages(N, Var) || N <- Ns]),
    Tracker#{at_ms => erlang:monotonic_time(millisecond), messages => Msgs}.

tracker_counts(Var) ->
    case lasp_converge:stats(Var) of
        #{updates := U, converged := Cv, unconverged := Un} = St ->
            #{updates => U, finished => Cv + Un + maps:get(orphaned, St, 0)};
        _ ->
            #{}
    end.

%% Oldest first: `{Id, TsUs, Outcome}', the update, its time (the
%% aggregating node's clock) and its convergence time (µs), `unconverged'
%% or `orphaned'.
tracker_records(Var) ->
    case lasp_converge:records(Var) of
        Rs when is_list(Rs) ->
            [{{O, Sq}, Ts, case R of
                               #{outcome := converged, convergence_us := Us} -> Us;
                               #{outcome := unconverged} -> unconverged;
                               _ -> orphaned
                           end}
             || #{origin := O, seq := Sq, ts_us := Ts} = R <- Rs];
        _ ->
            []
    end.

%% The records in `New' that follow the last one in `Old' (all of them
%% when it is gone: the window is longer than the tracker keeps).
after_last([], New) ->
    New;
after_last(Old, New) ->
    {Last, _, _} = lists:last(Old),
    case lists:splitwith(fun({Id, _, _}) -> Id =/= Last end, New) of
        {_, [_ | After]} -> After;
        {All, []} -> All
    end.

node_messages(N, Var) ->
    try erpc:call(N, lasp_converge_replicator, stats, [], ?TIMEOUT) of
        #{vars := #{Var := #{sent_messages := M}}} -> M;
        _ -> 0
    catch _:_ -> 0
    end.

%% The window from `A' to `B', and for target_p99 the figures of the
%% samples window from `SA' to `B' when it closes (`{M, true}'; it stays
%% open, `{M, false}', while it has too few finished updates); `restart'
%% when the tracker's counters went back (reset).
measure(A, SA, B, #c{min_samples = MinS, max_window = MaxW, since_us = Since}) ->
    W = maps:get(at_ms, B) - maps:get(at_ms, A),
    Base = #{at_ms => maps:get(at_ms, B), window_ms => W},
    M1 = case {A, B} of
             {#{updates := U0, finished := F0}, #{updates := U1, finished := F1}}
               when U1 >= U0, F1 >= F0 ->
                 Base#{updates => U1 - U0, rate => (U1 - U0) * 1000 / max(1, W),
                       finished => F1 - F0};
             {#{updates := _}, #{updates := _}} ->
                 restart;
             _ ->
                 Base
         end,
    case M1 of
        restart ->
            restart;
        _ ->
            Msgs = max(0, maps:get(messages, B) - maps:get(messages, A)),
            M2 = M1#{messages => Msgs, message_rate => Msgs * 1000 / max(1, W)},
            case maps:find(records, B) of
                {ok, Rs} ->
                    %% The updates that finished in the window and were
                    %% made under the interval in force.
                    SW = maps:get(at_ms, B) - maps:get(at_ms, SA),
                    Recent = after_last(maps:get(records, SA, []), Rs),
                    New = [V || {_, Ts, V} <- Recent, Ts >= Since, V =/= orphaned],
                    case length(New) < MinS andalso SW < MaxW of
                        true ->
                            {M2, false};
                        false ->
                            {maps:merge(M2#{samples => length(New), samples_ms => SW,
                                            unconverged => length([u || unconverged <- New])},
                                        window_figures(New)),
                             true}
                    end;
                error ->
                    {M2, true}
            end
    end.
