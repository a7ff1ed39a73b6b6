%% TEST DOUBLE of Lasp 0.8, for lasp_converge's tests only (see lasp.erl
%% here): the process behind the double's `lasp', `lasp_config' and
%% `lasp_peer_service', one per node, registered as `lasp_double'.
%%
%% It stores the declared variables (Id -> {Type, Metadata, State}, states
%% being plain lasp-lang/types terms, mutated and merged with
%% lasp_converge_crdt), keeps the membership, runs the streams, and
%% replicates the simple way: every state_interval ms (delta_interval in
%% delta_based mode, read from lasp_config at every round, so a new interval
%% takes effect once the timer armed with the old one fires; stretched by
%% up to jitter_percent % when jitter is on) it pushes the full state of
%% every variable to every other member, which merges it (declaring the id
%% if needed) and, when its state changed, runs the id's streams; with
%% propagate_on_update it also pushes right after each local update.
%%
%% Controls for tests, not part of Lasp's API: streams/0, stream_exits/0,
%% stream_calls/1, fail_reads/1.
-module(lasp_double).
-behaviour(gen_server).

-export([call/1, read/1, join/1, streams/0, stream_exits/0, stream_calls/1,
         fail_reads/1, start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).
-export([stream_init/3]).

-record(st, {vars = #{} :: #{term() => {atom(), list(), term()}},
             members = [] :: [node()],
             %% Stream process -> the id it streams.
             streams = #{} :: #{pid() => term()},
             %% Times stream functions were called, per id.
             calls = #{} :: #{term() => non_neg_integer()},
             %% Streams that ended: [{Id, Reason}], newest first.
             exits = [] :: [{term(), term()}],
             fail_reads = false :: boolean()}).

-define(TIMEOUT, 10000).

start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

call(Req) ->
    gen_server:call(?MODULE, Req, ?TIMEOUT).

read(Id) ->
    case call({read, Id}) of
        {fail, Why} -> erlang:error(Why);
        R -> R
    end.

join(Node) ->
    {ok, Mine} = call(members),
    try gen_server:call({?MODULE, Node}, {add_members, Mine}, ?TIMEOUT) of
        {ok, Theirs} ->
            All = lists:usort(Mine ++ Theirs),
            lists:foreach(fun(N) -> gen_server:cast({?MODULE, N}, {add_members, All}) end, All),
            {ok, _} = call({add_members, All}),
            ok
    catch exit:Why ->
            {error, Why}
    end.

%% [{Id, Pid, Alive}] for every stream started on this node.
streams() -> call(streams).

%% [{Id, Reason}]: the streams that ended (newest first).
stream_exits() -> call(stream_exits).

%% How many times the stream functions of Id were called on this node.
stream_calls(Id) -> call({stream_calls, Id}).

%% While true, lasp:read/2 raises on this node.
fail_reads(Bool) when is_boolean(Bool) -> call({fail_reads, Bool}).

%% ---- gen_server ----

init([]) ->
    process_flag(trap_exit, true),
    schedule(),
    {ok, #st{members = [node()]}}.

handle_call({declare, Id, Type}, _From, St) ->
    case declare(Id, Type, St) of
        {ok, St1} -> {reply, {ok, var(Id, St1)}, St1};
        {error, _} = E -> {reply, E, St}
    end;
handle_call({update, Id, Op, Actor}, _From, St) ->
    case ensure(Id, St) of
        {ok, St1 = #st{vars = Vars}} ->
            {Type, Meta, S} = maps:get(Id, Vars),
            try lasp_converge_crdt:mutate(Op, Actor, S) of
                {ok, S1} ->
                    Meta1 = tick(Meta),
                    St2 = changed(Id, S, St1#st{vars = Vars#{Id := {Type, Meta1, S1}}}),
                    _ = lasp_config:get(propagate_on_update, false) andalso push(Id, St2),
                    {reply, {ok, var(Id, St2)}, St2};
                {error, _} = E ->
                    {reply, E, St1}
            catch error:Why ->
                    {reply, {error, Why}, St1}
            end;
        {error, _} = E ->
            {reply, E, St}
    end;
handle_call({query, Id}, _From, St = #st{vars = Vars}) ->
    case Vars of
        #{Id := {_, _, S}} -> {reply, {ok, lasp_converge_crdt:query(S)}, St};
        _ -> {reply, {error, not_found}, St}
    end;
handle_call({read, _Id}, _From, St = #st{fail_reads = true}) ->
    {reply, {fail, lasp_double_read_failure}, St};
handle_call({read, Id}, _From, St = #st{vars = Vars}) ->
    case maps:is_key(Id, Vars) of
        true -> {reply, {ok, var(Id, St)}, St};
        false -> {reply, {error, not_found}, St}
    end;
handle_call({stream, Id, Fun}, _From, St = #st{streams = Streams}) ->
    %% As in Lasp, the stream is started and `ok' returned whether or not
    %% the id is declared; the stream process finds out on its first read.
    Pid = proc_lib:spawn(?MODULE, stream_init, [self(), Id, Fun]),
    _ = erlang:monitor(process, Pid),
    {reply, ok, St#st{streams = Streams#{Pid => Id}}};
handle_call({subscribe, Id}, _From, St = #st{vars = Vars}) ->
    case Vars of
        #{Id := {_, _, S}} -> {reply, {ok, lasp_converge_crdt:query(S)}, St};
        _ -> {reply, {error, not_found}, St}
    end;
handle_call({propagate, Id}, _From, St) ->
    {reply, push(Id, St), St};
handle_call(members, _From, St = #st{members = Ms}) ->
    {reply, {ok, Ms}, St};
handle_call({add_members, Ns}, _From, St = #st{members = Ms}) ->
    All = lists:usort(Ms ++ Ns),
    {reply, {ok, All}, St#st{members = All}};
handle_call(streams, _From, St = #st{streams = Streams}) ->
    {reply, [{Id, P, is_process_alive(P)} || {P, Id} <- maps:to_list(Streams)], St};
handle_call(stream_exits, _From, St = #st{exits = Exits}) ->
    {reply, Exits, St};
handle_call({stream_calls, Id}, _From, St = #st{calls = Calls}) ->
    {reply, maps:get(Id, Calls, 0), St};
handle_call({fail_reads, B}, _From, St) ->
    {reply, ok, St#st{fail_reads = B}}.

handle_cast({add_members, Ns}, St = #st{members = Ms}) ->
    {noreply, St#st{members = lists:usort(Ms ++ Ns)}};
handle_cast({push, Id, Type, Remote}, St) ->
    case declare(Id, Type, St) of
        {ok, St1 = #st{vars = Vars}} ->
            {T, Meta, S} = maps:get(Id, Vars),
            try lasp_converge_crdt:merge(S, Remote) of
                S -> {noreply, St1};
                S1 -> {noreply, changed(Id, S, St1#st{vars = Vars#{Id := {T, Meta, S1}}})}
            catch error:_ ->
                    {noreply, St1}
            end;
        {error, _} ->
            {noreply, St}
    end;
handle_cast({called, Id}, St = #st{calls = Calls}) ->
    {noreply, St#st{calls = maps:update_with(Id, fun(N) -> N + 1 end, 1, Calls)}}.

handle_info(sync, St = #st{vars = Vars}) ->
    lists:foreach(fun(Id) -> push(Id, St) end, maps:keys(Vars)),
    schedule(),
    {noreply, St};
handle_info({'DOWN', _, process, Pid, Reason}, St = #st{streams = Streams, exits = Exits}) ->
    case maps:take(Pid, Streams) of
        {Id, Rest} -> {noreply, St#st{streams = Rest, exits = [{Id, Reason} | Exits]}};
        error -> {noreply, St}
    end;
handle_info(_, St) ->
    {noreply, St}.

%% ---- streams ----

%% A stream process, as Lasp's: read the value (exit not_found when the
%% id is not declared), call Fun with it, then again on every change; a
%% Fun that raises ends the process. Changes queued meanwhile are
%% coalesced into the latest value, as Lasp's threshold reads do.
stream_init(Server, Id, Fun) ->
    case gen_server:call(Server, {subscribe, Id}, ?TIMEOUT) of
        {ok, Value} ->
            stream_call(Server, Id, Fun, Value),
            stream_loop(Server, Id, Fun);
        {error, not_found} ->
            exit(not_found)
    end.

stream_loop(Server, Id, Fun) ->
    receive
        {lasp_double_changed, Value0} ->
            Value = latest(Value0),
            stream_call(Server, Id, Fun, Value),
            stream_loop(Server, Id, Fun)
    end.

latest(V) ->
    receive {lasp_double_changed, V1} -> latest(V1)
    after 0 -> V
    end.

stream_call(Server, Id, Fun, Value) ->
    gen_server:cast(Server, {called, Id}),
    _ = Fun(Value),
    ok.

%% ---- internals ----

declare(Id, Type, St = #st{vars = Vars}) ->
    case Vars of
        #{Id := _} ->
            {ok, St};
        _ ->
            try lasp_converge_crdt:new(Type) of
                S -> {ok, St#st{vars = Vars#{Id => {Type, [{clock, []}], S}}}}
            catch error:Why ->
                    {error, Why}
            end
    end.

%% An update of an undeclared id declares it with the type in the id.
ensure(Id, St = #st{vars = Vars}) when is_map_key(Id, Vars) -> {ok, St};
ensure({_, Type} = Id, St) when is_atom(Type) -> declare(Id, Type, St);
ensure(_Id, _St) -> {error, not_found}.

var(Id, #st{vars = Vars}) ->
    {Type, Meta, S} = maps:get(Id, Vars),
    {Id, Type, Meta, S}.

tick([{clock, C}]) ->
    [{clock, orddict:update_counter(node(), 1, C)}].

%% The state of Id changed from Old: run its streams.
changed(Id, Old, St = #st{vars = Vars, streams = Streams}) ->
    {_, _, S} = maps:get(Id, Vars),
    case S =:= Old of
        true ->
            St;
        false ->
            Value = lasp_converge_crdt:query(S),
            maps:foreach(fun(P, I) when I =:= Id -> P ! {lasp_double_changed, Value};
                            (_, _) -> ok
                         end, Streams),
            St
    end.

push(Id, #st{vars = Vars, members = Ms}) ->
    case Vars of
        #{Id := {Type, _, S}} ->
            lists:foreach(fun(N) -> gen_server:cast({?MODULE, N}, {push, Id, Type, S}) end,
                          Ms -- [node()]);
        _ ->
            ok
    end.

schedule() ->
    I = case lasp_config:get(mode, state_based) of
            delta_based -> lasp_config:get(delta_interval, 10000);
            _ -> lasp_config:get(state_interval, 10000)
        end,
    J = case lasp_config:get(jitter, false) of
            true -> I * lasp_config:get(jitter_percent, 1) div 100;
            false -> 0
        end,
    Ms = max(1, I - J + case J of 0 -> 0; _ -> rand:uniform(2 * J + 1) - 1 end),
    _ = erlang:send_after(Ms, self(), sync),
    ok.
