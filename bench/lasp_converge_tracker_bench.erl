%% @doc Cost of convergence tracking (issue 4), from Erlang.
%%
%% Run it the way `make bench' runs `lasp_converge_bench':
%%
%%   rebar3 compile && mkdir -p _build/bench &&
%%   erlc -o _build/bench bench/lasp_converge_tracker_bench.erl &&
%%   erl -noshell -pa _build/default/lib/*/ebin -pa _build/bench \
%%       -eval 'lasp_converge_tracker_bench:main(), halt().'
%%
%% For an orset and a gcounter, with 0, 1k and 10k updates pending (three
%% members; node 0 writes, nodes 1 and 2 have seen nothing), it reports:
%%
%% <ul>
%% <li>`updated': one `tracker_updated' call (witness `delta(Post, Pre)'
%%   computed natively over the two states, then registered);</li>
%% <li>`updated_delta': one `tracker_witness' call with the update's delta
%%   from `delta_mutate/3' as the witness (what `updated_delta/3' does on
%%   the aggregating node);</li>
%% <li>`observed +1': an observation by a node whose state gained one entry
%%   since its previous observation (the witness index checks one
%%   witness);</li>
%% <li>`observed all': an observation of a state holding every pending
%%   update at once;</li>
%% </ul>
%%
%% and the sustained rate of `lasp_converge:updated/3' on one node.
%%
%% Then, for each of the 19 types, the cost of one `tracker_observed' with
%% 10,000 updates pending (node 0 made them, registered with their deltas;
%% nodes 1 and 2 hold the first half) when a node's state gains the next
%% 10 of them: node 1 reports its whole state (`tracker_observed'), node 2
%% the 10-entry delta (`lasp_converge_tracker:observed_delta/4', what a
%% member sends and what a replicator reports). Median time and witness
%% checks over 30 such observations.
%%
%% Last, a 5-node run of the replicator with an awset of 2,000 elements,
%% every node writing as fast as it can for 5 s (state_interval 100 ms,
%% propagate_on_update), untracked then tracked from node 1: updates a
%% second (all nodes), the largest message queue of node 1's replicator
%% (sampled every 5 ms), and how late a fault is applied there (the time a
%% `set_faults/1' call to node 1's replicator takes mid-run).
%% Medians of several runs; the machine's load moves them a lot.
-module(lasp_converge_tracker_bench).

-export([main/0, type_rows/0, type_rows/1, cluster_rows/0, writer/4]).

-define(C, lasp_converge_crdt).
-define(N, lasp_converge_nif).
-define(RUNS, 50).

-spec main() -> ok.
main() ->
    io:format("~-16s ~8s ~12s ~18s ~14s ~16s~n",
              ["type", "pending", "updated us", "updated_delta us", "observed+1 us",
               "observed all us"]),
    [row(Type, P) || Type <- [state_orset, state_gcounter], P <- [0, 1000, 10000]],
    rate(),
    type_rows(),
    cluster_rows(),
    ok.

row(Type, P) ->
    {ok, R} = ?N:tracker_new(#{exact => [0, 1, 2]}),
    ok = ?N:tracker_set_members(R, 0, [0, 1, 2]),
    S0 = ?C:new(Type),
    States = lists:foldl(fun(I, [S | _] = Acc) ->
                                 S1 = mutate(Type, I, S),
                                 {ok, _} = updated(R, I, I, S, S1),
                                 [S1 | Acc]
                         end, [S0], lists:seq(1, P)),
    Sp = hd(States),
    %% Node 1 observes the bottom first, so later observations are indexed.
    {ok, _} = ?N:tracker_observed(R, 1, P + 1, S0),
    Upd = median([begin
                      S1 = mutate(Type, P + I, Sp),
                      {T, {ok, _}} = timer:tc(fun() -> updated(R, P + I, P + I, Sp, S1) end),
                      T
                  end || I <- lists:seq(1, ?RUNS)]),
    Seq0 = P + ?RUNS,
    UpdD = median([begin
                       D = delta_mutate(Type, Seq0 + I, Sp),
                       {T, {ok, _}} = timer:tc(fun() -> witness(R, Seq0 + I, D) end),
                       T
                   end || I <- lists:seq(1, ?RUNS)]),
    %% One more entry per observation (for a gcounter, one more increment).
    Plus = median([begin
                       Si = mutate(Type, 100000 + I, S0),
                       {T, {ok, _}} = timer:tc(fun() -> ?N:tracker_observed(R, 1, P + 2, Si) end),
                       T
                   end || I <- lists:seq(1, ?RUNS)]),
    {All, {ok, _}} = timer:tc(fun() -> ?N:tracker_observed(R, 2, P + 3, Sp) end),
    io:format("~-16s ~8b ~12.1f ~18.1f ~14.1f ~16.1f~n",
              [Type, P, Upd, UpdD, Plus, float(All)]).

witness(R, Seq, D) ->
    try ?N:tracker_witness(R, 0, Seq, Seq, D)
    catch error:lasp_converge_dirty -> ?N:tracker_witness_dirty(R, 0, Seq, Seq, D)
    end.

delta_mutate(state_orset, I, S) ->
    {ok, D} = ?C:delta_mutate({add, I}, bench, S),
    D;
delta_mutate(state_gcounter, I, S) ->
    {ok, D} = ?C:delta_mutate(increment, {actor, I rem 8}, S),
    D.

updated(R, Seq, Ts, Pre, Post) ->
    try ?N:tracker_updated(R, 0, Seq, Ts, Pre, Post)
    catch error:lasp_converge_dirty -> ?N:tracker_updated_dirty(R, 0, Seq, Ts, Pre, Post)
    end.

mutate(state_orset, I, S) ->
    {ok, S1} = ?C:mutate({add, I}, bench, S),
    S1;
mutate(state_gcounter, I, S) ->
    {ok, S1} = ?C:mutate(increment, {actor, I rem 8}, S),
    S1.

median(Xs) ->
    lists:nth((length(Xs) + 1) div 2, lists:sort(Xs)) * 1.0.

%% Sustained lasp_converge:updated/3 and updated_delta/2 on one node (a
%% gcounter, one member).
rate() ->
    {ok, _} = application:ensure_all_started(lasp_converge),
    V = {<<"bench">>, state_gcounter},
    ok = lasp_converge:track(V, #{nodes => []}),
    G0 = ?C:new(state_gcounter),
    {ok, G1} = ?C:mutate(increment, a, G0),
    N = 100000,
    {T, ok} = timer:tc(fun() -> loop(V, G0, G1, N) end),
    ok = lasp_converge:untrack(V),
    io:format("lasp_converge:updated/3 sustained: ~b updates/s (~.2f us each)~n",
              [round(N / (T / 1.0e6)), T / N]),
    ok = lasp_converge:track(V, #{nodes => []}),
    {ok, D} = ?C:delta_mutate(increment, a, G0),
    {TD, ok} = timer:tc(fun() -> loop_delta(V, D, N) end),
    ok = lasp_converge:untrack(V),
    io:format("lasp_converge:updated_delta/2 sustained: ~b updates/s (~.2f us each)~n",
              [round(N / (TD / 1.0e6)), TD / N]).

loop(_, _, _, 0) -> ok;
loop(V, Pre, Post, N) ->
    ok = lasp_converge:updated(V, Pre, Post),
    loop(V, Pre, Post, N - 1).

loop_delta(_, _, 0) -> ok;
loop_delta(V, D, N) ->
    ok = lasp_converge:updated_delta(V, D),
    loop_delta(V, D, N - 1).

%% ---- one row per type: observed with 10,000 pending, a 10-entry change ----

-define(PENDING, 10000).
-define(CHANGE, 10).
-define(TYPE_RUNS, 30).

type_rows() ->
    type_rows(lasp_converge_crdt:types()).

%% The rows of some types only, e.g. `type_rows([state_awset_ps])'.
type_rows(Types) ->
    io:format("~n~-20s ~8s ~8s ~12s ~8s ~12s ~8s~n",
              ["type", "pending", "change", "state us", "checks", "delta us", "checks"]),
    [type_row(T) || T <- Types],
    ok.

type_row(Type) ->
    {ok, R} = ?N:tracker_new(#{exact => [0, 1, 2], max_pending => 2 * ?PENDING,
                               horizon_us => 1 bsl 40}),
    ok = ?N:tracker_set_members(R, 0, [0, 1, 2]),
    S0 = ?C:new(Type),
    {Ds, _} = lists:mapfoldl(fun(I, {S, Prev}) ->
                                     D = type_delta(Type, I, S, Prev),
                                     {D, {?C:merge(S, D), D}}
                             end, {S0, S0}, lists:seq(1, ?PENDING)),
    lists:foreach(fun({I, D}) -> {ok, _} = witness(R, I, D) end,
                  lists:zip(lists:seq(1, ?PENDING), Ds)),
    %% Node 1 first holds the first half of the updates (so its state has
    %% the size of the variable), then gains 10 at a time.
    Half = lists:foldl(fun(D, X) -> ?C:merge(X, D) end, S0,
                       lists:sublist(Ds, ?PENDING div 2)),
    {ok, _} = ?N:tracker_observed(R, 1, ?PENDING + 1, Half),
    {ok, _} = ?N:tracker_observed_delta(R, 2, ?PENDING + 1, Half),
    Batches = batches(Ds, ?TYPE_RUNS),
    {_, Runs} = lists:foldl(
                  fun({K, Batch}, {S, Acc}) ->
                          Gain = lists:foldl(fun(D, X) -> ?C:merge(X, D) end, hd(Batch),
                                             tl(Batch)),
                          S1 = ?C:merge(S, Gain),
                          Ts = ?PENDING + 1 + K,
                          {T, {ok, #{checked := C}}} =
                              timer:tc(fun() -> ?N:tracker_observed(R, 1, Ts, S1) end),
                          {TD, {ok, #{checked := CD}}} =
                              timer:tc(fun() -> lasp_converge_tracker:observed_delta(R, 2, Ts, Gain) end),
                          {S1, [{T, C, TD, CD} | Acc]}
                  end, {Half, []}, lists:zip(lists:seq(1, length(Batches)), Batches)),
    io:format("~-20s ~8b ~8b ~12.1f ~8.1f ~12.1f ~8.1f~n",
              [Type, ?PENDING, ?CHANGE, median([T || {T, _, _, _} <- Runs]),
               median([C || {_, C, _, _} <- Runs]), median([T || {_, _, T, _} <- Runs]),
               median([C || {_, _, _, C} <- Runs])]).

%% RUNS batches of CHANGE consecutive deltas, from the middle of the
%% updates (node 1's state holds everything before the first batch).
batches(Ds, Runs) ->
    Start = length(Ds) div 2,
    [lists:sublist(Ds, Start + (K - 1) * ?CHANGE + 1, ?CHANGE) || K <- lists:seq(1, Runs)].

%% The delta of update I (by one of 8 actors, Lasp-like: atoms, binaries,
%% tuples), or the previous delta where the type allows no new update (an
%% ivar is set once).
type_delta(Type, I, S, Prev) ->
    Actor = case I rem 3 of
                0 -> {'lasp@host', I rem 8};
                1 -> list_to_binary(["actor-", integer_to_list(I rem 8)]);
                _ -> list_to_atom("node" ++ integer_to_list(I rem 8))
            end,
    Elem = case I rem 3 of
               0 -> I;
               1 -> <<I:32>>;
               _ -> {I, x}
           end,
    A = case Type of
            state_awset_ps -> {<<"obj">>, Actor};
            _ -> Actor
        end,
    try ?C:delta_mutate(type_op(Type, I, Elem), A, S) of
        {ok, D} -> D;
        _ -> Prev
    catch error:_ -> Prev
    end.

type_op(T, _, _) when T =:= state_gcounter; T =:= state_max_int; T =:= state_lexcounter ->
    increment;
type_op(state_pncounter, I, _) when I rem 2 =:= 0 -> decrement;
type_op(state_pncounter, _, _) -> increment;
type_op(state_bcounter, _, _) -> increment;
type_op(state_boolean, _, _) -> true;
type_op(T, I, _) when T =:= state_ewflag; T =:= state_dwflag ->
    case I rem 2 of 0 -> enable; 1 -> disable end;
type_op(state_gset, _, E) -> {add, E};
type_op(T, _, E) when T =:= state_twopset; T =:= state_orset; T =:= state_awset;
                      T =:= state_awset_ps ->
    {add, E};
type_op(state_ivar, _, E) -> {set, E};
type_op(state_lwwregister, I, E) -> {set, I, E};
type_op(state_mvregister, I, E) -> {set, I, E};
type_op(state_gmap, I, _) -> {apply, I rem 100, increment};
type_op(state_pair, _, E) -> {fst, {set, E}};
type_op(state_awmap, I, E) -> {apply, I rem 100, {add, E}}.

%% ---- 5 nodes, awset, tracked vs untracked ----

-define(RUN_MS, 5000).

cluster_rows() ->
    io:format("~n~-10s ~12s ~12s ~14s ~12s~n",
              ["awset x5", "updates/s", "max queue", "fault us", "converged"]),
    {ok, _} = application:ensure_all_started(lasp_converge),
    {ok, C} = lasp_converge_cluster:start(5, #{prefix => lc_trk_bench}),
    try
        [cluster_row(C, Tracked) || Tracked <- [false, true]]
    after
        lasp_converge_cluster:stop(C)
    end,
    ok.

cluster_row(C, Tracked) ->
    Ns = [N1 | _] = lasp_converge_cluster:nodes(C),
    Var = {<<"bench">>, Tracked},
    Call = fun(N, M, F, A) -> lasp_converge_cluster:call(C, N, M, F, A) end,
    [{ok, _} = Call(N, lasp_converge_replicator, set,
                    [#{state_interval => 100, propagate_on_update => true}]) || N <- Ns],
    {ok, _} = Call(N1, lasp_converge_replicator, declare, [Var, state_awset, #{nodes => Ns}]),
    %% 2,000 elements to start with, replicated everywhere.
    [{ok, _} = Call(N1, lasp_converge_replicator, update, [Var, {add, {seed, I}}, N1])
     || I <- lists:seq(1, 2000)],
    timer:sleep(1000),
    _ = Tracked andalso (ok =:= Call(N1, lasp_converge, track, [Var, #{nodes => Ns}])),
    Self = self(),
    Sampler = spawn(N1, fun() -> sample_queue(Self, 0) end),
    T0 = erlang:monotonic_time(millisecond),
    [spawn(N, ?MODULE, writer, [Self, Var, N, T0 + ?RUN_MS]) || N <- Ns],
    timer:sleep(?RUN_MS div 2),
    {FaultUs, ok} = timer:tc(fun() -> Call(N1, lasp_converge_replicator, set_faults, [#{}]) end),
    Counts = [receive {written, N, K} -> K end || N <- Ns],
    Sampler ! {stop, Self},
    MaxQ = receive {max_queue, Q} -> Q end,
    Total = lists:sum(Counts),
    Conv = case Tracked of
               true ->
                   timer:sleep(2000),
                   maps:get(converged, Call(N1, lasp_converge, stats, [Var]), 0);
               false ->
                   '-'
           end,
    _ = Tracked andalso Call(N1, lasp_converge, untrack, [Var]),
    io:format("~-10s ~12b ~12b ~14b ~12p~n",
              [case Tracked of true -> tracked; false -> untracked end,
               round(Total * 1000 / ?RUN_MS), MaxQ, FaultUs, Conv]).

%% On node N: updates of Var as fast as the replicator takes them until
%% Until (monotonic ms; the nodes share this machine's clock).
writer(Parent, Var, N, Until) ->
    writer(Parent, Var, N, Until, 0).

writer(Parent, Var, N, Until, K) ->
    case erlang:monotonic_time(millisecond) >= Until of
        true ->
            Parent ! {written, N, K};
        false ->
            {ok, _} = lasp_converge_replicator:update(Var, {add, {N, K}}, N),
            writer(Parent, Var, N, Until, K + 1)
    end.

sample_queue(Parent, Max) ->
    receive
        {stop, Parent} -> Parent ! {max_queue, Max}
    after 5 ->
            Q = case whereis(lasp_converge_replicator) of
                    undefined -> 0;
                    P -> element(2, erlang:process_info(P, message_queue_len))
                end,
            sample_queue(Parent, max(Q, Max))
    end.
