%% @doc Convergence tracking on a running Lasp 0.8 cluster, with no change
%% to Lasp: Lasp's own variables, replicated by Lasp's own backends, timed
%% by `lasp_converge'.
%%
%% == Model ==
%%
%% The cluster is Lasp's (`lasp_peer_service:members()'). A member is
%% <em>instrumented</em> when the `lasp_converge' application runs there;
%% `members/0' and `status/1' tell them apart. The node that calls
%% `track(Id)' aggregates (it must be an instrumented member); the others
%% are reached with `erpc'.
%%
%% `track(Id, Opts)' starts `lasp_converge:track/2' on this node with the
%% instrumented members as `nodes', then on each of them: declares `Id'
%% with `lasp:declare/2' (a stream on an id not declared on that node makes
%% a Lasp process exit with `not_found', and repeated restarts can climb
%% Lasp's supervision tree, so the declare always comes first), subscribes
%% with `lasp:stream/2', and observes the current state once. Lasp calls
%% the stream's function on every local change of the variable, merges
%% from other members included, with the variable's <em>value</em>; the
%% function reads the state with `lasp:read(Id, undefined)' and hands it to
%% `lasp_converge:observed/2'.
%%
%% Lasp has no unsubscribe: a stream lives as long as Lasp does. Each
%% member keeps one entry per id in the `lasp_converge' registry (token,
%% active flag, counters); the stream's function does its work only while
%% its token is the entry's and the entry is active. `untrack/1' clears the
%% flag on every member. Each `track/1' subscribes again under a new token,
%% since a Lasp that restarted in between has lost its streams: the
%% function of the stream before finds a token that is not its own and
%% does nothing, so every untrack-track cycle leaves one idle Lasp stream
%% per member. After a Lasp restart on a member, call `untrack/1' and
%% `track/1' again. If the `lasp_converge' application restarts, its
%% registry is new and the old streams' functions find no entry: they do
%% nothing.
%%
%% The stream's function never raises: everything it does is wrapped in
%% `try', and it is built by `erl_eval' rather than compiled into this
%% module, so that reloading or purging this module (an upgrade of our
%% application) cannot kill the Lasp process holding it, and calling it
%% after our application is gone from the node does nothing.
%%
%% == Updates ==
%%
%% `update(Id, Op, Actor)' reads the state (`lasp:read(Id, undefined)'),
%% calls `lasp:update/3', and records the update with
%% `lasp_converge:updated/3' from the state read before to the state Lasp
%% returns. The two calls are not atomic: a merge of remote state that
%% lands between the read and the update is counted as part of this
%% update, whose witness (`delta(Post, Pre)') then also holds what the
%% merge brought. Replicas must hold that too before this update counts as
%% seen, so its convergence time may be over-estimated (never under-
%% estimated), by at most the time the merged updates themselves took to
%% reach every member. The window is the few microseconds between two local
%% calls. Updates made with `lasp:update/3' directly are not timed, but
%% their state changes are observed.
%%
%% == Settings ==
%%
%% `set(Settings)' calls `lasp_config:set/2' on every Lasp member (whether
%% or not it is instrumented) for `state_interval', `delta_interval',
%% `propagate_on_update', `jitter', `jitter_percent' and `mode'; `get/0'
%% reads them back with `lasp_config:get/2' (Lasp's defaults for unset
%% keys) and names the keys on which members disagree. The first five go
%% through `lasp_converge_tuner:set/2' and `get/1' with the Lasp members as
%% `nodes' (the tuner takes a node where Lasp runs to `lasp_config'), so
%% the tuner's controllers and this module set Lasp the same way; `mode',
%% which the tuner leaves alone, is set and read here. A new interval
%% takes effect on a Lasp node once the timer armed with the old one fires.
%%
%% == Acceleration ==
%%
%% `accelerate/0,1' makes Lasp's calls into types' `state_*' modules
%% (merge, inflation checks, equal) answer from faster code, term for term
%% as types answers, by hot code loading on this node or on every member
%% (`#{nodes => all}'); `decelerate/0,1' puts types' own code back and
%% `accel_status/0,1' says which types are accelerated where.
%% `accelerate(#{nodes => all, payload => binary})' also makes the gset and
%% gcounter variables hold binary payloads (refused while a member is not
%% accelerated; `decelerate' converts them back). See
%% `lasp_converge_accel' and `lasp_converge_payload' for how, and
%% guides/lasp.md.
%%
%% == Without Lasp ==
%%
%% Lasp's modules are named at run time (`erlang:apply/3', `erpc'), so this
%% application compiles, loads, passes xref and dialyzer, and runs where
%% Lasp is absent; there every call returns `{error, lasp_not_running}'.
%% Nothing here registers a name or defines a module outside the
%% `lasp_converge_' prefix.
-module(lasp_converge_lasp).

-compile({no_auto_import, [get/0]}).

-export([track/1, track/2, untrack/1, update/3, members/0, status/1, set/1, get/0]).
-export([accelerate/0, accelerate/1, decelerate/0, decelerate/1, accel_status/0,
         accel_status/1]).
%% Run on each member through erpc, and by the stream's function.
-export([local_start/2, local_stop/1, local_status/1, stream_event/2]).

-type id() :: term().
-type actor() :: binary() | list() | atom().
-type settings() :: #{state_interval => pos_integer(),
                      delta_interval => pos_integer(),
                      propagate_on_update => boolean(),
                      jitter => boolean(),
                      jitter_percent => 0..100,
                      mode => state_based | delta_based}.
-type membership() :: #{members := [node()],
                        instrumented := [node()],
                        not_instrumented := [node()]}.
-type local_status() :: #{stream := none | active | inactive,
                          observed := non_neg_integer(),
                          errors := non_neg_integer()}.
-type status() :: #{id := id(),
                    tracked := boolean(),
                    members := [node()],
                    instrumented := [node()],
                    not_instrumented := [node()],
                    nodes := #{node() => local_status() | {error, term()}}}.
-type settings_report() :: #{settings := settings(),
                             per_node := #{node() => settings() | {error, term()}},
                             agree := boolean(),
                             disagree := [atom()]}.
-export_type([id/0, actor/0, settings/0, membership/0, status/0, settings_report/0]).

-define(TIMEOUT, 15000).
-define(KEYS, [state_interval, delta_interval, propagate_on_update, jitter,
               jitter_percent, mode]).
%% Lasp 0.8's defaults (include/lasp.hrl and its backends).
-define(DEFAULTS, #{state_interval => 10000, delta_interval => 10000,
                    propagate_on_update => false, jitter => false,
                    jitter_percent => 1, mode => state_based}).

%% @doc Accelerate types on this node (`lasp_converge_accel:accelerate/0').
-spec accelerate() -> {ok, #{node() => lasp_converge_accel:node_status()}} | {error, term()}.
accelerate() -> lasp_converge_accel:accelerate().

%% @doc Accelerate types on `nodes' (`local', `all' Lasp members, or a
%% list), with `payload => binary' binary payloads for gset and gcounter;
%% see `lasp_converge_accel:accelerate/1'.
-spec accelerate(lasp_converge_accel:opts()) ->
          {ok, #{node() => lasp_converge_accel:node_status()}} | {error, term()}.
accelerate(Opts) -> lasp_converge_accel:accelerate(Opts).

%% @doc Put types' own code back on this node.
-spec decelerate() -> {ok, #{node() => lasp_converge_accel:node_status()}} | {error, term()}.
decelerate() -> lasp_converge_accel:decelerate().

%% @doc Put types' own code back on `nodes'.
-spec decelerate(lasp_converge_accel:opts()) ->
          {ok, #{node() => lasp_converge_accel:node_status()}} | {error, term()}.
decelerate(Opts) -> lasp_converge_accel:decelerate(Opts).

%% @doc Which types are accelerated on this node.
-spec accel_status() -> {ok, #{node() => lasp_converge_accel:node_status()}} | {error, term()}.
accel_status() -> lasp_converge_accel:status().

%% @doc Which types are accelerated on `nodes'.
-spec accel_status(lasp_converge_accel:opts()) ->
          {ok, #{node() => lasp_converge_accel:node_status()}} | {error, term()}.
accel_status(Opts) -> lasp_converge_accel:status(Opts).

%% @equiv track(Id, #{})
-spec track(id()) -> {ok, membership()} | {error, term()}.
track(Id) ->
    track(Id, #{}).

%% @doc Start timing the Lasp variable `Id' on every instrumented Lasp
%% member, aggregated on this node (an instrumented member). `Opts' are
%% those of `lasp_converge:track/2' but `nodes', plus `type', the type to
%% declare (default: the second element of `Id', as in
%% `{<<"x">>, state_orset}'). Returns which members are instrumented and
%% which are not; `{error, {stream_failed, [{Node, Reason}]}}' when a
%% member could not be subscribed (tracking is then undone).
-spec track(id(), map()) -> {ok, membership()} | {error, term()}.
track(Id, Opts) when is_map(Opts) ->
    case type(Id, Opts) of
        {ok, Type} ->
            case members() of
                {ok, #{instrumented := Inst} = M} ->
                    case lists:member(node(), Inst) of
                        true -> track(Id, Type, Opts, Inst, M);
                        false -> {error, {not_instrumented, node()}}
                    end;
                {error, _} = E ->
                    E
            end;
        {error, _} = E ->
            E
    end;
track(_Id, _Opts) ->
    {error, bad_opts}.

track(Id, Type, Opts, Inst, M) ->
    case lasp_converge:track(Id, (maps:without([type, nodes], Opts))#{nodes => Inst}) of
        ok ->
            Rs = multicall(Inst, ?MODULE, local_start, [Id, Type]),
            case [{N, R} || {N, R} <- Rs, R =/= ok] of
                [] ->
                    {ok, M};
                Bad ->
                    _ = untrack(Id),
                    {error, {stream_failed, Bad}}
            end;
        {error, _} = E ->
            E
    end.

%% @doc Stop timing `Id' (from any member): the streams on every
%% instrumented member stop doing work (they stay subscribed: Lasp has no
%% unsubscribe) and the tracking stops. Returns what
%% `lasp_converge:untrack/1' returns.
-spec untrack(id()) -> ok | {error, term()}.
untrack(Id) ->
    Nodes = case members() of
                {ok, #{instrumented := Inst}} -> lists:usort([node() | Inst]);
                {error, _} -> [node()]
            end,
    _ = multicall(Nodes, ?MODULE, local_stop, [Id]),
    lasp_converge:untrack(Id).

%% @doc `lasp:update(Id, Op, Actor)' on this node, timed: the state is read
%% before, and the update is recorded with `lasp_converge:updated/3' from
%% that state to the one Lasp returns (see the module doc for the
%% over-approximation). Returns what `lasp:update/3' returns,
%% `{ok, {Id, Type, Metadata, State}}'. `Actor' must be a binary, a list or
%% an atom, as Lasp requires; anything else gives `{error, {bad_actor, A}}'
%% and Lasp is not called. An id not declared here is declared first.
-spec update(id(), term(), actor()) -> {ok, {id(), term(), term(), term()}} | {error, term()}.
update(Id, Op, Actor) when is_binary(Actor); is_list(Actor); is_atom(Actor) ->
    try
        Pre = pre_state(Id),
        case lasp(lasp, update, [Id, Op, Actor]) of
            {ok, {_, _, _, Post}} = R ->
                _ = record(Id, Pre, Post),
                R;
            {error, _} = E ->
                E;
            Other ->
                {error, {lasp, Other}}
        end
    catch
        error:undef -> {error, lasp_not_running};
        Class:Reason -> {error, {Class, Reason}}
    end;
update(_Id, _Op, Actor) ->
    {error, {bad_actor, Actor}}.

pre_state(Id) ->
    case lasp(lasp, read, [Id, undefined]) of
        {ok, {_, _, _, S}} ->
            {ok, S};
        _ ->
            case type(Id, #{}) of
                {ok, Type} ->
                    case lasp(lasp, declare, [Id, Type]) of
                        {ok, {_, _, _, S}} -> {ok, S};
                        _ -> none
                    end;
                {error, _} ->
                    none
            end
    end.

record(Id, {ok, Pre}, Post) -> lasp_converge:updated(Id, Pre, Post);
record(_Id, none, _Post) -> ok.

%% @doc The Lasp members (`lasp_peer_service:members()' on this node) and
%% which of them run the `lasp_converge' application (instrumented) or not
%% (not instrumented, unreachable ones included).
-spec members() -> {ok, membership()} | {error, term()}.
members() ->
    try lasp(lasp_peer_service, members, []) of
        {ok, Ms} when is_list(Ms) ->
            Sorted = lists:usort(Ms),
            Apps = erpc:multicall(Sorted, application, which_applications, [], ?TIMEOUT),
            Inst = [N || {N, {ok, As}} <- lists:zip(Sorted, Apps),
                         lists:keymember(lasp_converge, 1, As)],
            {ok, #{members => Sorted, instrumented => Inst,
                   not_instrumented => Sorted -- Inst}};
        Other ->
            {error, {lasp_peer_service, Other}}
    catch
        _:_ -> {error, lasp_not_running}
    end.

%% @doc Where `Id' stands: whether this node aggregates its tracking, the
%% members, and on each instrumented member its stream (`none',
%% `active' or `inactive' after `untrack/1'), how many states it has
%% observed and how many times its function failed (and recovered).
-spec status(id()) -> {ok, status()} | {error, term()}.
status(Id) ->
    case members() of
        {ok, #{instrumented := Inst} = M} ->
            Rs = multicall(Inst, ?MODULE, local_status, [Id]),
            {ok, M#{id => Id,
                    tracked => lists:member(Id, lasp_converge:tracked()),
                    nodes => maps:from_list(Rs)}};
        {error, _} = E ->
            E
    end.

%% @doc Apply `Settings' on every Lasp member, instrumented or not, with
%% `lasp_config:set/2': `state_interval', `delta_interval' (ms, positive),
%% `propagate_on_update', `jitter' (booleans) and `jitter_percent'
%% (0..100) through `lasp_converge_tuner:set/2' (which takes a node where
%% Lasp runs to `lasp_config'), and `mode' (`state_based' |
%% `delta_based') here. Returns the members set, or
%% `{error, {set_failed, [{Node, Reason}]}}' naming those that failed (the
%% others are set).
-spec set(settings()) -> {ok, [node()]} | {error, term()}.
set(Settings) when is_map(Settings) ->
    case [K || {K, V} <- maps:to_list(Settings), not valid(K, V)] of
        [] ->
            case members() of
                {ok, #{members := Ms}} -> set(Settings, Ms);
                {error, _} = E -> E
            end;
        Bad ->
            {error, {bad_settings, lists:sort(Bad)}}
    end;
set(_) ->
    {error, bad_settings}.

set(Settings, Ms) ->
    Tuner = case maps:without([mode], Settings) of
                Empty when map_size(Empty) =:= 0 -> [];
                Five ->
                    case lasp_converge_tuner:set(Five, #{nodes => Ms}) of
                        {ok, _} -> [];
                        {error, {set_failed, Failed}} -> Failed;
                        {error, Why} -> [{N, Why} || N <- Ms]
                    end
            end,
    Mode = case Settings of
               #{mode := M} -> [{N, R} || {N, R} <- multicall(Ms, lasp_config, set, [mode, M]),
                                          R =/= ok];
               _ -> []
           end,
    case lists:usort(Tuner ++ Mode) of
        [] -> {ok, Ms};
        Errors -> {error, {set_failed, Errors}}
    end.

%% @doc The six settings on every Lasp member, read with
%% `lasp_config:get(Key, Default)' (through `lasp_converge_tuner:get/1',
%% `mode' here), Lasp 0.8's defaults for unset keys (10000 ms for both
%% intervals, no propagation on update, no jitter, 1 %, `state_based'):
%% `per_node' each member's, `settings' those every member agrees on,
%% `disagree' the keys on which they do not, `agree' whether that list is
%% empty and every member answered.
-spec get() -> {ok, settings_report()} | {error, term()}.
get() ->
    case members() of
        {ok, #{members := Ms}} ->
            #{per_node := Five} = lasp_converge_tuner:get(#{nodes => Ms}),
            Modes = multicall(Ms, lasp_config, get, [mode, maps:get(mode, ?DEFAULTS)]),
            Per = [{N, node_settings(maps:get(N, Five, {error, no_answer}), Mode)}
                   || {N, Mode} <- Modes],
            Good = [S || {_, S} <- Per, is_map(S)],
            Disagree = [K || K <- ?KEYS,
                             length(lists:usort([maps:get(K, S) || S <- Good])) > 1],
            Agreed = case Good of
                         [] -> #{};
                         [S0 | _] -> maps:without(Disagree, S0)
                     end,
            {ok, #{settings => Agreed,
                   per_node => maps:from_list(Per),
                   agree => Disagree =:= [] andalso length(Good) =:= length(Per),
                   disagree => Disagree}};
        {error, _} = E ->
            E
    end.

node_settings(Five, Mode) when is_map(Five) ->
    case Mode of
        {error, _} = E -> E;
        _ -> Five#{mode => Mode}
    end;
node_settings(Error, _Mode) ->
    Error.

%% ---- on each member ----

%% @private On this member: declare `Id' with Lasp, subscribe to it
%% (`lasp:stream/2', after the declare) under a new token, which retires
%% the function of any earlier stream, and observe its current state.
-spec local_start(id(), term()) -> ok | {error, term()}.
local_start(Id, Type) ->
    try lasp(lasp, declare, [Id, Type]) of
        {ok, {_, _, _, _}} ->
            Token = make_ref(),
            ok = lasp_converge_registry:register_stream(Id, Token),
            case lasp(lasp, stream, [Id, stream_fun(Id, Token)]) of
                ok ->
                    observe(Id, Token);
                Other ->
                    ok = lasp_converge_registry:unregister_stream(Id),
                    {error, {stream, Other}}
            end;
        Other ->
            {error, {declare, Other}}
    catch
        error:undef -> {error, lasp_not_running};
        Class:Reason -> {error, {Class, Reason}}
    end.

%% @private On this member: the stream of `Id' stops doing work.
-spec local_stop(id()) -> ok.
local_stop(Id) ->
    _ = lasp_converge_registry:deactivate_stream(Id),
    ok.

%% @private On this member: the stream of `Id' and its counters.
-spec local_status(id()) -> local_status().
local_status(Id) ->
    case lasp_converge_registry:stream(Id) of
        {ok, #{active := Active, observed := Observed, errors := Errors}} ->
            #{stream => case Active of
                            true -> active;
                            false -> inactive
                        end,
              observed => Observed, errors => Errors};
        error ->
            #{stream => none, observed => 0, errors => 0}
    end.

%% @private What the stream's function calls on every change of `Id' on
%% this member: read the state and observe it, if the stream with `Token'
%% is the active one. Never raises.
-spec stream_event(id(), reference()) -> ok.
stream_event(Id, Token) ->
    try lasp_converge_registry:stream(Id) of
        {ok, #{token := Token, active := true}} -> observe(Id, Token);
        _ -> ok
    catch _:_ ->
            ok
    end.

%% The state is handed to the variable's observer: the observation runs
%% there, not in the Lasp process that calls the stream. Its outcome is
%% counted when the observer has applied it.
observe(Id, Token) ->
    try
        {ok, {_, _, _, State}} = lasp(lasp, read, [Id, undefined]),
        Counted = fun(ok) -> count(Id, Token, observed);
                     (_) -> count(Id, Token, errors)
                  end,
        case lasp_converge_observer:submit(Id, {observed, State, Counted}) of
            ok -> ok;
            {error, _} -> count(Id, Token, errors)
        end
    catch _:_ ->
            count(Id, Token, errors)
    end.

count(Id, Token, What) ->
    lasp_converge_registry:count_stream(Id, Token, What).

%% The function handed to lasp:stream/2: an erl_eval closure, so that no
%% Lasp process holds a fun of this module's code (a purge of an old
%% version would kill it), and wrapped in try so it never raises, even
%% where this module is gone.
stream_fun(Id, Token) ->
    {ok, Tokens, _} = erl_scan:string(
                        "fun(_Value) ->"
                        "    try lasp_converge_lasp:stream_event(Id, Token)"
                        "    catch _:_ -> ok"
                        "    end"
                        " end."),
    {ok, [Expr]} = erl_parse:parse_exprs(Tokens),
    Bindings = erl_eval:add_binding('Token', Token,
                                    erl_eval:add_binding('Id', Id, erl_eval:new_bindings())),
    {value, Fun, _} = erl_eval:expr(Expr, Bindings),
    Fun.

%% ---- internals ----

%% Lasp's modules, called by name at run time: this application needs no
%% Lasp to compile, and xref and dialyzer see no call to a missing module.
lasp(Module, Function, Args) ->
    erlang:apply(Module, Function, Args).

%% `erpc:multicall/5' as [{Node, Result | {error, Why}}], Node order kept.
multicall(Nodes, M, F, A) ->
    Rs = erpc:multicall(Nodes, M, F, A, ?TIMEOUT),
    [{N, case R of
             {ok, V} -> V;
             {Class, Why} -> {error, {Class, Why}}
         end} || {N, R} <- lists:zip(Nodes, Rs)].

type(_Id, #{type := Type}) -> {ok, Type};
type({_Name, Type}, _) when is_atom(Type) -> {ok, Type};
type(_, _) -> {error, no_type}.

valid(state_interval, I) -> is_integer(I) andalso I > 0;
valid(delta_interval, I) -> is_integer(I) andalso I > 0;
valid(propagate_on_update, B) -> is_boolean(B);
valid(jitter, B) -> is_boolean(B);
valid(jitter_percent, P) -> is_integer(P) andalso P >= 0 andalso P =< 100;
valid(mode, M) -> M =:= state_based orelse M =:= delta_based;
valid(_, _) -> false.
