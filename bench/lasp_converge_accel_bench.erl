%% @doc `make bench', acceleration rows: what `lasp_converge_accel' changes.
%%
%% 1. Term API against types' own functions, in this VM (types' modules
%%    loaded from the real Lasp build's `lib/types/ebin'), at 10 and 10k
%%    entries: `merge', `is_inflation', `is_strict_inflation', `equal' of
%%    gcounter, pncounter, orset, gset, awset, gmap(gcounter). For each:
%%    types' function, the NIF's (`lasp_converge_crdt'), and the route an
%%    accelerated module takes (`lasp_converge_accel', linear Erlang walk,
%%    NIF or types). Pairs are what Lasp's receive path checks: B = A
%%    with one more update (a strict inflation, the whole of A walked);
%%    `equal' on A and a copy of A.
%% 2. Lasp paths on a real Lasp node, stock then accelerated: wall time
%%    and CPU (the node's `statistics(runtime)') per `lasp:update/3' and
%%    per received state (a `state_send' cast to Lasp's state-based
%%    backend, a peer's state holding one update more than the local
%%    replica): 10k gcounter, 10k orset, 10k gset, 100k awset.
%%
%% Elements mix integers, binaries and tuples; actors mix atoms, binaries
%% and tuples (binaries and strings on lasp:update/3, which takes no
%% tuple). Skipped with a message without a Lasp build.
-module(lasp_converge_accel_bench).

-export([main/0, term_table/0, lasp_table/0]).
%% Run on the Lasp node.
-export([lasp_rows/2]).

-define(A, lasp_converge_accel).

main() ->
    case lasp_converge_real_lasp:add_types_path() of
        {error, Why} ->
            io:format("~naccel bench skipped: ~p~n", [Why]);
        ok ->
            T0 = erlang:monotonic_time(millisecond),
            awset_check(),
            io:format("~n== Term API vs types 0.1.8 (same VM), median us per call ==~n"),
            term_table(),
            io:format("~n== Lasp 0.8.2 paths on a real node, stock vs accelerated ==~n"),
            lasp_table(),
            io:format("~naccel bench wall time: ~.1f s; load average: ~s~n",
                      [(erlang:monotonic_time(millisecond) - T0) / 1000, loadavg()])
    end.

loadavg() ->
    case file:read_file("/proc/loadavg") of
        {ok, B} -> lists:join(" ", lists:sublist(string:lexemes(binary_to_list(B), " "), 3));
        _ -> "n/a"
    end.

%%--------------------------------------------------------------------
%% 1. Term API
%%--------------------------------------------------------------------

term_table() ->
    Cases = [{T, N, F} || T <- [state_gcounter, state_pncounter, state_orset, state_gset,
                                state_awset, state_gmap],
                          N <- [10, 10000],
                          F <- [merge, is_inflation, is_strict_inflation, equal]],
    States = maps:from_list([{{T, N}, pair(T, N)} || {T, N, merge} <- Cases]),
    %% Stock: types' modules as loaded from the build, and the NIF.
    Stock = [term_stock(C, maps:get({T, N}, States)) || {T, N, _} = C <- Cases],
    %% Accelerated: the same calls of the same modules once replaced.
    {ok, _} = ?A:accelerate(),
    Accel = [term_accel(C, maps:get({T, N}, States), W)
             || {{T, N, _} = C, {W, _, _}} <- lists:zip(Cases, Stock)],
    {ok, _} = ?A:decelerate(),
    io:format("~-16s ~-6s ~-20s ~12s ~12s ~12s ~9s ~9s~n",
              ["type", "size", "function", "types", "nif", "accel", "nif x", "accel x"]),
    [io:format("~-16s ~-6s ~-20s ~12s ~12s ~12s ~9s ~9s~n",
               [T, size_label(N), F, us(Tt), us(Tn), us(Ta), ratio(Tt, Tn), ratio(Tt, Ta)])
     || {{T, N, F}, {_, Tt, Tn}, Ta} <- lists:zip3(Cases, Stock, Accel)],
    ok.

pair(Type, N) ->
    A = build(Type, N),
    {A, one_more(Type, A, N), binary_to_term(term_to_binary(A))}.

args(equal, {A, _, Copy}) -> {A, Copy};
args(_, {A, B, _}) -> {A, B}.

term_stock({Type, _N, F}, P) ->
    {X, Y} = args(F, P),
    Want = Type:F(X, Y),
    Nif = try lasp_converge_crdt:F(X, Y) catch error:E -> {raised, E} end,
    Tt = time(fun() -> Type:F(X, Y) end),
    Tn = case Nif =:= Want of
             true -> time(fun() -> lasp_converge_crdt:F(X, Y) end);
             false -> undefined
         end,
    {Want, Tt, Tn}.

term_accel({Type, _N, F}, P, Want) ->
    {X, Y} = args(F, P),
    Type:F(X, Y) =:= Want orelse io:format("MISMATCH accelerated ~p:~p~n", [Type, F]),
    time(fun() -> Type:F(X, Y) end).

%% Median ns of a call: batches for short calls, one call at a time for
%% long ones, about half a second in all (at least three samples); a call
%% over 200 ms (types' quadratic loops) is timed twice, the second kept.
time(Fun) ->
    garbage_collect(),
    T1 = tc_ns(Fun),
    case T1 > 200000000 of
        true -> garbage_collect(), tc_ns(Fun);
        false -> time(Fun, T1)
    end.

time(Fun, T1) ->
    Batch = max(1, min(10000, 200000 div max(T1, 1))),
    Samples = max(3, min(50, 500000000 div max(T1 * Batch, 1))),
    Ts = [begin
              tc_ns(fun() -> loop(Batch, Fun) end) / Batch
          end || _ <- lists:seq(1, Samples)],
    lists:nth((Samples + 1) div 2, lists:sort(Ts)).

tc_ns(Fun) ->
    T0 = erlang:monotonic_time(nanosecond),
    _ = Fun(),
    erlang:monotonic_time(nanosecond) - T0.

loop(0, _) -> ok;
loop(K, F) -> _ = F(), loop(K - 1, F).

us(undefined) -> "refused";
us(Ns) when Ns < 10000 -> io_lib:format("~.2f", [Ns / 1000]);
us(Ns) -> integer_to_list(round(Ns / 1000)).

ratio(_, undefined) -> "-";
ratio(T, X) when T / X >= 100 -> integer_to_list(round(T / X));
ratio(T, X) -> io_lib:format("~.2f", [T / X]).

size_label(N) when N >= 1000 -> integer_to_list(N div 1000) ++ "k";
size_label(N) -> integer_to_list(N).

actor(I) ->
    case I rem 3 of
        0 -> lists:nth(1 + (I div 3) rem 5, [a, b, c, 'n1@host', 'n2@host']);
        1 -> <<"actor", (integer_to_binary(I))/binary>>;
        2 -> {<<"node">>, I}
    end.

elem(I) ->
    case I rem 3 of
        0 -> I;
        1 -> <<"e", (integer_to_binary(I))/binary>>;
        2 -> {I, <<"x">>}
    end.

%% Counters: one entry per actor, the atoms' entries unique through a
%% tuple where an atom repeats.
ckey(I) ->
    case I rem 3 of
        0 -> {actor(I), I};
        _ -> actor(I)
    end.

token(I) -> <<I:160>>.

build(state_gcounter, N) ->
    {state_gcounter, orddict:from_list([{ckey(I), 1 + I rem 7} || I <- lists:seq(1, N)])};
build(state_pncounter, N) ->
    {state_pncounter, orddict:from_list([{ckey(I), {1 + I rem 7, I rem 3}}
                                         || I <- lists:seq(1, N)])};
build(state_orset, N) ->
    {state_orset, orddict:from_list([{elem(I), [{token(I), I rem 5 =/= 0}]}
                                     || I <- lists:seq(1, N)])};
build(state_gset, N) ->
    {state_gset, ordsets:from_list([elem(I) || I <- lists:seq(1, N)])};
build(state_awset, N) ->
    awset(N, 10);
build(state_gmap, N) ->
    {state_gmap, {state_gcounter,
                  orddict:from_list([{elem(I), {state_gcounter, [{a, 1 + I rem 4}]}}
                                     || I <- lists:seq(1, N)])}}.

%% An awset of N elements added by `Actors' actors in turn, built as
%% types' add would build it (checked against types in the self-check).
awset(N, Actors) ->
    As = [<<"actor", (integer_to_binary(J))/binary>> || J <- lists:seq(1, Actors)],
    Dots = [{elem(I), {lists:nth(1 + I rem Actors, As), 1 + I div Actors}}
            || I <- lists:seq(0, N - 1)],
    Store = orddict:from_list([{E, [D]} || {E, D} <- Dots]),
    Compressed = orddict:from_list(
                   [{A, length([x || {_, {A1, _}} <- Dots, A1 =:= A])} || A <- As]),
    {state_awset, {Store, {Compressed, []}}}.

%% The built awset is the one types' own adds give.
awset_check() ->
    As = [<<"actor1">>, <<"actor2">>],
    ByTypes = lists:foldl(fun(I, S) ->
                                  {ok, S1} = state_awset:mutate({add, elem(I)},
                                                                lists:nth(1 + I rem 2, As), S),
                                  S1
                          end, state_awset:new(), lists:seq(0, 6)),
    case awset(7, 2) of
        ByTypes -> ok;
        Other -> io:format("MISMATCH awset builder~n~p~n~p~n", [ByTypes, Other])
    end.

%% One update more, as a peer's state would hold it.
one_more(state_gcounter, {state_gcounter, L}, _N) ->
    {state_gcounter, orddict:update_counter(ckey(1), 1, L)};
one_more(state_pncounter, {state_pncounter, L}, _N) ->
    {state_pncounter, orddict:update(ckey(1), fun({I, D}) -> {I + 1, D} end, L)};
one_more(state_orset, {state_orset, L}, N) ->
    {state_orset, orddict:store(elem(N + 1), [{token(N + 1), true}], L)};
one_more(state_gset, {state_gset, L}, N) ->
    {state_gset, ordsets:add_element(elem(N + 1), L)};
one_more(state_awset, S, N) ->
    {ok, S1} = state_awset:mutate({add, elem(N + 1)}, <<"actor1">>, S),
    S1;
one_more(state_gmap, {state_gmap, {C, L}}, N) ->
    {state_gmap, {C, orddict:store(elem(N + 1), {state_gcounter, [{b, 1}]}, L)}}.

%%--------------------------------------------------------------------
%% 2. Lasp paths
%%--------------------------------------------------------------------

lasp_table() ->
    %% One node: both paths are local to it; a long state interval keeps
    %% its own gossip out of the measurement.
    case lasp_converge_real_lasp:start(1, #{prefix => "lc_accel_bench", state_interval => 600000,
                                            extra_paths => [filename:dirname(code:which(?MODULE))]}) of
        {ok, Ctx} ->
            try
                [N] = lasp_converge_real_lasp:nodes(Ctx),
                Cases = [{state_gcounter, 10000, 3}, {state_orset, 10000, 5},
                         {state_gset, 10000, 10}, {state_awset, 100000, 5}],
                Stock = erpc:call(N, ?MODULE, lasp_rows, [Cases, <<"stock">>], infinity),
                {ok, _} = erpc:call(N, ?A, accelerate, []),
                Accel = erpc:call(N, ?MODULE, lasp_rows, [Cases, <<"accel">>], infinity),
                {ok, _} = erpc:call(N, ?A, decelerate, []),
                io:format("~-16s ~-6s ~-8s ~12s ~12s ~12s ~12s ~9s~n",
                          ["type", "size", "path", "stock ms", "stock cpu", "accel ms",
                           "accel cpu", "x (ms)"]),
                [io:format("~-16s ~-6s ~-8s ~12s ~12s ~12s ~12s ~9s~n",
                           [T, size_label(Sz), P, ms(Ws), ms(Cs), ms(Wa), ms(Ca),
                            ratio(Ws, Wa)])
                 || {{T, Sz, P, Ws, Cs}, {T, Sz, P, Wa, Ca}} <- lists:zip(Stock, Accel)],
                ok
            after
                lasp_converge_real_lasp:stop(Ctx)
            end;
        {error, Why} ->
            io:format("Lasp rows skipped: ~p~n", [Why])
    end.

ms(X) when X < 10 -> io_lib:format("~.2f", [X]);
ms(X) -> io_lib:format("~.1f", [X]).

%% @private On the Lasp node: per case, [{Type, Size, update|receive,
%% WallMs (median), CpuMs (mean)}].
lasp_rows(Cases, Tag) ->
    lists:append([lasp_case(T, N, K, Tag) || {T, N, K} <- Cases]).

lasp_case(Type, N, K, Tag) ->
    Id = {<<Tag/binary, "_", (atom_to_binary(Type))/binary>>, Type},
    {ok, _} = lasp:declare(Id, Type),
    S0 = build(Type, N),
    {ok, _} = lasp:bind(Id, S0),
    %% Updates.
    Ups = [fun() -> {ok, _} = lasp:update(Id, update_op(Type, N, J),
                                          <<"bench", (integer_to_binary(J))/binary>>)
           end || J <- lists:seq(1, K)],
    U = measure(Ups),
    %% Received states: each one update more than the replica holds.
    {ok, {Id, Type, Meta, Local}} = lasp:read(Id, undefined),
    Peers = peer_states(Type, Local, N, K),
    Backend = lasp_state_based_synchronization_backend,
    Rcv = [fun() ->
                   gen_server:cast(Backend, {state_send, 'peer@nohost', {Id, Type, Meta, P}, false}),
                   _ = sys:get_state(Backend, infinity)
           end || P <- Peers],
    R = measure(Rcv),
    [{Type, N, update, element(1, U), element(2, U)},
     {Type, N, 'receive', element(1, R), element(2, R)}].

update_op(state_gcounter, _N, _J) -> increment;
update_op(_, N, J) -> {add, elem(N + 100 + J)}.

peer_states(Type, Local, N, K) ->
    {Ss, _} = lists:mapfoldl(fun(J, S) ->
                                     S1 = peer_update(Type, S, N, J),
                                     {S1, S1}
                             end, Local, lists:seq(1, K)),
    Ss.

peer_update(state_gcounter, S, _N, J) ->
    {ok, S1} = state_gcounter:mutate(increment, ckey(J), S),
    S1;
peer_update(state_awset, S, N, J) ->
    {ok, S1} = state_awset:mutate({add, elem(N + 1000 + J)}, <<"peer">>, S),
    S1;
peer_update(Type, S, N, J) ->
    {ok, S1} = Type:mutate({add, elem(N + 1000 + J)}, <<"peer">>, S),
    S1.

%% Median wall ms, mean CPU ms (all of the node's threads).
measure(Funs) ->
    {Walls, Cpus} = lists:unzip([begin
                                     garbage_collect(),
                                     {R0, _} = statistics(runtime),
                                     {T, _} = timer:tc(F),
                                     {R1, _} = statistics(runtime),
                                     {T / 1000, R1 - R0}
                                 end || F <- Funs]),
    {lists:nth((length(Walls) + 1) div 2, lists:sort(Walls)), lists:sum(Cpus) / length(Cpus)}.
