%% @doc Resident replicas and the binary format against lasp-lang/types.
%%
%% Run by `make bench', or alone:
%%
%%   rebar3 compile && mkdir -p _build/bench &&
%%   erlc -o _build/bench bench/lasp_converge_replica_bench.erl &&
%%   erl -noshell -pa _build/default/lib/*/ebin -pa _build/bench \
%%       -eval 'lasp_converge_replica_bench:main(), halt().'
%%
%% types 0.1.8 is loaded from `LASP_CONVERGE_TYPES_EBIN', else
%% `../shared/lasp-0.8/lib/types/ebin' beside the repository; the rows
%% that need it are skipped with a note when it is not found.
%%
%% Rows (Lasp-like terms: elements mixing integers, binaries and tuples,
%% actors mixing atoms, binaries and tuples; medians of the runs):
%% <ul>
%% <li>`delta into resident 100k': a 10-entry delta term merged into a
%%   replica holding 100,000 entries (`lasp_converge_replica:merge/2'),
%%   against `Type:merge(State, Delta)' of the same terms. Each run merges a
%%   delta of new entries, so every run changes the state.</li>
%% <li>`round trip 10k gset': the sender encodes its replica
%%   (`to_binary/1'), sends it to another process, which merges it into its
%%   own 10k replica (lacking ten of the sender's entries or more); against
%%   sending the state term and `state_gset:merge/2' on the receiver. A
%%   replica keeps its binary until it changes, and a merge of a binary
%%   leaves it the binary of its new state. `sender changed': the sender
%%   changed since it last encoded (it writes its binary again), the
%%   receiver has been receiving (it has its binary); `both changed': the
%%   receiver changed too (a local update) and writes its binary first;
%%   `sender unchanged': neither writes.</li>
%% <li>`received, receiver equal': the same, to a receiver already holding
%%   the sender's state, as between converged replicas.</li>
%% </ul>
-module(lasp_converge_replica_bench).

-export([main/0]).

-define(R, lasp_converge_replica).
-define(C, lasp_converge_crdt).
-define(RUNS, 30).

-spec main() -> ok.
main() ->
    _ = lasp_converge_nif:crdt_types(),
    Types = load_types(),
    io:format("~n~-44s ~10s ~14s ~10s~n", ["resident replicas", "replica us", "types us",
                                           "ratio"]),
    delta_row(state_gset, 100000, Types),
    delta_row(state_awset, 100000, Types),
    delta_row(state_gcounter, 100000, Types),
    round_trip_row(10000, Types),
    ok.

load_types() ->
    Candidates = [os:getenv("LASP_CONVERGE_TYPES_EBIN", ""),
                  filename:join(["..", "shared", "lasp-0.8", "lib", "types", "ebin"])],
    case [D || D <- Candidates, D =/= "", filelib:is_dir(D)] of
        [Dir | _] ->
            code:add_pathz(Dir),
            {module, state_gset} = code:ensure_loaded(state_gset),
            true;
        [] ->
            io:format("types 0.1.8 not found (set LASP_CONVERGE_TYPES_EBIN): "
                      "ratios against types skipped~n"),
            false
    end.

%% Lasp-like elements: integers, binaries, tuples.
elem(I) ->
    case I rem 3 of
        0 -> I;
        1 -> <<"elem-", (integer_to_binary(I))/binary>>;
        2 -> {item, I}
    end.

actor(I) ->
    case I rem 3 of
        0 -> 'node1@127.0.0.1';
        1 -> <<"actor-2">>;
        2 -> {lasp, 3}
    end.

state(state_gset, N) ->
    {state_gset, lists:usort([elem(I) || I <- lists:seq(1, N)])};
state(state_gcounter, N) ->
    {state_gcounter, orddict:from_list([{{actor, I}, I} || I <- lists:seq(1, N)])};
state(state_awset, N) ->
    %% Element I carries one dot of actor(I); each actor's dots run from 1
    %% without gaps, so the context is compressed, as Lasp's are.
    Dots = [{elem(I), {actor(I), I div 3 + 1}} || I <- lists:seq(1, N)],
    DotMap = lists:sort([{E, [D]} || {E, D} <- Dots]),
    VV = orddict:from_list([{A, lists:max([S || {_, {A2, S}} <- Dots, A2 =:= A])}
                            || A <- lists:usort([A || {_, {A, _}} <- Dots])]),
    {state_awset, {DotMap, {VV, []}}}.

%% K deltas of 10 new entries each, independent of one another.
deltas(state_gset, N, K) ->
    [{state_gset, lists:usort([elem(N + 10 * J + I) || I <- lists:seq(1, 10)])}
     || J <- lists:seq(1, K)];
deltas(state_gcounter, N, K) ->
    [{state_gcounter, orddict:from_list([{{actor, N + 10 * J + I}, 1} || I <- lists:seq(1, 10)])}
     || J <- lists:seq(1, K)];
deltas(state_awset, N, K) ->
    S = state(state_awset, 0),
    [begin
         {ok, D} = ?C:delta_mutate({add_all, [elem(N + 10 * J + I) || I <- lists:seq(1, 10)]},
                                   {bench, J}, S),
         D
     end || J <- lists:seq(1, K)].

delta_row(Type, N, HaveTypes) ->
    S = state(Type, N),
    Ds = deltas(Type, N, ?RUNS),
    R = ?R:from_term(S),
    Rep = median([element(1, timer:tc(fun() -> ok = ?R:merge(R, D) end)) || D <- Ds]),
    %% Check the replica against the term merge of every delta.
    Want = lists:foldl(fun(D, Acc) -> ?C:merge(Acc, D) end, S, Ds),
    true = ?R:to_term(R) =:= Want,
    Base = case HaveTypes of
               true -> median([element(1, timer:tc(fun() -> Type:merge(S, D) end))
                               || D <- lists:sublist(Ds, 10)]);
               false -> undefined
           end,
    row(lists:flatten(io_lib:format("10-entry delta into ~p ~bk", [Type, N div 1000])), Rep, Base).

round_trip_row(N, HaveTypes) ->
    S = state(state_gset, N),
    %% The receiver holds the same state less ten entries.
    {state_gset, Es} = S,
    Local = {state_gset, lists:nthtail(10, Es)},
    Sender = ?R:from_term(S),
    Name = fun(What) -> lists:flatten(io_lib:format("~s ~bk gset", [What, N div 1000])) end,
    ToMine = fun(Bin, Mine) -> ok = ?R:merge(Mine, Bin), Mine end,
    %% A receiver that has been receiving keeps its binary (a merge of a
    %% binary leaves it the binary of its new state); one that has just
    %% changed otherwise (a local update) has none and writes it first.
    Warm = fun() -> R = ?R:from_term(Local), ok = ?R:merge(R, ?R:to_binary(R)), R end,
    Cold = fun() -> ?R:from_term(Local) end,
    %% The sender changed since it last encoded (one element added before
    %% each run, untimed): it writes its binary again.
    Changed = fun(Init) ->
                      [begin
                           {ok, _} = ?R:mutate({add, {fresh, I}}, <<"sender">>, Sender),
                           round_trip(fun() -> ?R:to_binary(Sender) end, ToMine, Init)
                       end || I <- lists:seq(1, ?RUNS)]
              end,
    ChangedWarm = Changed(Warm),
    ChangedCold = Changed(Cold),
    %% The sender did not change: its binary is the one it already has.
    Unchanged = [round_trip(fun() -> ?R:to_binary(Sender) end, ToMine, Warm)
                 || _ <- lists:seq(1, ?RUNS)],
    %% The receiver already holds what it receives (state-based gossip
    %% between converged replicas): nothing to write.
    Final = ?R:to_term(Sender),
    Equal = [round_trip(fun() -> ?R:to_binary(Sender) end, ToMine,
                        fun() -> R = ?R:from_term(Final), ok = ?R:merge(R, ?R:to_binary(R)), R end)
             || _ <- lists:seq(1, ?RUNS)],
    Base = fun(Have) ->
                   case HaveTypes of
                       true ->
                           median([round_trip(fun() -> Final end,
                                              fun(T, Mine) -> state_gset:merge(Mine, T) end,
                                              fun() -> Have end)
                                   || _ <- lists:seq(1, ?RUNS)]);
                       false -> undefined
                   end
           end,
    row(Name("round trip, sender changed,"), median(ChangedWarm), Base(Local)),
    row(Name("round trip, both changed,"), median(ChangedCold), Base(Local)),
    row(Name("round trip, sender unchanged,"), median(Unchanged), Base(Local)),
    row(Name("received, receiver equal,"), median(Equal), Base(Final)).

%% Time from encoding on the sender to the receiver's merge done. The
%% receiver polls its mailbox instead of sleeping in `receive', so neither
%% side waits for a scheduler to wake up: what is timed is the work (encode,
%% send, merge), the same for terms and binaries.
round_trip(Encode, Merge, Init) ->
    Self = self(),
    Pid = spawn_link(fun() ->
                             Mine = Init(),
                             Self ! ready,
                             poll(Merge, Mine, Self)
                     end),
    receive ready -> ok end,
    T0 = erlang:monotonic_time(microsecond),
    Pid ! {go, Encode()},
    receive {merged, T1} -> T1 - T0 end.

poll(Merge, Mine, Parent) ->
    receive
        {go, X} ->
            _ = Merge(X, Mine),
            Parent ! {merged, erlang:monotonic_time(microsecond)}
    after 0 ->
            poll(Merge, Mine, Parent)
    end.

row(Name, Rep, undefined) ->
    io:format("~-44s ~10.1f ~14s ~10s~n", [Name, Rep, "-", "-"]);
row(Name, Rep, Base) ->
    io:format("~-44s ~10.1f ~14.1f ~9.1fx~n", [Name, Rep, Base, Base / max(Rep, 0.1)]).

median(Xs) ->
    S = lists:sort(Xs),
    N = length(S),
    case N rem 2 of
        1 -> float(lists:nth(N div 2 + 1, S));
        0 -> (lists:nth(N div 2, S) + lists:nth(N div 2 + 1, S)) / 2
    end.
