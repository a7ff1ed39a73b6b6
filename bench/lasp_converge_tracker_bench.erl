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
%% node 1 has seen none) when node 1's state gains the next 10 of them:
%% the median time and witness checks over 30 such observations.
%% Medians of several runs; the machine's load moves them a lot.
-module(lasp_converge_tracker_bench).

-export([main/0, type_rows/0]).

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
    io:format("~n~-20s ~8s ~8s ~14s ~14s~n",
              ["type", "pending", "change", "observed us", "checks"]),
    [type_row(T) || T <- lasp_converge_crdt:types()],
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
    {ok, _} = ?N:tracker_observed(R, 1, ?PENDING + 1, S0),
    Batches = batches(Ds, ?TYPE_RUNS),
    {_, Runs} = lists:foldl(
                  fun({K, Batch}, {S, Acc}) ->
                          S1 = lists:foldl(fun(D, X) -> ?C:merge(X, D) end, S, Batch),
                          Ts = ?PENDING + 1 + K,
                          {T, {ok, #{checked := C}}} =
                              timer:tc(fun() -> ?N:tracker_observed(R, 1, Ts, S1) end),
                          {S1, [{T, C} | Acc]}
                  end, {S0, []}, lists:zip(lists:seq(1, length(Batches)), Batches)),
    {Ts, Cs} = lists:unzip(Runs),
    io:format("~-20s ~8b ~8b ~14.1f ~14.1f~n",
              [Type, ?PENDING, ?CHANGE, median(Ts), median(Cs)]).

%% The first RUNS batches of CHANGE deltas, spread over the updates.
batches(Ds, Runs) ->
    Step = max(?CHANGE, length(Ds) div Runs),
    [lists:sublist(Ds, 1 + (K - 1) * Step, ?CHANGE) || K <- lists:seq(1, Runs)].

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
