%% @doc `lasp_converge_cluster': three peer nodes start connected to each
%% other and to this node, load the project's code and NIF, run the app, and
%% are gone after `stop/1', also when the fun given to `with_cluster/3'
%% raises (after a crash and restart too) and when the process that started
%% them exits.
-module(lasp_converge_cluster_start_tests).

-include_lib("eunit/include/eunit.hrl").

-export([long_names_remote/0]).

-define(CL, lasp_converge_cluster).

cluster_start_test_() ->
    {timeout, 60, fun start_stop/0}.

start_stop() ->
    WasAlive = is_alive(),
    try
        three_nodes(),
        failing_fun_still_stops(),
        ?assertEqual({error, {bad_size, 0}}, ?CL:start(0)),
        ?assertEqual({error, {bad_size, -1}}, ?CL:start(-1, #{})),
        bad_app_stops_started_nodes(),
        caller_exit_stops_peers(),
        failure_after_crash_and_restart_stops_all()
    after
        WasAlive orelse net_kernel:stop()
    end.

three_nodes() ->
    {ok, C} = ?CL:start(3, #{prefix => lc_start}),
    Ns = ?CL:nodes(C),
    try
        ?assertEqual(3, length(Ns)),
        ?assertEqual(3, length(lists:usort(Ns))),
        ?assert(is_alive()),
        %% Connected to the caller and to each other.
        [?assert(lists:member(N, nodes())) || N <- Ns],
        [?assertEqual(lists:sort([node() | Ns -- [N]]),
                      lists:sort(?CL:call(C, N, erlang, nodes, [])))
         || N <- Ns],
        %% The NIF answers on each node as it does here.
        A = {state_orset, [{a, [{<<"t1">>, true}]}]},
        B = {state_orset, [{b, [{<<"t2">>, true}]}]},
        Local = lasp_converge_crdt:merge(A, B),
        [?assertEqual(Local, ?CL:call(C, N, lasp_converge_crdt, merge, [A, B])) || N <- Ns],
        %% The app runs there.
        [?assert(lists:keymember(lasp_converge, 1,
                                 ?CL:call(C, N, application, which_applications, [])))
         || N <- Ns],
        ?assertError({not_a_member, nope@nowhere},
                     ?CL:call(C, nope@nowhere, erlang, node, []))
    after
        ?assertEqual(ok, ?CL:stop(C))
    end,
    [?assertNot(lists:member(N, nodes())) || N <- Ns],
    %% Stopping again (every peer already gone) is still ok.
    ?assertEqual(ok, ?CL:stop(C)).

failing_fun_still_stops() ->
    Self = self(),
    ?assertError(boom,
                 ?CL:with_cluster(2, #{prefix => lc_fail, apps => []},
                                  fun(C) ->
                                          Self ! {nodes, ?CL:nodes(C)},
                                          erlang:error(boom)
                                  end)),
    Ns = receive {nodes, X} -> X after 0 -> error(no_nodes) end,
    ?assertEqual(2, length(Ns)),
    [?assertNot(lists:member(N, nodes())) || N <- Ns],
    ?assertEqual(42, ?CL:with_cluster(1, #{apps => []}, fun(_) -> 42 end)).

%% Node 2 fails (an application that does not exist): node 1 is stopped.
bad_app_stops_started_nodes() ->
    Before = nodes(),
    ?assertMatch({error, {start_failed, 1, {app, no_such_app, _}}},
                 ?CL:start(2, #{prefix => lc_bad, apps => [no_such_app]})),
    ?assertEqual(Before, nodes()).

%% The process that started the cluster exits: its peers are halted.
caller_exit_stops_peers() ->
    Self = self(),
    {_, Ref} = spawn_monitor(fun() ->
                                     {ok, C} = ?CL:start(2, #{prefix => lc_orphan, apps => []}),
                                     Self ! {nodes, ?CL:nodes(C)}
                             end),
    receive {'DOWN', Ref, process, _, _} -> ok end,
    Ns = receive {nodes, X} -> X after 0 -> error(no_nodes) end,
    ?assertEqual(2, length(Ns)),
    wait_gone(Ns, 5000).

%% A node crashed and restarted, then the fun fails: every node is stopped,
%% the restarted one too.
failure_after_crash_and_restart_stops_all() ->
    Self = self(),
    ?assertError(boom,
                 ?CL:with_cluster(2, #{prefix => lc_crash},
                                  fun(C) ->
                                          [_, N2] = Ns = ?CL:nodes(C),
                                          Self ! {nodes, Ns},
                                          ok = lasp_converge_fault:crash(C, N2),
                                          ?assertNot(lists:member(N2, nodes())),
                                          ok = lasp_converge_fault:restart(C, N2, #{}),
                                          ?assertEqual(Ns, ?CL:live_nodes(C)),
                                          ?assertEqual(N2, ?CL:call(C, N2, erlang, node, [])),
                                          erlang:error(boom)
                                  end)),
    Ns = receive {nodes, X} -> X after 0 -> error(no_nodes) end,
    [?assertNot(lists:member(N, nodes())) || N <- Ns].

wait_gone(Ns, Ms) when Ms > 0 ->
    case [N || N <- Ns, lists:member(N, nodes())] of
        [] -> ok;
        _ -> timer:sleep(20), wait_gone(Ns, Ms - 20)
    end;
wait_gone(Ns, _) ->
    ?assertEqual([], [N || N <- Ns, lists:member(N, nodes())]).

%% Options are checked before anything starts: a list, an unknown key, a
%% prefix that is no node-name part.
bad_options_are_refused_test() ->
    ?assertEqual({error, {bad_opts, [{prefix, "x"}]}}, ?CL:start(2, [{prefix, "x"}])),
    ?assertEqual({error, {unknown_option, prefx}}, ?CL:start(2, #{prefx => x})),
    ?assertEqual({error, {bad_option, prefix, "a@b"}}, ?CL:start(2, #{prefix => "a@b"})),
    ?assertEqual({error, {bad_option, prefix, ""}}, ?CL:start(2, #{prefix => ""})),
    ?assertEqual({error, {bad_option, prefix, "1x"}}, ?CL:start(2, #{prefix => "1x"})),
    ?assertEqual({error, {bad_option, timeout, 0}}, ?CL:start(2, #{timeout => 0})),
    ?assertEqual({error, {bad_option, apps, [<<"x">>]}}, ?CL:start(2, #{apps => [<<"x">>]})),
    ?assertEqual({error, {bad_option, connect, yes}}, ?CL:start(2, #{connect => yes})).

%% A caller started with `-name x@127.0.0.1' (long names) gets a working
%% cluster of long-named peers. The caller is itself a peer, controlled
%% over standard io, since this node may use short names.
long_names_test_() ->
    {timeout, 90, fun long_names/0}.

long_names() ->
    Paths = [P || P <- code:get_path(), filelib:is_dir(P),
                  not lists:prefix(code:root_dir(), P)],
    Name = list_to_atom(lists:concat(["lc_long_", os:getpid(), "_",
                                      erlang:unique_integer([positive])])),
    {ok, Peer, Node} = peer:start_link(#{name => Name, host => "127.0.0.1",
                                         longnames => true,
                                         connection => standard_io,
                                         args => ["-pa" | Paths]}),
    try
        ?assertMatch([_, "127.0.0.1"], string:split(atom_to_list(Node), "@")),
        {ok, _} = peer:call(Peer, application, ensure_all_started, [lasp_converge], 30000),
        %% One call runs the whole cluster's life on the caller: the
        %% cluster's owner stops the peers when the process that started
        %% them exits, and each peer:call/4 runs in a process of its own.
        #{nodes := Ns, merged := Merged, stop := Stop} =
            peer:call(Peer, ?MODULE, long_names_remote, [], 90000),
        ?assertEqual(2, length(Ns)),
        [?assertMatch([_, "127.0.0.1"], string:split(atom_to_list(N), "@")) || N <- Ns],
        ?assertEqual({state_gset, [1, 2]}, Merged),
        ?assertEqual(ok, Stop)
    after
        peer:stop(Peer)
    end.

%% On the long-named caller.
long_names_remote() ->
    {ok, C} = ?CL:start(2, #{prefix => lc_long, timeout => 30000}),
    Ns = ?CL:nodes(C),
    Merged = ?CL:call(C, hd(Ns), lasp_converge_crdt, merge,
                      [{state_gset, [1]}, {state_gset, [2]}]),
    #{nodes => Ns, merged => Merged, stop => ?CL:stop(C)}.
