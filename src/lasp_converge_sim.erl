%% @doc Predict convergence before deploying: a deterministic discrete-event
%% simulator of the anti-entropy `lasp_converge_replicator' runs, in the
%% native core (`native/lasp_converge_core/src/sim/').
%%
%% == Where a run computes ==
%%
%% On an OS thread of its own, never on a scheduler: a run of minutes
%% neither blocks other dirty NIF calls (merges, `lasp_converge:stats/1')
%% nor a scheduler. At most as many runs as the machine has cores compute
%% at once; the others wait for a turn. The calling process waits for the
%% result; when it dies (killed, or a linked process crashed) the run stops
%% within a few thousand events, and so does a run whose `timeout' (see
%% `run/2') passes. `active/0' counts the runs computing or waiting.
%%
%% == Model ==
%%
%% `nodes' replicas of one variable, each with the replicator's timer: every
%% `state_interval' ms (changed by up to `jitter_percent' %, plus a
%% `round_cost' drawn per round, since the replicator arms its next timer
%% after the round; first tick at a random phase unless `aligned_timers' or
%% `timer_offsets') it sends to `fanout' random peers or `all', and with
%% `propagate_on_update' also right after each local update. Each node
%% handles one thing at a time, in arrival order, as the replicator's one
%% process does: a received state or delta and a local update each take a
%% `service_time' draw (0 by default); a message takes effect when its
%% service ends, an update's push goes out then, and a tick due while the
%% node is busy waits for it. Acknowledgements are handled on arrival. A replica's
%% state is modelled by the set of updates it has seen: a merge is a union.
%% `state_based' messages carry the sender's whole set; `delta_based' ones
%% what the peer has not acknowledged, less what came from it, or the full
%% set when the peer acknowledged nothing or is behind the `delta_buffer'
%% (Enes, Almeida, Baquero, Leitão, "Efficient Synchronization of
%% State-based CRDTs", ICDE 2019), with acknowledgements. Every message
%% takes a latency from the `latency' distribution (`ack_latency' for
%% acknowledgements when given), is lost with probability
%% `loss', and is dropped when a partition active at its sending separates
%% its ends. An update converges when every node has seen it; unseen after
%% `horizon' it counts as unconverged, as in the tracker. A message weighs
%% `message_bytes + update_bytes * K' for `K' updates carried, an
%% acknowledgement `ack_bytes'. Simulated time: a 10,000-node run takes
%% seconds, and one spec with one `seed' always gives the same result.
%%
%% Not modelled: CPU cost other than the `service_time' and `round_cost'
%% draws (which do not grow with the state, nor with what other nodes on
%% the same machine are doing), queueing on a link, crashes and restarts,
%% different settings per node, the size of individual updates.
%%
%% == Spec ==
%%
%% A map; every key is optional. Times in milliseconds (integers or floats),
%% latencies in microseconds. Nodes are numbered `1..nodes'.
%% <ul>
%% <li>`nodes' (10; at most 20,000)</li>
%% <li>`mode' (`state_based' | `delta_based'), `state_interval' (10,000,
%% at least 1), `fanout' (`all' or a count), `propagate_on_update'
%% (`false'), `jitter_percent' (0), `delta_buffer' (1000): the replicator's
%% names and defaults; Lasp's `delta_interval' (taking the place of
%% `state_interval' in `delta_based' mode) and `jitter' (`false': none;
%% `true': `jitter_percent', 1 by default) as `lasp_converge_tuner' sets
%% them are taken too</li>
%% <li>`aligned_timers' (`false'): every first tick at one interval, for
%% synchronous rounds</li>
%% <li>`timer_offsets' (none: random phases): `[Ms]', each node's first
%% tick, one per node in node order (not with `aligned_timers'), e.g.
%% measured on a real cluster</li>
%% <li>`round_cost' (`{constant, 0}'): how much longer than the interval
%% each period is (the round's own work and the timer's lateness), a
%% distribution in µs shaped as `latency'</li>
%% <li>`service_time' (`{constant, 0}'): time a node takes to handle a
%% received state or delta (merge, tracking) or a local update, in µs,
%% shaped as `latency'</li>
%% <li>`latency' (`{constant, 1000}'): `{constant, Us}', `{uniform, LoUs,
%% HiUs}', `{normal, MeanUs, SdUs}' (negative draws as 0), `{lognormal, Mu,
%% Sigma}' (`exp(Mu)' the median in µs), `{empirical, [Us]}' (one of them,
%% uniformly; up to a million); `ack_latency' (`latency'): the same for
%% acknowledgements</li>
%% <li>`loss' (0.0): probability that a message is lost</li>
%% <li>`partitions' (`[]'): `[{StartMs, EndMs, [[Node]]}]', disjoint groups;
%% a node in no group is alone</li>
%% <li>`update_rate' (1.0 a second, over the whole cluster, each update on a
%% random node) and `duration' (10,000): a Poisson process from time 0; or
%% `updates', `[{AtMs, Node}]' exactly (at most 1,000,000)</li>
%% <li>`horizon' (30,000), `until' (none: the run ends when every update has
%% converged or expired)</li>
%% <li>`sample_every' (the run's bound / `max_samples', at least 10),
%% `max_samples' (1000, the last ones kept), `divergence' (`full' per node
%% up to 100 nodes, else `summary')</li>
%% <li>`message_bytes' (60), `update_bytes' (40), `ack_bytes' (60)</li>
%% <li>`seed' (1)</li>
%% </ul>
%%
%% Caps, each refused with `{error, {too_large, Key}}': 20,000 nodes,
%% 1,000,000 updates, `nodes * updates' up to 2e9 (the seen-bitsets: 250
%% MB), 3e8 messages by the estimate `nodes * peers * (bound / interval)',
%% 1000 partitions, 100,000 samples, 2,000,000 per-node sample entries
%% (`nodes * max_samples' with `divergence => full'), one week of simulated
%% time.
%%
%% == Result ==
%%
%% The keys of `lasp_converge:stats/1' (`updates', `converged', `pending',
%% `unconverged', `p50', `p90', `p99', `p999', `max', `mean' in µs,
%% `clock_uncertainty_us' (0), `per_node => #{Node => #{p50, p99, max,
%% pending, count}}', visibility latency of other nodes' updates), plus
%% `divergence' (samples shaped as `lasp_converge:divergence/1''s, `#{t_us,
%% up_to_date, nodes => #{Node => #{unseen, oldest_unseen_age_us}}}', with
%% the cluster-wide `unseen_total', `unseen_max', `oldest_unseen_age_us'),
%% `messages', `bytes', `full_states', `deltas', `acks', `dropped',
%% `messages_per_update', `bytes_per_update', `sample_every_us', `end_us'
%% (simulated time at the end) and `events'.
%%
%% The theory the tests check: Frieze, Grimmett, "The shortest-path problem
%% for graphs with random arc-lengths", 1985, and Pittel, "On spreading a
%% rumor", SIAM J. Appl. Math. 1987 (push gossip reaches N nodes in about
%% log2 N + ln N rounds); the question is PBS's (Bailis et al., "Probabilistically
%% Bounded Staleness", VLDB 2012), asked of CRDT anti-entropy.
-module(lasp_converge_sim).

-export([run/1, run/2, active/0, recommend/1, sweep/2]).

-type latency() :: {constant, non_neg_integer()}
                 | {uniform, non_neg_integer(), non_neg_integer()}
                 | {normal, number(), number()}
                 | {lognormal, number(), number()}
                 | {empirical, [non_neg_integer()]}.
-type spec() :: #{nodes => pos_integer(),
                  mode => state_based | delta_based,
                  state_interval => number(),
                  delta_interval => number(),
                  jitter => boolean(),
                  fanout => pos_integer() | all,
                  propagate_on_update => boolean(),
                  jitter_percent => 0..100,
                  delta_buffer => pos_integer(),
                  aligned_timers => boolean(),
                  timer_offsets => [number()],
                  round_cost => latency(),
                  service_time => latency(),
                  latency => latency(),
                  ack_latency => latency(),
                  loss => number(),
                  partitions => [{number(), number(), [[pos_integer()]]}],
                  update_rate => number(),
                  duration => number(),
                  updates => [{number(), pos_integer()}],
                  horizon => number(),
                  until => number() | undefined,
                  sample_every => number(),
                  max_samples => non_neg_integer(),
                  divergence => full | summary,
                  message_bytes => non_neg_integer(),
                  update_bytes => non_neg_integer(),
                  ack_bytes => non_neg_integer(),
                  seed => non_neg_integer()}.
-type result() :: #{updates := non_neg_integer(),
                    converged := non_neg_integer(),
                    pending := non_neg_integer(),
                    unconverged := non_neg_integer(),
                    p50 := non_neg_integer() | undefined,
                    p90 := non_neg_integer() | undefined,
                    p99 := non_neg_integer() | undefined,
                    p999 := non_neg_integer() | undefined,
                    max := non_neg_integer() | undefined,
                    mean := float() | undefined,
                    per_node := #{pos_integer() => map()},
                    divergence := [map()],
                    messages := non_neg_integer(),
                    bytes := non_neg_integer(),
                    messages_per_update := float(),
                    bytes_per_update := float(),
                    atom() => term()}.
-type reason() :: bad_spec | {bad_spec, atom()} | {too_large, atom()} | {unknown_key, term()}.
-export_type([spec/0, result/0, latency/0]).

-define(INTERVALS, [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]).
-define(FANOUTS, [1, 2, 3, 4, 6, 8, all]).

%% @doc Run the simulation `Spec' describes (see the module doc).
%%
%% ```
%% 1> {ok, R} = lasp_converge_sim:run(#{nodes => 200, state_interval => 500, fanout => 3,
%%                                      update_rate => 5, duration => 60000, loss => 0.02}).
%% 2> maps:with([p50, p99, messages_per_update], R).
%% '''
-spec run(spec()) -> {ok, result()} | {error, reason()}.
run(Spec) ->
    run(Spec, #{}).

%% @doc `run/1' with options: `timeout' (`infinity', or milliseconds of
%% real time), after which the run is stopped and `{error, timeout}'
%% returned.
-spec run(spec(), #{timeout => timeout()}) ->
          {ok, result()} | {error, reason() | timeout}.
run(Spec, Opts) when is_map(Spec), is_map(Opts) ->
    case maps:get(timeout, Opts, infinity) of
        T when T =:= infinity; is_integer(T), T >= 0 ->
            Tag = make_ref(),
            case lasp_converge_nif:sim_start(Spec, Tag) of
                {ok, Run} -> await(Run, Tag, T);
                {error, _} = Error -> Error
            end;
        _ ->
            {error, {bad_opts, timeout}}
    end;
run(Spec, _Opts) when is_map(Spec) ->
    {error, {bad_opts, timeout}};
run(_, _) ->
    {error, bad_spec}.

%% `Run' stays referenced until the result is in: were it collected, the
%% run would be cancelled.
await(Run, Tag, Timeout) ->
    receive
        {Tag, Result} ->
            _ = lasp_converge_nif:sim_cancel(Run),
            Result
    after Timeout ->
            case lasp_converge_nif:sim_cancel(Run) of
                ok -> {error, timeout};
                %% Finished just in time: the result is on its way.
                sent -> receive {Tag, Result} -> Result end
            end
    end.

%% @doc How many runs are computing or waiting for a turn in this VM.
-spec active() -> non_neg_integer().
active() ->
    lasp_converge_nif:sim_active().

%% @doc Simulate `Spec' once per cell of a grid of update rates and
%% intervals (`#{rates := [UpdatesPerSecond], intervals := [Ms]}'), and
%% return one row per cell shaped as those of
%% `lasp_converge_scenario:sweep/2', so that
%% `lasp_converge_report:write_sweep/2' draws either: `var' (the spec's
%% `var', default `simulated'), `rate', `state_interval', `updates', `p50',
%% `p99', `max' (µs), `msgs_per_update', `bytes_per_update', `converged'
%% (every update reached every node), `agree' (the same), `duration_ms'.
%% `min_updates' (default 20) stretches a cell's `duration' (default 10,000
%% ms) until about that many updates are expected.
%%
%% ```
%% 1> {ok, Rows} = lasp_converge_sim:sweep(#{nodes => 20, latency => {uniform, 500, 3000}},
%%                                         #{rates => [0.1, 1, 10, 100],
%%                                           intervals => [20, 100, 500, 2000]}).
%% 2> lasp_converge_report:write_sweep("sweep.html", Rows).
%% '''
-spec sweep(map(), #{rates := [number()], intervals := [number()],
                     min_updates => non_neg_integer()}) ->
          {ok, [map()]} | {error, term()}.
sweep(Spec0, #{rates := Rates, intervals := Intervals} = Grid) when is_map(Spec0) ->
    Min = maps:get(min_updates, Grid, 20),
    Var = maps:get(var, Spec0, simulated),
    Spec = maps:remove(var, Spec0),
    Valid = fun(L) -> is_list(L) andalso L =/= [] andalso
                          lists:all(fun(X) -> is_number(X) andalso X > 0 end, L) end,
    case Valid(Rates) andalso Valid(Intervals) andalso is_integer(Min) andalso Min >= 0 of
        false ->
            {error, bad_grid};
        true ->
            sweep_cells(Spec, Var, Min, [{I, R} || I <- Intervals, R <- Rates], [])
    end;
sweep(_, _) ->
    {error, bad_grid}.

sweep_cells(_Spec, _Var, _Min, [], Acc) ->
    {ok, lists:reverse(Acc)};
sweep_cells(Spec, Var, Min, [{I, R} | Cells], Acc) ->
    Duration = max(maps:get(duration, Spec, 10000), ceil(Min * 1000 / R)),
    case run(Spec#{update_rate => R, state_interval => I, duration => Duration,
                   max_samples => 0}) of
        {ok, Res} ->
            Done = maps:get(unconverged, Res) + maps:get(pending, Res) =:= 0,
            Row = #{var => Var, rate => R, state_interval => I,
                    updates => maps:get(updates, Res), p50 => maps:get(p50, Res),
                    p99 => maps:get(p99, Res), max => maps:get(max, Res),
                    msgs_per_update => maps:get(messages_per_update, Res),
                    bytes_per_update => maps:get(bytes_per_update, Res),
                    converged => Done, agree => Done, duration_ms => Duration},
            sweep_cells(Spec, Var, Min, Cells, [Row | Acc]);
        {error, Why} ->
            {error, {cell, #{rate => R, state_interval => I}, Why}}
    end.

%% @doc The cheapest propagation settings whose simulated p99 convergence
%% meets `target_p99' (ms).
%%
%% `Opts' is a spec (see `run/1': `nodes', `update_rate', `latency',
%% `loss', `partitions', `mode', ...) plus `target_p99' (required), and
%% optionally `cost' (`bytes', the default, or `messages' per update),
%% `seeds' (3: each candidate runs with seeds 1..N; its p99 is the worst of
%% them and every update must converge in each), `state_intervals' (ms,
%% default 10, 20, 50, ... 10000) and `fanouts' (default 1, 2, 3, 4, 6, 8,
%% `all'). The `horizon' defaults to at least twice the target.
%%
%% For each fanout the largest interval that meets the target is found by
%% bisection (p99 grows with the interval), so a search costs about
%% `seeds * fanouts * log2(intervals)' runs. Returns `{ok, #{state_interval,
%% fanout, mode, propagate_on_update, p99 (µs), messages_per_update,
%% bytes_per_update, candidates}}', where
%% `candidates' lists every setting that met the target, cheapest first;
%% `{error, {unreachable, Closest}}' with the setting of the lowest p99 when
%% none did (`p99 => infinity' for a setting that left updates
%% unconverged).
-spec recommend(map()) -> {ok, map()} | {error, term()}.
recommend(#{target_p99 := Target} = Opts) when is_number(Target), Target > 0 ->
    Seeds = maps:get(seeds, Opts, 3),
    Cost = maps:get(cost, Opts, bytes),
    Intervals = lists:usort(maps:get(state_intervals, Opts, ?INTERVALS)),
    Fanouts = maps:get(fanouts, Opts, ?FANOUTS),
    Base0 = maps:without([target_p99, seeds, cost, state_intervals, fanouts], Opts),
    Base = Base0#{horizon => maps:get(horizon, Base0, max(30000, 2 * Target)),
                  max_samples => 0},
    TargetUs = round(Target * 1000),
    case valid_search(Seeds, Cost, Intervals, Fanouts) of
        false ->
            {error, bad_opts};
        true ->
            try
                Evaluated = lists:append([search(Base, F, Intervals, Seeds, TargetUs)
                                          || F <- Fanouts]),
                Key = case Cost of
                          bytes -> bytes_per_update;
                          messages -> messages_per_update
                      end,
                case lists:sort(fun(A, B) -> maps:get(Key, A) =< maps:get(Key, B) end,
                                [E || #{meets := true} = E <- Evaluated]) of
                    [Best | _] = Met ->
                        {ok, (maps:remove(meets, Best))#{candidates => [maps:remove(meets, M) || M <- Met]}};
                    [] ->
                        Closest = lists:foldl(fun closer/2, undefined, Evaluated),
                        {error, {unreachable, maps:remove(meets, Closest)}}
                end
            catch throw:{sim_error, Reason} ->
                    {error, Reason}
            end
    end;
recommend(_) ->
    {error, {bad_spec, target_p99}}.

valid_search(Seeds, Cost, Intervals, Fanouts) ->
    is_integer(Seeds) andalso Seeds > 0 andalso
        (Cost =:= bytes orelse Cost =:= messages) andalso
        Intervals =/= [] andalso lists:all(fun(I) -> is_number(I) andalso I > 0 end, Intervals) andalso
        is_list(Fanouts) andalso Fanouts =/= [] andalso
        lists:all(fun(F) -> F =:= all orelse (is_integer(F) andalso F > 0) end, Fanouts).

%% Bisect the sorted intervals for the largest one meeting the target;
%% return every evaluation.
search(Base, Fanout, Intervals, Seeds, TargetUs) ->
    bisect(Base, Fanout, list_to_tuple(Intervals), 1, length(Intervals), Seeds, TargetUs, []).

bisect(_Base, _F, _Is, Lo, Hi, _Seeds, _T, Acc) when Lo > Hi ->
    Acc;
bisect(Base, F, Is, Lo, Hi, Seeds, T, Acc) ->
    Mid = (Lo + Hi) div 2,
    E = evaluate(Base, F, element(Mid, Is), Seeds, T),
    case E of
        #{meets := true} -> bisect(Base, F, Is, Mid + 1, Hi, Seeds, T, [E | Acc]);
        #{meets := false} -> bisect(Base, F, Is, Lo, Mid - 1, Seeds, T, [E | Acc])
    end.

evaluate(Base, Fanout, Interval, Seeds, TargetUs) ->
    Runs = [begin
                case run(Base#{fanout => Fanout, state_interval => Interval, seed => S}) of
                    {ok, R} -> R;
                    {error, Reason} -> throw({sim_error, Reason})
                end
            end || S <- lists:seq(1, Seeds)],
    %% A run that left an update unconverged has no p99 worth the name.
    P99 = lists:max([p99_of(R) || R <- Runs]),
    All = P99 =/= infinity,
    Mean = fun(K) -> lists:sum([maps:get(K, R) || R <- Runs]) / Seeds end,
    #{state_interval => Interval, fanout => Fanout, p99 => P99,
      mode => maps:get(mode, Base, state_based),
      propagate_on_update => maps:get(propagate_on_update, Base, false),
      messages_per_update => Mean(messages_per_update),
      bytes_per_update => Mean(bytes_per_update),
      meets => All andalso P99 =< TargetUs}.

p99_of(#{unconverged := U, pending := P}) when U + P > 0 -> infinity;
p99_of(#{p99 := undefined}) -> 0;
p99_of(#{p99 := P}) -> P.

closer(E, undefined) -> E;
closer(#{p99 := A} = E, #{p99 := B}) when A < B -> E;
closer(_, Acc) -> Acc.
