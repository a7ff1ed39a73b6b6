%% @doc State-based replication of declared variables between the nodes of a
%% cluster, modelled on Lasp's state-based backend (`lasp_state_based_
%% synchronization_backend'), with Lasp's knobs and defaults.
%%
%% == Model ==
%%
%% One replicator per node (a `gen_server' registered as
%% `lasp_converge_replicator', started on demand as a child of
%% `lasp_converge_sup'), holding one replica of each declared variable: its
%% type, its state (a plain lasp-lang/types term) and its members, the nodes
%% holding a replica. `declare(Var, Type)' declares the variable on this node
%% and on every connected node where the `lasp_converge' application runs
%% (`declare/3' names the nodes). `update(Var, Op, Actor)' mutates the local
%% replica with the native `lasp_converge_crdt:mutate/3'.
%%
%% Every `state_interval' ms (default 10 000, Lasp's default) the
%% replicator sends the full state of every variable to `fanout' random
%% other members (default `all'); with `propagate_on_update' (default
%% `false', as in Lasp) it also sends right after each local update. The
%% interval is stretched or shortened by a random amount of up to
%% `jitter_percent' % (default 0). Receivers merge with the native
%% `lasp_converge_crdt:merge/2'. Settings are per node (`set/1').
%%
%% Every local update is reported to the tracker with
%% `lasp_converge:updated/3', and every change of a replica (a local update,
%% or a merge that changed the state) with `lasp_converge:observed/2'; a
%% variable that is not tracked is not an error.
%%
%% Messages and bytes (`erlang:external_size/1' of each message) sent are
%% counted per variable and per node (`stats/0').
%%
%% Not yet: `mode => delta_based', fault injection.
%%
%% The lattice model: Shapiro, Preguiça, Baquero, Zawirski, "A comprehensive
%% study of Convergent and Commutative Replicated Data Types", INRIA
%% RR-7506, 2011 (state-based objects converge by shipping and joining
%% whole states).
-module(lasp_converge_replicator).
-behaviour(gen_server).

-export([declare/2, declare/3, declare_local/3,
         update/3, value/1, state/1, set/1, settings/0, stats/0,
         ensure_started/0, start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-type var() :: term().
-type settings() :: #{state_interval => pos_integer(),
                      fanout => pos_integer() | all,
                      propagate_on_update => boolean(),
                      jitter_percent => 0..100}.
-type counters() :: #{sent_messages := non_neg_integer(),
                      sent_bytes := non_neg_integer(),
                      received_messages := non_neg_integer(),
                      received_changed := non_neg_integer()}.
-type stats() :: #{node := node(),
                   sent_messages := non_neg_integer(),
                   sent_bytes := non_neg_integer(),
                   received_messages := non_neg_integer(),
                   received_changed := non_neg_integer(),
                   vars := #{var() => counters()}}.
-export_type([var/0, settings/0, stats/0]).

-define(DEFAULTS, #{state_interval => 10000, fanout => all,
                    propagate_on_update => false, jitter_percent => 0}).
-define(TIMEOUT, 30000).

-record(var, {type :: atom(), state :: term(), members :: [node()],
              counters :: counters()}).
-record(st, {settings :: settings(), vars = #{} :: #{var() => #var{}},
             timer :: reference() | undefined,
             unknown = 0 :: non_neg_integer()}).

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
%% `mutate/3'); returns the new value (`query/1' of the new state).
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
%% `propagate_on_update', `jitter_percent'. Returns the settings in force.
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
    {error, bad_opts}.

%% @doc This node's settings.
-spec settings() -> settings().
settings() ->
    case call(settings) of
        {error, not_started} -> ?DEFAULTS;
        S -> S
    end.

%% @doc Messages and bytes sent, messages received and those that changed
%% the replica, for this node and per variable.
-spec stats() -> stats().
stats() ->
    case call(stats) of
        {error, not_started} ->
            #{node => node(), sent_messages => 0, sent_bytes => 0,
              received_messages => 0, received_changed => 0, vars => #{}};
        S -> S
    end.

%% @doc Start this node's replicator under `lasp_converge_sup' unless it runs.
-spec ensure_started() -> ok | {error, term()}.
ensure_started() ->
    case whereis(?MODULE) of
        P when is_pid(P) -> ok;
        undefined ->
            Spec = #{id => ?MODULE, start => {?MODULE, start_link, []},
                     restart => transient, shutdown => 5000, type => worker,
                     modules => [?MODULE]},
            try supervisor:start_child(lasp_converge_sup, Spec) of
                {ok, _} -> ok;
                {error, {already_started, _}} -> ok;
                {error, already_present} ->
                    case supervisor:restart_child(lasp_converge_sup, ?MODULE) of
                        {ok, _} -> ok;
                        {error, running} -> ok;
                        {error, {already_started, _}} -> ok;
                        {error, R} -> {error, R}
                    end;
                {error, R} -> {error, R}
            catch exit:{noproc, _} -> {error, not_started}
            end
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
                     counters = #{sent_messages => 0, sent_bytes => 0,
                                  received_messages => 0, received_changed => 0}},
            {reply, ok, St#st{vars = Vs#{Var => V}}}
    end;
handle_call({update, Var, Op, Actor}, _From, #st{vars = Vs} = St) ->
    case maps:find(Var, Vs) of
        error ->
            {reply, {error, not_declared}, St};
        {ok, #var{state = Pre} = V} ->
            R = try lasp_converge_crdt:mutate(Op, Actor, Pre)
                catch error:{badcrdt, Why} -> {error, {badcrdt, Why}}
                end,
            case R of
                {ok, Post} ->
                    report(fun() -> lasp_converge:updated(Var, Pre, Post) end),
                    report(fun() -> lasp_converge:observed(Var, Post) end),
                    V1 = V#var{state = Post},
                    V2 = case maps:get(propagate_on_update, St#st.settings) of
                             true -> send_state(Var, V1, St#st.settings);
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
handle_call({set, Opts}, _From, #st{settings = S0, timer = T} = St) ->
    S = maps:merge(S0, maps:with(maps:keys(?DEFAULTS), Opts)),
    _ = T =/= undefined andalso erlang:cancel_timer(T),
    {reply, {ok, S}, schedule(St#st{settings = S, timer = undefined})};
handle_call(settings, _From, St) ->
    {reply, St#st.settings, St};
handle_call(stats, _From, #st{vars = Vs} = St) ->
    PerVar = maps:map(fun(_, #var{counters = C}) -> C end, Vs),
    Sum = fun(K) -> lists:sum([maps:get(K, C) || C <- maps:values(PerVar)]) end,
    {reply, #{node => node(),
              sent_messages => Sum(sent_messages),
              sent_bytes => Sum(sent_bytes),
              received_messages => Sum(received_messages),
              received_changed => Sum(received_changed),
              received_unknown => St#st.unknown,
              vars => PerVar}, St};
handle_call(_, _From, St) ->
    {reply, {error, bad_call}, St}.

%% @private
handle_cast(_, St) ->
    {noreply, St}.

%% @private
handle_info(tick, #st{vars = Vs, settings = S} = St) ->
    Vs1 = maps:map(fun(Var, V) -> send_state(Var, V, S) end, Vs),
    {noreply, schedule(St#st{vars = Vs1, timer = undefined})};
handle_info({lc_rep_state, Var, _From, Remote}, #st{vars = Vs} = St) ->
    case maps:find(Var, Vs) of
        error ->
            {noreply, St#st{unknown = St#st.unknown + 1}};
        {ok, #var{state = Local, counters = C} = V} ->
            C1 = bump(received_messages, 1, C),
            try lasp_converge_crdt:merge(Local, Remote) of
                Local ->
                    {noreply, St#st{vars = Vs#{Var := V#var{counters = C1}}}};
                Merged ->
                    case lasp_converge_crdt:equal(Merged, Local) of
                        true ->
                            {noreply, St#st{vars = Vs#{Var := V#var{counters = C1}}}};
                        false ->
                            report(fun() -> lasp_converge:observed(Var, Merged) end),
                            V1 = V#var{state = Merged,
                                       counters = bump(received_changed, 1, C1)},
                            {noreply, St#st{vars = Vs#{Var := V1}}}
                    end
            catch error:{badcrdt, _} ->
                    %% A malformed or mismatched state: keep ours.
                    {noreply, St#st{vars = Vs#{Var := V#var{counters = C1}}}}
            end
    end;
handle_info(_, St) ->
    {noreply, St}.

%% ---- internals ----

send_state(Var, #var{state = State, members = Ms, counters = C} = V, S) ->
    Peers = pick(Ms -- [node()], maps:get(fanout, S)),
    Msg = {lc_rep_state, Var, node(), State},
    Size = erlang:external_size(Msg),
    [erlang:send({?MODULE, P}, Msg, [noconnect]) || P <- Peers],
    N = length(Peers),
    V#var{counters = bump(sent_bytes, N * Size, bump(sent_messages, N, C))}.

pick(Peers, all) -> Peers;
pick(Peers, K) when length(Peers) =< K -> Peers;
pick(Peers, K) ->
    Shuffled = [P || {_, P} <- lists:sort([{rand:uniform(), P} || P <- Peers])],
    lists:sublist(Shuffled, K).

%% The tracker's answer (ok, or {error, not_tracked} for a variable nobody
%% tracks) does not change replication; neither does a tracker that crashed.
report(F) ->
    try F() of _ -> ok
    catch _:_ -> ok
    end.

bump(K, N, C) -> maps:update_with(K, fun(X) -> X + N end, C).

schedule(#st{settings = #{state_interval := I, jitter_percent := J}} = St) ->
    Delay = case J of
                0 -> I;
                _ -> max(1, I + round(I * J / 100 * (2 * rand:uniform() - 1)))
            end,
    St#st{timer = erlang:send_after(Delay, self(), tick)}.

call(Msg) ->
    try gen_server:call(?MODULE, Msg, ?TIMEOUT)
    catch exit:{noproc, _} ->
            case Msg of
                {update, _, _, _} -> {error, not_declared};
                {state, _} -> {error, not_declared};
                _ -> {error, not_started}
            end
    end.

valid(Opts) ->
    Bad = [K || {K, V} <- maps:to_list(Opts), not valid(K, V)],
    case Bad of
        [] -> ok;
        _ -> {error, {bad_opts, Bad}}
    end.

valid(state_interval, I) -> is_integer(I) andalso I > 0;
valid(fanout, all) -> true;
valid(fanout, K) -> is_integer(K) andalso K > 0;
valid(propagate_on_update, B) -> is_boolean(B);
valid(jitter_percent, P) -> is_integer(P) andalso P >= 0 andalso P =< 100;
valid(_, _) -> false.

app_running(N) ->
    try erpc:call(N, erlang, whereis, [lasp_converge_sup], 5000) of
        P -> is_pid(P)
    catch _:_ -> false
    end.
