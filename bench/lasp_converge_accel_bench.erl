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
%%    replica): 10k gcounter, 10k orset, 10k gset, 100k awset. Beside
%%    them, the same received states with the types calls Lasp's receive
%%    path makes (`merge', `is_inflation', `is_strict_inflation',
%%    `equal') answered at no cost: the floor of any design that keeps
%%    plain terms (`floor_rows/1'), and the targets on plain terms (CPU
%%    per received state within 1.5x of that floor; gcounter 10k
%%    <= 7 ms, orset 10k <= 15 ms, awset 100k <= 150 ms; gset never
%%    slower than stock), met or not. `floor_table/0' runs this part
%%    alone.
%% 3. End to end (`e2e_table/0'), stock then accelerated: 3 Lasp nodes
%%    joined, state interval 1 s, a 10k gcounter and a 100k awset each
%%    updated 5 times a second for 15 s: update-to-every-node p50/p99 and
%%    CPU per node. It takes 1.5-4 minutes, so `main/0' runs it only with
%%    `LASP_CONVERGE_BENCH_E2E=1' in the environment.
%%
%% Elements mix integers, binaries and tuples; actors mix atoms, binaries
%% and tuples (binaries and strings on lasp:update/3, which takes no
%% tuple). Skipped with a message without a Lasp build.
-module(lasp_converge_accel_bench).

-export([main/0, term_table/0, lasp_table/0, floor_table/0, binary_table/0, e2e_table/0]).
%% Run on the Lasp node.
-export([lasp_rows/2, floor_rows/1, e2e_driver/2, e2e_poller/3]).

-define(A, lasp_converge_accel).
%% The types binary payloads hold, at the sizes of the Lasp rows; 10
%% samples each (CPU is counted in whole ms), 3 for stock gcounter (2 s
%% each).
-define(BINARY_CASES, [{state_gcounter, 10000, 10}, {state_gset, 10000, 10}]).
-define(BINARY_STOCK_CASES, [{state_gcounter, 10000, 3}, {state_gset, 10000, 10}]).

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
            case os:getenv("LASP_CONVERGE_BENCH_E2E") of
                false -> io:format("~nend-to-end rows: set LASP_CONVERGE_BENCH_E2E=1 (1.5-4 min)~n");
                _ -> e2e_table()
            end,
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
                {ok, _} = erpc:call(N, ?A, accelerate, [#{payload => binary}]),
                Binary = erpc:call(N, ?MODULE, lasp_rows, [?BINARY_CASES, <<"binary">>],
                                   infinity),
                {ok, _} = erpc:call(N, ?A, decelerate, []),
                Floor = erpc:call(N, ?MODULE, floor_rows, [Cases], infinity),
                print_lasp(Stock, Accel, Floor),
                print_binary(Stock, Accel, Binary)
            after
                lasp_converge_real_lasp:stop(Ctx)
            end;
        {error, Why} ->
            io:format("Lasp rows skipped: ~p~n", [Why])
    end.

%% @doc The Lasp paths alone (stock, accelerated, "merge costs nothing"
%% floor), as `lasp_table/0', for a run without the term API rows.
floor_table() ->
    case lasp_converge_real_lasp:add_types_path() of
        {error, Why} -> io:format("~naccel bench skipped: ~p~n", [Why]);
        ok -> lasp_table()
    end.

%% @doc Binary payloads alone: stock, accelerated on terms, and
%% accelerated with binary payloads (`accelerate(#{payload => binary})'),
%% per update and per received state, gset and gcounter 10k.
binary_table() ->
    case lasp_converge_real_lasp:add_types_path() of
        {error, Why} ->
            io:format("~naccel bench skipped: ~p~n", [Why]);
        ok ->
            {ok, Ctx} = lasp_converge_real_lasp:start(
                          1, #{prefix => "lc_binary_bench", state_interval => 600000,
                               extra_paths => [filename:dirname(code:which(?MODULE))]}),
            try
                [N] = lasp_converge_real_lasp:nodes(Ctx),
                Stock = erpc:call(N, ?MODULE, lasp_rows, [?BINARY_STOCK_CASES, <<"stock">>],
                                  infinity),
                {ok, _} = erpc:call(N, ?A, accelerate, []),
                Accel = erpc:call(N, ?MODULE, lasp_rows, [?BINARY_CASES, <<"accel">>], infinity),
                {ok, _} = erpc:call(N, ?A, accelerate, [#{payload => binary}]),
                Binary = erpc:call(N, ?MODULE, lasp_rows, [?BINARY_CASES, <<"binary">>],
                                   infinity),
                {ok, _} = erpc:call(N, ?A, decelerate, []),
                print_binary(Stock, Accel, Binary)
            after
                lasp_converge_real_lasp:stop(Ctx)
            end
    end.

%% Target per received state with binary payloads: <= 2.5 ms CPU.
print_binary(Stock, Accel, Binary) ->
    io:format("~nbinary payloads: wall ms (median) / CPU ms (mean)~n"),
    io:format("~-16s ~-6s ~-8s ~15s ~15s ~15s ~8s  ~s~n",
              ["type", "size", "path", "stock", "accel", "binary", "stk/bin", "target (CPU)"]),
    [begin
         {_, _, _, Ws, Cs} = lists:keyfind(T, 1, [R || R <- Stock, element(3, R) =:= P,
                                                      element(2, R) =:= Sz]),
         {_, _, _, Wa, Ca} = lists:keyfind(T, 1, [R || R <- Accel, element(3, R) =:= P,
                                                      element(2, R) =:= Sz]),
         Target = case P of
                      'receive' -> io_lib:format("<= 2.5 ms: ~s", [met(Cb =< 2.5)]);
                      update -> ""
                  end,
         io:format("~-16s ~-6s ~-8s ~15s ~15s ~15s ~8s  ~s~n",
                   [T, size_label(Sz), P, pair_ms(Ws, Cs), pair_ms(Wa, Ca), pair_ms(Wb, Cb),
                    cpu_ratio(Cs, Cb), Target])
     end || {T, Sz, P, Wb, Cb} <- Binary],
    ok.

print_lasp(Stock, Accel, Floor) ->
    io:format("wall ms (median) / CPU ms (mean); floor: types' hot calls answered at no cost~n"),
    io:format("~-16s ~-6s ~-8s ~15s ~15s ~15s ~8s ~8s  ~s~n",
              ["type", "size", "path", "stock", "accel", "floor", "stk/acc", "acc/flr",
               "target (CPU)"]),
    [begin
         F = lists:keyfind({T, Sz, P}, 1, Floor),
         io:format("~-16s ~-6s ~-8s ~15s ~15s ~15s ~8s ~8s  ~s~n",
                   [T, size_label(Sz), P, pair_ms(Ws, Cs), pair_ms(Wa, Ca), floor_ms(F),
                    cpu_ratio(Cs, Ca), floor_ratio(Ca, F), target(T, P, Cs, Ca, F)])
     end
     || {{T, Sz, P, Ws, Cs}, {T, Sz, P, Wa, Ca}} <- lists:zip(Stock, Accel)],
    [io:format("floor ~p ~s: not measured: ~p~n", [T, size_label(Sz), Why])
     || {{T, Sz, _}, {invalid, Why}} <- Floor],
    ok.

pair_ms(W, C) -> [ms(W), " / ", ms(C)].

floor_ms({_, {ok, W, C}}) -> pair_ms(W, C);
floor_ms(_) -> "-".

floor_ratio(Ca, {_, {ok, _, Cf}}) -> cpu_ratio(Ca, Cf);
floor_ratio(_, _) -> "-".

%% CPU is counted in whole ms: a zero mean has no ratio.
cpu_ratio(A, B) when A > 0, B > 0 -> ratio(A, B);
cpu_ratio(_, _) -> "-".

%% The targets on plain terms, per received state: within 1.5x of the
%% floor and under an absolute bound; gset never slower than stock.
target(state_gset, 'receive', Cs, Ca, _) ->
    io_lib:format("<= stock: ~s", [met(Ca =< Cs)]);
target(T, 'receive', _Cs, Ca, F) ->
    Bound = maps:get(T, #{state_gcounter => 7, state_orset => 15, state_awset => 150}),
    Abs = io_lib:format("<= ~b ms: ~s", [Bound, met(Ca =< Bound)]),
    case F of
        {_, {ok, _, Cf}} -> [Abs, io_lib:format(", <= 1.5x floor: ~s", [met(Ca =< 1.5 * Cf)])];
        _ -> [Abs, ", floor: n/a"]
    end;
target(_, _, _, _, _) ->
    "".

met(true) -> "met";
met(false) -> "NOT met".

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

%%--------------------------------------------------------------------
%% The "merge costs nothing" floor
%%--------------------------------------------------------------------

%% The calls of types Lasp's receive path makes: `lasp_core:bind' calls
%% `Type:merge(Stored, Received)' once, then
%% `Type:is_strict_inflation(Stored, Merged)' (which in types calls
%% `is_inflation' and `equal').
-define(FLOOR_HOT, [{merge, 2}, {is_inflation, 2}, {is_strict_inflation, 2}, {equal, 2}]).
-define(FLOOR_SUFFIX, "$floor").

%% @private On the Lasp node, with types' own modules loaded: per case,
%% {{Type, Size, 'receive'}, {ok, WallMs, CpuMs} | {invalid, Why}}, the
%% same received states as `lasp_rows/2' with each type's hot calls
%% answered at no cost. Each type module is replaced (in memory) by one
%% that delegates every export to types' code, loaded again as
%% `state_X$floor', except the hot calls, which while the switch is on
%% return their answer at once: `merge(_, B)' returns `B', `is_inflation'
%% and `is_strict_inflation' `true', `equal' `false'. Before the switch
%% is turned on, types' own code checks that these are its answers for
%% every pair the timed receives meet (the stored replica, then each
%% received state, one update ahead of it: `merge' gives the received
%% state term for term, and it is a strict inflation of the stored one).
%% While on, the hot calls are counted: exactly one `merge' and one
%% `is_strict_inflation' per received state, or the row is dropped; the
%% final replica must be the last received state.
floor_rows(Cases) ->
    Types = lists:usort([T || {T, _, _} <- Cases]),
    Counts = counters:new(4, []),
    persistent_term:put({?MODULE, floor_counts}, Counts),
    [persistent_term:put({?MODULE, floor, T}, off) || T <- Types],
    Files = [{T, floor_install(T)} || T <- Types],
    try
        [{{T, N, 'receive'}, floor_case(T, N, K, Counts)} || {T, N, K} <- Cases]
    after
        [floor_restore(T, File) || {T, File} <- Files]
    end.

floor_case(Type, N, K, Counts) ->
    Id = {<<"floor_", (atom_to_binary(Type))/binary>>, Type},
    {ok, _} = lasp:declare(Id, Type),
    {ok, _} = lasp:bind(Id, build(Type, N)),
    {ok, {Id, Type, Meta, Local}} = lasp:read(Id, undefined),
    Peers = peer_states(Type, Local, N, K),
    case floor_check(Type, Local, Peers) of
        ok ->
            Backend = lasp_state_based_synchronization_backend,
            Rcv = [fun() ->
                           gen_server:cast(Backend, {state_send, 'peer@nohost',
                                                     {Id, Type, Meta, P}, false}),
                           _ = sys:get_state(Backend, infinity)
                   end || P <- Peers],
            [counters:put(Counts, I, 0) || I <- lists:seq(1, 4)],
            persistent_term:put({?MODULE, floor, Type}, on),
            {W, C} = try measure(Rcv)
                     after persistent_term:put({?MODULE, floor, Type}, off)
                     end,
            Calls = [counters:get(Counts, I) || I <- lists:seq(1, 4)],
            {ok, {Id, Type, _, Final}} = lasp:read(Id, undefined),
            case {Calls, Final =:= lists:last(Peers)} of
                {[K, 0, K, 0], true} -> {ok, W, C};
                Other -> {invalid, {calls_merge_infl_strict_equal_and_final, Other}}
            end;
        Why ->
            {invalid, Why}
    end.

%% types' answers for the pairs the receive path meets, before timing.
floor_check(Type, Stored, [P | Ps]) ->
    Merged = Type:merge(Stored, P),
    case {Merged =:= P, Type:is_strict_inflation(Stored, Merged)} of
        {true, true} -> floor_check(Type, Merged, Ps);
        Other -> {types_answers_differ, Other}
    end;
floor_check(_Type, _Stored, []) ->
    ok.

floor_answer(merge) -> "A2";
floor_answer(is_inflation) -> "true";
floor_answer(is_strict_inflation) -> "true";
floor_answer(equal) -> "false".

floor_index(merge) -> 1;
floor_index(is_inflation) -> 2;
floor_index(is_strict_inflation) -> 3;
floor_index(equal) -> 4.

%% Load types' `Type' again as `Type$floor', then a `Type' delegating to
%% it; returns the types beam's file.
floor_install(Type) ->
    File = code:which(Type),
    Orig = list_to_atom(atom_to_list(Type) ++ ?FLOOR_SUFFIX),
    {ok, {Type, [{abstract_code, {raw_abstract_v1, Forms}}]}} =
        beam_lib:chunks(File, [abstract_code]),
    Renamed = [case F of
                   {attribute, L, module, _} -> {attribute, L, module, Orig};
                   _ -> F
               end || F <- Forms],
    {ok, Orig, OrigBin} = compile:forms(Renamed, [binary]),
    {module, Orig} = code:load_binary(Orig, File, OrigBin),
    Exports = [FA || {F, _} = FA <- Orig:module_info(exports), F =/= module_info],
    Funs = [floor_fun(Type, Orig, FA) || FA <- Exports],
    {ok, Head} = erl_parse:parse_form(scan(io_lib:format("-module(~p).", [Type]))),
    {ok, Exp} = erl_parse:parse_form(
                  scan(io_lib:format("-export([~s]).",
                                     [lists:join(",", [io_lib:format("~p/~b", [F, A])
                                                       || {F, A} <- Exports])]))),
    {ok, Type, Bin} = compile:forms([Head, Exp | Funs], [binary, return_errors]),
    ok = soft_purged(Type, 200),
    {module, Type} = code:load_binary(Type, File, Bin),
    File.

floor_fun(Type, Orig, {F, A} = FA) ->
    Vars = lists:join(",", ["A" ++ integer_to_list(I) || I <- lists:seq(1, A)]),
    Delegate = io_lib:format("~p:~p(~s)", [Orig, F, Vars]),
    Text = case lists:member(FA, ?FLOOR_HOT) of
               true ->
                   io_lib:format("~p(A1, A2) -> case persistent_term:get({~p, floor, ~p}, off) of "
                                 "on -> counters:add(persistent_term:get({~p, floor_counts}), ~b, 1), "
                                 "_ = A1, ~s; _ -> ~s end.",
                                 [F, ?MODULE, Type, ?MODULE, floor_index(F),
                                  floor_answer(F), Delegate]);
               false ->
                   io_lib:format("~p(~s) -> ~s.", [F, Vars, Delegate])
           end,
    {ok, Form} = erl_parse:parse_form(scan(Text)),
    Form.

scan(Text) ->
    {ok, Tokens, _} = erl_scan:string(lists:flatten(Text)),
    Tokens.

%% types' beam back from its file; `Type$floor' dropped.
floor_restore(Type, File) ->
    {ok, Bin} = file:read_file(File),
    ok = soft_purged(Type, 200),
    {module, Type} = code:load_binary(Type, File, Bin),
    Orig = list_to_atom(atom_to_list(Type) ++ ?FLOOR_SUFFIX),
    ok = soft_purged(Type, 200),
    ok = soft_purged(Orig, 200),
    true = code:delete(Orig),
    ok = soft_purged(Orig, 200).

%% No process runs `Mod''s old code (waits up to `Tries' x 50 ms).
soft_purged(Mod, Tries) ->
    case code:soft_purge(Mod) of
        true -> ok;
        false when Tries =< 0 -> {error, {not_purged, Mod}};
        false -> timer:sleep(50), soft_purged(Mod, Tries - 1)
    end.

%%--------------------------------------------------------------------
%% 3. End to end: 3 Lasp nodes under a steady update load
%%--------------------------------------------------------------------

-define(E2E_NODES, 3).
-define(E2E_RATE_MS, 200).
-define(E2E_LOAD_MS, 15000).
-define(E2E_DRAIN_MS, 20000).

%% @doc End to end, stock then accelerated, each on 3 fresh Lasp nodes
%% joined, `state_interval' 1000 ms, state-based mode: a 10k gcounter and
%% a 100k awset (built on the first node, replicated by Lasp) each get
%% one update every 200 ms for 15 s, the nodes in turn (an increment; an
%% add of a new element), each node's updates made by one process there
%% in order under an actor of that node. An update is seen on a node when
%% that node's replica holds its actor's count (gcounter entry; awset
%% causal context) up to it: a process on each node, outside Lasp's own,
%% looks at the replica in Lasp's ETS store every 10 ms (the awset's
%% causal context only, through a match specification, not its 100k
%% elements). Latency: from the time the update was due to the time the
%% last node saw it; updates not seen everywhere 20 s after the last one
%% was due count as unseen (above every percentile they reach). CPU: each
%% node's `statistics(runtime)' over the load and drain, per second.
%% Takes 1.5-4 minutes: `main/0' runs it only with
%% `LASP_CONVERGE_BENCH_E2E=1' in the environment.
e2e_table() ->
    case lasp_converge_real_lasp:add_types_path() of
        {error, Why} ->
            io:format("~nend-to-end rows skipped: ~p~n", [Why]);
        ok ->
            io:format("~n== End to end, 3 Lasp 0.8.2 nodes, state_interval 1 s, "
                      "5 updates/s per variable for ~b s ==~n", [?E2E_LOAD_MS div 1000]),
            Rows = [{Mode, e2e_run(Mode)} || Mode <- [stock, accel]],
            io:format("(made: applied where made by the end; seen: on every node; "
                      "percentiles over all updates, unseen ones above the rest)~n"),
            io:format("~-7s ~-16s ~-6s ~7s ~7s ~7s ~10s ~10s ~10s ~12s~n",
                      ["mode", "type", "size", "updates", "made", "seen", "p50 ms", "p99 ms",
                       "max ms", "seen p50 ms"]),
            [case R of
                 {error, Why} ->
                     io:format("~-7s not measured: ~p~n", [Mode, Why]);
                 #{vars := Vars, cpu := Cpu, seconds := Secs} ->
                     [io:format("~-7s ~-16s ~-6s ~7b ~7b ~7b ~10s ~10s ~10s ~12s~n",
                                [Mode, T, size_label(Sz), length(Ls) + Unseen, Made, length(Ls),
                                 pct(Ls, Unseen, 50), pct(Ls, Unseen, 99), pct(Ls, Unseen, 100),
                                 pct(Ls, 0, 50)])
                      || {T, Sz, Made, Ls, Unseen} <- Vars],
                     io:format("~-7s CPU ms per second on each node (~.1f s): ~s~n",
                               [Mode, Secs, lists:join(", ", [integer_to_list(round(C / Secs))
                                                               || C <- Cpu])])
             end || {Mode, R} <- Rows],
            ok
    end.

%% Percentile of the seen latencies, the unseen ones counted above them.
pct(Seen, Unseen, P) ->
    All = length(Seen) + Unseen,
    Rank = max(1, (P * All + 99) div 100),
    case Rank =< length(Seen) of
        true when All > 0 -> integer_to_list(round(lists:nth(Rank, lists:sort(Seen))));
        true -> "-";
        false -> "unseen"
    end.

e2e_run(Mode) ->
    case lasp_converge_real_lasp:start(?E2E_NODES,
                                       #{prefix => "lc_e2e_bench", state_interval => 1000,
                                         extra_paths => [filename:dirname(code:which(?MODULE))]}) of
        {ok, Ctx} ->
            try
                e2e_run(Mode, lasp_converge_real_lasp:nodes(Ctx))
            after
                lasp_converge_real_lasp:stop(Ctx)
            end;
        {error, _} = Error ->
            Error
    end.

e2e_run(Mode, [First | _] = Nodes) ->
    Mode =:= accel andalso
        begin {ok, _} = erpc:call(First, ?A, accelerate, [#{nodes => all}], 120000) end,
    Vars = [{e2e_id(state_gcounter), state_gcounter, 10000},
            {e2e_id(state_awset), state_awset, 100000}],
    [begin
         {ok, _} = erpc:call(First, lasp, declare, [Id, T], infinity),
         {ok, _} = erpc:call(First, lasp, bind, [Id, build(T, N)], infinity)
     end || {Id, T, N} <- Vars],
    Actors = [e2e_actor(Node) || Node <- Nodes],
    Self = self(),
    Pollers = [erpc:call(Node, erlang, spawn,
                         [?MODULE, e2e_poller, [Self, [{Id, T} || {Id, T, _} <- Vars], Actors]])
               || Node <- Nodes],
    %% The initial states everywhere (each poller says so once).
    case e2e_ready(Nodes, 120000) of
        ok ->
            Drivers = [{Node, Id, erpc:call(Node, erlang, spawn, [?MODULE, e2e_driver, [Id, T]])}
                       || Node <- Nodes, {Id, T, _} <- Vars],
            Cpu0 = [erpc:call(Node, erlang, statistics, [runtime]) || Node <- Nodes],
            T0 = erlang:system_time(microsecond),
            Due = e2e_load(Nodes, Drivers, [Id || {Id, _, _} <- Vars], T0),
            Seen0 = e2e_collect(Due, T0 + (?E2E_LOAD_MS + ?E2E_DRAIN_MS) * 1000, #{}),
            %% Messages lost to a dropped connection are in the pollers' logs.
            Seen = lists:foldl(fun e2e_seen/2, Seen0, e2e_dump(Pollers)),
            Cpu1 = [erpc:call(Node, erlang, statistics, [runtime]) || Node <- Nodes],
            Secs = (erlang:system_time(microsecond) - T0) / 1.0e6,
            [exit(P, kill) || P <- Pollers],
            [exit(P, kill) || {_, _, P} <- Drivers],
            #{seconds => Secs,
              cpu => [R1 - R0 || {{R0, _}, {R1, _}} <- lists:zip(Cpu0, Cpu1)],
              vars => [e2e_latencies(Id, T, N, Due, Seen, Nodes) || {Id, T, N} <- Vars]};
        Error ->
            Error
    end.

e2e_id(T) -> {<<"e2e_", (atom_to_binary(T))/binary>>, T}.

e2e_actor(Node) -> <<"e2e_", (atom_to_binary(Node))/binary>>.

e2e_ready(Nodes, T) when T =< 0 ->
    {error, {initial_states_not_replicated, Nodes}};
e2e_ready([], _T) ->
    ok;
e2e_ready([Node | Rest], T) ->
    receive {ready, Node} -> e2e_ready(Rest, T)
    after 1000 -> e2e_ready([Node | Rest], T - 1000)
    end.

%% One update per variable every 200 ms, the nodes in turn; returns
%% #{{Id, Actor, Count} => DueMicros}.
e2e_load(Nodes, Drivers, Ids, T0) ->
    Ticks = ?E2E_LOAD_MS div ?E2E_RATE_MS,
    lists:foldl(
      fun(K, Due) ->
              At = T0 + K * ?E2E_RATE_MS * 1000,
              Wait = (At - erlang:system_time(microsecond)) div 1000,
              Wait > 0 andalso timer:sleep(Wait),
              Node = lists:nth(1 + K rem length(Nodes), Nodes),
              Count = 1 + K div length(Nodes),
              lists:foldl(fun(Id, D) ->
                                  {Node, Id, P} = lists:keyfind(Node, 1, [X || {_, I, _} = X <- Drivers,
                                                                                I =:= Id]),
                                  P ! {update, e2e_actor(Node), Count},
                                  D#{{Id, e2e_actor(Node), Count} => At}
                          end, Due, Ids)
      end, #{}, lists:seq(0, Ticks - 1)).

%% First time each node saw each count: #{{Id, Actor, Count, Node} => Micros}.
e2e_collect(Due, Deadline, Seen) ->
    case map_size(Seen) >= map_size(Due) * ?E2E_NODES of
        true ->
            Seen;
        false ->
            Left = (Deadline - erlang:system_time(microsecond)) div 1000,
            receive
                {seen, _, _, _, _, _, _} = Ev ->
                    e2e_collect(Due, Deadline, e2e_seen(Ev, Seen))
            after max(0, Left) ->
                    Seen
            end
    end.

e2e_latencies(Id, T, N, Due, Seen, Nodes) ->
    Ls = [latency([maps:get({Id, A, C, Node}, Seen, unseen) || Node <- Nodes], At)
          || {{I, A, C}, At} <- maps:to_list(Due), I =:= Id],
    %% Made: applied on the node that made it (its own replica holds it).
    Made = length([x || {{I, A, C}, _} <- maps:to_list(Due), I =:= Id,
                        Node <- Nodes, e2e_actor(Node) =:= A,
                        maps:is_key({Id, A, C, Node}, Seen)]),
    {T, N, Made, [L / 1000 || L <- Ls, is_integer(L)], length([x || unseen <- Ls])}.

%% Due to seen by the last node, or `unseen'.
latency(Ts, At) ->
    case lists:member(unseen, Ts) of
        true -> unseen;
        false -> lists:max(Ts) - At
    end.

e2e_seen({seen, Node, Id, A, From, To, At}, Seen) ->
    lists:foldl(fun(C, S) -> S#{{Id, A, C, Node} => At} end, Seen, lists:seq(From, To)).

e2e_dump(Pollers) ->
    [P ! {dump, self()} || P <- Pollers],
    lists:append([receive {dump, Node, Log} -> Log
                  after 30000 -> []
                  end || Node <- [node(P) || P <- Pollers]]).

%% @private On a Lasp node: makes the updates it is sent, in order.
e2e_driver(Id, Type) ->
    receive
        {update, Actor, Count} ->
            Op = case Type of
                     state_gcounter -> increment;
                     state_awset -> {add, {e2e, Actor, Count}}
                 end,
            {ok, _} = lasp:update(Id, Op, Actor),
            e2e_driver(Id, Type)
    end.

%% @private On a Lasp node: every 10 ms, each actor's count in each
%% variable's replica, read from Lasp's ETS store; tells `To' when it grows.
e2e_poller(To, Vars, Actors) ->
    Reads = e2e_reads(Vars, 600),
    e2e_wait_initial(To, Reads),
    e2e_poll(To, Reads, Actors, {#{}, []}).

%% Per variable, a function returning its actors' counts.
e2e_reads(Vars, Tries) ->
    Tabs = [T || T <- ets:all(), is_atom(T), ets:info(T, type) =:= ordered_set],
    Found = [{Id, Type, [Tab || Tab <- Tabs, e2e_holds(Tab, Id)]} || {Id, Type} <- Vars],
    case [x || {_, _, []} <- Found] of
        [] ->
            [{Id, e2e_read(Tab, Id, Type)} || {Id, Type, [Tab | _]} <- Found];
        _ when Tries > 0 ->
            timer:sleep(100),
            e2e_reads(Vars, Tries - 1);
        _ ->
            exit({no_store, Vars})
    end.

e2e_holds(Tab, Id) ->
    case catch ets:lookup(Tab, Id) of
        [{Id, Dv}] when is_tuple(Dv), element(1, Dv) =:= dv -> true;
        _ -> false
    end.

%% The value is the first field of Lasp's `#dv{}' record: only the part
%% holding the counts is copied out of the table.
e2e_read(Tab, Id, Type) ->
    [{Id, Dv}] = ets:lookup(Tab, Id),
    Pattern = fun(V) -> list_to_tuple([dv, V | lists:duplicate(tuple_size(Dv) - 2, '_')]) end,
    Ms = case Type of
             state_gcounter -> [{{Id, Pattern({state_gcounter, '$1'})}, [], ['$1']}];
             state_awset -> [{{Id, Pattern({state_awset, {'_', {'$1', '_'}}})}, [], ['$1']}]
         end,
    fun() ->
            case ets:select(Tab, Ms) of
                [Entries] -> Entries;
                _ -> []
            end
    end.

e2e_wait_initial(To, Reads) ->
    case lists:all(fun({{_, state_gcounter} = _Id, Read}) -> length(Read()) >= 10000;
                      ({{_, state_awset}, Read}) -> length(Read()) >= 10
                   end, Reads) of
        true -> To ! {ready, node()};
        false -> timer:sleep(100), e2e_wait_initial(To, Reads)
    end.

e2e_poll(To, Reads, Actors, {Counts, Log}) ->
    receive
        {dump, From} -> From ! {dump, node(), Log}
    after 10 ->
            ok
    end,
    At = erlang:system_time(microsecond),
    C1 = lists:foldl(
           fun({Id, Read}, Acc) ->
                   Entries = Read(),
                   lists:foldl(fun(A, Acc1) ->
                                       New = case lists:keyfind(A, 1, Entries) of
                                                 {A, V} when is_integer(V) -> V;
                                                 _ -> 0
                                             end,
                                       Old = maps:get({Id, A}, element(1, Acc1), 0),
                                       {Cs, L} = Acc1,
                                       case New > Old of
                                           true ->
                                               Ev = {seen, node(), Id, A, Old + 1, New, At},
                                               To ! Ev,
                                               {Cs#{{Id, A} => New}, [Ev | L]};
                                           false ->
                                               Acc1
                                       end
                               end, Acc, Actors)
           end, {Counts, Log}, Reads),
    e2e_poll(To, Reads, Actors, C1).
