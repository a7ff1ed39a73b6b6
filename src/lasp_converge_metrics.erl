%% @doc The figures in the Prometheus text exposition format (version 0.0.4),
%% served at `GET /metrics' by the dashboard (`lasp_converge_http') and
%% returned by `lasp_converge:metrics/0'.
%%
%% `text()' covers the variables aggregated on this node
%% (`lasp_converge:tracked/0') and the nodes involved: this node, every
%% member of those variables, and every member of the variables this node's
%% replicator holds. Each of those nodes is asked (in parallel, at most
%% 2 s) for its propagation settings, its replication counters and its
%% tuner and fault counts; a node that does not answer is left out of that
%% scrape.
%%
%% Labels: `var' (the variable, printed as `~0tp', as the dashboard names
%% it), `type' (its CRDT type, `unknown' before its first update), `node'
%% (the node a per-node figure is about). Label values are escaped as the
%% format requires (backslash, double quote, line feed).
%%
%% Histograms come from the tracker's HdrHistograms (3 significant digits):
%% the cumulative count at each `le' bound counts a value when the lowest
%% value equivalent to it is at most the bound (so within 0.1 % of it);
%% `_count' and `_sum' are exact. The tracker's counters and histograms
%% start again at zero after `lasp_converge:reset/1' and when a variable is
%% tracked again, which Prometheus reads as a counter reset.
%%
%% The metrics are listed, with the events and logs, in
%% `guides/operations.md'.
-module(lasp_converge_metrics).

-export([text/0, bounds_us/0, escape/1, local_view/0]).


-define(NODE_TIMEOUT, 2000).
-define(P, "lasp_converge_").

%% One sample: labels (in order) and a value.
-type sample() :: {[{string(), iodata()}], number() | iodata()}.
%% A metric family: name, type, help, samples (histograms: see hist/4).
-type family() :: {string(), counter | gauge | histogram, string(), [sample()]}.

%% @doc The `le' bounds of every histogram, in microseconds: 1 ms to 60 s.
-spec bounds_us() -> [pos_integer()].
bounds_us() ->
    [1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
     1000000, 2500000, 5000000, 10000000, 30000000, 60000000].

%% @doc The exposition, as a UTF-8 binary.
-spec text() -> binary().
text() ->
    Vars = [{V, D} || V <- lasp_converge:tracked(), {ok, D} <- [var_data(V)]],
    TrackedNodes = lists:append([maps:get(nodes, S, []) || {_, #{stats := S}} <- Vars]),
    Declared = try lasp_converge_replicator:declared() catch _:_ -> [] end,
    Nodes = lists:usort([node() | TrackedNodes] ++ lists:append([Ms || {_, _, Ms} <- Declared])),
    Views = views(Nodes),
    Types = maps:from_list([{V, T} || #{declared := Ds} <- Views, {V, T, _} <- Ds]),
    unicode:characters_to_binary(
      [family(F) || F <- tracker_families(Vars) ++ node_families(Views, Types),
                    element(4, F) =/= []]).

%% @doc Escape a label value: backslash, double quote and line feed.
-spec escape(unicode:chardata()) -> unicode:chardata().
escape(S) ->
    string:replace(
      string:replace(string:replace(S, "\\", "\\\\", all), "\"", "\\\"", all),
      "\n", "\\n", all).

%% @private What this node runs: its replicator's settings and counters,
%% Lasp's settings where Lasp runs, its tuner and fault counts.
-spec local_view() -> map().
local_view() ->
    Repl = case whereis(lasp_converge_replicator) of
               undefined -> #{};
               _ -> try #{settings => lasp_converge_replicator:settings(),
                          stats => lasp_converge_replicator:stats(),
                          declared => lasp_converge_replicator:declared()}
                    catch _:_ -> #{}
                    end
           end,
    Lasp = case lists:keymember(lasp, 1, application:which_applications())
               andalso erlang:function_exported(lasp_config, get, 2) of
               true ->
                   Get = fun(K, D) -> lasp_config(get, [K, D]) end,
                   #{lasp => #{state_interval => Get(state_interval, 10000),
                               propagate_on_update => Get(propagate_on_update, false),
                               mode => Get(mode, state_based)}};
               false ->
                   #{}
           end,
    maps:merge(#{node => node(), declared => [], counts => lasp_converge_telemetry:counts()},
               maps:merge(Repl, Lasp)).

%% Lasp's configuration, read only where Lasp runs (this application does
%% not depend on Lasp, so that xref does not ask for it).
lasp_config(F, A) -> apply(lasp_config, F, A).

%% ---- gathering ----

var_data(Var) ->
    case lasp_converge_tracker:lookup(Var) of
        {ok, {aggregator, Agg, Res, _}} ->
            Stats = lasp_converge:stats(Var),
            Buckets = lasp_converge_nif:tracker_buckets(Res, bounds_us()),
            Names = try gen_server:call(Agg, {query, names}, 5000)
                    catch exit:_ -> {error, not_tracked}
                    end,
            case {Stats, Buckets, Names} of
                {#{} = S, {ok, B}, {ok, N}} ->
                    {ok, #{stats => S, buckets => B, names => N,
                           type => type(Var, maps:get(type, B))}};
                _ ->
                    {error, gone}
            end;
        _ ->
            {error, not_tracked}
    end.

type(_Var, T) when is_atom(T), T =/= undefined -> T;
type({_, T}, _) when is_atom(T) ->
    case lists:member(T, lasp_converge_crdt:types()) of
        true -> T;
        false -> unknown
    end;
type(_, _) -> unknown.

views(Nodes) ->
    Rs = erpc:multicall(Nodes, ?MODULE, local_view, [], ?NODE_TIMEOUT),
    [V || {ok, #{node := _} = V} <- Rs].

%% ---- the tracker's figures ----

-spec tracker_families([{term(), map()}]) -> [family()].
tracker_families(Vars) ->
    VL = fun(V, #{type := T}) -> [{"var", name(V)}, {"type", atom_to_list(T)}] end,
    NL = fun(V, D, N) -> VL(V, D) ++ [{"node", atom_to_list(N)}] end,
    Stat = fun(K) -> [{VL(V, D), maps:get(K, S, 0)} || {V, D = #{stats := S}} <- Vars] end,
    PerNode = fun(F) ->
                      [{NL(V, D, N), X}
                       || {V, D = #{stats := #{per_node := P}}} <- Vars,
                          {N, M} <- lists:sort(maps:to_list(P)), is_atom(N),
                          X <- [F(M)], X =/= undefined]
              end,
    Name = fun(Names, I) -> maps:get(I, Names, I) end,
    [{?P "updates_total", counter, "Updates registered (duplicates excluded).",
      Stat(updates)},
     {?P "converged_total", counter,
      "Updates seen by every live member required to see them.", Stat(converged)},
     {?P "unconverged_total", counter,
      "Updates some live member had not seen past the horizon or the pending cap.",
      Stat(unconverged)},
     {?P "orphaned_total", counter, "Updates with no live member left to require them.",
      Stat(orphaned)},
     {?P "pending", gauge, "Updates still waiting for some live member.", Stat(pending)},
     {?P "clock_uncertainty_seconds", gauge,
      "Bound on the clock error of every latency figure of the variable.",
      [{L, X / 1.0e6} || {L, X} <- Stat(clock_uncertainty_us)]},
     {?P "convergence_seconds", histogram,
      "Time from an update until every required member had seen it.",
      [{VL(V, D), C} || {V, D = #{buckets := #{convergence := C}}} <- Vars]},
     {?P "node_pending", gauge, "Pending updates this node must see and has not seen.",
      PerNode(fun(M) -> maps:get(pending, M, undefined) end)},
     {?P "node_live", gauge, "Whether the node is a live member (1) or not (0).",
      PerNode(fun(#{live := true}) -> 1; (#{live := false}) -> 0; (_) -> undefined end)},
     {?P "node_clock_uncertainty_seconds", gauge,
      "Largest clock offset uncertainty applied to the node's timestamps.",
      PerNode(fun(#{clock_uncertainty_us := U}) when is_integer(U) -> U / 1.0e6;
                 (_) -> undefined
              end)},
     {?P "visibility_seconds", histogram,
      "Time from an update made elsewhere until this node first held it.",
      [{NL(V, D, Name(Names, I)), H}
       || {V, D = #{buckets := #{per_node := P}, names := Names}} <- Vars,
          {I, H} <- lists:sort(maps:to_list(P)), is_atom(Name(Names, I))]}].

%% ---- the nodes' settings, replication, tuner and faults ----

-spec node_families([map()], #{term() => atom()}) -> [family()].
node_families(Views, Types) ->
    NL = fun(#{node := N}) -> [{"node", atom_to_list(N)}] end,
    Settings = [{NL(V), S} || V <- Views, S <- settings(V)],
    Repl = [{[{"var", name(Var)}, {"type", atom_to_list(maps:get(Var, Types, unknown))}]
             ++ NL(V), C}
            || V = #{stats := #{vars := Vs}} <- Views, {Var, C} <- lists:sort(maps:to_list(Vs))],
    RC = fun(K) -> [{L, maps:get(K, C, 0)} || {L, C} <- Repl] end,
    Counts = [{NL(V), K, N} || V = #{counts := Cs} <- Views, {K, N} <- lists:sort(Cs)],
    [{?P "state_interval_seconds", gauge,
      "Propagation interval in force (the replicator's timer, or Lasp's state_interval).",
      [{L, I / 1000} || {L, #{interval := I}} <- Settings]},
     {?P "propagate_on_update", gauge, "Whether each update is pushed as it is made (1) or not (0).",
      [{L, case P of true -> 1; _ -> 0 end} || {L, #{push := P}} <- Settings]},
     {?P "mode", gauge, "Replication mode in force on the node (1 for the mode label's value).",
      [{L ++ [{"mode", atom_to_list(M)}, {"backend", atom_to_list(B)}], 1}
       || {L, #{mode := M, backend := B}} <- Settings, is_atom(M)]},
     {?P "replication_messages_total", counter,
      "Replication messages sent by the node for the variable, by kind.",
      [{L ++ [{"kind", Kind}], maps:get(K, C, 0)}
       || {L, C} <- Repl, {K, Kind} <- [{full_states, "full_state"}, {deltas, "delta"},
                                        {acks, "ack"}]]},
     {?P "replication_bytes_total", counter,
      "Bytes of replication messages sent (external term size, once per recipient).",
      RC(sent_bytes)},
     {?P "replication_dropped_total", counter,
      "Replication messages lost to injected faults (counted as sent too).", RC(dropped)},
     {?P "replication_received_total", counter,
      "Replication messages received by the node for the variable.", RC(received_messages)},
     {?P "tuner_changes_total", counter,
      "Settings changed by the node's tuner controllers, by variable and setting.",
      [{[{"var", name(Var)}, {"key", atom_to_list(K)}] ++ L, N}
       || {L, {tuner_changes, Var, K}, N} <- Counts]},
     {?P "faults_total", counter, "Faults applied from the node, by kind.",
      [{[{"fault", atom_to_list(F)}] ++ L, N} || {L, {faults, F}, N} <- Counts, is_atom(F)]}].

settings(#{lasp := #{state_interval := I, propagate_on_update := P, mode := M}})
  when is_integer(I) ->
    [#{interval => I, push => P, mode => M, backend => lasp}];
settings(#{settings := #{state_interval := I, propagate_on_update := P, mode := M}}) ->
    [#{interval => I, push => P, mode => M, backend => replicator}];
settings(_) ->
    [].

%% ---- the text format ----

name(V) -> io_lib:format("~0tp", [V]).

family({Name, Type, Help, Samples}) ->
    ["# HELP ", Name, " ", Help, "\n# TYPE ", Name, " ", atom_to_list(Type), "\n",
     case Type of
         histogram -> [hist(Name, L, H) || {L, H} <- Samples];
         _ -> [line(Name, L, V) || {L, V} <- Samples]
     end].

%% `{Cumulative, Count, SumUs}' at bounds_us().
hist(Name, Labels, {Cum, Count, SumUs}) ->
    Les = [le(B) || B <- bounds_us()] ++ ["+Inf"],
    [[line(Name ++ "_bucket", Labels ++ [{"le", Le}], C) || {Le, C} <- lists:zip(Les, Cum ++ [Count])],
     line(Name ++ "_sum", Labels, SumUs / 1.0e6),
     line(Name ++ "_count", Labels, Count)].

le(Us) -> float_to_list(Us / 1.0e6, [short]).

line(Name, [], V) ->
    [Name, " ", value(V), "\n"];
line(Name, Labels, V) ->
    [Name, "{", lists:join(",", [[K, "=\"", escape(X), "\""] || {K, X} <- Labels]), "} ",
     value(V), "\n"].

value(V) when is_integer(V) -> integer_to_list(V);
value(V) when is_float(V) -> float_to_list(V, [short]).
