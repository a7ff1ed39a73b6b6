%% @doc Local clusters: N connected BEAM nodes on this machine, started with
%% OTP's `peer' module, each with this node's code (the project's ebin and the
%% NIF in its priv directory included) and the `lasp_converge' application
%% running, stopped cleanly.
%%
%% == Model ==
%%
%% `start(N, Opts)' starts N peer nodes one after the other with
%% `peer:start_link/1' (Erlang distribution as the control connection), so
%% each peer is linked to the calling process: if the caller exits, its peers
%% are halted with it. Each peer gets every directory of the caller's code
%% path that exists and is not part of the OTP installation (`-pa'), so
%% `code:priv_dir(lasp_converge)' on the peer finds the same NIF. Then the
%% applications in `apps' are started on every peer, and the peers are
%% connected to each other (full mesh) unless `connect => false'. If any
%% step fails for node k, the nodes already started are stopped and
%% `{error, {start_failed, K, Reason}}' is returned.
%%
%% Peers are named `<prefix>_<OS pid>_<counter>_<k>', so clusters started by
%% concurrent test runs (or twice in one run) never clash.
%%
%% == Distribution ==
%%
%% Peers need a distributed caller. When the calling node is not alive,
%% `start/2' starts `epmd' (`epmd -daemon') if needed and makes this node
%% distributed with `net_kernel:start/1' under a unique short name
%% (`lasp_converge_<OS pid>_<counter>'); it leaves distribution running
%% after `stop/1' (other clusters may use it). `started_distribution/1' says
%% whether this cluster's start did it, so a test can `net_kernel:stop()'.
%%
%% With `connect => false' the peers are not explicitly connected to each
%% other; each is still connected to the caller, and `global' may mesh them
%% anyway unless `args' contains `"-connect_all", "false"'.
-module(lasp_converge_cluster).

-compile({no_auto_import, [nodes/1]}).

-export([start/1, start/2, stop/1, nodes/1, call/5, with_cluster/3,
         started_distribution/1]).

-record(cluster, {peers :: [{pid(), node()}],
                  timeout :: timeout(),
                  started_distribution :: boolean()}).

-opaque cluster() :: #cluster{}.
-type opts() :: #{prefix => atom() | string() | binary(),
                  code_paths => [string() | binary()],
                  args => [string() | binary()],
                  connect => boolean(),
                  apps => [atom()],
                  timeout => pos_integer()}.
-export_type([cluster/0, opts/0]).

-define(DEFAULT_TIMEOUT, 30000).
-define(STOP_TIMEOUT, 5000).

%% @equiv start(N, #{})
-spec start(pos_integer()) -> {ok, cluster()} | {error, term()}.
start(N) ->
    start(N, #{}).

%% @doc Start `N' connected peer nodes on this machine.
%%
%% Options:
%% <ul>
%% <li>`prefix' (default `lasp_converge'): the start of every peer's name;</li>
%% <li>`code_paths' (default `[]'): more directories for the peers' code
%%     path, in front of the caller's;</li>
%% <li>`args' (default `[]'): more `erl' command-line arguments;</li>
%% <li>`connect' (default `true'): connect the peers to each other;</li>
%% <li>`apps' (default `[lasp_converge]'): applications started on every
%%     peer with `application:ensure_all_started/1';</li>
%% <li>`timeout' (default 30000 ms): for each peer's boot and each remote
%%     call made while starting (and by `call/5').</li>
%% </ul>
%% Returns `{error, {bad_size, N}}' unless `N' is a positive integer,
%% `{error, {start_failed, K, Reason}}' when node `K' (1-based) could not be
%% started or set up (the nodes started before it are stopped), and
%% `{error, {distribution, Reason}}' when this node could not be made
%% distributed.
-spec start(pos_integer(), opts()) -> {ok, cluster()} | {error, term()}.
start(N, _Opts) when not is_integer(N); N < 1 ->
    {error, {bad_size, N}};
start(N, Opts) when is_map(Opts) ->
    case ensure_distributed() of
        {ok, Started} ->
            Timeout = maps:get(timeout, Opts, ?DEFAULT_TIMEOUT),
            Prefix = to_list(maps:get(prefix, Opts, lasp_converge)),
            Base = lists:concat([Prefix, "_", os:getpid(), "_",
                                 erlang:unique_integer([positive])]),
            Args = ["-pa" | code_paths(maps:get(code_paths, Opts, []))]
                ++ [to_list(A) || A <- maps:get(args, Opts, [])],
            Apps = maps:get(apps, Opts, [lasp_converge]),
            C0 = #cluster{peers = [], timeout = Timeout, started_distribution = Started},
            case start_peers(1, N, Base, Args, Apps, Timeout, []) of
                {ok, Peers} ->
                    C = C0#cluster{peers = Peers},
                    case maps:get(connect, Opts, true) of
                        true -> mesh(C);
                        false -> {ok, C}
                    end;
                {error, _} = E ->
                    E
            end;
        {error, Why} ->
            {error, {distribution, Why}}
    end.

%% @doc Stop every peer of the cluster and wait (up to 5 s each) until it is
%% disconnected. Returns `ok' also when some peers had already stopped.
-spec stop(cluster()) -> ok.
stop(#cluster{peers = Peers}) ->
    stop_peers(Peers).

%% @doc The peers' node names, in start order.
-spec nodes(cluster()) -> [node()].
nodes(#cluster{peers = Peers}) ->
    [Node || {_, Node} <- Peers].

%% @doc `erpc:call(Node, M, F, A, Timeout)' with the cluster's timeout.
%% Raises `error:{not_a_member, Node}' when `Node' is not one of the peers.
-spec call(cluster(), node(), module(), atom(), [term()]) -> term().
call(#cluster{peers = Peers, timeout = Timeout}, Node, M, F, A) ->
    case lists:keymember(Node, 2, Peers) of
        true -> erpc:call(Node, M, F, A, Timeout);
        false -> erlang:error({not_a_member, Node})
    end.

%% @doc Start a cluster, run `Fun(Cluster)' and stop the cluster, also when
%% `Fun' raises (`try ... after'). Raises `error:{cluster_start_failed, R}'
%% when the cluster cannot be started. For tests.
-spec with_cluster(pos_integer(), opts(), fun((cluster()) -> T)) -> T.
with_cluster(N, Opts, Fun) when is_function(Fun, 1) ->
    case start(N, Opts) of
        {ok, C} ->
            try
                Fun(C)
            after
                stop(C)
            end;
        {error, R} ->
            erlang:error({cluster_start_failed, R})
    end.

%% @doc Whether starting this cluster made the calling node distributed.
-spec started_distribution(cluster()) -> boolean().
started_distribution(#cluster{started_distribution = S}) ->
    S.

%% Internal.

ensure_distributed() ->
    case is_alive() of
        true ->
            {ok, false};
        false ->
            _ = start_epmd(),
            Name = list_to_atom(lists:concat(["lasp_converge_", os:getpid(), "_",
                                              erlang:unique_integer([positive])])),
            case net_kernel:start([Name, shortnames]) of
                {ok, _} -> {ok, true};
                {error, _} = E -> E
            end
    end.

start_epmd() ->
    Epmd = case os:find_executable("epmd") of
               false ->
                   filename:join([code:root_dir(), "erts-" ++ erlang:system_info(version),
                                  "bin", "epmd"]);
               Path ->
                   Path
           end,
    os:cmd("\"" ++ Epmd ++ "\" -daemon").

%% Extra paths first, then the caller's own, OTP's left out (every peer has
%% them) and only directories that exist.
code_paths(Extra) ->
    Root = filename:split(code:root_dir()),
    Own = [filename:absname(P) || P <- code:get_path(), P =/= "."],
    Keep = [P || P <- [filename:absname(to_list(E)) || E <- Extra] ++ Own,
                 filelib:is_dir(P),
                 not lists:prefix(Root, filename:split(P))],
    dedup(Keep, #{}).

dedup([], _) -> [];
dedup([P | Ps], Seen) when is_map_key(P, Seen) -> dedup(Ps, Seen);
dedup([P | Ps], Seen) -> [P | dedup(Ps, Seen#{P => true})].

start_peers(K, N, _Base, _Args, _Apps, _Timeout, Acc) when K > N ->
    {ok, lists:reverse(Acc)};
start_peers(K, N, Base, Args, Apps, Timeout, Acc) ->
    Name = list_to_atom(lists:concat([Base, "_", K])),
    case start_peer(Name, Args, Apps, Timeout) of
        {ok, Peer} ->
            start_peers(K + 1, N, Base, Args, Apps, Timeout, [Peer | Acc]);
        {error, Why} ->
            stop_peers(Acc),
            {error, {start_failed, K, Why}}
    end.

start_peer(Name, Args, Apps, Timeout) ->
    try peer:start_link(#{name => Name, args => Args, wait_boot => Timeout}) of
        {ok, Pid, Node} ->
            case start_apps(Node, Apps, Timeout) of
                ok ->
                    {ok, {Pid, Node}};
                {error, _} = E ->
                    stop_peers([{Pid, Node}]),
                    E
            end;
        {error, Why} ->
            {error, Why}
    catch
        Class:Why ->
            {error, {Class, Why}}
    end.

start_apps(_Node, [], _Timeout) ->
    ok;
start_apps(Node, [App | Apps], Timeout) ->
    try erpc:call(Node, application, ensure_all_started, [App], Timeout) of
        {ok, _} -> start_apps(Node, Apps, Timeout);
        {error, Why} -> {error, {app, App, Why}}
    catch
        Class:Why -> {error, {app, App, {Class, Why}}}
    end.

mesh(#cluster{peers = Peers, timeout = Timeout} = C) ->
    Nodes = nodes(C),
    Pairs = [{A, B} || {K, A} <- lists:enumerate(Nodes), B <- lists:nthtail(K, Nodes)],
    Failed = [{A, B, R} || {A, B} <- Pairs,
                           (R = connect(A, B, Timeout)) =/= true],
    case Failed of
        [] ->
            {ok, C};
        [{A, B, R} | _] ->
            stop(C),
            K = length(lists:takewhile(fun({_, Nd}) -> Nd =/= A end, Peers)) + 1,
            {error, {start_failed, K, {connect, B, R}}}
    end.

connect(A, B, Timeout) ->
    try
        erpc:call(A, net_kernel, connect_node, [B], Timeout)
    catch
        Class:Why -> {Class, Why}
    end.

%% Stop the peers at once (each from its own process, then wait for every
%% nodedown): stopped one by one, the survivors' `global' would report the
%% lost connections as overlapping partitions.
stop_peers(Peers) ->
    Up = [P || {_, Node} = P <- Peers, lists:member(Node, erlang:nodes())],
    [monitor_node(Node, true) || {_, Node} <- Up],
    Stoppers = [spawn_monitor(fun() -> stop_control(P, lists:member(P, Up)) end)
                || P <- Peers],
    [receive {'DOWN', Ref, process, Pid, _} -> ok end || {Pid, Ref} <- Stoppers],
    [unlink(Pid) || {Pid, _} <- Peers],
    Deadline = erlang:monotonic_time(millisecond) + ?STOP_TIMEOUT,
    lists:foreach(fun({_, Node}) -> wait_down(Node, Deadline) end, Up).

stop_control({Pid, Node}, Up) ->
    case catch peer:stop(Pid) of
        ok -> ok;
        %% The control process is gone but the node may still run: halt it.
        _ when Up -> erpc:cast(Node, erlang, halt, []);
        _ -> ok
    end.

wait_down(Node, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {nodedown, Node} -> ok
    after Left ->
        _ = erlang:disconnect_node(Node),
        receive {nodedown, Node} -> ok after 0 -> ok end
    end.

to_list(A) when is_atom(A) -> atom_to_list(A);
to_list(B) when is_binary(B) -> unicode:characters_to_list(B);
to_list(L) when is_list(L) -> L.
