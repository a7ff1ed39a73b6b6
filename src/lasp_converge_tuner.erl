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
%% `temporary' child of `lasp_converge_tuner_sup' on the calling node) that sets
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
%%     model, their gains (below) within 6 % of each other, or the last
%%     `calm + 1' when each of them had 100 finished updates or more (its
%%     p99 is then a percentile, not the slowest of a few): the interval is
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
%% The decision logic is pure (`lasp_converge_tuner_policy'):
%% `decide(Policy, State, Measurement)' returns
%% the new interval, `#{propagate_on_update => Bool, interval => Ms}' or
%% `keep', and the next state; `initial/2' the model's first value. Every
%% change is logged with its time, the key (the interval's or
%% `propagate_on_update'), the old and new value, the reason and the
%% measurement that caused it (`log/1'), and recorded as a tracker mark
%% `#{at_us, tuner, key, old, new, why}' on the variable's aggregating node
%% (`lasp_converge:mark/1'), so reports can draw interval changes next to
%% convergence. The reason carries the figures the decision was made
%% from: `{model, #{rounds, latency_ms, target_ms, aim, interval}}' (the
%% interval the model asks for); `{over_target | under_target, #{p99_ms,
%% samples, target_ms, gain, aim, latency_ms, interval}}' (the window's
%% p99, the gain it gives and the interval that brings the p99 to the aim,
%% before the bounds, step limits, dwell time and hysteresis;
%% `under_target' adds `low'); `{aim, Aim, #{..., gains}}' (the same, with
%% the gains of the windows that agreed); `{quiet | surge | busy, #{rate,
%% share, interval, anti_entropy, nodes, ...}}' (the rate, the interval
%% and anti-entropy interval the push share compares, the share, and
%% `under' or `over', the threshold it crossed); `{over_target, P99Ms}'
%% while pushing.
%%
%% The gossip model: Demers et al., "Epidemic Algorithms for Replicated
%% Database Maintenance", PODC 1987 (push rumour spreading reaches all N
%% nodes in O(log N) rounds).
%%
%% == Modules ==
%%
%% This module is the API. The work is done by three others:
%% `lasp_converge_tuner_settings' (applying and reading the settings on
%% each member), `lasp_converge_tuner_policy' (the decisions, pure) and
%% `lasp_converge_tuner_controller' (the process per variable).
%% `lasp_converge_tuner_optimum' works out a schedule's offline optimum
%% (`optimum/2') and runs a policy against the simulator (`simulate/3').
-module(lasp_converge_tuner).

-compile({no_auto_import, [get/0, get/1]}).

-export([set/1, set/2, get/0, get/1,
         start/2, start/3, stop/1, log/1, status/1, running/0, recommend/1,
         optimum/2, simulate/3]).

-type var() :: term().
-type key() :: state_interval | delta_interval.
-type settings() :: #{state_interval => pos_integer(),
                      delta_interval => pos_integer(),
                      propagate_on_update => boolean(),
                      jitter => boolean(),
                      jitter_percent => 0..100}.
-type backend() :: lasp_converge_tuner_settings:backend().
-type set_opts() :: lasp_converge_tuner_settings:set_opts().
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
                   rich := non_neg_integer(),
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
-export_type([var/0, settings/0, report/0, policy/0, opts/0, measurement/0, state/0,
              log_entry/0, key/0, decision/0]).

-define(TIMEOUT, 15000).

%% ---- settings ----

%% @equiv set(Settings, #{})
-spec set(settings()) -> {ok, #{node() => backend()}} | {error, term()}.
set(Settings) ->
    lasp_converge_tuner_settings:set(Settings).

%% @doc Apply `Settings' on every member: `nodes' (default this node and
%% every connected node where Lasp or the `lasp_converge' application
%% runs). Returns where each node took them (`lasp' or `replicator'), or
%% `{error, {set_failed, [{Node, Reason}]}}' naming the nodes that did not
%% take them (the others did).
-spec set(settings(), set_opts()) -> {ok, #{node() => backend()}} | {error, term()}.
set(Settings, Opts) ->
    lasp_converge_tuner_settings:set(Settings, Opts).

%% @equiv get(#{})
-spec get() -> report().
get() ->
    lasp_converge_tuner_settings:get().

%% @doc Read the settings back from every member (`nodes' as for
%% `set/2'): `per_node' holds each node's five settings, `settings' those
%% on which every node agrees, `disagree' the keys on which they do not,
%% `agree' whether that list is empty and every node answered.
-spec get(set_opts()) -> report().
get(Opts) ->
    lasp_converge_tuner_settings:get(Opts).

%% ---- controllers ----

%% @equiv start(Var, Policy, #{})
-spec start(var(), policy()) -> {ok, pid()} | {error, term()}.
start(Var, Policy) ->
    start(Var, Policy, #{}).

%% @doc Start a controller for `Var' with `Policy' on this node (see the
%% module doc for the policies and options). `Var' must be tracked
%% (`lasp_converge:track/2') for `target_p99' and `rate_proportional'.
%% One controller per variable: `{error, already_started}'. An option not
%% listed in `opts()' is refused: `{error, {unknown_option, Key}}'; a value
%% of another kind than `opts()' gives, `{error, {bad_option, Key,
%% Value}}'; a policy that is not one of `policy()', `{error, {bad_policy,
%% Policy}}'. All are answered before any process starts.
-spec start(var(), policy(), opts()) -> {ok, pid()} | {error, term()}.
start(Var, Policy, Opts) when is_map(Opts) ->
    case {valid_policy(Policy), lasp_converge_opts:check(Opts, fun valid_opt/2)} of
        {false, _} ->
            {error, {bad_policy, Policy}};
        {true, {error, _} = E} ->
            E;
        {true, ok} ->
            %% Checked before the controller starts, so that the answer is
            %% an error and not a failed process (its own checks stay, for
            %% a race with another start or an untrack).
            case lasp_converge_registry:controller(Var) of
                {ok, _} -> {error, already_started};
                error when element(1, Policy) =:= target_p99;
                           element(1, Policy) =:= rate_proportional ->
                    case lasp_converge:stats(Var) of
                        #{} -> lasp_converge_tuner_sup:start_controller(Var, Policy, Opts);
                        {error, _} -> {error, not_tracked}
                    end;
                error ->
                    lasp_converge_tuner_sup:start_controller(Var, Policy, Opts)
            end
    end;
start(_, _, Opts) ->
    {error, {bad_opts, Opts}}.

%% A controller option's value, as `opts()' types it; `unknown' for a key
%% it does not list.
valid_opt(nodes, V) -> is_list(V) andalso lists:all(fun is_atom/1, V);
valid_opt(key, V) -> lists:member(V, [state_interval, delta_interval]);
valid_opt(K, V) when K =:= window; K =:= max_window; K =:= min; K =:= max; K =:= calm;
                     K =:= anti_entropy ->
    is_integer(V) andalso V > 0;
valid_opt(K, V) when K =:= min_samples; K =:= dwell -> is_integer(V) andalso V >= 0;
valid_opt(K, V) when K =:= hysteresis; K =:= low -> is_number(V) andalso V >= 0 andalso V < 1;
valid_opt(K, V) when K =:= aim; K =:= aim_high -> is_number(V) andalso V > 0 andalso V =< 1;
valid_opt(latency_ms, V) -> is_number(V) andalso V >= 0;
valid_opt(fanout, V) -> V =:= all orelse (is_integer(V) andalso V > 0);
valid_opt(push, V) -> V =:= auto orelse V =:= never;
valid_opt(mark, V) -> is_boolean(V);
valid_opt(_, _) -> unknown.

%% @doc Stop `Var''s controller on this node. The settings stay as they are.
-spec stop(var()) -> ok | {error, not_running}.
stop(Var) ->
    case lasp_converge_registry:controller(Var) of
        {ok, Pid} ->
            _ = lasp_converge_tuner_sup:stop_controller(Pid),
            ok;
        error ->
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

%% @doc The offline optimum of a schedule of update rates: per phase the
%% cheaper in messages of propagation on update and the longest interval
%% whose simulated p99 meets `target_p99', with the total and the best
%% fixed interval, so a controller's messages can be judged against the
%% fewest possible. `Phases' is `[{Name, DurationMs, UpdatesPerSecond}]';
%% `lasp_converge_tuner_optimum' documents the options and the result.
%%
%% ```
%% 1> {ok, O} = lasp_converge_tuner:optimum([{busy, 5000, 100}, {quiet, 9000, 0.3}],
%%                                          #{target_p99 => 600, nodes => 4}).
%% 2> [C || #{choice := C} <- maps:get(phases, O)].
%% [{interval,593},push]
%% '''
-spec optimum([lasp_converge_tuner_optimum:phase()], map()) -> {ok, map()} | {error, term()}.
optimum(Phases, Opts) ->
    lasp_converge_tuner_optimum:optimum(Phases, Opts).

%% @doc `Policy' run against the simulator over a schedule, window by
%% window, as a controller would run on a cluster (see
%% `lasp_converge_tuner_optimum:closed_loop/3'): its windows, messages, how
%% many windows with updates met `target_p99' and its log.
-spec simulate(policy(), [lasp_converge_tuner_optimum:phase()], map()) -> map() | {error, term()}.
simulate(Policy, Phases, Opts) ->
    case valid_policy(Policy) of
        true -> lasp_converge_tuner_optimum:closed_loop(Policy, Phases, Opts);
        false -> {error, {bad_policy, Policy}}
    end.

%% @doc The variables with a controller on this node.
-spec running() -> [var()].
running() ->
    lasp_converge_registry:controllers().

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
    lasp_converge_registry:controller(Var).

valid_policy({fixed, Ms}) -> is_integer(Ms) andalso Ms > 0;
valid_policy({rate_proportional, #{updates_per_interval := K, min := Lo, max := Hi}}) ->
    is_number(K) andalso K > 0 andalso is_integer(Lo) andalso Lo > 0
        andalso is_integer(Hi) andalso Hi >= Lo;
valid_policy({target_p99, Ms}) -> is_integer(Ms) andalso Ms > 0;
valid_policy({budget, R}) -> is_number(R) andalso R > 0;
valid_policy(_) -> false.
