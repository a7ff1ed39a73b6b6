%% @doc Convergence tracking: when each update to a replicated variable
%% becomes visible on each replica, cluster-wide.
%%
%% == Model ==
%%
%% A variable is any term naming a Lasp state CRDT (a Lasp id such as
%% `{<<"x">>, state_orset}' included). `track(Var, Opts)' on one node (the
%% aggregating node) starts tracking it there and on every member node.
%% The writer calls `updated(Var, Pre, Post)' right after a local update:
%% the update gets an id (node, sequence number) and a timestamp from the
%% writer's clock, and its witness is `delta(Post, Pre)', computed natively
%% on the writer's node; only the witness travels to the aggregating node.
%% A writer that already has the update's delta (from
%% `lasp_converge_crdt:delta_mutate/3', as a delta-based replica does) calls
%% `updated_delta(Var, Delta)' instead: the delta is the witness, and the
%% call costs what the delta weighs, not what the state weighs.
%% Every replica calls `observed(Var, State)' when its local state changes:
%% a replica has seen an update once its state inflates the update's witness
%% (`is_inflation(Witness, State)'). An update converges when every live
%% member that was a member at its time has seen it; its convergence time is
%% the last first-seen time minus the update's time. Converged updates fold
%% into HDR histograms; the native tracker's memory is bounded by its
%% configuration (see `native/lasp_converge_core/src/tracker/mod.rs').
%%
%% Timestamps are read on the node they describe. The aggregating node
%% estimates every member's clock offset from ping round trips, keeps the
%% tightest, corrects each reading, and reports the bound on the remaining
%% error as `clock_uncertainty_us' next to every figure.
%%
%% A node that goes down stops holding updates pending; updates still unseen
%% after the horizon count as `unconverged'.
%%
%% The witness model follows delta-state CRDTs: Almeida, Shoker, Baquero,
%% "Delta State Replicated Data Types", JPDC 2018 (a delta is a join-
%% irreducible part of the state it came from, so a replica holds the update
%% exactly when its state is at least the delta).
-module(lasp_converge).

-export([track/1, track/2, untrack/1,
         updated/3, updated/4, updated_delta/2, updated_delta/3,
         observed/2, observed/3, observed_async/2,
         stats/1, divergence/1, records/1, export/2, reset/1, mark/1, marks/1,
         print/1, tracked/0, metrics/0]).
%% Internal: for this node's observers (lasp_converge_observer).
-export([observed_delta/3]).

%% A `ts' option may be at most this far ahead of this node's clock.
-define(MAX_AHEAD_US, 60000000).

-type var() :: term().
-type crdt() :: lasp_converge_crdt:crdt().
-type track_opts() :: #{nodes => [node()],
                        horizon => non_neg_integer(),
                        sample_every => non_neg_integer(),
                        tick => pos_integer() | false,
                        clock => pos_integer() | false,
                        max_pending => pos_integer(),
                        record_window => non_neg_integer(),
                        max_samples => non_neg_integer(),
                        clock_window => pos_integer(),
                        max_latency_us => pos_integer(),
                        take_over => boolean(),
                        max_nodes => pos_integer()}.
-type event_opts() :: #{ts => integer()}.
-type stats() :: #{updates := non_neg_integer(),
                   converged := non_neg_integer(),
                   pending := non_neg_integer(),
                   unconverged := non_neg_integer(),
                   p50 := non_neg_integer() | undefined,
                   p90 := non_neg_integer() | undefined,
                   p99 := non_neg_integer() | undefined,
                   p999 := non_neg_integer() | undefined,
                   max := non_neg_integer() | undefined,
                   mean := float() | undefined,
                   clock_uncertainty_us := non_neg_integer(),
                   per_node := #{node() => #{p50 := non_neg_integer() | undefined,
                                             p99 := non_neg_integer() | undefined,
                                             max := non_neg_integer() | undefined,
                                             pending := non_neg_integer(),
                                             atom() => term()}},
                   atom() => term()}.
-export_type([var/0, track_opts/0, event_opts/0, stats/0]).

%% For lasp_converge_tracker.
-export([witness/5]).

%% @equiv track(Var, #{})
-spec track(var()) -> ok | {error, term()}.
track(Var) ->
    track(Var, #{}).

%% @doc Start tracking `Var', aggregated on this node.
%%
%% Options: `nodes', the nodes holding a replica of `Var' (default: this
%% node and every connected node; a node where the application is not
%% running is left out; a node that comes up later joins if it is one of
%% `nodes', or any node when `nodes' is not given). This node is a member
%% when it is one of `nodes', when `nodes' is `[]' (tracking on this node
%% alone) or not given; when `nodes' names other nodes only, this node
%% aggregates without being a member: a shell or a test runner that holds
%% no replica is not waited for (see guides/tracking.md).
%% `horizon' (ms an update may stay unseen before it counts as unconverged,
%% default 30 000), `sample_every' (divergence sample period in ms, default
%% 10), `tick' (ms between advances of the tracker's clock, default 100,
%% `false' for none: tests that pass their own timestamps), `clock' (ms
%% between clock pings to each member, default 1000, `false' for none), and
%% the native limits `max_pending', `record_window', `max_samples',
%% `clock_window', `max_latency_us', `max_nodes' (distinct nodes held,
%% default 1024; past it a new node's events give
%% `{error, too_many_nodes}' until `reset/1' frees the non-members).
%%
%% An unknown option is refused (`{error, {unknown_option, Key}}'), and so
%% is a value of the wrong kind (`{error, {bad_option, Key, Value}}').
%%
%% `take_over' (default `false'): make this node the aggregating node of a
%% variable whose aggregating node died, from the records the members kept
%% (`{error, {aggregator_alive, Node}}' while an aggregator of `Var' runs on
%% one of `nodes'). Meanwhile `stats/1' and the other queries on a member
%% answer `{error, {aggregator_down, Node}}'. See `lasp_converge_handover'
%% and guides/tracking.md.
-spec track(var(), track_opts()) -> ok | {error, term()}.
track(Var, Opts0) when is_map(Opts0) ->
    case lasp_converge_opts:check(Opts0, fun track_opt/2) of
        ok ->
            case lasp_converge_handover:prepare(Var, Opts0) of
                {ok, Opts} -> start_tracking(Var, Opts);
                {error, _} = E -> E
            end;
        {error, _} = E ->
            E
    end;
track(_Var, _Opts) ->
    {error, bad_opts}.

%% Every option is checked here, by name, before anything starts: a
%% mistake is `{error, {unknown_option, Key}}' or `{error, {bad_option, Key,
%% Value}}', never a failed child start.
track_opt(nodes, Ns) -> is_list(Ns) andalso lists:all(fun is_atom/1, Ns);
track_opt(K, V) when K =:= horizon; K =:= sample_every -> is_number(V) andalso V > 0;
track_opt(K, V) when K =:= tick; K =:= clock -> V =:= false orelse (is_integer(V) andalso V > 0);
track_opt(K, V) when K =:= max_pending; K =:= record_window; K =:= max_samples;
                     K =:= clock_window; K =:= max_latency_us; K =:= max_nodes ->
    is_integer(V) andalso V >= 0;
track_opt(take_over, V) -> is_boolean(V);
track_opt(_, _) -> unknown.

start_tracking(Var, Opts) ->
    case lasp_converge_tracker:lookup(Var) of
        {ok, _} ->
            {error, already_tracked};
        {error, not_tracked} ->
            case lasp_converge_tracker_sup:start_tracker(Var, {aggregator, Opts}) of
                {ok, _Pid} -> ok;
                {error, {error, Reason}} -> {error, Reason};
                {error, Reason} -> {error, Reason}
            end
    end.

%% @doc Stop tracking `Var' on every node (from any member node).
-spec untrack(var()) -> ok | {error, term()}.
untrack(Var) ->
    case lasp_converge_tracker:lookup(Var) of
        {ok, {_, Agg, _, _}} ->
            case call(Agg, untrack) of
                {error, not_tracked} -> lasp_converge_handover:untrack_orphan(Var);
                R -> R
            end;
        {error, _} = E -> E
    end.

%% @equiv updated(Var, Pre, Post, #{})
-spec updated(var(), crdt(), crdt()) -> ok | {error, term()}.
updated(Var, Pre, Post) ->
    updated(Var, Pre, Post, #{}).

%% @doc This node just updated `Var' from `Pre' to `Post'. `ts' overrides
%% the timestamp: microseconds on this node's clock (default: now), no
%% more than `?MAX_AHEAD_US' (60 s) ahead of it, else
%% `{error, {bad_ts, Ts}}' (a reading in another unit, such as
%% `erlang:system_time()' in nanoseconds, would move the tracker's clock
%% years ahead). See `guides/tracking.md'.
-spec updated(var(), crdt(), crdt(), event_opts()) -> ok | {error, term()}.
updated(Var, Pre, Post, Opts) ->
    with_ts(Opts, fun(Ts) -> updated_at(Var, Pre, Post, Ts) end).

updated_at(Var, Pre, Post, Ts) ->
    case lasp_converge_tracker:lookup(Var) of
        {ok, {aggregator, _, Res, Id}} ->
            Seq = lasp_converge_tracker:next_seq(Var),
            R = try lasp_converge_nif:tracker_updated(Res, Id, Seq, Ts, Pre, Post)
                catch error:lasp_converge_dirty ->
                        lasp_converge_nif:tracker_updated_dirty(Res, Id, Seq, Ts, Pre, Post)
                end,
            case R of
                {ok, _} -> ok;
                {error, _} = E -> E
            end;
        {ok, {member, Agg, _, _}} ->
            try lasp_converge_crdt:delta(Post, Pre) of
                W ->
                    case lasp_converge_tracker:check_type(Var, element(1, W)) of
                        ok ->
                            Seq = lasp_converge_tracker:next_seq(Var),
                            lasp_converge_handover:send(Var, Agg, {lc_updated, node(), Seq, Ts, W}),
                            ok;
                        {error, _} = E ->
                            E
                    end
            catch error:{badcrdt, Why} ->
                    {error, {badcrdt, Why}}
            end;
        {error, _} = E ->
            E
    end.

%% @equiv updated_delta(Var, Delta, #{})
-spec updated_delta(var(), crdt()) -> ok | {error, term()}.
updated_delta(Var, Delta) ->
    updated_delta(Var, Delta, #{}).

%% @doc This node just made an update to `Var' whose delta is `Delta' (what
%% `lasp_converge_crdt:delta_mutate/3' returned; the new state is
%% `merge(Pre, Delta)'). The delta is the update's witness: a replica has
%% seen the update once its state inflates it. Costs what the delta weighs,
%% so it stays cheap on a large state, where `updated/4' reads both states.
%% `ts' as for `updated/4'. A delta that is not a state of the variable's
%% type gives `{error, _}'.
-spec updated_delta(var(), crdt(), event_opts()) -> ok | {error, term()}.
updated_delta(Var, Delta, Opts) ->
    with_ts(Opts, fun(Ts) -> updated_delta_at(Var, Delta, Ts) end).

updated_delta_at(Var, Delta, Ts) ->
    case lasp_converge_tracker:lookup(Var) of
        {ok, {aggregator, _, Res, Id}} ->
            Seq = lasp_converge_tracker:next_seq(Var),
            case witness(Res, Id, Seq, Ts, Delta) of
                {ok, _} -> ok;
                {error, _} = E -> E
            end;
        {ok, {member, Agg, _, _}} ->
            case is_crdt(Delta) andalso
                lasp_converge_tracker:check_type(Var, element(1, Delta)) of
                ok ->
                    %% Checked here, so that a bad delta is the caller's
                    %% error and not a message the aggregator drops.
                    try lasp_converge_crdt:is_bottom(Delta) of
                        _ ->
                            Seq = lasp_converge_tracker:next_seq(Var),
                            lasp_converge_handover:send(Var, Agg, {lc_updated, node(), Seq, Ts, Delta}),
                            ok
                    catch error:{badcrdt, Why} ->
                            {error, {badcrdt, Why}}
                    end;
                {error, _} = E ->
                    E;
                false ->
                    {error, {badcrdt, not_a_crdt}}
            end;
        {error, _} = E ->
            E
    end.

%% @private Register a witness: on the normal scheduler when it is light,
%% on a dirty one otherwise.
-spec witness(reference(), non_neg_integer(), non_neg_integer(), integer(), term()) ->
          {ok, atom()} | {error, term()}.
witness(Res, Id, Seq, Ts, W) ->
    try lasp_converge_nif:tracker_witness(Res, Id, Seq, Ts, W)
    catch error:lasp_converge_dirty ->
            lasp_converge_nif:tracker_witness_dirty(Res, Id, Seq, Ts, W)
    end.

%% @equiv observed(Var, State, #{})
-spec observed(var(), crdt()) -> ok | {error, term()}.
observed(Var, State) ->
    observed(Var, State, #{}).

%% @doc This node's replica of `Var' now holds `State'. `ts' as for
%% `updated/4'. The work is done in the caller; a replica's own loop
%% should call `observed_async/2' instead.
-spec observed(var(), crdt(), event_opts()) -> ok | {error, term()}.
observed(Var, State, Opts) ->
    with_ts(Opts, fun(Ts) -> observed_at(Var, State, Ts) end).

%% @doc As `observed/2', stamped now but applied by this node's observer of
%% `Var' (`lasp_converge_observer'): returns at once, so the process that
%% replicates `Var' does not wait for the tracker. Errors found later are
%% counted (`lasp_converge_observer:errors/1'); `{error, not_tracked}' when
%% `Var' is not tracked on this node.
-spec observed_async(var(), crdt()) -> ok | {error, not_tracked}.
observed_async(Var, State) ->
    lasp_converge_observer:submit(Var, {observed, State}).

observed_at(Var, State, Ts) ->
    observe(Var, State,
            fun(Res, Id) -> lasp_converge_nif:tracker_observed(Res, Id, Ts, State) end,
            fun(Agg) ->
                    Last = lasp_converge_tracker:swap_last_sent(Var, State),
                    try gained(State, Last) of
                        D ->
                            lasp_converge_handover:send(Var, Agg, {lc_observed_delta, node(), Ts, D}),
                            ok
                    catch error:{badcrdt, Why} ->
                            %% Keep the last good state.
                            _ = lasp_converge_tracker:swap_last_sent(Var, Last),
                            {error, {badcrdt, Why}}
                    end
            end).

%% An observation `X' of `Var' (a state or a delta): on the aggregating
%% node applied with `OnAgg(Res, Id)'; on a member, once `X' is a state of
%% the variable's type, handed on with `OnMember(Agg)'.
observe(Var, X, OnAgg, OnMember) ->
    case lasp_converge_tracker:lookup(Var) of
        {ok, {aggregator, _, Res, Id}} ->
            case OnAgg(Res, Id) of
                {ok, _} -> ok;
                {error, _} = E -> E
            end;
        {ok, {member, Agg, _, _}} ->
            case is_crdt(X) andalso lasp_converge_tracker:check_type(Var, element(1, X)) of
                ok -> OnMember(Agg);
                {error, _} = E -> E;
                false -> {error, {badcrdt, not_a_crdt}}
            end;
        {error, _} = E ->
            E
    end.

%% @private This node's replica of `Var' just gained `Delta' (what a merge
%% or an update added to it, as `lasp_converge_crdt:merge_added/2' or
%% `mutate_delta/3' gives it): its state is now at least the join of every
%% state and delta observed so far. Costs what the delta weighs. Called by
%% the variable's observer for the replicator's events; a replica that
%% reports only its changes must report every one of them.
-spec observed_delta(var(), crdt(), event_opts()) -> ok | {error, term()}.
observed_delta(Var, Delta, Opts) ->
    with_ts(Opts, fun(Ts) -> observed_delta_at(Var, Delta, Ts) end).

observed_delta_at(Var, Delta, Ts) ->
    observe(Var, Delta,
            fun(Res, Id) -> lasp_converge_tracker:observed_delta(Res, Id, Ts, Delta) end,
            fun(Agg) ->
                    lasp_converge_handover:send(Var, Agg, {lc_observed_delta, node(), Ts, Delta}),
                    ok
            end).

%% The first time, the whole state, checked (a malformed state raises).
gained(State, undefined) ->
    _ = lasp_converge_crdt:is_bottom(State),
    State;
gained(State, Last) -> lasp_converge_crdt:delta(State, Last).

%% @doc Counters and convergence-time percentiles (microseconds), cluster-
%% wide and `per_node' (visibility latency of each node). Figures with no
%% data are `undefined'.
-spec stats(var()) -> stats() | {error, term()}.
stats(Var) ->
    query(Var, stats).

%% @doc Divergence samples, oldest first: per sample `t_us' (aggregator's
%% clock), `up_to_date' (fraction of live members with nothing unseen) and
%% `nodes' => #{Node => #{unseen, oldest_unseen_age_us}}.
-spec divergence(var()) -> [map()] | {error, term()}.
divergence(Var) ->
    query(Var, divergence).

%% @doc The raw records of the most recent finished updates (at most
%% `record_window'), oldest first: per update `origin' (node), `seq',
%% `ts_us', `outcome' (`converged' | `unconverged' | `orphaned'),
%% `convergence_us' (`undefined' unless converged), `missing' (nodes that
%% had not seen an unconverged one) and `reason' (`horizon' | `capacity' |
%% `undefined'), and `seen' => #{Node => TsUs}, when each node first held
%% it (aggregator's clock).
-spec records(var()) -> [map()] | {error, term()}.
records(Var) ->
    query(Var, records).

%% @doc The variables tracked with this node as the aggregating node.
-spec tracked() -> [var()].
tracked() ->
    lasp_converge_tracker:aggregated().

%% @doc The figures of the variables aggregated on this node and of the
%% nodes involved, in the Prometheus text exposition format 0.0.4, as a
%% UTF-8 binary: what the dashboard serves at `GET /metrics', for a server
%% of one's own (content type `text/plain; version=0.0.4'). See
%% `lasp_converge_metrics' and `guides/operations.md'.
-spec metrics() -> binary().
metrics() ->
    lasp_converge_metrics:text().

%% @doc Print a summary of `Var' to the terminal: its figures, a sparkline
%% of divergence and a histogram of recent convergence times (see
%% `lasp_converge_report'), in plain ASCII where the output is not Unicode
%% (`erl -noshell', most CI logs).
-spec print(var()) -> ok | {error, term()}.
print(Var) ->
    lasp_converge_report:print(Var).

%% @doc Everything the tracker knows as JSON: `{"nodes": {Id: Node},
%% "report": Report}', nodes named by their number in `report'.
-spec export(var(), json) -> {ok, binary()} | {error, term()}.
export(Var, json) ->
    query(Var, json);
export(_Var, _Format) ->
    {error, bad_format}.

%% @doc Start a new measurement (members and clock estimates are kept).
-spec reset(var()) -> ok | {error, term()}.
reset(Var) ->
    query(Var, reset).

%% @doc Record `Mark' (any term) on every variable aggregated on this node,
%% to show in reports when something happened during a measurement:
%% `lasp_converge_fault' marks each fault it injects with
%% `#{at_us, fault, args}'. Asynchronous; marks from one process keep their
%% order. `marks/1' returns them.
-spec mark(term()) -> ok.
mark(Mark) ->
    lasp_converge_tracker:mark_all(Mark).

%% @doc The marks recorded on `Var' since tracking started or the last
%% `reset/1', oldest first (the newest 1000).
-spec marks(var()) -> [term()] | {error, term()}.
marks(Var) ->
    query(Var, marks).

%% ---- internals ----

query(Var, Q) ->
    case lasp_converge_tracker:lookup(Var) of
        {ok, {_, Agg, _, _}} ->
            case call(Agg, {query, Q}) of
                {error, not_tracked} -> lasp_converge_handover:explain(Var);
                R -> R
            end;
        {error, _} = E -> E
    end.

call(Pid, Msg) ->
    try
        gen_server:call(Pid, Msg, 30000)
    catch exit:_ ->
            {error, not_tracked}
    end.

with_ts(#{ts := Ts}, F) when is_integer(Ts) ->
    case Ts - lasp_converge_tracker:now_us() =< ?MAX_AHEAD_US of
        true -> F(Ts);
        false -> {error, {bad_ts, Ts}}
    end;
with_ts(#{ts := _}, _) -> {error, bad_ts};
with_ts(Opts, F) when is_map(Opts) -> F(lasp_converge_tracker:now_us());
with_ts(_, _) -> {error, bad_opts}.

is_crdt({Type, _}) when is_atom(Type) ->
    lists:member(Type, lasp_converge_crdt:types());
is_crdt(_) ->
    false.
