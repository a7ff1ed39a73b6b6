%% @doc Faults on the replication traffic of a local cluster
%% (`lasp_converge_cluster'), undone cleanly: partitions, slow links,
%% message loss, paused nodes, crashed and restarted nodes.
%%
%% == What is affected ==
%%
%% Traffic faults act on the messages `lasp_converge_replicator' sends
%% (full states, deltas, acknowledgements) and on nothing else. Each node's
%% replicator applies them as it sends (see its module doc): a message to a
%% node outside the sender's partition group is dropped; each message is
%% lost with the `drop' probability; a message on a slow link is delivered
%% `Ms' late (and dropped if, when it is due, a partition separates the
%% nodes); a paused replicator neither sends nor processes replication
%% messages, and processes those that arrived meanwhile, in order, when it
%% resumes. Lost messages still count as sent (`dropped' counts them).
%%
%% The Erlang distribution itself stays up, so the measurement plane is not
%% touched: the tracker's messages (`lasp_converge'), `erpc' calls such as
%% `lasp_converge_cluster:call/5', and local calls on a paused node
%% (`update/3', `value/1', ...) all go through. Convergence measured under a
%% partition is therefore the replicas' convergence, not the tracker's. A
%% crash is real: the node halts, and every process on it, its tracker
%% included, is gone until `restart/3'.
%%
%% `crash/2' halts the node (`erlang:halt/0'): its replicas are lost.
%% `restart/3' starts it again under the same name, with the cluster's code
%% path, arguments and applications, connects it to the running members,
%% applies the traffic faults in force, restores the replicator settings it
%% had and declares again the variables it held (same members). With
%% `recover => true' it first fetches each variable's state from a running
%% member and merges it in; with `recover => false' (the default) it starts
%% from bottom and catches up by replication. Trackers aggregated elsewhere
%% see the node come back and count it again for the updates made after it
%% joined.
%%
%% Every fault applied is recorded as an event `#{at_us, fault, args}'
%% (`at_us' is `erlang:system_time(microsecond)' on the calling node, once
%% the fault is in force; `args' the call's arguments after the cluster),
%% returned by `events/1' in time order, and handed to the tracker with
%% `lasp_converge:mark/1' on every running member and on this node, so
%% `lasp_converge:marks(Var)' shows them next to the figures.
%%
%% == Errors ==
%%
%% Every call returns `ok' or `{error, Reason}' and raises nothing for what a
%% caller can get wrong: `{not_a_member, Node}' for a node that is not one of
%% the cluster's, `not_running' once the cluster is stopped (for every call
%% but `events/1', which returns `[]'), `{bad_delay, Ms}' unless a
%% non-negative integer, `{bad_probability, P}' unless a number in [0, 1],
%% `{bad_opts, Opts}', `{unknown_option, Key}' and `{bad_option, Key, Value}'
%% for `restart/3', `{crash_failed, Node, Why}' and
%% `{restart_failed, Node, Why}' when the node could not be stopped or
%% started. Crashing a node that is already down is `ok'.
-module(lasp_converge_fault).

-export([partition/2, heal/1, delay/4, drop/2, crash/2, restart/3,
         pause/2, resume/2, clear/1, events/1]).

-type cluster() :: lasp_converge_cluster:cluster().
-type event() :: #{at_us := integer(), fault := atom(), args := term()}.
-type restart_opts() :: #{recover => boolean()}.
-export_type([event/0, restart_opts/0]).

-define(RPC_TIMEOUT, 10000).

%% The faults in force, kept by the cluster's owner.
-define(NO_TRAFFIC, #{groups => undefined, delays => #{}, drop => 0.0, paused => []}).

%% @doc Split the cluster: replication messages between nodes of different
%% groups are dropped; a member in no group is alone. Replaces any earlier
%% partition. Returns `{error, {not_a_member, N}}', `{error, {in_two_groups,
%% N}}' or `{error, bad_groups}' for groups that are not lists of distinct
%% members.
-spec partition(cluster(), [[node()]]) -> ok | {error, term()}.
partition(C, Groups) ->
    case check_groups(Groups, lasp_converge_cluster:nodes(C)) of
        ok -> traffic(C, partition, [Groups], fun(T) -> T#{groups := Groups} end);
        {error, _} = E -> E
    end.

%% @doc Undo the partition.
-spec heal(cluster()) -> ok | {error, term()}.
heal(C) ->
    traffic(C, heal, [], fun(T) -> T#{groups := undefined} end).

%% @doc Deliver replication messages from `From' to `To' `Ms' milliseconds
%% late (one direction; 0 removes the delay). Returns `{error, {bad_delay,
%% Ms}}' for a negative or non-integer `Ms' and `{error, {not_a_member, N}}'
%% for a node outside the cluster.
-spec delay(cluster(), node(), node(), non_neg_integer()) -> ok | {error, term()}.
delay(C, From, To, Ms) when is_integer(Ms), Ms >= 0 ->
    Change = fun(#{delays := D} = T) ->
                     T#{delays := case Ms of
                                      0 -> maps:remove({From, To}, D);
                                      _ -> D#{{From, To} => Ms}
                                  end}
             end,
    members(C, [From, To], fun() -> traffic(C, delay, [From, To, Ms], Change) end);
delay(_C, _From, _To, Ms) ->
    {error, {bad_delay, Ms}}.

%% @doc Lose each replication message with probability `P' (0.0 removes
%% the loss). Returns `{error, {bad_probability, P}}' unless `P' is a number
%% in [0, 1].
-spec drop(cluster(), float()) -> ok | {error, term()}.
drop(C, P) when is_number(P), P >= 0, P =< 1 ->
    traffic(C, drop, [P], fun(T) -> T#{drop := float(P)} end);
drop(_C, P) ->
    {error, {bad_probability, P}}.

%% @doc Halt `Node' (its state is lost) and wait until it is down. Its
%% replicator settings and declared variables are remembered for
%% `restart/3'; a crashed node is no longer paused. Crashing a node that is
%% down already does nothing.
%%
%% Crashing the node that aggregates a tracked variable (the one that
%% called `lasp_converge:track/2') loses the updates made on it and its
%% own records; the other nodes keep theirs (`lasp_converge_handover'):
%% `lasp_converge:stats(Var)' there answers `{error, {aggregator_down,
%% Node}}', their updates and observations go on being recorded, and
%% `lasp_converge:track(Var, #{take_over => true})' on one of them makes it
%% the aggregating node, from the records they kept. The restarted node
%% tracks nothing until then; it joins the new measurement as a member.
%% See guides/tracking.md, "When the aggregating node dies".
-spec crash(cluster(), node()) -> ok | {error, term()}.
crash(C, Node) ->
    members(C, [Node], fun() -> crash_member(C, Node) end).

crash_member(C, Node) ->
    case lists:member(Node, lasp_converge_cluster:live_nodes(C)) of
        false ->
            %% Already down, or the whole cluster is stopped.
            lasp_converge_cluster:update_faults(C, fun(F, _) -> {ok, F} end);
        true ->
            Snap = snapshot(Node),
            case lasp_converge_cluster:stop_node(C, Node) of
                ok ->
                    update(C, crash, [Node],
                           fun(#{snapshots := S, traffic := #{paused := P} = T} = F, _) ->
                                   F#{snapshots := S#{Node => Snap},
                                      traffic := T#{paused := P -- [Node]}}
                           end);
                {error, R} ->
                    {error, {crash_failed, Node, R}}
            end
    end.

%% @doc Start a crashed `Node' again under its name (see the module doc):
%% the traffic faults in force apply to it, its replicator settings are
%% restored and its variables declared again, from bottom, or with
%% `recover => true' from the state of a running member. Returns
%% `{error, {restart_failed, Node, Reason}}' when the node cannot be started
%% (`{already_running, Node}' included), `{error, {unknown_option, Key}}'
%% for an option other than `recover'.
-spec restart(cluster(), node(), restart_opts()) -> ok | {error, term()}.
restart(C, Node, Opts) when is_map(Opts) ->
    case [K || K <- maps:keys(Opts), K =/= recover] of
        [K | _] ->
            {error, {unknown_option, K}};
        [] ->
            case maps:get(recover, Opts, false) of
                Recover when is_boolean(Recover) ->
                    members(C, [Node], fun() -> restart_member(C, Node, Opts, Recover) end);
                Bad ->
                    {error, {bad_option, recover, Bad}}
            end
    end;
restart(_C, _Node, Opts) ->
    {error, {bad_opts, Opts}}.

restart_member(C, Node, Opts, Recover) ->
    case lasp_converge_cluster:start_node(C, Node) of
        ok ->
            Faults = ensure(lasp_converge_cluster:faults(C)),
            Live = lasp_converge_cluster:live_nodes(C),
            Snap = case maps:find(Node, maps:get(snapshots, Faults)) of
                       {ok, #{} = S} -> S;
                       _ -> snapshot_from_peers(Node, Live -- [Node])
                   end,
            #{traffic := T} = Faults,
            ok = rpc(Node, lasp_converge_replicator, set_faults, [node_faults(Node, T)]),
            {ok, _} = rpc(Node, lasp_converge_replicator, set, [maps:get(settings, Snap)]),
            lists:foreach(fun({Var, Type, Members}) ->
                                  restore(Node, Var, Type, Members, Recover, Live)
                          end, maps:get(vars, Snap)),
            update(C, restart, [Node, Opts],
                   fun(#{snapshots := S} = F, _) -> F#{snapshots := maps:remove(Node, S)} end);
        {error, not_running} ->
            {error, not_running};
        {error, R} ->
            {error, {restart_failed, Node, R}}
    end.

%% @doc Freeze `Node''s replicator: it neither sends nor processes
%% replication messages until `resume/2' (messages arriving meanwhile are
%% processed then). Local calls on it keep working.
-spec pause(cluster(), node()) -> ok | {error, term()}.
pause(C, Node) ->
    members(C, [Node],
            fun() ->
                    traffic(C, pause, [Node],
                            fun(#{paused := P} = T) -> T#{paused := lists:usort([Node | P])} end)
            end).

%% @doc Unfreeze `Node''s replicator; it processes what arrived meanwhile.
-spec resume(cluster(), node()) -> ok | {error, term()}.
resume(C, Node) ->
    members(C, [Node],
            fun() ->
                    traffic(C, resume, [Node],
                            fun(#{paused := P} = T) -> T#{paused := P -- [Node]} end)
            end).

%% @doc Undo every traffic fault: partition, delays, loss, pauses. (Crashed
%% nodes stay down until `restart/3'.)
-spec clear(cluster()) -> ok | {error, term()}.
clear(C) ->
    traffic(C, clear, [], fun(_) -> ?NO_TRAFFIC end).

%% @doc The faults applied to the cluster so far, in time order.
-spec events(cluster()) -> [event()].
events(C) ->
    lists:reverse(maps:get(events, ensure(lasp_converge_cluster:faults(C)))).

%% ---- internals ----

%% Run `Fun' when every node is a member of the cluster.
members(C, Nodes, Fun) ->
    Members = lasp_converge_cluster:nodes(C),
    case [N || N <- Nodes, not lists:member(N, Members)] of
        [] -> Fun();
        [N | _] -> {error, {not_a_member, N}}
    end.

check_groups(Groups, Members) when is_list(Groups) ->
    case lists:all(fun is_list/1, Groups) of
        false ->
            {error, bad_groups};
        true ->
            All = lists:append(Groups),
            case [N || N <- All, not lists:member(N, Members)] of
                [N | _] ->
                    {error, {not_a_member, N}};
                [] ->
                    case All -- lists:usort(All) of
                        [] -> ok;
                        [N | _] -> {error, {in_two_groups, N}}
                    end
            end
    end;
check_groups(_, _) ->
    {error, bad_groups}.

ensure(F) ->
    maps:merge(#{traffic => ?NO_TRAFFIC, snapshots => #{}, events => []}, F).

%% Change the traffic faults, apply them on every running member, record
%% the event. `{error, not_running}' once the cluster is stopped.
traffic(C, Fault, Args, Change) ->
    update(C, Fault, Args,
           fun(#{traffic := T} = F, Live) ->
                   T1 = Change(T),
                   _ = [rpc(N, lasp_converge_replicator, set_faults, [node_faults(N, T1)])
                        || N <- Live],
                   F#{traffic := T1}
           end).

%% Run `Change' in the cluster's owner (one fault at a time), then record the
%% event there and hand it to the trackers.
update(C, Fault, Args, Change) ->
    lasp_converge_cluster:update_faults(
      C, fun(F0, Live) ->
                 F1 = Change(ensure(F0), Live),
                 Event = #{at_us => erlang:system_time(microsecond), fault => Fault,
                           args => Args},
                 _ = [rpc(N, lasp_converge, mark, [Event]) || N <- Live],
                 _ = lasp_converge:mark(Event),
                 ok = lasp_converge_telemetry:fault_applied(Event),
                 {ok, F1#{events := [Event | maps:get(events, F1)]}}
         end).

node_faults(N, #{groups := Groups, delays := Delays, drop := Drop, paused := Paused}) ->
    Reach = case Groups of
                undefined -> all;
                _ -> case [G || G <- Groups, lists:member(N, G)] of
                         [G] -> G -- [N];
                         [] -> []
                     end
            end,
    #{reach => Reach,
      delay => maps:from_list([{To, Ms} || {{From, To}, Ms} <- maps:to_list(Delays), From =:= N]),
      drop => Drop,
      paused => lists:member(N, Paused)}.

%% What a restart restores: the node's replicator settings and variables.
snapshot(Node) ->
    try
        #{settings => erpc:call(Node, lasp_converge_replicator, settings, [], ?RPC_TIMEOUT),
          vars => erpc:call(Node, lasp_converge_replicator, declared, [], ?RPC_TIMEOUT)}
    catch _:_ ->
            undefined
    end.

%% Without a snapshot: a running member's settings, and the variables it
%% holds that have `Node' among their members.
snapshot_from_peers(Node, [Peer | Peers]) ->
    case snapshot(Peer) of
        #{vars := Vars} = S ->
            S#{vars := [V || {_, _, Ms} = V <- Vars, lists:member(Node, Ms)]};
        undefined ->
            snapshot_from_peers(Node, Peers)
    end;
snapshot_from_peers(_Node, []) ->
    #{settings => #{}, vars => []}.

restore(Node, Var, Type, Members, Recover, Live) ->
    State = case Recover of
                true -> fetch(Var, [M || M <- Members, M =/= Node, lists:member(M, Live)]);
                false -> undefined
            end,
    ok = rpc(Node, lasp_converge_replicator, declare_local, [Var, Type, Members]),
    case State of
        undefined -> ok;
        _ -> {ok, _} = rpc(Node, lasp_converge_replicator, absorb, [Var, State]), ok
    end.

%% The state of `Var' on the first running member that answers.
fetch(Var, [M | Ms]) ->
    try erpc:call(M, lasp_converge_replicator, state, [Var], ?RPC_TIMEOUT) of
        {ok, S} -> S;
        _ -> fetch(Var, Ms)
    catch _:_ ->
            fetch(Var, Ms)
    end;
fetch(_Var, []) ->
    undefined.

rpc(N, M, F, A) ->
    try erpc:call(N, M, F, A, ?RPC_TIMEOUT)
    catch Class:Why -> {error, {Class, Why}}
    end.
