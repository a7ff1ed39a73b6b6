%% @doc Convergence assertions for test suites: the functions behind the
%% macros of `include/lasp_converge.hrl' and `LaspConverge.Assertions'.
%%
%% == Model ==
%%
%% A variable has converged when the tracker (`lasp_converge') counts no
%% update of it as pending or unconverged (every update made so far is seen
%% by every live member) and the replicas held by the replicators
%% (`lasp_converge_replicator') of the checked nodes are equal
%% (`lasp_converge_crdt:equal/2'). `check/2' looks once; `wait/3' looks
%% every 20 ms until it holds or the time is up. The tracker is asked on the
%% node given as `via', else on this node, else on the first connected node
%% where the variable is tracked (any member forwards to the aggregating
%% node). The checked nodes are `nodes', else the nodes of `cluster', else
%% the tracker's live members.
%%
%% When the check fails, the information names the lagging nodes: every
%% node whose replica is not the join of all the replicas read, with its
%% value, what it misses of the join's value (elements, for set-valued
%% types), and the number of updates the tracker still counts as unseen
%% there. A node that does not answer within `call_timeout' ms (a paused or
%% crashed node) is lagging with `{error, Reason}' as its value.
%%
%% `converges/4', `convergence_p99/4' and `no_lost_updates/4' raise
%% `error:{Assertion, Info}' in EUnit's style (`Info' a property list
%% beginning with the caller's `module' and `line'), so EUnit prints the
%% stats and the lagging nodes next to the failed line.
-module(lasp_converge_assert).


-export([check/2, wait/3, converges/4, convergence_p99/4, no_lost_updates/4,
         format/1]).

-type var() :: lasp_converge:var().
-type opts() :: #{nodes => [node()],
                  cluster => lasp_converge_cluster:cluster(),
                  via => node(),
                  tracked => boolean(),
                  call_timeout => pos_integer()}.
-type lagging() :: #{node := node(),
                     value := term(),
                     missing := term(),
                     pending := non_neg_integer() | unknown}.
-type info() :: #{var := var(),
                  converged := boolean(),
                  stats := lasp_converge:stats() | {error, term()},
                  nodes := [node()],
                  lagging := [lagging()],
                  values := #{node() => term()},
                  reason => term()}.
-type location() :: [{atom(), term()}].
-export_type([opts/0, info/0, lagging/0, location/0]).

-define(POLL_MS, 20).
-define(CALL_TIMEOUT, 2000).

%% ---- checks ----

%% @doc Look once: has `Var' converged on the checked nodes? `Info' holds
%% the tracker's stats, the checked nodes, every node's value and the
%% lagging nodes.
%%
%% Options: `nodes' (the nodes whose replicas must agree), `cluster' (its
%% nodes, when `nodes' is not given), `via' (the node to ask the tracker
%% on), `tracked' (default `true'; `false' checks the replicas only),
%% `call_timeout' (ms for each remote call, default 2000).
-spec check(var(), opts()) -> {ok, info()} | {lagging, info()}.
check(Var, Opts) ->
    Timeout = maps:get(call_timeout, Opts, ?CALL_TIMEOUT),
    Stats = case maps:get(tracked, Opts, true) of
                true -> tracker_stats(Var, Opts, Timeout);
                false -> {error, not_checked}
            end,
    Nodes = check_nodes(Opts, Stats),
    States = [{N, remote(N, lasp_converge_replicator, state, [Var], Timeout)} || N <- Nodes],
    Good = [S || {_, {ok, {ok, S}}} <- States],
    Join = join(Good),
    PerNode = node_pending(Stats),
    Lagging = [lagging(N, R, Join, maps:get(N, PerNode, unknown)) || {N, R} <- States,
                                                                   lags(R, Join, maps:get(N, PerNode, 0))],
    Values = maps:from_list([{N, value(R)} || {N, R} <- States]),
    Info0 = #{var => Var, stats => Stats, nodes => Nodes, lagging => Lagging, values => Values},
    Reason = case Stats of
                 {error, not_checked} when Nodes =:= [] -> no_nodes;
                 {error, not_checked} when Lagging =/= [] -> replicas_differ;
                 {error, not_checked} -> undefined;
                 {error, R} -> {tracker, R};
                 #{pending := P, unconverged := U} when P > 0; U > 0 -> {unseen_updates, P, U};
                 _ when Nodes =:= [] -> no_nodes;
                 _ when Lagging =/= [] -> replicas_differ;
                 _ -> undefined
             end,
    case Reason of
        undefined -> {ok, Info0#{converged => true}};
        _ -> {lagging, Info0#{converged => false, reason => Reason}}
    end.

%% @doc `check/2' every 20 ms until `Var' has converged or `TimeoutMs' have
%% passed; returns the last look's information.
-spec wait(var(), non_neg_integer(), opts()) -> {ok, info()} | {timeout, info()}.
wait(Var, TimeoutMs, Opts) ->
    Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
    wait_until(Var, Deadline, Opts).

wait_until(Var, Deadline, Opts) ->
    case check(Var, Opts) of
        {ok, _} = Ok ->
            Ok;
        {lagging, Info} ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true ->
                    {timeout, Info};
                false ->
                    timer:sleep(?POLL_MS),
                    wait_until(Var, Deadline, Opts)
            end
    end.

%% ---- assertions (the macros call these) ----

%% @doc Return `ok' once `Var' has converged (see `wait/3'), or raise
%% `error:{assertConverges, Location ++ [{var, Var}, {timeout_ms, T},
%% {reason, R}, {stats, S}, {lagging, L}, {values, V}]}'.
-spec converges(var(), non_neg_integer(), opts(), location()) -> ok.
converges(Var, TimeoutMs, Opts, Location) ->
    case wait(Var, TimeoutMs, Opts) of
        {ok, _} ->
            ok;
        {timeout, Info} ->
            erlang:error({assertConverges,
                          Location ++ [{var, Var}, {timeout_ms, TimeoutMs}
                                       | details(Info)]})
    end.

%% @doc Return `ok' when the tracker's p99 convergence time of `Var' is at
%% most `Ms' milliseconds and no update is pending or unconverged; else
%% raise `error:{assertConvergenceP99, Location ++ [{var, Var},
%% {p99_ms, ...}, {limit_ms, Ms}, {stats, S}, ...]}'. It looks once: assert
%% convergence first when updates may still be in flight.
-spec convergence_p99(var(), number(), opts(), location()) -> ok.
convergence_p99(Var, Ms, Opts, Location) ->
    Timeout = maps:get(call_timeout, Opts, ?CALL_TIMEOUT),
    Stats = tracker_stats(Var, Opts, Timeout),
    Why = case Stats of
              {error, R} -> {tracker, R};
              #{pending := P, unconverged := U} when P > 0; U > 0 -> {unseen_updates, P, U};
              #{p99 := undefined} -> no_converged_updates;
              #{p99 := P99} when P99 > Ms * 1000 -> too_slow;
              #{} -> undefined
          end,
    case Why of
        undefined ->
            ok;
        _ ->
            erlang:error({assertConvergenceP99,
                          Location ++ [{var, Var}, {limit_ms, Ms}, {reason, Why},
                                       {p99_ms, p99_ms(Stats)}, {stats, brief(Stats)}]})
    end.

%% @doc Return `ok' when no update is lost: on every checked node the value
%% of `Var' holds every element of `Expected' (a list, for set-valued
%% types) or equals `Expected' (any other term, e.g. a counter's total).
%% Polls for up to `timeout' ms (option, default 0: one look); else raises
%% `error:{assertNoLostUpdates, Location ++ [{var, Var}, {lost, [#{node,
%% missing, value}]}, ...]}'. The tracker is not needed (`tracked' is
%% ignored); the checked nodes are chosen as for `check/2'.
-spec no_lost_updates(var(), term(), opts(), location()) -> ok.
no_lost_updates(Var, Expected, Opts, Location) ->
    Deadline = erlang:monotonic_time(millisecond) + maps:get(timeout, Opts, 0),
    no_lost_until(Var, Expected, Opts, Location, Deadline).

no_lost_until(Var, Expected, Opts, Location, Deadline) ->
    Timeout = maps:get(call_timeout, Opts, ?CALL_TIMEOUT),
    Stats = case maps:is_key(nodes, Opts) orelse maps:is_key(cluster, Opts) of
                true -> {error, not_checked};
                false -> tracker_stats(Var, Opts, Timeout)
            end,
    Nodes = check_nodes(Opts, Stats),
    Values = [{N, value(remote(N, lasp_converge_replicator, state, [Var], Timeout))}
              || N <- Nodes],
    Lost = [#{node => N, missing => M, value => V}
            || {N, V} <- Values, (M = lost(Expected, V)) =/= []],
    case Lost =:= [] andalso Nodes =/= [] of
        true ->
            ok;
        false ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true ->
                    erlang:error({assertNoLostUpdates,
                                  Location ++ [{var, Var}, {nodes, Nodes}, {lost, Lost},
                                               {expected, Expected}]});
                false ->
                    timer:sleep(?POLL_MS),
                    no_lost_until(Var, Expected, Opts, Location, Deadline)
            end
    end.

%% @doc A readable account of a failed assertion's information (what
%% `LaspConverge.Assertions' prints): the reason, the stats and one line
%% per lagging node.
-spec format(info() | {atom(), location()}) -> iolist().
format({Assertion, Props}) when is_atom(Assertion), is_list(Props) ->
    Lines = [io_lib:format("~p: ~0P~n", [K, V, 40])
             || {K, V} <- Props, not lists:member(K, [module, line, lagging, stats])],
    Stats = case lists:keyfind(stats, 1, Props) of
                {stats, S} -> format_stats(S);
                false -> []
            end,
    Lag = case lists:keyfind(lagging, 1, Props) of
              {lagging, L} -> format_lagging(L);
              false -> []
          end,
    [atom_to_list(Assertion), " failed\n", Lines, Stats, Lag];
format(#{} = Info) ->
    Props = [{var, maps:get(var, Info)}, {reason, maps:get(reason, Info, none)},
             {nodes, maps:get(nodes, Info)}, {stats, maps:get(stats, Info)},
             {lagging, maps:get(lagging, Info)}],
    format({convergence_check, Props}).

%% ---- internals ----

details(Info) ->
    [{reason, maps:get(reason, Info, none)},
     {lagging, maps:get(lagging, Info)},
     {stats, brief(maps:get(stats, Info))},
     {nodes, maps:get(nodes, Info)},
     {values, maps:get(values, Info)}].

%% The figures a failure report needs (`check/2' returns them all).
brief(#{} = S) ->
    B = maps:with([updates, converged, pending, unconverged, p50, p99, max,
                   clock_uncertainty_us], S),
    case S of
        #{per_node := PerNode} ->
            B#{per_node => maps:map(fun(_, M) -> maps:with([pending, p99, live], M) end,
                                    PerNode)};
        _ -> B
    end;
brief(Other) ->
    Other.

format_stats({error, R}) ->
    io_lib:format("tracker: {error, ~0p}~n", [R]);
format_stats(#{} = S) ->
    Ms = fun(K) -> case maps:get(K, S, undefined) of
                       undefined -> "-";
                       Us -> io_lib:format("~.1f ms", [Us / 1000])
                   end
         end,
    [io_lib:format("tracker: updates ~p, converged ~p, pending ~p, unconverged ~p; "
                   "p50 ~s, p99 ~s, max ~s (clock uncertainty ~p us)~n",
                   [maps:get(updates, S, 0), maps:get(converged, S, 0),
                    maps:get(pending, S, 0), maps:get(unconverged, S, 0),
                    Ms(p50), Ms(p99), Ms(max), maps:get(clock_uncertainty_us, S, 0)]),
     [io_lib:format("  ~p: unseen ~p, p99 ~s~n",
                    [N, maps:get(pending, M, 0),
                     case maps:get(p99, M, undefined) of
                         undefined -> "-";
                         Us -> io_lib:format("~.1f ms", [Us / 1000])
                     end])
      || {N, M} <- lists:sort(maps:to_list(maps:get(per_node, S, #{})))]].

format_lagging([]) ->
    "lagging nodes: none\n";
format_lagging(L) ->
    ["lagging nodes:\n",
     [io_lib:format("  ~p: unseen ~p, misses ~0P, value ~0P~n",
                    [N, P, M, 40, V, 40])
      || #{node := N, pending := P, missing := M, value := V} <- L]].

tracker_stats(Var, Opts, Timeout) ->
    case maps:find(via, Opts) of
        {ok, Node} ->
            as_stats(remote(Node, lasp_converge, stats, [Var], Timeout));
        error ->
            case as_stats(local_stats(Var)) of
                {error, not_tracked} -> find_stats(Var, erlang:nodes(), Timeout);
                S -> S
            end
    end.

local_stats(Var) ->
    try lasp_converge:stats(Var) of
        R -> {ok, R}
    catch C:R -> {error, {C, R}}
    end.

find_stats(_Var, [], _Timeout) ->
    {error, not_tracked};
find_stats(Var, [N | Ns], Timeout) ->
    case as_stats(remote(N, lasp_converge, stats, [Var], Timeout)) of
        #{} = S -> S;
        {error, _} -> find_stats(Var, Ns, Timeout)
    end.

as_stats({ok, #{} = S}) -> S;
as_stats({ok, {error, _} = E}) -> E;
as_stats({error, _} = E) -> E.

check_nodes(#{nodes := Ns}, _) -> Ns;
check_nodes(#{cluster := C}, _) -> lasp_converge_cluster:nodes(C);
check_nodes(_, #{nodes := Ns}) -> Ns;
check_nodes(_, _) -> [].

node_pending(#{per_node := PerNode}) ->
    maps:map(fun(_, M) -> maps:get(pending, M, 0) end, PerNode);
node_pending(_) ->
    #{}.

%% `{ok, Result}' of M:F(A) on Node (locally when it is this node), or
%% `{error, Why}'. A `{error, _}' result comes back as `{ok, {error, _}}'.
remote(Node, M, F, A, _Timeout) when Node =:= node() ->
    try apply(M, F, A) of
        R -> {ok, R}
    catch C:R -> {error, {C, R}}
    end;
remote(Node, M, F, A, Timeout) ->
    try erpc:call(Node, M, F, A, Timeout) of
        R -> {ok, R}
    catch
        error:{erpc, Why} -> {error, Why};
        C:R -> {error, {C, R}}
    end.

join([]) -> undefined;
join([S | Ss]) ->
    try lists:foldl(fun(X, Acc) -> lasp_converge_crdt:merge(Acc, X) end, S, Ss)
    catch error:{badcrdt, _} -> undefined
    end.

lags({ok, {ok, S}}, Join, Pending) ->
    Pending =/= 0 orelse Join =:= undefined
        orelse not lasp_converge_crdt:equal(S, Join);
lags(_, _, _) ->
    true.

lagging(N, R, Join, Pending) ->
    V = value(R),
    #{node => N, value => V, pending => Pending, missing => missing(Join, V)}.

value({ok, {ok, S}}) -> safe_query(S);
value({ok, {error, _} = E}) -> E;
value({error, _} = E) -> E.

safe_query(S) ->
    try to_plain(lasp_converge_crdt:query(S))
    catch error:{badcrdt, Why} -> {error, {badcrdt, Why}}
    end.

%% Sets as sorted lists, so the failure info reads well and compares.
to_plain(V) ->
    case sets:is_set(V) of
        true -> lists:sort(sets:to_list(V));
        false -> V
    end.

missing(undefined, _) -> unknown;
missing(Join, V) ->
    case safe_query(Join) of
        J when is_list(J), is_list(V) -> J -- V;
        V -> [];
        J -> #{expected => J}
    end.

lost(Expected, V) when is_list(Expected) ->
    case V of
        L when is_list(L) ->
            Have = maps:from_keys(L, true),
            [E || E <- Expected, not is_map_key(E, Have)];
        Other -> [{not_a_set, Other}]
    end;
lost(Expected, Expected) -> [];
lost(Expected, _) -> [Expected].

p99_ms(#{p99 := P}) when is_integer(P) -> P / 1000;
p99_ms(_) -> undefined.
