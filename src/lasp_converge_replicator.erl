%% @doc Replication of declared variables between the nodes of a cluster,
%% modelled on Lasp's state-based and delta-based backends
%% (`lasp_state_based_synchronization_backend',
%% `lasp_delta_based_synchronization_backend'), with Lasp's knobs and
%% defaults.
%%
%% == Model ==
%%
%% One replicator per node (a `gen_server' registered as
%% `lasp_converge_replicator', started with the application as a child of
%% `lasp_converge_sup'), holding one replica of each declared variable: its
%% type, its state (a plain lasp-lang/types term) and its members, the nodes
%% holding a replica. `declare(Var, Type)' declares the variable on this node
%% and on every connected node where the `lasp_converge' application runs
%% (`declare/3' names the nodes). `update(Var, Op, Actor)' mutates the local
%% replica natively.
%%
%% Every `state_interval' ms (default 10 000, Lasp's default) the
%% replicator sends every variable to `fanout' random other members (default
%% `all'); with `propagate_on_update' (default `false', as in Lasp) it also
%% sends right after each local update. The interval is stretched or
%% shortened by a random amount of up to `jitter_percent' % (default 0).
%% Receivers merge with the native `lasp_converge_crdt:merge/2'. Settings
%% are per node (`set/1').
%%
%% As in Lasp, where each round schedules the next with the interval then
%% in force, a change of settings does not restart the timer: a longer
%% interval takes effect when the timer armed with the old one fires, so
%% the round already due still goes out. A shorter interval than the time
%% left re-arms the timer at once (a node told to propagate faster does not
%% wait out the old interval), and so does any change while no variable is
%% declared (no round is due). `flush(Var)' sends one round of `Var' now,
%% leaving the timer alone.
%%
%% == Modes ==
%%
%% `mode => state_based' (the default) sends the full state every time.
%%
%% `mode => delta_based' sends each peer only what it has not acknowledged.
%% A local update is computed with the native
%% `lasp_converge_crdt:delta_mutate/3' and joined into the state with
%% `merge/2'; the delta goes into the variable's delta buffer under the next
%% sequence number, with this node as its origin. A received state or delta
%% that changes the replica is buffered too, reduced to what it added
%% (`delta(Received, Local)', so nothing is forwarded twice), with the sender
%% as its origin. Each round, a peer that acknowledged sequence number `A'
%% gets the join of the buffered deltas numbered `A' or later, leaving out
%% those that came from that peer; it merges them and acknowledges the
%% sequence number the message carried. A peer that has not acknowledged
%% anything yet, or whose acknowledgement is older than the oldest delta
%% still buffered, gets the full state instead. Deltas every member has
%% acknowledged are dropped from the buffer, which also never holds more
%% than `delta_buffer' deltas (default 1000): the oldest go first, and a
%% peer that far behind gets the full state. A replica's incarnation (a
%% number drawn when it is declared) travels with every acknowledgement, so
%% a restarted node, which lost its state, is sent the full state again.
%% This is the algorithm of Enes, Almeida, Baquero, Leitão, "Efficient
%% Synchronization of State-based CRDTs", ICDE 2019 (delta buffers with
%% acknowledgements, avoiding back-propagation, removing redundant state),
%% which Lasp's delta-based backend implements.
%%
%% Nodes with different modes interoperate: every node merges and
%% acknowledges whatever it receives.
%%
%% == Reporting and counting ==
%%
%% Every local update is reported to the tracker by its delta, as
%% `lasp_converge:updated_delta/2' does (in `state_based' mode the update
%% runs as `lasp_converge_crdt:mutate/3' does, the delta joined into the
%% state, and the delta comes with it from the same native call), and every
%% change of a replica by what it added: the update's delta, or what a
%% received state or delta added (`merge_added/2' of the
%% `lasp_converge_crdt' module joins and gives it in one call). Both are
%% handed to the variable's observer (`lasp_converge_observer:submit/2')
%% and applied there, so the replicator never waits for the tracker and
%% copies only changes to it, never its whole state. A variable that is not
%% tracked is not an error.
%%
%% Every replication message (full states, deltas, acknowledgements) is
%% counted per variable and per node in both modes: `sent_messages' and
%% `sent_bytes' (`erlang:external_size/1' of each message, once per
%% recipient), with `full_states', `deltas' and `acks' telling the kinds
%% apart, and `dropped' the messages lost to injected faults (see below;
%% they count as sent).
%%
%% == Faults ==
%%
%% `lasp_converge_fault' injects faults into this traffic, through
%% `set_faults/1' on each node: messages to nodes outside this node's
%% partition group are dropped, each message is lost with the `drop'
%% probability, messages to a slow peer are delivered late (and dropped
%% if a partition separates the nodes when they are due), and a paused
%% replicator neither sends nor processes replication messages: those
%% arriving meanwhile are kept and processed, in order, when it resumes,
%% as by a frozen VM. Local calls (`update/3', `value/1', ...) keep working
%% on a paused node. The tracker's messages and other Erlang traffic never
%% go through here and are not affected.
%%
%% The lattice model: Shapiro, Preguiça, Baquero, Zawirski, "A comprehensive
%% study of Convergent and Commutative Replicated Data Types", INRIA
%% RR-7506, 2011 (state-based objects converge by shipping and joining
%% whole states); Almeida, Shoker, Baquero, "Delta State Replicated Data
%% Types", JPDC 2018 (deltas).
-module(lasp_converge_replicator).
-behaviour(gen_server).

-export([declare/2, declare/3, declare_local/3,
         update/3, value/1, state/1, set/1, settings/0, setting_changes/0, stats/0, flush/1,
         declared/0, absorb/2, set_faults/1,
         ensure_started/0, start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-type var() :: term().
-type mode() :: state_based | delta_based.
-type settings() :: #{state_interval => pos_integer(),
                      fanout => pos_integer() | all,
                      propagate_on_update => boolean(),
                      jitter_percent => 0..100,
                      mode => mode(),
                      delta_buffer => pos_integer()}.
-type counters() :: #{sent_messages := non_neg_integer(),
                      sent_bytes := non_neg_integer(),
                      full_states := non_neg_integer(),
                      deltas := non_neg_integer(),
                      acks := non_neg_integer(),
                      dropped := non_neg_integer(),
                      received_messages := non_neg_integer(),
                      received_changed := non_neg_integer()}.
-type stats() :: #{node := node(),
                   sent_messages := non_neg_integer(),
                   sent_bytes := non_neg_integer(),
                   full_states := non_neg_integer(),
                   deltas := non_neg_integer(),
                   acks := non_neg_integer(),
                   dropped := non_neg_integer(),
                   received_messages := non_neg_integer(),
                   received_changed := non_neg_integer(),
                   received_unknown := non_neg_integer(),
                   vars := #{var() => counters()}}.
-type faults() :: #{reach => all | [node()],
                    delay => #{node() => pos_integer()},
                    drop => float(),
                    paused => boolean()}.
-type setting_change() :: #{at_us := integer(), key := atom(), old := term(), new := term()}.
-export_type([var/0, mode/0, settings/0, stats/0, faults/0, setting_change/0]).

-define(DEFAULTS, #{state_interval => 10000, fanout => all,
                    propagate_on_update => false, jitter_percent => 0,
                    mode => state_based, delta_buffer => 1000}).
-define(NO_FAULTS, #{reach => all, delay => #{}, drop => 0.0, paused => false}).
-define(COUNTERS, [sent_messages, sent_bytes, full_states, deltas, acks, dropped,
                   received_messages, received_changed]).
-define(TIMEOUT, 30000).

-record(var, {type :: atom(),
              state :: term(),
              members :: [node()],
              counters :: counters(),
              %% This replica's incarnation: drawn when it is declared.
              epoch :: integer(),
              %% Delta buffer (delta_based): `buf' holds, newest first, the
              %% deltas numbered `low' to `seq - 1', each with its origin.
              seq = 0 :: non_neg_integer(),
              low = 0 :: non_neg_integer(),
              buf = [] :: [{non_neg_integer(), node(), term()}],
              %% Per peer: its incarnation and the sequence number up to
              %% which (exclusive) it acknowledged our deltas, `undefined'
              %% when it must get the full state.
              acks = #{} :: #{node() => {integer() | undefined, non_neg_integer() | undefined}}}).
-define(HISTORY, 1000).

-record(st, {settings :: settings(), vars = #{} :: #{var() => #var{}},
             timer :: reference() | undefined,
             unknown = 0 :: non_neg_integer(),
             faults = ?NO_FAULTS :: faults(),
             %% Replication messages received while paused, newest first.
             held = [] :: [tuple()],
             %% Changes of settings, newest first (the newest ?HISTORY).
             changes = [] :: [setting_change()]}).

%% ---- API ----

%% @doc Declare `Var' of type `Type' (a lasp-lang/types state type) on this
%% node and on every connected node where the `lasp_converge' application
%% runs. Declaring again keeps the replica's state. Returns `{ok, Members}'.
-spec declare(var(), atom()) -> {ok, [node()]} | {error, term()}.
declare(Var, Type) ->
    Others = [N || N <- nodes(), app_running(N)],
    declare(Var, Type, #{nodes => [node() | Others]}).

%% @doc As `declare/2' on the nodes `nodes' (this node included when given).
-spec declare(var(), atom(), #{nodes := [node()]}) -> {ok, [node()]} | {error, term()}.
declare(Var, Type, #{nodes := Nodes0}) ->
    case lists:member(Type, lasp_converge_crdt:types()) of
        false ->
            {error, {unknown_type, Type}};
        true ->
            Nodes = lists:usort(Nodes0),
            Rs = [{N, try erpc:call(N, ?MODULE, declare_local, [Var, Type, Nodes], ?TIMEOUT)
                      catch C:R -> {error, {C, R}} end}
                  || N <- Nodes],
            case [{N, E} || {N, E} <- Rs, E =/= ok] of
                [] -> {ok, Nodes};
                Bad -> {error, {declare_failed, Bad}}
            end
    end.

%% @private Declare on this node only (called by `declare/3' on each member).
-spec declare_local(var(), atom(), [node()]) -> ok | {error, term()}.
declare_local(Var, Type, Members) ->
    case ensure_started() of
        ok -> call({declare, Var, Type, Members});
        E -> E
    end.

%% @doc Apply `Op' as `Actor' to this node's replica of `Var' (native
%% `mutate/3', or `delta_mutate/3' and `merge/2' in `delta_based' mode);
%% returns the new value (`query/1' of the new state).
-spec update(var(), term(), term()) -> {ok, term()} | {error, term()}.
update(Var, Op, Actor) ->
    call({update, Var, Op, Actor}).

%% @doc The value of this node's replica (`lasp_converge_crdt:query/1').
-spec value(var()) -> {ok, term()} | {error, not_declared}.
value(Var) ->
    case state(Var) of
        {ok, S} -> {ok, lasp_converge_crdt:query(S)};
        E -> E
    end.

%% @doc The state of this node's replica, a plain lasp-lang/types term.
-spec state(var()) -> {ok, term()} | {error, not_declared}.
state(Var) ->
    call({state, Var}).

%% @doc Change this node's propagation settings (the others keep theirs):
%% `state_interval' (ms), `fanout' (a count or `all'),
%% `propagate_on_update', `jitter_percent', `mode' (`state_based' or
%% `delta_based'), `delta_buffer' (most deltas kept per variable). Changing
%% the mode empties the delta buffers (peers get the full state once).
%% Returns the settings in force, or `{error, {bad_settings, Keys}}' naming
%% the keys that are unknown or have a bad value (as
%% `lasp_converge_tuner:set/1' and `lasp_converge_lasp:set/1' do).
-spec set(settings()) -> {ok, settings()} | {error, term()}.
set(Opts) when is_map(Opts) ->
    case valid(Opts) of
        ok ->
            case ensure_started() of
                ok -> call({set, Opts});
                E -> E
            end;
        E -> E
    end;
set(_) ->
    {error, bad_settings}.

%% @doc Send one round of `Var' from this node now, as a tick would (to
%% `fanout' random members, the full state or each peer's deltas); the
%% timer keeps its time.
-spec flush(var()) -> ok | {error, not_declared}.
flush(Var) ->
    call({flush, Var}).

%% @doc This node's settings.
-spec settings() -> settings().
settings() ->
    case call(settings) of
        {error, not_started} -> ?DEFAULTS;
        S -> S
    end.

%% @doc The changes of this node's settings since its replicator started,
%% oldest first (the newest 1000): when (`at_us', on the tracker's clock,
%% `lasp_converge_tracker:now_us/0'), which key, the old and the new value.
%% Every change counts, whoever made it (`set/1', the tuner, a scenario), so
%% reports draw the settings in force over time from the settings
%% themselves.
-spec setting_changes() -> [setting_change()].
setting_changes() ->
    case call(setting_changes) of
        {error, not_started} -> [];
        Cs -> Cs
    end.

%% @doc Messages and bytes sent (with the kinds: `full_states', `deltas',
%% `acks', and those `dropped' by injected faults), messages received and
%% those that changed the replica, for this node and per variable.
-spec stats() -> stats().
stats() ->
    case call(stats) of
        {error, not_started} ->
            Zero = maps:from_list([{K, 0} || K <- ?COUNTERS]),
            Zero#{node => node(), received_unknown => 0, vars => #{}};
        S -> S
    end.

%% @doc The variables declared on this node: `{Var, Type, Members}'.
-spec declared() -> [{var(), atom(), [node()]}].
declared() ->
    case call(declared) of
        {error, not_started} -> [];
        L -> L
    end.

%% @doc Merge `State' into this node's replica of `Var', as if a peer had
%% sent it (used to recover a restarted node's state from a live peer).
%% Returns the new value.
-spec absorb(var(), term()) -> {ok, term()} | {error, term()}.
absorb(Var, State) ->
    call({absorb, Var, State}).

%% @doc Set this node's replication faults (see the module doc), replacing
%% the previous ones; keys left out take their defaults: `reach' (`all', or
%% the only nodes this node's messages reach), `delay' (`#{Peer => Ms}'),
%% `drop' (probability, 0.0), `paused' (`false'). Resuming processes the
%% messages held while paused. Called by `lasp_converge_fault'.
-spec set_faults(faults()) -> ok | {error, term()}.
set_faults(Faults) when is_map(Faults) ->
    case ensure_started() of
        ok -> call({faults, maps:merge(?NO_FAULTS, maps:with(maps:keys(?NO_FAULTS), Faults))});
        E -> E
    end.

%% @doc `ok' when this node's replicator runs (it starts with the
%% application, as a child of `lasp_converge_sup'), else
%% `{error, not_started}'.
-spec ensure_started() -> ok | {error, not_started}.
ensure_started() ->
    case whereis(?MODULE) of
        P when is_pid(P) -> ok;
        undefined -> {error, not_started}
    end.

%% @private
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% ---- gen_server ----

%% @private
init([]) ->
    {ok, schedule(#st{settings = ?DEFAULTS})}.

%% @private
handle_call({declare, Var, Type, Members}, _From, #st{vars = Vs} = St) ->
    case maps:find(Var, Vs) of
        {ok, #var{type = Type} = V} ->
            Ms = lists:usort(Members ++ V#var.members),
            {reply, ok, St#st{vars = Vs#{Var := V#var{members = Ms}}}};
        {ok, #var{type = Other}} ->
            {reply, {error, {type_mismatch, Other}}, St};
        error ->
            V = #var{type = Type, state = lasp_converge_crdt:new(Type),
                     members = lists:usort([node() | Members]),
                     counters = maps:from_list([{K, 0} || K <- ?COUNTERS]),
                     epoch = erlang:system_time(microsecond)},
            {reply, ok, St#st{vars = Vs#{Var => V}}}
    end;
handle_call({update, Var, Op, Actor}, _From, #st{vars = Vs, settings = S} = St) ->
    case maps:find(Var, Vs) of
        error ->
            {reply, {error, not_declared}, St};
        {ok, V} ->
            case local_update(Op, Actor, V, S) of
                {ok, Delta, #var{state = Post} = V1} ->
                    %% Handed to the variable's observer: the tracking work
                    %% runs there, not in this process, and only the
                    %% update's delta is copied there.
                    _ = lasp_converge_observer:submit(Var, {updated_delta, Delta}),
                    _ = lasp_converge_observer:submit(Var, {observed_delta, Delta}),
                    V2 = case maps:get(propagate_on_update, S) of
                             true -> send_round(Var, V1, St);
                             false -> V1
                         end,
                    {reply, {ok, lasp_converge_crdt:query(Post)},
                     St#st{vars = Vs#{Var := V2}}};
                {error, _} = E ->
                    {reply, E, St}
            end
    end;
handle_call({state, Var}, _From, #st{vars = Vs} = St) ->
    case maps:find(Var, Vs) of
        {ok, #var{state = S}} -> {reply, {ok, S}, St};
        error -> {reply, {error, not_declared}, St}
    end;
handle_call({absorb, Var, State}, _From, #st{vars = Vs} = St) ->
    case maps:find(Var, Vs) of
        error ->
            {reply, {error, not_declared}, St};
        {ok, V} ->
            try merge_in(Var, node(), State, V, St) of
                #var{state = S} = V1 ->
                    {reply, {ok, lasp_converge_crdt:query(S)}, St#st{vars = Vs#{Var := V1}}}
            catch error:{badcrdt, Why} ->
                    {reply, {error, {badcrdt, Why}}, St}
            end
    end;
handle_call({set, Opts}, _From, #st{settings = S0, vars = Vs, changes = Cs0} = St) ->
    S = maps:merge(S0, maps:with(maps:keys(?DEFAULTS), Opts)),
    At = lasp_converge_tracker:now_us(),
    New = [#{at_us => At, key => K, old => maps:get(K, S0), new => V}
           || {K, V} <- lists:sort(maps:to_list(S)), V =/= maps:get(K, S0)],
    Cs = lists:sublist(lists:reverse(New) ++ Cs0, ?HISTORY),
    Vs1 = case maps:get(mode, S) =:= maps:get(mode, S0) of
              true -> Vs;
              false -> maps:map(fun(_, V) -> forget_deltas(V) end, Vs)
          end,
    {reply, {ok, S}, rearm(St#st{settings = S, vars = Vs1, changes = Cs})};
handle_call({flush, Var}, _From, #st{vars = Vs} = St) ->
    case maps:find(Var, Vs) of
        {ok, V} -> {reply, ok, St#st{vars = Vs#{Var := send_round(Var, V, St)}}};
        error -> {reply, {error, not_declared}, St}
    end;
handle_call(settings, _From, St) ->
    {reply, St#st.settings, St};
handle_call(setting_changes, _From, St) ->
    {reply, lists:reverse(St#st.changes), St};
handle_call(declared, _From, #st{vars = Vs} = St) ->
    {reply, [{Var, T, Ms} || {Var, #var{type = T, members = Ms}} <- maps:to_list(Vs)], St};
handle_call({faults, F}, _From, #st{faults = F0, held = Held} = St) ->
    St1 = St#st{faults = F},
    case maps:get(paused, F0) andalso not maps:get(paused, F) of
        true ->
            St2 = lists:foldl(fun handle_rep/2, St1#st{held = []}, lists:reverse(Held)),
            {reply, ok, St2};
        false ->
            {reply, ok, St1}
    end;
handle_call(stats, _From, #st{vars = Vs} = St) ->
    PerVar = maps:map(fun(_, #var{counters = C}) -> C end, Vs),
    Sums = maps:from_list([{K, lists:sum([maps:get(K, C) || C <- maps:values(PerVar)])}
                           || K <- ?COUNTERS]),
    {reply, Sums#{node => node(), received_unknown => St#st.unknown, vars => PerVar}, St};
handle_call(_, _From, St) ->
    {reply, {error, bad_call}, St}.

%% @private
handle_cast(_, St) ->
    {noreply, St}.

%% @private
handle_info(tick, #st{vars = Vs} = St) ->
    Vs1 = maps:map(fun(Var, V) -> round_done(Var, V, send_round(Var, V, St)) end, Vs),
    {noreply, schedule(St#st{vars = Vs1, timer = undefined})};
handle_info({lc_rep_later, To, Msg}, #st{faults = F} = St) ->
    %% A delayed message falls due: lost if a partition now separates us.
    _ = reaches(To, F) andalso erlang:send({?MODULE, To}, Msg, [noconnect]),
    {noreply, St};
handle_info(Msg, #st{faults = #{paused := true}, held = Held} = St) ->
    case is_rep(Msg) of
        true -> {noreply, St#st{held = [Msg | Held]}};
        false -> {noreply, St}
    end;
handle_info(Msg, St) ->
    {noreply, handle_rep(Msg, St)}.

%% ---- internals ----

%% One replication message (also those held while paused, at resume).
handle_rep({lc_rep_state, Var, From, Remote}, #st{vars = Vs} = St) ->
    with_var(Var, St, fun(V) ->
                              St#st{vars = Vs#{Var := safe_merge_in(Var, From, Remote, V, St)}}
                      end);
handle_rep({lc_rep_delta, Var, From, ToEpoch, Seq, Kind, Remote}, #st{vars = Vs} = St) ->
    with_var(Var, St,
             fun(#var{epoch = Epoch} = V) ->
                     V1 = safe_merge_in(Var, From, Remote, V, St),
                     %% A delta meant for an earlier incarnation of this
                     %% replica does not make us whole: ask for the state.
                     Ack = case Kind =:= state orelse ToEpoch =:= Epoch of
                               true -> Seq;
                               false -> undefined
                           end,
                     V2 = send(From, {lc_rep_ack, Var, node(), Epoch, Ack}, acks, V1, St),
                     St#st{vars = Vs#{Var := V2}}
             end);
handle_rep({lc_rep_ack, Var, From, Epoch, Ack}, #st{vars = Vs} = St) ->
    with_var(Var, St,
             fun(#var{acks = Acks, counters = C} = V) ->
                     New = case {maps:find(From, Acks), Ack} of
                               {{ok, {Epoch, Old}}, _} when is_integer(Old), is_integer(Ack) ->
                                   {Epoch, max(Old, Ack)};
                               _ ->
                                   {Epoch, Ack}
                           end,
                     V1 = V#var{acks = Acks#{From => New},
                                counters = bump(received_messages, 1, C)},
                     St#st{vars = Vs#{Var := collect(V1)}}
             end);
handle_rep(_, St) ->
    St.

is_rep(Msg) ->
    is_tuple(Msg) andalso tuple_size(Msg) > 0 andalso
        lists:member(element(1, Msg), [lc_rep_state, lc_rep_delta, lc_rep_ack]).

with_var(Var, #st{vars = Vs} = St, F) ->
    case maps:find(Var, Vs) of
        {ok, V} -> F(V);
        error -> St#st{unknown = St#st.unknown + 1}
    end.

local_update(Op, Actor, #var{state = Pre} = V, #{mode := state_based}) ->
    %% `mutate/3''s state, with the delta it joined.
    try lasp_converge_crdt:mutate_delta(Op, Actor, Pre) of
        {ok, Post, D} -> {ok, D, V#var{state = Post}};
        {error, _} = E -> E
    catch error:{badcrdt, Why} -> {error, {badcrdt, Why}}
    end;
local_update(Op, Actor, #var{state = Pre} = V, #{mode := delta_based} = S) ->
    try lasp_converge_crdt:delta_mutate(Op, Actor, Pre) of
        {ok, D} ->
            Post = lasp_converge_crdt:merge(Pre, D),
            {ok, D, buffer(node(), D, V#var{state = Post}, S)};
        {error, _} = E -> E
    catch error:{badcrdt, Why} -> {error, {badcrdt, Why}}
    end.

%% Join a received state or delta (or a recovered state) into the replica.
%% In delta_based mode what it added is buffered with `From' as its origin.
merge_in(Var, From, Remote, #var{state = Local, counters = C} = V, #st{settings = S}) ->
    C1 = case From =:= node() of
             true -> C;
             false -> bump(received_messages, 1, C)
         end,
    %% One merge gives the new state and what the message added to it.
    case lasp_converge_crdt:merge_added(Local, Remote) of
        {Local, _} ->
            V#var{counters = C1};
        {Merged, Added} ->
            _ = lasp_converge_observer:submit(Var, {observed_delta, Added}),
            V1 = V#var{state = Merged, counters = bump(received_changed, 1, C1)},
            case maps:get(mode, S) of
                delta_based -> buffer(From, Added, V1, S);
                state_based -> V1
            end
    end.

safe_merge_in(Var, From, Remote, #var{counters = C} = V, St) ->
    try
        merge_in(Var, From, Remote, V, St)
    catch error:{badcrdt, _} ->
            %% A malformed or mismatched state: keep ours.
            V#var{counters = bump(received_messages, 1, C)}
    end.

buffer(Origin, D, #var{seq = Seq, buf = Buf} = V, #{delta_buffer := Max}) ->
    V1 = V#var{seq = Seq + 1, buf = [{Seq, Origin, D} | Buf]},
    case length(V1#var.buf) > Max of
        true ->
            Kept = lists:sublist(V1#var.buf, Max),
            {Low, _, _} = lists:last(Kept),
            V1#var{buf = Kept, low = Low};
        false ->
            V1
    end.

%% Drop the deltas every peer that acknowledged anything has acknowledged.
%% (A peer without a usable acknowledgement gets the full state anyway.)
collect(#var{acks = Acks, members = Ms, buf = Buf, low = Low} = V) ->
    Known = [A || P <- Ms, P =/= node(), {ok, {_, A}} <- [maps:find(P, Acks)], is_integer(A)],
    case Known of
        [] ->
            V;
        _ ->
            Min = lists:min(Known),
            case Min > Low of
                true -> V#var{buf = [E || {Sq, _, _} = E <- Buf, Sq >= Min], low = Min};
                false -> V
            end
    end.

forget_deltas(#var{seq = Seq} = V) ->
    V#var{buf = [], low = Seq, acks = #{}}.

%% Telemetry's `[lasp_converge, replicator, round]' event (lasp_converge_telemetry).
round_done(Var, #var{counters = C0}, #var{counters = C1} = V) ->
    ok = lasp_converge_telemetry:replicator_round(Var, C0, C1),
    V.

send_round(_Var, V, #st{faults = #{paused := true}}) ->
    V;
send_round(Var, #var{members = Ms} = V, #st{settings = S} = St) ->
    Peers = pick(Ms -- [node()], maps:get(fanout, S)),
    case maps:get(mode, S) of
        state_based ->
            Msg = {lc_rep_state, Var, node(), V#var.state},
            lists:foldl(fun(P, VA) -> send(P, Msg, full_states, VA, St) end, V, Peers);
        delta_based ->
            lists:foldl(fun(P, VA) -> send_delta(Var, P, VA, St) end, V, Peers)
    end.

send_delta(Var, P, #var{acks = Acks, low = Low, seq = Seq, buf = Buf} = V, St) ->
    case maps:find(P, Acks) of
        {ok, {_, A}} when is_integer(A), A >= Seq ->
            V;
        {ok, {Epoch, A}} when is_integer(A), A >= Low ->
            Ds = [D || {_, O, D} <- lists:takewhile(fun({Sq, _, _}) -> Sq >= A end, Buf),
                       O =/= P],
            case Ds of
                [] ->
                    %% Everything it lacks came from it.
                    V#var{acks = Acks#{P := {Epoch, Seq}}};
                _ ->
                    Msg = {lc_rep_delta, Var, node(), Epoch, Seq, delta,
                           lasp_converge_crdt:merge_all(Ds)},
                    send(P, Msg, deltas, V, St)
            end;
        Found ->
            Epoch = case Found of
                        {ok, {E, _}} -> E;
                        error -> undefined
                    end,
            Msg = {lc_rep_delta, Var, node(), Epoch, Seq, state, V#var.state},
            send(P, Msg, full_states, V, St)
    end.

%% Send one replication message, counted, through the injected faults.
send(P, Msg, Kind, #var{counters = C} = V, #st{faults = F}) ->
    C1 = bump(Kind, 1, bump(sent_bytes, erlang:external_size(Msg), bump(sent_messages, 1, C))),
    Lost = not reaches(P, F) orelse rand:uniform() < maps:get(drop, F),
    case Lost of
        true ->
            V#var{counters = bump(dropped, 1, C1)};
        false ->
            _ = case maps:get(delay, F) of
                    #{P := Ms} when Ms > 0 ->
                        erlang:send_after(Ms, self(), {lc_rep_later, P, Msg});
                    _ ->
                        erlang:send({?MODULE, P}, Msg, [noconnect])
                end,
            V#var{counters = C1}
    end.

reaches(_P, #{reach := all}) -> true;
reaches(P, #{reach := Nodes}) -> lists:member(P, Nodes).

pick(Peers, all) -> Peers;
pick(Peers, K) when length(Peers) =< K -> Peers;
pick(Peers, K) ->
    Shuffled = [P || {_, P} <- lists:sort([{rand:uniform(), P} || P <- Peers])],
    lists:sublist(Shuffled, K).

bump(K, N, C) -> maps:update_with(K, fun(X) -> X + N end, C).

schedule(#st{settings = #{state_interval := I, jitter_percent := J}} = St) ->
    Delay = case J of
                0 -> I;
                _ -> max(1, I + round(I * J / 100 * (2 * rand:uniform() - 1)))
            end,
    St#st{timer = erlang:send_after(Delay, self(), tick)}.

%% After a change of settings: the armed timer stays unless the new
%% interval ends sooner or nothing is declared (see the module doc). A
%% timer that already fired left its tick in the mailbox, which schedules
%% the next round with the new settings.
rearm(#st{timer = undefined} = St) ->
    schedule(St);
rearm(#st{timer = T, vars = Vs, settings = #{state_interval := I}} = St) ->
    Sooner = case erlang:read_timer(T) of
                 false -> false;
                 Left -> I < Left orelse map_size(Vs) =:= 0
             end,
    case Sooner andalso erlang:cancel_timer(T) =/= false of
        true -> schedule(St);
        false -> St
    end.

call(Msg) ->
    try gen_server:call(?MODULE, Msg, ?TIMEOUT)
    catch exit:{noproc, _} ->
            case Msg of
                {update, _, _, _} -> {error, not_declared};
                {state, _} -> {error, not_declared};
                {flush, _} -> {error, not_declared};
                {absorb, _, _} -> {error, not_declared};
                _ -> {error, not_started}
            end
    end.

valid(Opts) ->
    Bad = [K || {K, V} <- maps:to_list(Opts), not valid(K, V)],
    case Bad of
        [] -> ok;
        _ -> {error, {bad_settings, lists:sort(Bad)}}
    end.

valid(state_interval, I) -> is_integer(I) andalso I > 0;
valid(fanout, all) -> true;
valid(fanout, K) -> is_integer(K) andalso K > 0;
valid(propagate_on_update, B) -> is_boolean(B);
valid(jitter_percent, P) -> is_integer(P) andalso P >= 0 andalso P =< 100;
valid(mode, M) -> M =:= state_based orelse M =:= delta_based;
valid(delta_buffer, N) -> is_integer(N) andalso N > 0;
valid(_, _) -> false.

app_running(N) ->
    try erpc:call(N, erlang, whereis, [lasp_converge_sup], 5000) of
        P -> is_pid(P)
    catch _:_ -> false
    end.
