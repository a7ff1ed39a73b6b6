%% @doc The tracking work of one variable on one node, done off the process
%% that is measured.
%%
%% A replica that calls `lasp_converge:observed/2' from its own loop pays
%% for the observation there: copying the state out, the delta against the
%% last state sent, the witness checks. On the process that replicates the
%% variable, that cost delays the replication being measured. So the
%% replicator (`lasp_converge_replicator') and Lasp's stream callback
%% (`lasp_converge_lasp') hand each event to this node's observer of the
%% variable with `submit/2' and return at once; the observer, a process
%% started with the variable's tracker, applies the events in the order they
%% were submitted, with the timestamps read when they were submitted.
%%
%% An event that fails in the observer (a state of another type, say) is
%% counted in `errors/1'; the optional `OnResult' fun of an observation is
%% called with its result, in the observer.
%%
%% The observer runs at low priority, so it takes the time the replicas
%% leave. When it falls behind (events queued behind an observation), it
%% skips that observation, which a later one of the same replica supersedes
%% (a replica's state only grows, and every change of it is observed), and
%% counts it in `skipped/1': the updates it held are then first seen at the
%% later observation, at most the observer's lag later. Updates are never
%% skipped, nor are observed deltas (`{observed_delta, D}': what a merge or
%% an update added to the replica, which no later event repeats).
%%
%% The replicator submits, for each change of its replica, only the change:
%% a local update's delta (`{updated_delta, D}' then `{observed_delta, D}')
%% and what a received state or delta added (`{observed_delta, Added}', from
%% `lasp_converge_crdt:merge_added/2'), so it copies no whole state into
%% this process. To start from the state the replica held when tracking
%% began, the observer reads it once from the replicator
%% (`lasp_converge_replicator:state/1') when it starts.
-module(lasp_converge_observer).

-export([start_link/1, submit/2, errors/1, skipped/1, sync/1]).
-export([init/1]).

-type event() :: {updated, term(), term()}
               | {updated_delta, term()}
               | {observed_delta, term()}
               | {observed, term()}
               | {observed, term(), fun((ok | {error, term()}) -> term())}.
-export_type([event/0]).

%% @doc Start the observer of `Var', linked to the caller (its tracker),
%% and register it on this node (`lasp_converge_registry'; it leaves the
%% registry with its tracker).
-spec start_link(term()) -> pid().
start_link(Var) ->
    Pid = proc_lib:spawn_link(?MODULE, init, [Var]),
    ok = lasp_converge_registry:register_observer(Var, Pid),
    %% Registered first: every change after the base is submitted to it.
    Pid ! lc_base,
    Pid.

%% @doc Hand `Event' of `Var' to this node's observer, stamped with this
%% node's clock now; returns at once. `{error, not_tracked}' when the
%% variable is not tracked on this node.
-spec submit(term(), event()) -> ok | {error, not_tracked}.
submit(Var, Event) ->
    case observer(Var) of
        {ok, Pid} ->
            Pid ! {lc_event, lasp_converge_tracker:now_us(), Event},
            ok;
        error ->
            {error, not_tracked}
    end.

%% @doc Events of `Var' that failed in this node's observer.
-spec errors(term()) -> non_neg_integer().
errors(Var) ->
    lasp_converge_registry:count({observer_errors, Var}).

%% @doc Observations of `Var' this node's observer skipped while behind.
-spec skipped(term()) -> non_neg_integer().
skipped(Var) ->
    lasp_converge_registry:count({observer_skipped, Var}).

%% @doc Wait until this node's observer of `Var' has applied every event
%% submitted before (for tests and for reading figures right after).
-spec sync(term()) -> ok | {error, not_tracked | timeout}.
sync(Var) ->
    case observer(Var) of
        {ok, Pid} ->
            Ref = erlang:monitor(process, Pid),
            Pid ! {lc_sync, self(), Ref},
            receive
                {Ref, ok} ->
                    erlang:demonitor(Ref, [flush]),
                    ok;
                {'DOWN', Ref, process, Pid, _} ->
                    {error, not_tracked}
            after 30000 ->
                    erlang:demonitor(Ref, [flush]),
                    {error, timeout}
            end;
        error ->
            {error, not_tracked}
    end.

%% ---- the process ----

%% @private
-spec init(term()) -> no_return().
init(Var) ->
    _ = process_flag(priority, low),
    loop(Var).

loop(Var) ->
    receive
        {lc_event, Ts, Event} ->
            case behind() andalso element(1, Event) =:= observed of
                true ->
                    ok = lasp_converge_registry:bump({observer_skipped, Var}),
                    _ = case Event of
                            {observed, _, OnResult} -> (catch OnResult(ok));
                            _ -> ok
                        end;
                false ->
                    apply_event(Var, Ts, Event)
            end,
            loop(Var);
        {lc_sync, From, Ref} ->
            From ! {Ref, ok},
            loop(Var);
        lc_base ->
            %% The replicator reports only what changes its replica: the
            %% state it held when tracking started is observed once here.
            _ = case lasp_converge_replicator:state(Var) of
                    {ok, State} ->
                        apply_event(Var, lasp_converge_tracker:now_us(), {observed, State});
                    _ ->
                        ok
                end,
            loop(Var);
        _ ->
            loop(Var)
    end.

apply_event(Var, Ts, Event) ->
    Opts = #{ts => Ts},
    R = try
            case Event of
                {updated, Pre, Post} -> lasp_converge:updated(Var, Pre, Post, Opts);
                {updated_delta, Delta} -> lasp_converge:updated_delta(Var, Delta, Opts);
                {observed_delta, Delta} -> lasp_converge:observed_delta(Var, Delta, Opts);
                {observed, State} -> lasp_converge:observed(Var, State, Opts);
                {observed, State, _} -> lasp_converge:observed(Var, State, Opts);
                _ -> {error, bad_event}
            end
        catch Class:Why ->
                {error, {Class, Why}}
        end,
    _ = case R of
            ok -> ok;
            _ -> lasp_converge_registry:bump({observer_errors, Var})
        end,
    case Event of
        {observed, _, OnResult} when is_function(OnResult, 1) ->
            try OnResult(R) catch _:_ -> ok end;
        _ ->
            ok
    end.

behind() ->
    {message_queue_len, N} = erlang:process_info(self(), message_queue_len),
    N > 0.

observer(Var) ->
    lasp_converge_registry:observer(Var).
