%% @doc Local clusters: N connected BEAM nodes on this machine, started with
%% OTP's `peer' module, each with this node's code (the project's ebin and the
%% NIF in its priv directory included) and the `lasp_converge' application
%% running, stopped cleanly.
%%
%% == Model ==
%%
%% `start(N, Opts)' starts an owner process, which starts N peer nodes one
%% after the other with `peer:start_link/1' (Erlang distribution as the
%% control connection), so each peer is linked to the owner; the owner
%% watches the calling process: if the caller exits, the owner stops the
%% peers and exits too, and if the owner is killed its peers halt with it.
%% Each peer gets every directory of the caller's code path that exists and
%% is not part of the OTP installation (`-pa'), so
%% `code:priv_dir(lasp_converge)' on the peer finds the same NIF. Then the
%% applications in `apps' are started on every peer, and the peers are
%% connected to each other (full mesh) unless `connect => false'. If any
%% step fails for node k, the nodes already started are stopped and
%% `{error, {start_failed, K, Reason}}' is returned.
%%
%% Peers are named `<prefix>_<OS pid>_<counter>_<k>', so clusters started by
%% concurrent test runs (or twice in one run) never clash. They run with
%% `-kernel prevent_overlapping_partitions false': when one node goes down,
%% `global' on the others must not cut the connections between the
%% survivors.
%%
%% The cluster value names the owner, so it stays valid when
%% `lasp_converge_fault' crashes a node and restarts it under the same name:
%% `nodes/1' keeps listing every member in start order, `live_nodes/1' only
%% those running, and `stop/1' stops whatever runs.
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
%% A caller started with `-name' (long names, e.g. `x@127.0.0.1') gets peers
%% with long names on the caller's host part (`<name>@127.0.0.1'); one
%% started with `-sname' gets short names on this host.
%%
%% With `connect => false' the peers are not explicitly connected to each
%% other; each is still connected to the caller, and `global' may mesh them
%% anyway unless `args' contains `"-connect_all", "false"'.
-module(lasp_converge_cluster).
-behaviour(gen_server).

-compile({no_auto_import, [nodes/1]}).

-export([start/1, start/2, stop/1, nodes/1, live_nodes/1, call/5, with_cluster/3,
         started_distribution/1]).
-export([stop_node/2, start_node/2, faults/1, update_faults/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-record(cluster, {owner :: pid(),
                  nodes :: [node()],
                  timeout :: timeout(),
                  started_distribution :: boolean()}).

%% The owner's state.
-record(own, {caller :: reference(),
              %% Each member's control process, `down' while it is crashed.
              peers :: #{node() => pid() | down},
              order :: [node()],
              args :: [string()],
              apps :: [atom()],
              timeout :: pos_integer(),
              %% Kept for lasp_converge_fault (faults in force, snapshots of
              %% crashed nodes, events).
              faults = #{} :: map()}).

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
%% A restarted node reuses its name: epmd may hold it for a moment after the
%% old node went down.
-define(RESTART_ATTEMPTS, 25).
-define(RESTART_RETRY_MS, 200).
-define(MESH_ATTEMPTS, 5).
-define(MESH_RETRY_MS, 50).
-define(PEER_ARGS, ["-kernel", "prevent_overlapping_partitions", "false"]).

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
%% `{error, {bad_opts, Opts}}' unless `Opts' is a map,
%% `{error, {unknown_option, Key}}' for a key not listed above,
%% `{error, {bad_option, Key, Value}}' for a value of the wrong kind (a
%% `prefix' must be letters, digits, `_' and `-', starting with a letter),
%% `{error, {start_failed, K, Reason}}' when node `K' (1-based) could not be
%% started or set up (the nodes started before it are stopped), and
%% `{error, {distribution, Reason}}' when this node could not be made
%% distributed.
-spec start(pos_integer(), opts()) -> {ok, cluster()} | {error, term()}.
start(N, _Opts) when not is_integer(N); N < 1 ->
    {error, {bad_size, N}};
start(N, Opts) ->
    case lasp_converge_opts:check(Opts, fun opt_ok/2) of
        ok -> start_tries(N, Opts, 1);
        {error, _} = E -> E
    end.

%% One more try when this node stopped being distributed between the check
%% and the first peer's start (a test that stops `net_kernel' as another
%% starts a cluster).
start_tries(N, Opts, Tries) ->
    case ensure_distributed() of
        {ok, Started} ->
            Timeout = maps:get(timeout, Opts, ?DEFAULT_TIMEOUT),
            {ok, Owner} = gen_server:start(?MODULE, self(), []),
            case gen_server:call(Owner, {boot, N, Opts, Timeout}, infinity) of
                {ok, Nodes} ->
                    {ok, #cluster{owner = Owner, nodes = Nodes, timeout = Timeout,
                                  started_distribution = Started}};
                {error, {start_failed, 1, {error, not_alive}}} when Tries > 0 ->
                    timer:sleep(100),
                    start_tries(N, Opts, Tries - 1);
                {error, _} = E ->
                    E
            end;
        {error, Why} ->
            {error, {distribution, Why}}
    end.

%% @doc Stop every running peer of the cluster and wait (up to 5 s each)
%% until it is disconnected. Returns `ok' also when some peers, or the whole
%% cluster, had already stopped.
-spec stop(cluster()) -> ok.
stop(#cluster{owner = Owner}) ->
    try gen_server:call(Owner, stop, infinity)
    catch exit:_ -> ok
    end.

%% @doc The members' node names, in start order (a crashed member too: it
%% keeps its name when restarted).
-spec nodes(cluster()) -> [node()].
nodes(#cluster{nodes = Nodes}) ->
    Nodes.

%% @doc The members running now (not crashed), in start order; `[]' once the
%% cluster is stopped.
-spec live_nodes(cluster()) -> [node()].
live_nodes(#cluster{owner = Owner}) ->
    try gen_server:call(Owner, live_nodes, infinity)
    catch exit:_ -> []
    end.

%% @doc `erpc:call(Node, M, F, A, Timeout)' with the cluster's timeout.
%% Raises `error:{not_a_member, Node}' when `Node' is not one of the peers.
-spec call(cluster(), node(), module(), atom(), [term()]) -> term().
call(#cluster{nodes = Nodes, timeout = Timeout}, Node, M, F, A) ->
    case lists:member(Node, Nodes) of
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

%% @private Halt `Node' at once (`erlang:halt/0' on it: its state is lost)
%% and wait until it is down. For `lasp_converge_fault:crash/2'.
-spec stop_node(cluster(), node()) -> ok | {error, term()}.
stop_node(C, Node) ->
    owner_call(C, {stop_node, Node}).

%% @private Start a crashed member again under its name, with the cluster's
%% code path, arguments and applications, connected to the running members.
%% For `lasp_converge_fault:restart/3'.
-spec start_node(cluster(), node()) -> ok | {error, term()}.
start_node(C, Node) ->
    owner_call(C, {start_node, Node}).

%% @private The map `lasp_converge_fault' keeps with the cluster.
-spec faults(cluster()) -> map().
faults(C) ->
    case owner_call(C, faults) of
        {error, not_running} -> #{};
        F -> F
    end.

%% @private Run `Fun(Faults, LiveNodes)' in the owner, one at a time, and
%% keep the map it returns: `{Reply, Faults1}'. For `lasp_converge_fault'.
-spec update_faults(cluster(), fun((map(), [node()]) -> {T, map()})) -> T | {error, not_running}.
update_faults(C, Fun) when is_function(Fun, 2) ->
    owner_call(C, {update_faults, Fun}).

owner_call(#cluster{owner = Owner}, Msg) ->
    try gen_server:call(Owner, Msg, infinity)
    catch exit:_ -> {error, not_running}
    end.

%% ---- owner ----

%% @private
init(Caller) ->
    process_flag(trap_exit, true),
    {ok, #own{caller = erlang:monitor(process, Caller), peers = #{}, order = [],
              args = [], apps = [], timeout = ?DEFAULT_TIMEOUT}}.

%% Start the peers; on failure the owner stops (the peers it started first).
boot(N, Opts, Timeout, Own) ->
    Prefix = to_list(maps:get(prefix, Opts, lasp_converge)),
    Base = lists:concat([Prefix, "_", os:getpid(), "_",
                         erlang:unique_integer([positive])]),
    Args = ["-pa" | code_paths(maps:get(code_paths, Opts, []))]
        ++ ?PEER_ARGS ++ [to_list(A) || A <- maps:get(args, Opts, [])],
    Apps = maps:get(apps, Opts, [lasp_converge]),
    case start_peers(1, N, Base, Args, Apps, Timeout, []) of
        {ok, Peers} ->
            Order = [Node || {_, Node} <- Peers],
            Own1 = Own#own{peers = maps:from_list([{Nd, P} || {P, Nd} <- Peers]),
                           order = Order, args = Args, apps = Apps, timeout = Timeout},
            case maps:get(connect, Opts, true) of
                true ->
                    case mesh(Order, Timeout) of
                        ok ->
                            {ok, Own1};
                        {error, {A, B, R}} ->
                            stop_peers(Peers),
                            K = length(lists:takewhile(fun(Nd) -> Nd =/= A end, Order)) + 1,
                            {error, {start_failed, K, {connect, B, R}}}
                    end;
                false ->
                    {ok, Own1}
            end;
        {error, _} = E ->
            E
    end.

%% @private
handle_call({boot, N, Opts, Timeout}, _From, Own) ->
    case boot(N, Opts, Timeout, Own) of
        {ok, Own1} -> {reply, {ok, Own1#own.order}, Own1};
        {error, _} = E -> {stop, normal, E, Own}
    end;
handle_call(live_nodes, _From, Own) ->
    {reply, live(Own), Own};
handle_call(stop, _From, Own) ->
    stop_all(Own),
    {stop, normal, ok, Own#own{peers = #{}}};
handle_call({stop_node, Node}, _From, #own{peers = Peers} = Own) ->
    case maps:find(Node, Peers) of
        error ->
            {reply, {error, {not_a_member, Node}}, Own};
        {ok, down} ->
            {reply, ok, Own};
        {ok, Pid} ->
            halt_node(Pid, Node),
            %% The survivors stay connected to each other.
            Live = [N || N <- live(Own), N =/= Node],
            _ = mesh(Live, Own#own.timeout),
            {reply, ok, Own#own{peers = Peers#{Node := down}}}
    end;
handle_call({start_node, Node}, _From, #own{peers = Peers} = Own) ->
    case maps:find(Node, Peers) of
        error ->
            {reply, {error, {not_a_member, Node}}, Own};
        {ok, down} ->
            case restart_peer(Node, Own, ?RESTART_ATTEMPTS) of
                {ok, Pid} ->
                    Own1 = Own#own{peers = Peers#{Node := Pid}},
                    case mesh(live(Own1), Own#own.timeout) of
                        ok -> {reply, ok, Own1};
                        {error, R} -> {reply, {error, {connect, R}}, Own1}
                    end;
                {error, R} ->
                    {reply, {error, R}, Own}
            end;
        {ok, _} ->
            {reply, {error, {already_running, Node}}, Own}
    end;
handle_call(faults, _From, Own) ->
    {reply, Own#own.faults, Own};
handle_call({update_faults, Fun}, _From, Own) ->
    {Reply, F} = Fun(Own#own.faults, live(Own)),
    {reply, Reply, Own#own{faults = F}};
handle_call(_, _From, Own) ->
    {reply, {error, bad_call}, Own}.

%% @private
handle_cast(_, Own) ->
    {noreply, Own}.

%% @private
handle_info({'DOWN', Ref, process, _, _}, #own{caller = Ref} = Own) ->
    stop_all(Own),
    {stop, normal, Own#own{peers = #{}}};
handle_info({'EXIT', Pid, _}, #own{peers = Peers} = Own) ->
    %% A control process ended: its node is gone.
    Gone = [N || {N, P} <- maps:to_list(Peers), P =:= Pid],
    {noreply, Own#own{peers = maps:merge(Peers, maps:from_list([{N, down} || N <- Gone]))}};
handle_info(_, Own) ->
    {noreply, Own}.

%% @private
terminate(_Reason, Own) ->
    stop_all(Own).

live(#own{order = Order, peers = Peers}) ->
    [N || N <- Order, maps:get(N, Peers) =/= down].

stop_all(#own{peers = Peers}) ->
    stop_peers([{P, N} || {N, P} <- maps:to_list(Peers), P =/= down]).

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
    try peer:start_link(peer_opts(Name, Args, Timeout)) of
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

restart_peer(Node, #own{args = Args, apps = Apps, timeout = Timeout} = Own, N) ->
    [Name | _] = string:split(atom_to_list(Node), "@"),
    case start_peer(list_to_atom(Name), Args, Apps, Timeout) of
        {ok, {Pid, Node}} ->
            {ok, Pid};
        {ok, {Pid, Other}} ->
            stop_peers([{Pid, Other}]),
            {error, {wrong_name, Other}};
        {error, _} when N > 1 ->
            timer:sleep(?RESTART_RETRY_MS),
            restart_peer(Node, Own, N - 1);
        {error, _} = E ->
            E
    end.

%% A long-names caller: peers on its host part, named with `-name', since
%% peer's default host (this machine's short host name) makes a long name
%% the caller may not reach.
peer_opts(Name, Args, Timeout) ->
    Base = #{name => Name, args => Args, wait_boot => Timeout},
    case net_kernel:longnames() of
        true ->
            [_, Host] = string:split(atom_to_list(node()), "@"),
            Base#{host => Host, longnames => true};
        _ ->
            Base
    end.

opt_ok(prefix, P) when is_atom(P); is_binary(P); is_list(P) ->
    try to_list(P) of
        [C | Cs] = L when is_list(L) ->
            is_letter(C) andalso
                lists:all(fun(X) -> is_letter(X) orelse (X >= $0 andalso X =< $9)
                                        orelse X =:= $_ orelse X =:= $- end, Cs)
                andalso length(L) =< 100;
        _ -> false
    catch _:_ -> false
    end;
opt_ok(prefix, _) -> false;
opt_ok(code_paths, L) -> is_list(L) andalso lists:all(fun is_chars/1, L);
opt_ok(args, L) -> is_list(L) andalso lists:all(fun is_chars/1, L);
opt_ok(connect, B) -> is_boolean(B);
opt_ok(apps, L) -> is_list(L) andalso lists:all(fun is_atom/1, L);
opt_ok(timeout, T) -> is_integer(T) andalso T > 0;
opt_ok(_, _) -> unknown.

is_letter(C) -> (C >= $a andalso C =< $z) orelse (C >= $A andalso C =< $Z).

is_chars(B) when is_binary(B) -> true;
is_chars(L) when is_list(L) -> io_lib:char_list(L);
is_chars(_) -> false.

start_apps(_Node, [], _Timeout) ->
    ok;
start_apps(Node, [App | Apps], Timeout) ->
    try erpc:call(Node, application, ensure_all_started, [App], Timeout) of
        {ok, _} -> start_apps(Node, Apps, Timeout);
        {error, Why} -> {error, {app, App, Why}}
    catch
        Class:Why -> {error, {app, App, {Class, Why}}}
    end.

%% Connect every pair, then check that every node sees every other one
%% (a connection can be dropped while `global' syncs the new ones) and
%% connect again what is missing, a few times.
mesh(Nodes, Timeout) ->
    mesh(Nodes, Timeout, ?MESH_ATTEMPTS).

mesh(Nodes, Timeout, N) ->
    Pairs = [{A, B} || {K, A} <- lists:enumerate(Nodes), B <- lists:nthtail(K, Nodes)],
    Failed = [{A, B, R} || {A, B} <- Pairs,
                           (R = connect(A, B, Timeout)) =/= true],
    case Failed of
        [] ->
            case [{A, B} || {A, B} <- Pairs, not lists:member(B, peers_of(A, Timeout))] of
                [] -> ok;
                _ when N > 1 -> timer:sleep(?MESH_RETRY_MS), mesh(Nodes, Timeout, N - 1);
                [{A, B} | _] -> {error, {A, B, not_connected}}
            end;
        [F | _] ->
            {error, F}
    end.

peers_of(A, Timeout) ->
    try erpc:call(A, erlang, nodes, [], Timeout)
    catch _:_ -> []
    end.

connect(A, B, Timeout) ->
    try
        erpc:call(A, net_kernel, connect_node, [B], Timeout)
    catch
        Class:Why -> {Class, Why}
    end.

%% Halt one node abruptly and wait until it is down and its control process
%% has ended.
halt_node(Pid, Node) ->
    monitor_node(Node, true),
    erpc:cast(Node, erlang, halt, []),
    receive {nodedown, Node} -> ok
    after ?STOP_TIMEOUT -> _ = erlang:disconnect_node(Node)
    end,
    receive {'EXIT', Pid, _} -> ok
    after ?STOP_TIMEOUT -> catch peer:stop(Pid)
    end,
    unlink(Pid),
    receive {'EXIT', Pid, _} -> ok after 0 -> ok end,
    monitor_node(Node, false).

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
