%% @doc Real Lasp nodes for tests and benchmarks.
%%
%% The Lasp build is found at `$LASP_CONVERGE_LASP_LIB' (a release's
%% `lib/' folder: one `<app>/ebin' per application), by default
%% `../shared/lasp-0.8/lib' from the project root (the working directory
%% of rebar3, mix and make). `start/2' starts N peer nodes with OTP's
%% `peer' on this machine: code path every `lib/*/ebin' of the build and
%% this project's ebin; the OS variables Lasp reads at start unset; a
%% scratch working directory per node (lager writes `log/' there);
%% partisan on loopback; then Lasp started and every node joined to those
%% before it, waiting until all see every member.
-module(lasp_converge_real_lasp).

-export([lib_dir/0, add_types_path/0, start/2, stop/1, nodes/1]).

%% What Lasp's lasp_sup and friends read with os:getenv/1.
-define(LASP_OS_VARS,
        ["AD_COUNTER_SIM_CLIENT", "AD_COUNTER_SIM_SERVER", "AWS_ACCESS_KEY_ID",
         "AWS_SECRET_ACCESS_KEY", "BLOCKING_SYNC", "BROADCAST", "CLIENT_NUMBER", "DCOS",
         "DELTA_INTERVAL", "DIVERGENCE_SIM_CLIENT", "DIVERGENCE_SIM_SERVER", "DIVERGENCE_TYPE",
         "EVAL_ID", "EVAL_TIMESTAMP", "EVENT_INTERVAL", "EXTENDED_LOGGING", "HEAVY_CLIENT",
         "INSTRUMENTATION", "JITTER", "JITTER_PERCENT", "LOGS", "MAILBOX_LOGGING", "MAX_EVENTS",
         "MEMBERSHIP", "MODE", "PARTITION_PROBABILITY", "PROFILE", "PROPAGATE_ON_UPDATE",
         "REACTIVE_SERVER", "REDIS_SERVICE_HOST", "REDIS_SERVICE_PORT", "SET", "SIMULATION",
         "STATE_INTERVAL", "THROUGHPUT_SIM_CLIENT", "THROUGHPUT_SIM_SERVER", "THROUGHPUT_TYPE",
         "TOURNAMENT_SIM_CLIENT", "TOURNAMENT_SIM_SERVER", "WORKFLOW"]).

%% The Lasp build's lib folder, or why there is none.
-spec lib_dir() -> {ok, file:filename()} | {error, term()}.
lib_dir() ->
    Dir = case os:getenv("LASP_CONVERGE_LASP_LIB") of
              false -> filename:absname("../shared/lasp-0.8/lib");
              D -> filename:absname(D)
          end,
    case filelib:is_regular(filename:join([Dir, "lasp", "ebin", "lasp.app"])) of
        true -> {ok, Dir};
        false -> {error, {no_lasp_build, Dir, "set LASP_CONVERGE_LASP_LIB to a Lasp release's lib/"}}
    end.

%% Put the build's types on this node's code path (for comparing against
%% types' own functions in this VM).
-spec add_types_path() -> ok | {error, term()}.
add_types_path() ->
    case lib_dir() of
        {ok, Dir} ->
            true = code:add_pathz(filename:join([Dir, "types", "ebin"])),
            _ = application:load(types),
            ok;
        Error ->
            Error
    end.

%% Start `N' Lasp nodes. Opts: `state_interval' (ms, default 1000),
%% `prefix' (node name prefix), `lasp_env' (more `{Key, Value}' for lasp),
%% `extra_paths' (more code paths).
-spec start(pos_integer(), map()) -> {ok, map()} | {error, term()}.
start(N, Opts) ->
    case lib_dir() of
        {ok, Dir} ->
            WasAlive = ensure_distributed(),
            Paths = filelib:wildcard(filename:join([Dir, "*", "ebin"]))
                ++ [filename:dirname(code:which(lasp_converge_accel))
                    | maps:get(extra_paths, Opts, [])],
            Prefix = maps:get(prefix, Opts, "lc_real"),
            Tag = lists:concat([Prefix, "_", os:getpid(), "_", erlang:unique_integer([positive])]),
            Peers = [start_node(Tag, K, Paths, Opts) || K <- lists:seq(1, N)],
            Nodes = [Node || {_, Node} <- Peers],
            join(Nodes, []),
            ok = wait_members(Nodes, 30000),
            {ok, #{peers => Peers, nodes => Nodes, was_alive => WasAlive, tag => Tag}};
        Error ->
            Error
    end.

-spec nodes(map()) -> [node()].
nodes(#{nodes := Nodes}) -> Nodes.

-spec stop(map()) -> ok.
stop(#{peers := Peers, was_alive := WasAlive, tag := Tag}) ->
    [catch peer:stop(Pid) || {Pid, _} <- Peers],
    _ = os:cmd("rm -rf " ++ scratch_root(Tag)),
    WasAlive orelse net_kernel:stop(),
    ok.

scratch_root(Tag) ->
    filename:join(["/tmp", Tag]).

start_node(Tag, K, Paths, Opts) ->
    Name = lists:concat([Tag, "_", K]),
    Env = [{V, false} || V <- ?LASP_OS_VARS],
    %% Absolute: the node changes its working directory below.
    Args = lists:append([["-pa", filename:absname(P)] || P <- Paths]),
    {ok, Pid, Node} = peer:start_link(#{name => list_to_atom(Name), args => Args, env => Env,
                                        wait_boot => 30000}),
    Cwd = filename:join(scratch_root(Tag), Name),
    ok = filelib:ensure_dir(filename:join(Cwd, "x")),
    ok = erpc:call(Node, file, set_cwd, [Cwd]),
    ok = erpc:call(Node, application, load, [lasp]),
    ok = erpc:call(Node, application, load, [partisan]),
    ok = erpc:call(Node, application, load, [lager]),
    ok = erpc:call(Node, application, set_env, [partisan, peer_ip, {127, 0, 0, 1}]),
    ok = erpc:call(Node, application, set_env, [lager, handlers, []]),
    ok = erpc:call(Node, application, set_env, [lager, crash_log, false]),
    ok = erpc:call(Node, application, set_env,
                   [lasp, state_interval, maps:get(state_interval, Opts, 1000)]),
    [ok = erpc:call(Node, application, set_env, [lasp, Key, V])
     || {Key, V} <- maps:get(lasp_env, Opts, [])],
    {ok, _} = erpc:call(Node, application, ensure_all_started, [lasp], 60000),
    {Pid, Node}.

join([], _Before) -> ok;
join([N | Ns], Before) ->
    [ok = erpc:call(N, lasp_peer_service, join, [B], 30000) || B <- Before],
    join(Ns, Before ++ [N]).

wait_members(Nodes, T) when T =< 0 ->
    {error, {not_joined, [{N, erpc:call(N, lasp_peer_service, members, [])} || N <- Nodes]}};
wait_members(Nodes, T) ->
    Want = lists:sort(Nodes),
    case lists:all(fun(N) ->
                           case erpc:call(N, lasp_peer_service, members, []) of
                               {ok, Ms} -> lists:sort(Ms) =:= Want;
                               _ -> false
                           end
                   end, Nodes) of
        true -> ok;
        false ->
            timer:sleep(200),
            wait_members(Nodes, T - 200)
    end.

ensure_distributed() ->
    case is_alive() of
        true ->
            true;
        false ->
            _ = os:cmd("epmd -daemon"),
            Name = list_to_atom(lists:concat(["lc_real_ctl_", os:getpid(), "_",
                                              erlang:unique_integer([positive])])),
            {ok, _} = net_kernel:start([Name, shortnames]),
            false
    end.
