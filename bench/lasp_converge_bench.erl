%% @doc `make bench': our merge next to a plain Erlang merge of the same
%% semantics, in the same VM and the same run.
%%
%% For each type, size and scenario it prints the median time of
%% `lasp_converge_crdt:merge/2' and of `base_merge/2' (below: types 0.1.8's
%% merge rules written plainly with `orddict'/`ordsets'), their
%% ratio and the native cost per entry. Scenarios:
%%
%% <ul>
%% <li>`divergent': two replicas that each hold about 70% of `size'
%%     entries, 40% shared with different counts, tokens and dots.</li>
%% <li>`delta': the full state (`size' entries) merged with a delta of 5
%%     entries, shaped like what `delta_mutate/3' produces.</li>
%% </ul>
%%
%% Before timing, the native result must be `=:=' to the baseline's (or
%% `equal/2' to it, which is reported); otherwise a MISMATCH line is
%% printed. The baseline itself is first checked against the conformance
%% vectors, when `test/conformance' (or `$LASP_CONVERGE_CONFORMANCE')
%% is there, so it is the reference semantics and not a strawman.
%%
%% A second section times the normal-scheduler NIF against its dirty twin
%% for gset and orset at 100..5000 list cells, to show where the hop to a
%% dirty scheduler stops mattering (`Limits::NORMAL_CELLS').
%%
%% Method (see bench/README.md): states are stored with `persistent_term'
%% so they sit outside the measuring process's heap; each row runs in a
%% fresh process; warm-up, then samples with `erlang:garbage_collect/0'
%% before each; calls under ~250 us are timed in batches; median of N
%% samples with N set by a time target. `LASP_CONVERGE_BENCH_QUICK=1'
%% runs a reduced set.
-module(lasp_converge_bench).

-export([main/0, base_merge/2]).

-define(PT_KEY, {?MODULE, states}).
-define(BUDGET_CELLS, 2000).  %% Limits::NORMAL_CELLS in decode.rs

%% ===================================================================
%% Entry point
%% ===================================================================

-spec main() -> ok.
main() ->
    Cfg = config(),
    T0 = erlang:monotonic_time(millisecond),
    {module, lasp_converge_nif} = code:ensure_loaded(lasp_converge_nif),
    _ = lasp_converge_nif:crdt_types(),  %% raises if the NIF did not load
    header(Cfg),
    Bad0 = timed(fun self_check/0),
    fixed_cost(Cfg),
    Rows = timed(fun() -> main_table(Cfg) end),
    timed(fun() -> dirty_section(Cfg) end),
    summary(Rows, Bad0),
    io:format("~ntotal wall time: ~.1f s; load average at the end: ~s~n",
              [(erlang:monotonic_time(millisecond) - T0) / 1000, loadavg()]),
    ok.

timed(Fun) ->
    T0 = erlang:monotonic_time(millisecond),
    R = Fun(),
    io:format("(section took ~.1f s)~n", [(erlang:monotonic_time(millisecond) - T0) / 1000]),
    R.

%% The machine may be shared: say how busy it was.
loadavg() ->
    case file:read_file("/proc/loadavg") of
        {ok, B} -> lists:join(" ", lists:sublist(string:lexemes(binary_to_list(B), " "), 3));
        _ -> "n/a"
    end.

config() ->
    Quick = case os:getenv("LASP_CONVERGE_BENCH_QUICK") of
                false -> false;
                "" -> false;
                "0" -> false;
                _ -> true
            end,
    Base = #{quick => Quick,
             batch_ns => 250000},      %% time calls shorter than this in batches
    case Quick of
        false ->
            Base#{sizes => [10, 1000, 10000, 100000],
                  target_ns => 500000000, min_runs => 5, max_runs => 2000,
                  warm_ns => 50000000,
                  dirty_cells => [100, 250, 500, 1000, 1500, 2000, 3000, 5000],
                  dirty_target_ns => 150000000, dirty_max_runs => 3000};
        true ->
            Base#{sizes => [10, 1000, 10000],
                  target_ns => 100000000, min_runs => 3, max_runs => 500,
                  warm_ns => 20000000,
                  dirty_cells => [100, 500, 1000, 2000, 3000, 5000],
                  dirty_target_ns => 50000000, dirty_max_runs => 1000}
    end.

header(#{quick := Quick, target_ns := Target, min_runs := Min, max_runs := Max}) ->
    io:format("lasp_converge merge benchmark~s~n",
              [case Quick of true -> " (QUICK: LASP_CONVERGE_BENCH_QUICK=1)"; false -> "" end]),
    io:format("OTP ~s, erts ~s, ~p schedulers online, ~p dirty CPU schedulers; "
              "load average at the start: ~s~n",
              [erlang:system_info(otp_release), erlang:system_info(version),
               erlang:system_info(schedulers_online),
               erlang:system_info(dirty_cpu_schedulers_online), loadavg()]),
    io:format("median of N samples per cell, N = clamp(~.1f s / sample, ~p, ~p); "
              "calls < 250 us timed in batches; GC before each sample~n",
              [Target / 1.0e9, Min, Max]).

%% ===================================================================
%% Fixed cost of a call
%% ===================================================================

%% What a call costs before it reads a single entry: the call, the
%% wrapper, weighing the arguments, reading the type tag, returning.
fixed_cost(Cfg) ->
    E = {state_gcounter, []},
    [Bottom, Nat, Erl] =
        with_states(fun() -> {E, E} end,
                    fun(A, B) ->
                            measure([fun(X, _) -> lasp_converge_crdt:is_bottom(X) end,
                                     fun lasp_converge_crdt:merge/2,
                                     fun ?MODULE:base_merge/2], A, B, Cfg)
                    end),
    io:format("~n== a call's fixed cost (empty gcounters) ==~n"
              "is_bottom/1 ~s us, merge/2 ~s us; the Erlang baseline's merge ~s us~n",
              [us(N) || {N, _, _} <- [Bottom, Nat, Erl]]).

%% ===================================================================
%% Main table
%% ===================================================================

-define(ROW_FMT, "~-14s ~-10s ~6s ~12s ~12s ~8s ~10s ~10s ~7s  ~s~n").

main_table(Cfg = #{sizes := Sizes}) ->
    io:format("~n== merge: native (lasp_converge_crdt:merge/2) vs Erlang baseline "
              "(ratio = erlang/native, >1 means native is faster) ==~n"),
    io:format("read_us: lasp_converge_crdt:equal/2 on the same two states, which reads and "
              "validates both and returns at the first difference:~n"
              "what any native call on them costs before merging~n"),
    io:format("best: erlang_us / read_us, the ratio a native merge would reach "
              "if merging and building its result cost nothing~n"),
    io:format(?ROW_FMT, ["type", "scenario", "size", "native_us", "erlang_us",
                         "ratio", "ns/entry", "read_us", "best", "note"]),
    Big = [row(Type, Scen, Size, Cfg)
           || Type <- [gcounter, pncounter, gset, twopset, orset, awset],
              Size <- Sizes,
              Scen <- [divergent, delta]],
    %% Maps: gmap of gcounters at 1k..100k keys, awmap of awsets at 1k
    %% and 10k keys (10 keys tells nothing new here).
    Maps = [row(Type, Scen, Size, Cfg)
            || {Type, TSizes} <- [{gmap, [S || S <- Sizes, S >= 1000]},
                                  {awmap, [S || S <- Sizes, S >= 1000, S =< 10000]}],
               Size <- TSizes,
               Scen <- [divergent, delta]],
    Small = [row(Type, pair, 1, Cfg)
             || Type <- [lwwregister, max_int, boolean, ivar]],
    Big ++ Maps ++ Small.

row(Type, Scen, Size, Cfg) ->
    Gen = fun() -> gen(Type, Scen, Size) end,
    {Check, Nat, Erl, Read} =
        with_states(Gen,
                    fun(A, B) ->
                            Base = fun ?MODULE:base_merge/2,
                            case check(A, B) of
                                {Skip, _} = C when Skip =:= skip; Skip =:= native_error ->
                                    [E] = measure([Base], A, B, Cfg),
                                    {C, undefined, E, undefined};
                                C ->
                                    [N, E, R] = measure([fun lasp_converge_crdt:merge/2, Base,
                                                         fun lasp_converge_crdt:equal/2],
                                                        A, B, Cfg),
                                    {C, N, E, R}
                            end
                    end),
    print_row(Type, Scen, Size, Check, Nat, Erl, Read),
    {Type, Scen, Size, Check, Nat, Erl}.

print_row(Type, Scen, Size, Check, Nat, {ErlNs, _, _}, Read) ->
    Note = case Check of
               ok -> "";
               {equal_only, _} -> "equal/2 but not =:= to baseline";
               {skip, T} -> io_lib:format("skipped: {not_implemented,~p}, re-run later", [T]);
               {mismatch, _} -> "MISMATCH (see above)";
               {native_error, _} -> "NATIVE ERROR (see above)"
           end,
    {NatS, RatioS, PerS} =
        case Nat of
            undefined -> {"n/a", "-", "-"};
            {NatNs, _, _} ->
                {us(NatNs), io_lib:format("~.2fx", [ErlNs / NatNs]),
                 io_lib:format("~.1f", [NatNs / Size])}
        end,
    {ReadS, BestS} = case Read of
                         undefined -> {"-", "-"};
                         {ReadNs, _, _} -> {us(ReadNs), io_lib:format("~.2fx", [ErlNs / ReadNs])}
                     end,
    io:format(?ROW_FMT, [type_label(Type), atom_to_list(Scen), size_label(Size),
                         NatS, us(ErlNs), RatioS, PerS, ReadS, BestS, Note]).

type_label(gmap) -> "gmap(gcounter)";
type_label(awmap) -> "awmap(awset)";
type_label(T) -> atom_to_list(T).

%% Generate the states in a fresh process, keep them in persistent_term
%% (outside any process heap, so GC between samples does not copy them),
%% run Fun(A, B) there, and return its result.
with_states(Gen, Fun) ->
    in_process(fun() ->
                       persistent_term:put(?PT_KEY, Gen()),
                       erlang:garbage_collect(),
                       {A, B} = persistent_term:get(?PT_KEY),
                       Fun(A, B)
               end).

in_process(Fun) ->
    {Pid, Ref} = spawn_monitor(fun() -> exit({done, Fun()}) end),
    receive
        {'DOWN', Ref, process, Pid, Reason} ->
            _ = persistent_term:erase(?PT_KEY),
            case Reason of
                {done, R} -> R;
                _ -> error({bench_process_crashed, Reason})
            end
    end.

%% The native result must be the baseline's result.
check(A, B) ->
    Base = base_merge(A, B),
    try lasp_converge_crdt:merge(A, B) of
        Base ->
            ok;
        Nat ->
            case catch lasp_converge_crdt:equal(Nat, Base) of
                true ->
                    {equal_only, first_diff(Nat, Base)};
                _ ->
                    io:format("!!!!!!!! MISMATCH ~p: native result differs from the "
                              "baseline at ~P~n", [element(1, A), first_diff(Nat, Base), 40]),
                    {mismatch, first_diff(Nat, Base)}
            end
    catch
        error:{badcrdt, {not_implemented, T}} ->
            {skip, T};
        C:R ->
            io:format("!!!!!!!! NATIVE ERROR ~p: ~p:~P~n", [element(1, A), C, R, 20]),
            {native_error, {C, R}}
    end.

%% Where two terms first differ: a path of positions and the two subterms.
first_diff(X, X) ->
    same;
first_diff(X, Y) when is_tuple(X), is_tuple(Y), tuple_size(X) =:= tuple_size(Y) ->
    first_diff_l(tuple_to_list(X), tuple_to_list(Y), 1);
first_diff(X, Y) when is_list(X), is_list(Y) ->
    first_diff_l(X, Y, 1);
first_diff(X, Y) ->
    {X, Y}.

first_diff_l([X | Xs], [X | Ys], I) -> first_diff_l(Xs, Ys, I + 1);
first_diff_l([X | _], [Y | _], I) -> {at, I, first_diff(X, Y)};
first_diff_l(Xs, Ys, I) -> {at, I, {length_left, length_of(Xs), length_of(Ys)}}.

length_of(L) when is_list(L) -> length(L);
length_of(_) -> improper.

%% ===================================================================
%% Timing
%% ===================================================================

%% [{MedianNsPerCall, Samples, Batch}], one for each F(A, B) of Fs. Each
%% function is warmed up, then the samples of all of them are taken in
%% turn (round robin), so a change of machine load hits them alike.
measure(Fs, A, B, Cfg) ->
    Plans = [plan(F, A, B, Cfg) || F <- Fs],
    Rounds = lists:max([N || {_, _, N} <- Plans]),
    Samples = rounds(Plans, A, B, Rounds, [[] || _ <- Plans]),
    [{median(S), N, K} || {{_, K, N}, S} <- lists:zip(Plans, Samples)].

%% {F, Batch, Samples}: batch calls shorter than batch_ns, and take enough
%% samples to fill target_ns, within [min_runs, max_runs].
plan(F, A, B, Cfg = #{target_ns := Target, min_runs := Min, max_runs := Max,
                      batch_ns := BatchNs, warm_ns := Warm}) ->
    T1 = max(1, warm_up(F, A, B, Warm)),
    K = case maps:get(batch, Cfg, true) of
            true -> max(1, ceil(BatchNs / T1));
            false -> 1
        end,
    {F, K, max(Min, min(Max, ceil(Target / (K * T1))))}.

rounds(_, _, _, 0, Acc) ->
    Acc;
rounds(Plans, A, B, R, Acc) ->
    Acc1 = [case N >= R of
                true ->
                    erlang:garbage_collect(),
                    [sample(F, A, B, K) / K | S];
                false ->
                    S
            end || {{F, K, N}, S} <- lists:zip(Plans, Acc)],
    rounds(Plans, A, B, R - 1, Acc1).

%% Run F until at least two calls and Warm ns have gone by; return the
%% fastest single call seen.
warm_up(F, A, B, Warm) ->
    Deadline = erlang:monotonic_time(nanosecond) + Warm,
    warm_up(F, A, B, Deadline, 0, infinity).

warm_up(F, A, B, Deadline, Count, Best) ->
    T = sample(F, A, B, 1),
    Best1 = min(T, Best),
    case Count >= 1 andalso erlang:monotonic_time(nanosecond) >= Deadline of
        true -> Best1;
        false -> warm_up(F, A, B, Deadline, Count + 1, Best1)
    end.

sample(F, A, B, K) ->
    T0 = erlang:monotonic_time(nanosecond),
    ok = loop(K, F, A, B),
    erlang:monotonic_time(nanosecond) - T0.

loop(0, _, _, _) ->
    ok;
loop(K, F, A, B) ->
    _ = F(A, B),
    loop(K - 1, F, A, B).

median(L) ->
    S = lists:sort(L),
    N = length(S),
    case N rem 2 of
        1 -> lists:nth(N div 2 + 1, S);
        0 -> (lists:nth(N div 2, S) + lists:nth(N div 2 + 1, S)) / 2
    end.

us(Ns) when Ns < 10000 -> io_lib:format("~.3f", [Ns / 1000]);
us(Ns) -> io_lib:format("~.1f", [Ns / 1000]).

size_label(N) when N >= 1000, N rem 1000 =:= 0 -> integer_to_list(N div 1000) ++ "k";
size_label(N) -> integer_to_list(N).

%% ===================================================================
%% Dirty threshold
%% ===================================================================

-define(DIRTY_FMT, "~-6s ~6s ~11s ~11s ~9s ~7s ~12s  ~s~n").

dirty_section(Cfg = #{dirty_cells := Cells, dirty_target_ns := Target,
                      dirty_max_runs := Max}) ->
    io:format("~n== dirty threshold: normal-scheduler NIF vs its dirty twin "
              "(divergent merge; budget NORMAL_CELLS = ~p list cells) ==~n",
              [?BUDGET_CELLS]),
    io:format("normal = lasp_converge_nif:crdt_merge/2, dirty = crdt_merge_dirty/2, "
              "wrapper = lasp_converge_crdt:merge/2; one call per sample, no batching~n"),
    io:format(?DIRTY_FMT, ["type", "cells", "normal_us", "dirty_us", "hop_us",
                           "hop_%", "wrapper_us", "note"]),
    DCfg = Cfg#{target_ns := Target, max_runs := Max, batch => false},
    lists:foreach(fun(Type) -> dirty_type(Type, Cells, DCfg) end, [gset, orset]).

dirty_type(Type, Cells, Cfg) ->
    PerEntry = cells_per_entry(Type),
    Rows = [dirty_row(Type, C, max(1, round(C / PerEntry)), Cfg) || C <- Cells],
    Hops = [{C, H, U} || {C, H, U} <- Rows, H =/= undefined],
    case Hops of
        [] ->
            ok;
        _ ->
            io:format("~-6s hop = ~s us (median over sizes); ",
                      [Type, us(median([U || {_, _, U} <- Hops]))]),
            case [C || {C, H, _} <- Hops, H < 10.0] of
                [] -> io:format("it stays above 10% of the dirty call up to the budget~n");
                [C | _] -> io:format("it is under 10% of the dirty call from ~p cells~n", [C])
            end
    end.

cells_per_entry(Type) ->
    N = 1000,
    with_states(fun() -> gen(Type, divergent, N) end,
                fun(A, B) -> (cells(A) + cells(B)) / N end).

dirty_row(Type, _Target, N, Cfg) ->
    with_states(
      fun() -> gen(Type, divergent, N) end,
      fun(A, B) ->
              Cells = cells(A) + cells(B),
              Normal = try lasp_converge_nif:crdt_merge(A, B) of
                           _ -> ok
                       catch
                           error:lasp_converge_dirty -> over_budget;
                           error:{badcrdt, {not_implemented, Ty}} -> {skip, Ty}
                       end,
              case Normal of
                  {skip, T} ->
                      io:format(?DIRTY_FMT, [Type, integer_to_list(Cells), "n/a", "n/a", "-",
                                             "-", "n/a",
                                             io_lib:format("skipped: {not_implemented,~p}, "
                                                           "re-run later", [T])]),
                      {Cells, undefined, undefined};
                  ok ->
                      [{Nn, _, _}, {D, _, _}, {W, _, _}] =
                          measure([fun lasp_converge_nif:crdt_merge/2,
                                   fun lasp_converge_nif:crdt_merge_dirty/2,
                                   fun lasp_converge_crdt:merge/2], A, B, Cfg),
                      Hop = (D - Nn) * 100 / D,
                      io:format(?DIRTY_FMT,
                                [Type, integer_to_list(Cells), us(Nn), us(D), us(D - Nn),
                                 io_lib:format("~.1f", [Hop]), us(W), ""]),
                      {Cells, Hop, D - Nn};
                  over_budget ->
                      [{D, _, _}, {W, _, _}] =
                          measure([fun lasp_converge_nif:crdt_merge_dirty/2,
                                   fun lasp_converge_crdt:merge/2], A, B, Cfg),
                      io:format(?DIRTY_FMT,
                                [Type, integer_to_list(Cells), "-", us(D), "-", "-", us(W),
                                 io_lib:format("over budget: wrapper pays a failed normal try "
                                               "(+~s us)", [us(W - D)])]),
                      {Cells, undefined, undefined}
              end
      end).

%% List cells in a term, as the decoder counts its budget.
cells([H | T]) -> 1 + cells(H) + cells(T);
cells(T) when is_tuple(T) -> lists:sum([cells(E) || E <- tuple_to_list(T)]);
cells(_) -> 0.

%% ===================================================================
%% Summary
%% ===================================================================

summary(Rows, BaselineBad) ->
    io:format("~n== summary ==~n"),
    Slower = [R || R = {_, _, _, _, {N, _, _}, {E, _, _}} <- Rows, E < N],
    Skipped = lists:usort([T || {T, _, _, {skip, _}, _, _} <- Rows]),
    Bad = [R || R = {_, _, _, {Why, _}, _, _} <- Rows,
                Why =:= mismatch orelse Why =:= native_error],
    case Slower of
        [] -> io:format("native is at least as fast as the baseline in every timed row~n");
        _ ->
            io:format("native SLOWER than the Erlang baseline (for the optimiser):~n"),
            [io:format("  ~-14s ~-10s ~5s  native ~s us, erlang ~s us (~.2fx)~n",
                       [type_label(T), S, size_label(Sz), us(N), us(E), E / N])
             || {T, S, Sz, _, {N, _, _}, {E, _, _}} <- Slower]
    end,
    case Skipped of
        [] -> ok;
        _ -> io:format("skipped (not implemented natively yet): ~p~n", [Skipped])
    end,
    case Bad of
        [] -> io:format("every native result matched the baseline~n");
        _ -> io:format("!!!!!!!! ~p rows with MISMATCH or native error~n", [length(Bad)])
    end,
    case BaselineBad of
        0 -> ok;
        _ -> io:format("!!!!!!!! the baseline failed ~p conformance cases~n", [BaselineBad])
    end.

%% ===================================================================
%% Baseline self-check against the conformance vectors
%% ===================================================================

self_check() ->
    Dir = case os:getenv("LASP_CONVERGE_CONFORMANCE") of
              false -> filename:join(["test", "conformance"]);
              D -> D
          end,
    Types = [state_gcounter, state_pncounter, state_gset, state_twopset, state_orset,
             state_awset, state_lwwregister, state_max_int, state_boolean, state_ivar,
             state_gmap, state_awmap],
    case filelib:is_dir(Dir) of
        false ->
            io:format("~nbaseline self-check: skipped (no vectors at ~s)~n", [Dir]),
            0;
        true ->
            Res = [self_check(Dir, T) || T <- Types],
            io:format("~nbaseline vs conformance vectors (types 0.1.8 merge): ~s~n",
                      [lists:join(", ", [io_lib:format("~s ~p/~p", [short(T), P, N])
                                         || {T, P, N} <- Res])]),
            lists:sum([N - P || {_, P, N} <- Res])
    end.

self_check(Dir, Type) ->
    File = filename:join(Dir, atom_to_list(Type) ++ ".etf"),
    case file:read_file(File) of
        {error, _} ->
            {Type, 0, 0};
        {ok, Bin} ->
            Cases = binary_to_term(Bin),
            Pass = [C || C = #{a := A, b := B, merge := Want} <- Cases,
                         base_agrees(A, B, Want)],
            Fail = length(Cases) - length(Pass),
            case Fail of
                0 -> ok;
                _ -> io:format("!!!!!!!! BASELINE MISMATCH: ~p of ~p ~p vectors~n",
                               [Fail, length(Cases), Type])
            end,
            {Type, length(Pass), length(Cases)}
    end.

base_agrees(A, B, {'$raises', _, _}) ->
    try base_merge(A, B) of _ -> false catch _:_ -> true end;
base_agrees(A, B, Want) ->
    try base_merge(A, B) of Want -> true; _ -> false catch _:_ -> false end.

short(T) ->
    "state_" ++ S = atom_to_list(T),
    S.

%% ===================================================================
%% Baseline: the merge of lasp-lang/types 0.1.8, plainly in Erlang
%% ===================================================================

%% @doc `Type:merge(A, B)' written with orddict/ordsets, as types does.
-spec base_merge(tuple(), tuple()) -> tuple().
base_merge({state_gcounter, A}, {state_gcounter, B}) ->
    {state_gcounter, orddict:merge(fun(_, X, Y) -> max(X, Y) end, A, B)};
base_merge({state_pncounter, A}, {state_pncounter, B}) ->
    {state_pncounter,
     orddict:merge(fun(_, {I1, D1}, {I2, D2}) -> {max(I1, I2), max(D1, D2)} end, A, B)};
base_merge({state_gset, A}, {state_gset, B}) ->
    {state_gset, ordsets:union(A, B)};
base_merge({state_twopset, {AddA, RmvA}}, {state_twopset, {AddB, RmvB}}) ->
    {state_twopset, {ordsets:union(AddA, AddB), ordsets:union(RmvA, RmvB)}};
base_merge({state_orset, A}, {state_orset, B}) ->
    {state_orset,
     orddict:merge(fun(_, TA, TB) ->
                           orddict:merge(fun(_, X, Y) -> X andalso Y end, TA, TB)
                   end, A, B)};
base_merge({state_awset, P} = A, {state_awset, P}) ->
    A;
base_merge({state_awset, {DMA, CCA}}, {state_awset, {DMB, CCB}}) ->
    {state_awset, {dot_map_merge(DMA, DMB, CCA, CCB), cc_union(CCA, CCB)}};
base_merge({state_gmap, {CType, A}}, {state_gmap, {CType, B}}) ->
    %% Shared keys need the same value type; each value merges by its own.
    {state_gmap,
     {CType, orddict:merge(fun(_, {T, _} = VA, {T, _} = VB) -> base_merge(VA, VB) end,
                           A, B)}};
base_merge({state_awmap, {CType, P}} = A, {state_awmap, {CType, P}}) ->
    A;
base_merge({state_awmap, {CType, {DMA, CCA}}}, {state_awmap, {CType, {DMB, CCB}}}) ->
    %% One CC at the top, shared by every nested sub-store merge.
    {state_awmap, {CType, {dot_store_merge({dot_map, dot_store(CType)}, DMA, DMB, CCA, CCB),
                           cc_union(CCA, CCB)}}};
base_merge({state_lwwregister, {TsA, _} = A}, {state_lwwregister, {TsB, _} = B}) ->
    {state_lwwregister, case TsA > TsB of true -> A; false -> B end};
base_merge({state_max_int, A}, {state_max_int, B}) ->
    {state_max_int, max(A, B)};
base_merge({state_boolean, A}, {state_boolean, B}) ->
    {state_boolean, max(A, B)};
base_merge({state_ivar, undefined}, {state_ivar, _} = B) ->
    B;
base_merge({state_ivar, _} = A, {state_ivar, undefined}) ->
    A;
base_merge({state_ivar, V} = A, {state_ivar, V}) ->
    A.

%% The dot store an awmap value type keeps under each key.
dot_store(state_awset) -> {dot_map, dot_set};
dot_store(state_ewflag) -> dot_set;
dot_store(state_dwflag) -> dot_set;
dot_store(state_mvregister) -> dot_fun;
dot_store({state_awmap, [Sub]}) -> {dot_map, dot_store(Sub)}.

%% Merge two dot stores of the given kind under the top-level CCs. A dot
%% map of dot sets (an awset's store, an awmap of awsets' values) is the
%% awset walk below; other dot maps use the same walk with the sub-store
%% merge passed down.
dot_store_merge(dot_set, DA, DB, CCA, CCB) ->
    dot_set_merge(DA, DB, CCA, CCB);
dot_store_merge({dot_map, dot_set}, DA, DB, CCA, CCB) ->
    dot_map_merge(DA, DB, CCA, CCB);
dot_store_merge({dot_map, Sub}, DA, DB, CCA, CCB) ->
    dot_map_merge(Sub, DA, DB, CCA, CCB);
dot_store_merge(dot_fun, DA, DB, CCA, CCB) ->
    dot_fun_merge(DA, DB, CCA, CCB).

%% dot_map_merge/4 with a sub-store kind.
dot_map_merge(S, [{K, DA} | RA], [{K, DB} | RB], CCA, CCB) ->
    keep(K, dot_store_merge(S, DA, DB, CCA, CCB), dot_map_merge(S, RA, RB, CCA, CCB));
dot_map_merge(S, [{KA, DA} | RA], [{KB, _} | _] = B, CCA, CCB) when KA < KB ->
    keep(KA, dot_store_merge(S, DA, [], CCA, CCB), dot_map_merge(S, RA, B, CCA, CCB));
dot_map_merge(S, [{KA, _} | _] = A, [{KB, DB} | RB], CCA, CCB) when KA > KB ->
    keep(KB, dot_store_merge(S, [], DB, CCA, CCB), dot_map_merge(S, A, RB, CCA, CCB));
dot_map_merge(S, [{KA, DA} | RA], [], CCA, CCB) ->
    keep(KA, dot_store_merge(S, DA, [], CCA, CCB), dot_map_merge(S, RA, [], CCA, CCB));
dot_map_merge(S, [], [{KB, DB} | RB], CCA, CCB) ->
    keep(KB, dot_store_merge(S, [], DB, CCA, CCB), dot_map_merge(S, [], RB, CCA, CCB));
dot_map_merge(_, [], [], _, _) ->
    [].

%% Dot fun (mvregister): the ivar merge of the values of common dots, then
%% the entries of A \ CCB and of B \ CCA, each stored in order.
dot_fun_merge(FA, FB, CCA, CCB) ->
    Common = ordsets:intersection([D || {D, _} <- FA], [D || {D, _} <- FB]),
    F0 = lists:foldl(
           fun(D, Acc) ->
                   {state_ivar, V} = base_merge({state_ivar, orddict:fetch(D, FA)},
                                                {state_ivar, orddict:fetch(D, FB)}),
                   orddict:store(D, V, Acc)
           end, [], Common),
    Store = fun({D, V}, Acc) -> orddict:store(D, V, Acc) end,
    F1 = lists:foldl(Store, F0, [E || {D, _} = E <- FA, not cc_is_element(D, CCB)]),
    lists:foldl(Store, F1, [E || {D, _} = E <- FB, not cc_is_element(D, CCA)]).

%% Dot map: keys matched exactly (=:=), else by < / >; a key whose merged
%% dot set is empty is dropped. `==' but not `=:=' keys match no clause.
dot_map_merge([{K, DA} | RA], [{K, DB} | RB], CCA, CCB) ->
    keep(K, dot_set_merge(DA, DB, CCA, CCB), dot_map_merge(RA, RB, CCA, CCB));
dot_map_merge([{KA, DA} | RA], [{KB, _} | _] = B, CCA, CCB) when KA < KB ->
    keep(KA, dot_set_merge(DA, [], CCA, CCB), dot_map_merge(RA, B, CCA, CCB));
dot_map_merge([{KA, _} | _] = A, [{KB, DB} | RB], CCA, CCB) when KA > KB ->
    keep(KB, dot_set_merge([], DB, CCA, CCB), dot_map_merge(A, RB, CCA, CCB));
dot_map_merge([{KA, DA} | RA], [], CCA, CCB) ->
    keep(KA, dot_set_merge(DA, [], CCA, CCB), dot_map_merge(RA, [], CCA, CCB));
dot_map_merge([], [{KB, DB} | RB], CCA, CCB) ->
    keep(KB, dot_set_merge([], DB, CCA, CCB), dot_map_merge([], RB, CCA, CCB));
dot_map_merge([], [], _, _) ->
    [].

keep(_, [], Rest) -> Rest;
keep(K, V, Rest) -> [{K, V} | Rest].

%% U(I(DA, DB), U(DA \ CCB, DB \ CCA))
dot_set_merge(DA, DB, CCA, CCB) ->
    ordsets:union(ordsets:intersection(DA, DB),
                  ordsets:union(cc_subtract(DA, CCB), cc_subtract(DB, CCA))).

cc_subtract(Dots, CC) ->
    [Dot || Dot <- Dots, not cc_is_element(Dot, CC)].

cc_is_element({Actor, Seq} = Dot, {Compressed, Cloud}) ->
    case orddict:find(Actor, Compressed) of
        {ok, Max} when Seq =< Max -> true;
        _ -> ordsets:is_element(Dot, Cloud)
    end.

cc_union({CompA, CloudA}, {CompB, CloudB}) ->
    Comp = orddict:merge(fun(_, X, Y) -> max(X, Y) end, CompA, CompB),
    cc_compress(Comp, ordsets:union(CloudA, CloudB)).

cc_compress(Comp, Cloud) ->
    lists:foldl(
      fun({Actor, Seq} = Dot, {C, Cl}) ->
              Cur = case orddict:find(Actor, C) of
                        {ok, V} -> V;
                        error -> 0
                    end,
              if
                  Seq == Cur + 1 -> {orddict:store(Actor, Seq, C), Cl};
                  Seq > Cur + 1 -> {C, ordsets:add_element(Dot, Cl)};
                  true -> {C, Cl}
              end
      end, {Comp, []}, Cloud).

%% ===================================================================
%% State generation (deterministic)
%% ===================================================================

%% {A, B}: `divergent' gives two replicas; `delta' gives the full state
%% (their baseline merge) and a 5-entry delta.
gen(Type, Scen, N) when Type =:= lwwregister; Type =:= max_int;
                        Type =:= boolean; Type =:= ivar ->
    pair = Scen,
    1 = N,
    small(Type);
gen(Type, divergent, N) ->
    _ = rand:seed(exsss, {erlang:phash2(Type), N, 17}),
    divergent(Type, N);
gen(Type, delta, N) ->
    _ = rand:seed(exsss, {erlang:phash2(Type), N, 17}),
    {A, B} = divergent(Type, N),
    Full = base_merge(A, B),
    {Full, delta(Type, Full, N)}.

small(lwwregister) ->
    {{state_lwwregister, {1700000000000001, <<"value-a">>}},
     {state_lwwregister, {1700000000000002, <<"value-b">>}}};
small(max_int) ->
    {{state_max_int, 17}, {state_max_int, 42}};
small(boolean) ->
    {{state_boolean, 0}, {state_boolean, 1}};
small(ivar) ->
    {{state_ivar, <<"value">>}, {state_ivar, <<"value">>}}.

%% Keys of different kinds, in term order.
elem(I) ->
    case I rem 3 of
        0 -> I;
        1 -> <<"elem-", (integer_to_binary(I))/binary>>;
        2 -> {item, I}
    end.

actor(I) ->
    case I rem 2 of
        0 -> <<"actor-", (integer_to_binary(I))/binary>>;
        1 -> {'lasp@host', I}
    end.

%% [{Key, Where}] sorted by key; Where is a (30%), b (30%) or both (40%).
universe(KeyFun, N) ->
    [{K, where()} || K <- lists:sort([KeyFun(I) || I <- lists:seq(1, N)])].

where() ->
    case rand:uniform(10) of
        R when R =< 3 -> a;
        R when R =< 6 -> b;
        _ -> both
    end.

in_a(W) -> W =/= b.
in_b(W) -> W =/= a.

count() -> rand:uniform(1000).

divergent(gcounter, N) ->
    U = universe(fun actor/1, N),
    {{state_gcounter, [{K, count()} || {K, W} <- U, in_a(W)]},
     {state_gcounter, [{K, count()} || {K, W} <- U, in_b(W)]}};
divergent(pncounter, N) ->
    U = universe(fun actor/1, N),
    {{state_pncounter, [{K, {count(), count()}} || {K, W} <- U, in_a(W)]},
     {state_pncounter, [{K, {count(), count()}} || {K, W} <- U, in_b(W)]}};
divergent(gset, N) ->
    U = universe(fun elem/1, N),
    {{state_gset, [K || {K, W} <- U, in_a(W)]},
     {state_gset, [K || {K, W} <- U, in_b(W)]}};
divergent(twopset, N) ->
    %% ~15% of each replica's elements are also removed.
    U = [{K, W, rand:uniform(100) =< 15, rand:uniform(100) =< 15}
         || {K, W} <- universe(fun elem/1, N)],
    {{state_twopset, {[K || {K, W, _, _} <- U, in_a(W)],
                      [K || {K, W, true, _} <- U, in_a(W)]}},
     {state_twopset, {[K || {K, W, _, _} <- U, in_b(W)],
                      [K || {K, W, _, true} <- U, in_b(W)]}}};
divergent(orset, N) ->
    %% 1-3 tokens an element; a shared element shares most tokens, each
    %% side may hold its own, and ~15% of tokens are tombstones (false).
    Elems = [{K, W, orset_tokens(W)} || {K, W} <- universe(fun elem/1, N)],
    {{state_orset, [{K, TA} || {K, _, {TA, _}} <- Elems, TA =/= []]},
     {state_orset, [{K, TB} || {K, _, {_, TB}} <- Elems, TB =/= []]}};
divergent(awset, N) ->
    awset_divergent(N);
divergent(gmap, N) ->
    %% Keys -> gcounters over a pool of 8 actors (about 2 a key). On a
    %% shared key each actor is on both sides (70%) or one; counts differ.
    Entries = [{K, gmap_counters(W)} || {K, W} <- universe(fun elem/1, N)],
    {{state_gmap, {state_gcounter, [{K, {state_gcounter, CA}}
                                    || {K, {CA, _}} <- Entries, CA =/= []]}},
     {state_gmap, {state_gcounter, [{K, {state_gcounter, CB}}
                                    || {K, {_, CB}} <- Entries, CB =/= []]}}};
divergent(awmap, N) ->
    awmap_divergent(N).

-define(GMAP_ACTORS, 8).

gmap_counters(W) ->
    Pool = lists:sort([actor(I) || I <- lists:seq(1, ?GMAP_ACTORS)]),
    Actors = case [Ac || Ac <- Pool, rand:uniform(?GMAP_ACTORS) =< 2] of
                 [] -> [lists:nth(rand:uniform(?GMAP_ACTORS), Pool)];
                 As -> As
             end,
    Sides = [{Ac, token_side(W)} || Ac <- Actors],
    CA = [{Ac, count()} || {Ac, S} <- Sides, S =/= b],
    CB = [{Ac, count()} || {Ac, S} <- Sides, S =/= a],
    case W of
        a -> {CA, []};
        b -> {[], CB};
        both when CA =:= [] -> {[{hd(Actors), count()}], CB};
        both when CB =:= [] -> {CA, [{hd(Actors), count()}]};
        both -> {CA, CB}
    end.


orset_tokens(W) ->
    Tokens = lists:sort([rand:bytes(20) || _ <- lists:seq(1, rand:uniform(3))]),
    Sides = [{T, token_side(W)} || T <- Tokens],
    TA = [{T, active()} || {T, S} <- Sides, S =/= b],
    TB = [{T, active()} || {T, S} <- Sides, S =/= a],
    case W of
        a -> {TA, []};
        b -> {[], TB};
        both when TA =:= [] -> {[{hd(Tokens), active()}], TB};
        both when TB =:= [] -> {TA, [{hd(Tokens), active()}]};
        both -> {TA, TB}
    end.

token_side(a) -> a;
token_side(b) -> b;
token_side(both) ->
    case rand:uniform(100) of
        R when R =< 70 -> both;
        R when R =< 85 -> a;
        _ -> b
    end.

active() -> rand:uniform(100) > 15.

%% A common ancestor (40% of the elements, dots of six actors) then each
%% replica adds its own elements (30% each, with its own actor), removes 5%
%% of the ancestor's elements, re-adds 5% (a new dot replacing the old),
%% and B has received a few of A's adds out of order (dots in B's cloud).
-define(ANC_ACTORS, 6).
-define(ACT_A, <<"actor-a">>).
-define(ACT_B, <<"actor-b">>).

awset_divergent(N) ->
    U = universe(fun elem/1, N),
    {Entries, Seqs} = awset_entries(U, [], #{}),
    %% Entries: [{Key, DotsA, DotsB}] with [] for absent.
    Fwd = awset_forwarded(Entries),
    Entries1 = [case maps:find(K, Fwd) of
                    {ok, Dot} -> {K, DA, [Dot]};
                    error -> E
                end || {K, DA, _} = E <- Entries],
    Anc = [{{'lasp@host', I}, maps:get(I, Seqs)}
           || I <- lists:seq(1, ?ANC_ACTORS), maps:is_key(I, Seqs)],
    CompA = lists:sort([{?ACT_A, maps:get(a, Seqs, 0)} || maps:is_key(a, Seqs)] ++ Anc),
    CompB = lists:sort([{?ACT_B, maps:get(b, Seqs, 0)} || maps:is_key(b, Seqs)] ++ Anc),
    CloudB = lists:sort(maps:values(Fwd)),
    {{state_awset, {[{K, DA} || {K, DA, _} <- Entries1, DA =/= []], {CompA, []}}},
     {state_awset, {[{K, DB} || {K, _, DB} <- Entries1, DB =/= []], {CompB, CloudB}}}}.

awset_entries([], Acc, Seqs) ->
    {lists:reverse(Acc), Seqs};
awset_entries([{K, W} | Rest], Acc, Seqs0) ->
    {E, Seqs} =
        case W of
            a ->
                {D, S1} = next_dot(a, Seqs0),
                {{K, [D], []}, S1};
            b ->
                {D, S1} = next_dot(b, Seqs0),
                {{K, [], [D]}, S1};
            both ->
                {D, S1} = next_dot(rand:uniform(?ANC_ACTORS), Seqs0),
                case rand:uniform(100) of
                    R when R =< 5 -> {{K, [], [D]}, S1};          %% A removed it
                    R when R =< 10 -> {{K, [D], []}, S1};         %% B removed it
                    R when R =< 15 ->                             %% A re-added it
                        {DA, S2} = next_dot(a, S1),
                        {{K, [DA], [D]}, S2};
                    _ -> {{K, [D], [D]}, S1}
                end
        end,
    awset_entries(Rest, [E | Acc], Seqs).

next_dot(Who, Seqs) ->
    S = maps:get(Who, Seqs, 0) + 1,
    Actor = case Who of
                a -> ?ACT_A;
                b -> ?ACT_B;
                I -> {'lasp@host', I}
            end,
    {{Actor, S}, Seqs#{Who => S}}.

%% Up to 16 of A's own adds (not its first dot) that B received as deltas.
awset_forwarded(Entries) ->
    Own = [{K, D} || {K, [{?ACT_A, S} = D], []} <- Entries, S > 1],
    Picked = [KD || KD <- Own, rand:uniform(max(1, length(Own))) =< 16],
    maps:from_list(lists:sublist(Picked, 16)).

%% An awmap of awsets: each key holds 1-3 elements (from a pool of 24), and
%% each {Key, Elem} is an awset entry generated as in awset_divergent/1
%% (common ancestor with six actors, own adds, removes, re-adds, a few of
%% A's adds forwarded to B). One CC per replica, at the top. A key none of
%% whose elements survive on a side is absent there.
awmap_divergent(N) ->
    Pairs = [{{K, E}, W} || {K, W} <- universe(fun elem/1, N),
                            E <- lists:usort([elem(rand:uniform(24))
                                              || _ <- lists:seq(1, rand:uniform(3))])],
    {Entries, Seqs} = awset_entries(Pairs, [], #{}),
    Fwd = awset_forwarded(Entries),
    Entries1 = [case maps:find(K, Fwd) of
                    {ok, Dot} -> {K, DA, [Dot]};
                    error -> E
                end || {K, DA, _} = E <- Entries],
    Anc = [{{'lasp@host', I}, maps:get(I, Seqs)}
           || I <- lists:seq(1, ?ANC_ACTORS), maps:is_key(I, Seqs)],
    CompA = lists:sort([{?ACT_A, maps:get(a, Seqs, 0)} || maps:is_key(a, Seqs)] ++ Anc),
    CompB = lists:sort([{?ACT_B, maps:get(b, Seqs, 0)} || maps:is_key(b, Seqs)] ++ Anc),
    CloudB = lists:sort(maps:values(Fwd)),
    {{state_awmap, {state_awset, {group([{KE, DA} || {KE, DA, _} <- Entries1, DA =/= []]),
                                  {CompA, []}}}},
     {state_awmap, {state_awset, {group([{KE, DB} || {KE, _, DB} <- Entries1, DB =/= []]),
                                  {CompB, CloudB}}}}}.

%% [{{K, E}, Dots}] sorted by {K, E} -> [{K, [{E, Dots}]}].
group([]) ->
    [];
group([{{K, _}, _} | _] = L) ->
    {Same, Rest} = lists:splitwith(fun({{K1, _}, _}) -> K1 =:= K end, L),
    [{K, [{E, D} || {{_, E}, D} <- Same]} | group(Rest)].

%% ===================================================================
%% Deltas: 5 entries against the full state, shaped like delta_mutate's
%% ===================================================================

pick(List, K) ->
    Len = length(List),
    Idx = lists:usort([rand:uniform(Len) || _ <- lists:seq(1, K)]),
    [lists:nth(I, List) || I <- Idx].

new_elems(N, K) -> lists:sort([elem(N + I) || I <- lists:seq(1, K)]).

delta(gcounter, {state_gcounter, Full}, N) ->
    Old = [{Ac, C + 1} || {Ac, C} <- pick(Full, 3)],
    New = [{actor(N + I), 1} || I <- [1, 2]],
    {state_gcounter, lists:keysort(1, Old ++ New)};
delta(pncounter, {state_pncounter, Full}, N) ->
    Old = [{Ac, {I + 1, D}} || {Ac, {I, D}} <- pick(Full, 3)],
    New = [{actor(N + I), {0, 1}} || I <- [1, 2]],
    {state_pncounter, lists:keysort(1, Old ++ New)};
delta(gset, {state_gset, Full}, N) ->
    {state_gset, lists:usort(pick(Full, 2) ++ new_elems(N, 3))};
delta(twopset, {state_twopset, {Added, _}}, N) ->
    {state_twopset, {new_elems(N, 3), pick(Added, 2)}};
delta(orset, {state_orset, Full}, N) ->
    Rmv = [{K, [{T, false} || {T, _} <- Ts]} || {K, Ts} <- pick(Full, 2)],
    Add = [{K, [{rand:bytes(20), true}]} || K <- new_elems(N, 3)],
    {state_orset, lists:keysort(1, Rmv ++ Add)};
delta(awset, {state_awset, {DM, {Comp, _}}}, N) ->
    %% From replica A: three adds with its next dots, two removes.
    SeqA = case lists:keyfind(?ACT_A, 1, Comp) of
               {_, S} -> S;
               false -> 0
           end,
    Adds = lists:zip(new_elems(N, 3), [{?ACT_A, SeqA + I} || I <- [1, 2, 3]]),
    RmvDots = lists:append([Ds || {_, Ds} <- pick(DM, 2)]),
    {state_awset, {[{K, [D]} || {K, D} <- Adds],
                   {[], lists:usort(RmvDots ++ [D || {_, D} <- Adds])}}};
delta(gmap, {state_gmap, {_, Full}} = S, N) ->
    %% The delta group of five delta_mutate/3 calls by one pool actor:
    %% increments of three existing keys and two new ones.
    Ops = [{apply, K, increment} || {K, _} <- pick(Full, 3)]
        ++ [{apply, K, increment} || K <- new_elems(N, 2)],
    delta_group(Ops, actor(1), S, {state_gmap, {state_gcounter, []}});
delta(awmap, {state_awmap, {_, {DM, _}}} = S, N) ->
    %% From replica A: adds of a new element to two existing keys and of
    %% an element under a new key, and the removal of two keys.
    New = new_elems(N, 3),
    Adds = [{apply, K, {add, E}} || {{K, _}, E} <- lists:zip(pick(DM, 2), lists:sublist(New, 2))]
        ++ [{apply, lists:last(New), {add, elem(1)}}],
    Rmvs = [{rmv, K} || {K, _} <- pick(DM, 2)],
    delta_group(Adds ++ Rmvs, ?ACT_A, S, {state_awmap, {state_awset, {[], {[], []}}}}).

%% Apply each op's delta_mutate/3 to the state in turn and join the deltas.
delta_group([], _, _, Group) ->
    Group;
delta_group([Op | Ops], Actor, S, Group) ->
    {ok, D} = lasp_converge_crdt:delta_mutate(Op, Actor, S),
    delta_group(Ops, Actor, base_merge(S, D), base_merge(Group, D)).
