%% @doc Propagation settings on every member node: the part of
%% `lasp_converge_tuner' that applies and reads `state_interval',
%% `delta_interval', `propagate_on_update', `jitter' and `jitter_percent',
%% through `lasp_config' where Lasp runs and through
%% `lasp_converge_replicator' elsewhere. `lasp_converge_tuner''s module doc
%% describes the mapping; `lasp_converge_tuner:set/1,2' and `get/0,1' are the
%% calls to use.
-module(lasp_converge_tuner_settings).

-compile({no_auto_import, [get/0, get/1]}).

-export([set/1, set/2, get/0, get/1]).
%% Called on each member by set/2 and get/1.
-export([set_local/1, get_local/0]).
%% For the controller.
-export([members/1, interval_key/1, lasp_defaults/0]).

-type settings() :: lasp_converge_tuner:settings().
-type report() :: lasp_converge_tuner:report().
-type backend() :: lasp | replicator.
-type set_opts() :: #{nodes => [node()]}.
-export_type([backend/0, set_opts/0]).

-define(KEYS, [state_interval, delta_interval, propagate_on_update, jitter, jitter_percent]).
-define(LASP_DEFAULTS, #{state_interval => 10000, delta_interval => 10000,
                         propagate_on_update => false, jitter => false,
                         jitter_percent => 1}).
-define(ENV, tuner_settings).
-define(TIMEOUT, 15000).
-define(SUP, lasp_converge_sup).

%% @equiv set(Settings, #{})
-spec set(settings()) -> {ok, #{node() => backend()}} | {error, term()}.
set(Settings) ->
    set(Settings, #{}).

%% @doc `lasp_converge_tuner:set/2', which documents it.
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

%% @doc `lasp_converge_tuner:get/1', which documents it.
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

%% @doc The interval the replicator's timer runs in `Mode'.
-spec interval_key(state_based | delta_based) -> lasp_converge_tuner:key().
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

%% @doc The nodes `Opts' names, or this node and every connected one where
%% Lasp or the `lasp_converge' application runs.
-spec members(set_opts() | map()) -> [node()].
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

%% @doc Lasp's defaults, assumed where a node has no value.
-spec lasp_defaults() -> settings().
lasp_defaults() ->
    ?LASP_DEFAULTS.
