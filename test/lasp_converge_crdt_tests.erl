%% @doc EUnit tests of `lasp_converge_crdt': the conformance vectors of
%% lasp-lang/types 0.1.8 (`test/conformance/<type>.etf', see its
%% README) checked case by case and key by key, plus unit tests of the
%% wrappers in the style of types' own EUnit tests (`state_<type>.erl').
%%
%% Types that still raise `{badcrdt, {not_implemented, T}}' are skipped with
%% a note on the console; every other type must pass.
-module(lasp_converge_crdt_tests).

-include_lib("eunit/include/eunit.hrl").

-define(M, lasp_converge_crdt).
-define(VECTOR_TIMEOUT, 300).
-define(SHOW_MISMATCHES, 5).

%% The vector keys, each with what it is checked against.
-define(BOOL_KEYS, [equal, is_inflation_ab, is_inflation_ba,
                    is_strict_inflation_ab, is_strict_inflation_ba,
                    is_bottom_a, is_bottom_b]).

%% Set-valued queries (README §2).
-define(SET_TYPES, [state_gset, state_twopset, state_orset, state_awset,
                    state_awset_ps, state_mvregister]).

%% ===================================================================
%% Conformance vectors
%% ===================================================================

%% One test per implemented type that has a vector file.
conformance_vectors_test_() ->
    case conformance_dir() of
        {ok, Dir} ->
            lists:flatmap(
              fun(Type) ->
                      File = filename:join(Dir, atom_to_list(Type) ++ ".etf"),
                      case {filelib:is_regular(File), implemented(Type)} of
                          {false, _} ->
                              note("~p: no vector file ~s, not checked", [Type, File]),
                              [];
                          {true, false} ->
                              %% Every type with vectors must be registered:
                              %% one that dropped out fails here.
                              [{atom_to_list(Type) ++ " is implemented",
                                fun() -> erlang:error({not_implemented, Type}) end}];
                          {true, true} ->
                              Title = lists:flatten(
                                        io_lib:format("~p agrees with types 0.1.8 on ~s",
                                                      [Type, filename:basename(File)])),
                              [{Title, {timeout, ?VECTOR_TIMEOUT,
                                        fun() -> check_vectors(Type, File) end}}]
                      end
              end, ?M:types());
        {error, Tried} ->
            [{"conformance vectors found",
              fun() ->
                      erlang:error({conformance_vectors_missing,
                                    "expected the folder test/conformance in the "
                                    "repository (set LASP_CONVERGE_CONFORMANCE "
                                    "to override)",
                                    {tried, Tried}})
              end}]
    end.

%% Our own vectors for the classes the public ones barely reach (terms
%% `==' but not `=:=', bignum lwwregister timestamps, in every type and
%% nested), computed by types 0.1.8 (`prop_lasp_converge_crdt_types:
%% write_vectors/1') and kept in the repository, so they run everywhere.
own_vectors_test_() ->
    File = own_vectors_file(),
    Cases = read_vectors(File),
    Types = lists:usort([T || #{type := T} <- Cases]),
    [{lists:flatten(io_lib:format("~p agrees with types 0.1.8 on ~s",
                                  [Type, filename:basename(File)])),
      fun() -> check_own_vectors(Type, [C || #{type := T} = C <- Cases, T =:= Type]) end}
     || Type <- Types].

check_own_vectors(Type, Cases) ->
    Bad = lists:append([check_own_case(I, C) || {I, C} <- enumerate(Cases)]),
    lists:foreach(fun(#{key := mutate_case} = M) ->
                          note("~p own vector ~p: ~P", [Type, maps:get(idx, M), M, 40]);
                     (M) -> print_mismatch(Type, M)
                  end, lists:sublist(Bad, ?SHOW_MISMATCHES)),
    ?assertEqual({Type, 0}, {Type, length(Bad)}).

check_own_case(I, #{label := mutate, op := Op, actor := Actor, state := S} = C) ->
    [#{idx => I, key => mutate_case, call => {F, Op, Actor, S}, expected => E, got => G}
     || {F, E} <- [{mutate, maps:get(mutate, C)}, {delta_mutate, maps:get(delta_mutate, C)}],
        G <- [outcome(fun() -> ?M:F(Op, Actor, S) end)],
        not agrees(F, E, G, C)];
check_own_case(I, C) ->
    check_case(I, C).

own_vectors_file() ->
    Name = filename:join("vectors", "types_terms.etf"),
    {ok, Cwd} = file:get_cwd(),
    Dirs = [filename:dirname(filename:absname(?FILE)),
            filename:dirname(filename:absname(code:which(?MODULE))),
            filename:join(Cwd, "test")],
    case [F || D <- Dirs, F <- [filename:join(D, Name)], filelib:is_regular(F)] of
        [F | _] -> F;
        [] -> erlang:error({own_vectors_missing, Name, Dirs})
    end.

%% ===================================================================
%% Term for term: regressions, expected terms from types' code
%% ===================================================================

%% state_lwwregister: `timestamp() :: non_neg_integer()' with an
%% `is_integer/1' guard, compared with `>' and `>=': bignums past 64 bits
%% behave like small ones.
lwwregister_bignum_timestamps_test() ->
    Big = 1 bsl 70,
    R = fun(Ts, V) -> {state_lwwregister, {Ts, V}} end,
    ?assertEqual({ok, R(Big, a)}, ?M:mutate({set, Big, a}, x, ?M:new(state_lwwregister))),
    ?assertEqual({ok, R(-Big, a)}, ?M:delta_mutate({set, -Big, a}, x, R(5, b))),
    %% The larger timestamp wins; on a tie the second argument does.
    ?assertEqual(R(Big + 1, b), ?M:merge(R(Big, a), R(Big + 1, b))),
    ?assertEqual(R(Big + 1, b), ?M:merge(R(Big + 1, b), R(Big, a))),
    ?assertEqual(R(Big, b), ?M:merge(R(Big, a), R(Big, b))),
    ?assertEqual(R(Big, a), ?M:merge(R(Big, a), R(1 bsl 62, b))),
    ?assertEqual(R(0, undefined), ?M:merge(R(-Big, a), ?M:new(state_lwwregister))),
    {ok, Newer} = ?M:mutate({set, Big + 1, c}, x, R(Big, a)),
    ?assertEqual(R(Big + 1, c), Newer),
    {ok, Older} = ?M:mutate({set, 1 bsl 64, c}, x, R(Big, a)),
    ?assertEqual(R(Big, a), Older),
    ?assert(?M:is_inflation(R(Big, a), R(Big + 1, b))),
    ?assertNot(?M:is_inflation(R(Big + 1, b), R(Big, a))),
    ?assert(?M:is_strict_inflation(R(-Big, a), R(0, a))),
    ?assert(?M:equal(R(Big, a), R(Big, a))),
    ?assertNot(?M:equal(R(Big, a), R(Big + 1, a))),
    %% A payload's float timestamp compares by value, as types' `>' does.
    ?assert(?M:equal(R(float(Big), a), R(Big, a))),
    ?assertEqual(R(Big, a), ?M:merge(R(float(Big), a), R(Big, a))),
    ?assert(?M:is_bottom(R(0.0, undefined))),
    ?assertEqual(b, ?M:query(R(1 bsl 200, b))),
    %% A non-integer timestamp is no operation (types' guard fails).
    ?assertError({badcrdt, _}, ?M:mutate({set, 1.0, a}, x, R(0, undefined))).

%% ... and the same nested in a gmap and a pair.
lwwregister_bignums_nested_test() ->
    Big = 1 bsl 70,
    G0 = {state_gmap, {state_lwwregister, []}},
    {ok, G1} = ?M:mutate({apply, k, {set, Big, a}}, x, G0),
    ?assertEqual({state_gmap, {state_lwwregister, [{k, {state_lwwregister, {Big, a}}}]}}, G1),
    {ok, G2} = ?M:mutate({apply, k, {set, Big + 1, b}}, x, G1),
    ?assertEqual({state_gmap, {state_lwwregister, [{k, {state_lwwregister, {Big + 1, b}}}]}},
                 G2),
    ?assertEqual(G2, ?M:merge(G1, G2)),
    ?assertEqual(G2, ?M:merge(G2, G1)),
    ?assert(?M:is_strict_inflation(G1, G2)),
    ?assertNot(?M:is_inflation(G2, G1)),
    ?assertEqual([{k, b}], ?M:query(G2)),
    P0 = {state_pair, {{state_lwwregister, {0, undefined}}, {state_gcounter, []}}},
    {ok, P1} = ?M:mutate({fst, {set, -Big, a}}, x, P0),
    ?assertEqual(P0, P1),
    {ok, P2} = ?M:mutate({fst, {set, Big, a}}, x, P0),
    ?assertEqual({state_pair, {{state_lwwregister, {Big, a}}, {state_gcounter, []}}}, P2),
    ?assertEqual({ok, {state_pair, {{state_lwwregister, {Big, a}}, {state_gcounter, []}}}},
                 ?M:delta_mutate({fst, {set, Big, a}}, x, P0)),
    ?assert(?M:is_strict_inflation(P0, P2)),
    ?assertEqual({a, 0}, ?M:query(P2)).

%% state_type:new/1, which a pair mutation uses for the untouched side,
%% keeps a gmap's CType: the delta then merges with the state.
pair_mutation_keeps_gmap_ctype_test() ->
    P = {state_pair, {{state_gmap, {state_lwwregister, []}}, {state_max_int, 0}}},
    Expected = {state_pair, {{state_gmap, {state_lwwregister, []}}, {state_max_int, 1}}},
    ?assertEqual({ok, Expected}, ?M:delta_mutate({snd, increment}, x, P)),
    ?assertEqual({ok, Expected}, ?M:mutate({snd, increment}, x, P)).

%% state_awset_ps 0.1.8 has no precondition on rmv: an absent element's
%% events are `[]', so the delta is empty and the state stays as it was.
awset_ps_rmv_absent_test() ->
    Actor = {<<"obj">>, a},
    {ok, S} = ?M:mutate({add, 1}, Actor, ?M:new(state_awset_ps)),
    ?assertEqual({ok, {state_awset_ps, {{[], []}, [], []}}}, ?M:delta_mutate({rmv, 2}, Actor, S)),
    ?assertEqual({ok, S}, ?M:mutate({rmv, 2}, Actor, S)),
    ?assertEqual({ok, S}, ?M:mutate({rmv_all, [2, 3]}, Actor, S)),
    %% `==' finds the element: removing 1.0 removes 1.
    {ok, Empty} = ?M:mutate({rmv, 1.0}, Actor, S),
    ?assertEqual([], sets:to_list(?M:query(Empty))).

%% Which of two `==' terms a result keeps, per type, both argument orders
%% (ordsets:union and orddict:merge keep the first argument's term;
%% ordsets:add_element the one already there).
twins_keep_types_representative_test() ->
    %% gset: ordsets:union keeps the first argument's element.
    ?assertEqual({state_gset, [1]}, ?M:merge({state_gset, [1]}, {state_gset, [1.0]})),
    ?assertEqual({state_gset, [1.0]}, ?M:merge({state_gset, [1.0]}, {state_gset, [1]})),
    %% ... but the roles swap after the second list's smaller head.
    ?assertEqual({state_gset, [b, {a, [2]}]},
                 ?M:merge({state_gset, [{a, [2.0]}]}, {state_gset, [b, {a, [2]}]})),
    ?assertEqual({state_gset, [0, 1.0, 2]},
                 ?M:merge({state_gset, [1, 2]}, {state_gset, [0, 1.0]})),
    ?assertEqual({ok, {state_gset, [1]}}, ?M:mutate({add, 1.0}, x, {state_gset, [1]})),
    %% twopset: both halves are unions.
    ?assertEqual({state_twopset, {[1.0], [2]}},
                 ?M:merge({state_twopset, {[1.0], [2]}}, {state_twopset, {[1], [2.0]}})),
    %% gcounter: orddict:merge keeps the first argument's actor.
    ?assertEqual({state_gcounter, [{{n, 1.0}, 3}]},
                 ?M:merge({state_gcounter, [{{n, 1.0}, 2}]}, {state_gcounter, [{{n, 1}, 3}]})),
    ?assertEqual({state_gcounter, [{{n, 1}, 3}]},
                 ?M:merge({state_gcounter, [{{n, 1}, 3}]}, {state_gcounter, [{{n, 1.0}, 2}]})),
    %% gmap: mutate is merge(Delta, State), and the delta holds the op's key.
    G = {state_gmap, {state_gcounter, [{1, {state_gcounter, [{x, 1}]}}]}},
    ?assertEqual({ok, {state_gmap, {state_gcounter, [{1.0, {state_gcounter, [{x, 2}]}}]}}},
                 ?M:mutate({apply, 1.0, increment}, x, G)),
    %% mvregister: the query set is built in dot order, so its term is types'.
    MV = {state_mvregister, {[{{1, 1}, 2.0}, {{{lasp, 1}, 1}, -1.0}],
                             {[{1, 1}, {{lasp, 1}, 1}], []}}},
    ?assertEqual(sets:from_list([2.0, -1.0]), ?M:query(MV)).

%% More types: orddict:merge keeps the first argument's key (orset, the
%% counters' actors), a dot map matches keys exactly (awset raises), an
%% awset_ps join adds the other side's dots to the first side's element.
twins_keep_types_representative_more_test() ->
    O1 = {state_orset, [{1, [{<<1>>, true}]}]},
    O2 = {state_orset, [{1.0, [{<<1>>, false}]}]},
    ?assertEqual({state_orset, [{1, [{<<1>>, false}]}]}, ?M:merge(O1, O2)),
    ?assertEqual({state_orset, [{1.0, [{<<1>>, false}]}]}, ?M:merge(O2, O1)),
    N1 = {state_pncounter, [{{n, 1}, {2, 0}}]},
    N2 = {state_pncounter, [{{n, 1.0}, {1, 1}}]},
    ?assertEqual({state_pncounter, [{{n, 1}, {2, 1}}]}, ?M:merge(N1, N2)),
    ?assertEqual({state_pncounter, [{{n, 1.0}, {2, 1}}]}, ?M:merge(N2, N1)),
    L1 = {state_lexcounter, [{{n, 1}, {0, 2}}]},
    L2 = {state_lexcounter, [{{n, 1.0}, {1, 1}}]},
    ?assertEqual({state_lexcounter, [{{n, 1}, {1, 1}}]}, ?M:merge(L1, L2)),
    ?assertEqual({state_lexcounter, [{{n, 1.0}, {1, 1}}]}, ?M:merge(L2, L1)),
    %% awset: keys 1 and 1.0 match no clause of types' dot-map merge.
    A1 = {state_awset, {[{1, [{a, 1}]}], {[{a, 1}], []}}},
    A2 = {state_awset, {[{1.0, [{b, 1}]}], {[{b, 1}], []}}},
    ?assertError({badcrdt, _}, ?M:merge(A1, A2)),
    ?assertError({badcrdt, _}, ?M:merge(A2, A1)),
    %% mvregister: dots {1, 1} and {1.0, 1} are one dot; equal values merge
    %% (keeping the first argument's dot), different ones raise (ivar).
    M1 = {state_mvregister, {[{{1, 1}, x}], {[{1, 1}], []}}},
    M2 = {state_mvregister, {[{{1.0, 1}, x}], {[{1.0, 1}], []}}},
    M3 = {state_mvregister, {[{{1.0, 1}, y}], {[{1.0, 1}], []}}},
    ?assertEqual(M1, ?M:merge(M1, M2)),
    ?assertEqual(M2, ?M:merge(M2, M1)),
    ?assertError({badcrdt, _}, ?M:merge(M1, M3)),
    %% awset_ps: one element added as 1 by one actor and as 1.0 by another.
    {ok, S1} = ?M:mutate({add, 1}, {o, a}, ?M:new(state_awset_ps)),
    {ok, S2} = ?M:mutate({add, 1.0}, {o, b}, ?M:new(state_awset_ps)),
    Events = [{{{o, a}, 1}, [1]}, {{{o, b}, 1}, [1.0]}],
    ?assertEqual({state_awset_ps, {{[{1, [[{{o, a}, 1}], [{{o, b}, 1}]]}], Events}, [],
                                   {vclock, [{{o, a}, 1}, {{o, b}, 1}]}}},
                 ?M:merge(S1, S2)),
    ?assertEqual({state_awset_ps, {{[{1.0, [[{{o, a}, 1}], [{{o, b}, 1}]]}], Events}, [],
                                   {vclock, [{{o, b}, 1}, {{o, a}, 1}]}}},
                 ?M:merge(S2, S1)).

%% When a merge adds nothing to one argument (the expected result is `=:='
%% to it), that argument itself comes back: no copy.
merge_returns_input_when_nothing_added_test_() ->
    per_type_with_vectors(
      "merge returns its own input term when it adds nothing",
      fun(Type, Cases) ->
              Bad = [{label(C), I}
                     || {I, C} <- enumerate(Cases),
                        not returns_input(C)],
              case Bad of
                  [] -> ok;
                  _ ->
                      show_cases(Type, "merge copied an input it should have returned",
                                 Cases, Bad),
                      erlang:error({copied_input, Type, length(Bad), lists:sublist(Bad, 10)})
              end
      end).

%% merge_all/1 equals a left fold of merge/2, over runs of vector states.
merge_all_is_fold_of_merge_test_() ->
    per_type_with_vectors(
      "merge_all/1 equals a fold of merge/2",
      fun(Type, Cases) ->
              States = lists:append([[maps:get(a, C), maps:get(b, C)] || C <- Cases]),
              Runs = runs(States, [1, 2, 3, 5, 8]),
              Bad = [Run || Run <- Runs,
                            outcome(fun() -> ?M:merge_all(Run) end)
                                =/= outcome(fun() -> fold_merge(Run) end)],
              case Bad of
                  [] -> ok;
                  [First | _] ->
                      note("~p: merge_all differs from a fold of merge on ~p runs; first:~n"
                           "  run = ~P~n  merge_all -> ~P~n  fold -> ~P",
                           [Type, length(Bad), First, 30,
                            outcome(fun() -> ?M:merge_all(First) end), 30,
                            outcome(fun() -> fold_merge(First) end), 30]),
                      erlang:error({merge_all_not_fold, Type, length(Bad)})
              end
      end).

%% merge(delta(A, B), B) equals merge(A, B) (Almeida et al., delta-mutators).
delta_law_on_vectors_test_() ->
    per_type_with_vectors(
      "equal(merge(delta(A, B), B), merge(A, B))",
      fun(Type, Cases) ->
              Bad = [{label(C), I}
                     || {I, C} <- enumerate(Cases),
                        not is_raises(maps:get(merge, C)),
                        not delta_law(maps:get(a, C), maps:get(b, C))],
              case Bad of
                  [] -> ok;
                  _ ->
                      show_cases(Type, "delta law broken", Cases, Bad),
                      erlang:error({delta_law, Type, length(Bad), lists:sublist(Bad, 10)})
              end
      end).

check_vectors(Type, File) ->
    Cases = read_vectors(File),
    ?assert(length(Cases) > 0),
    Mismatches = lists:append([check_case(I, C) || {I, C} <- enumerate(Cases)]),
    case Mismatches of
        [] ->
            ok;
        _ ->
            Shown = lists:sublist(Mismatches, ?SHOW_MISMATCHES),
            lists:foreach(fun(M) -> print_mismatch(Type, M) end, Shown),
            Summary = [{Label, I, Key} || #{label := Label, idx := I, key := Key} <- Mismatches],
            erlang:error({conformance, Type,
                          {mismatches, length(Mismatches)},
                          {cases, length(lists:usort([I || {_, I, _} <- Summary]))},
                          {of_cases, length(Cases)},
                          {first, lists:sublist(Summary, 10)}})
    end.

check_case(I, Case) ->
    #{a := A, b := B} = Case,
    Merge = outcome(fun() -> ?M:merge(A, B) end),
    Calls = [{merge, Merge},
             {merge_ba, outcome(fun() -> ?M:merge(B, A) end)},
             {equal, outcome(fun() -> ?M:equal(A, B) end)},
             {is_inflation_ab, outcome(fun() -> ?M:is_inflation(A, B) end)},
             {is_inflation_ba, outcome(fun() -> ?M:is_inflation(B, A) end)},
             {is_strict_inflation_ab, outcome(fun() -> ?M:is_strict_inflation(A, B) end)},
             {is_strict_inflation_ba, outcome(fun() -> ?M:is_strict_inflation(B, A) end)},
             {is_bottom_a, outcome(fun() -> ?M:is_bottom(A) end)},
             {is_bottom_b, outcome(fun() -> ?M:is_bottom(B) end)},
             {query_a, query_outcome(A)},
             {query_b, query_outcome(B)}]
        ++ case {maps:find(query_merge, Case), Merge} of
               {{ok, _}, {ok, M}} -> [{query_merge, query_outcome(M)}];
               {{ok, _}, _} ->
                   %% Our merge already failed; query the expected merge
                   %% so that query itself is still checked.
                   [{query_merge, query_outcome(maps:get(merge, Case))}];
               {error, _} -> []
           end,
    [#{idx => I, label => label(Case), key => Key, a => A, b => B,
       expected => Expected, got => Got}
     || {Key, Got} <- Calls,
        Expected <- [expected(Key, Case)],
        Expected =/= absent,
        not agrees(Key, Expected, Got, Case)].

expected(Key, Case) ->
    maps:get(Key, Case, absent).

%% `$raises' must be error:{badcrdt, _}; a value must match exactly
%% (queries after normalisation on both sides).
agrees(_Key, {'$raises', _Class, _Tag}, Got, _Case) ->
    case Got of
        {raised, error, {badcrdt, _}} -> true;
        _ -> false
    end;
agrees(Key, Expected, {ok, Got}, Case) ->
    case Key of
        query_a -> norm_query(maps:get(a, Case), Expected) =:= Got;
        query_b -> norm_query(maps:get(b, Case), Expected) =:= Got;
        query_merge -> norm_query(maps:get(merge, Case), Expected) =:= Got;
        _ -> Expected =:= Got
    end;
agrees(_Key, _Expected, _Got, _Case) ->
    false.

query_outcome(State) ->
    case outcome(fun() -> ?M:query(State) end) of
        {ok, Q} -> {ok, norm_query(State, Q)};
        Other -> Other
    end.

print_mismatch(Type, #{idx := I, label := Label, key := Key, a := A, b := B,
                       expected := Expected, got := Got}) ->
    note("~p vector case ~p (~p), key ~p:~n"
         "  a        = ~P~n"
         "  b        = ~P~n"
         "  expected = ~P~n"
         "  got      = ~P",
         [Type, I, Label, Key, A, 40, B, 40, Expected, 40, Got, 40]).

returns_input(Case) ->
    #{a := A, b := B, merge := Expected} = Case,
    case Expected =:= A orelse Expected =:= B of
        false ->
            true;
        true ->
            case outcome(fun() -> ?M:merge(A, B) end) of
                {ok, Got} ->
                    (Expected =:= A andalso erts_debug:same(Got, A))
                        orelse (Expected =:= B andalso erts_debug:same(Got, B));
                _ ->
                    %% A wrong merge is reported by the vector test.
                    true
            end
    end.

delta_law(A, B) ->
    case outcome(fun() -> {?M:merge(?M:delta(A, B), B), ?M:merge(A, B)} end) of
        {ok, {X, Y}} ->
            case outcome(fun() -> ?M:equal(X, Y) end) of
                {ok, Equal} -> Equal;
                %% types' own equal/2 raises on some well-formed states (a
                %% bcounter whose sides hold the same transfer): compare the
                %% sorted payloads with == instead.
                {raised, error, {badcrdt, _}} -> X == Y;
                _ -> false
            end;
        _ ->
            false
    end.

fold_merge([S | Rest]) ->
    lists:foldl(fun(X, Acc) -> ?M:merge(Acc, X) end, S, Rest).

%% Consecutive runs of the given lengths over the list, a few of each.
runs(States, Lens) ->
    N = length(States),
    [lists:sublist(States, Start, Len)
     || Len <- Lens, Start <- lists:seq(1, max(1, N - Len + 1), max(1, N div 12))].

show_cases(Type, What, Cases, Bad) ->
    lists:foreach(
      fun({Label, I}) ->
              C = lists:nth(I, Cases),
              note("~p vector case ~p (~p): ~s~n  a = ~P~n  b = ~P~n  types merge = ~P",
                   [Type, I, Label, What, maps:get(a, C), 30, maps:get(b, C), 30,
                    maps:get(merge, C), 30])
      end, lists:sublist(Bad, 3)).

per_type_with_vectors(What, Check) ->
    case conformance_dir() of
        {ok, Dir} ->
            [{lists:flatten(io_lib:format("~p: ~s", [Type, What])),
              {timeout, ?VECTOR_TIMEOUT,
               fun() -> Check(Type, read_vectors(File)) end}}
             || Type <- ?M:types(),
                File <- [filename:join(Dir, atom_to_list(Type) ++ ".etf")],
                filelib:is_regular(File),
                implemented(Type)];
        {error, _} ->
            %% conformance_vectors_test_/0 reports the missing folder.
            []
    end.

read_vectors(File) ->
    {ok, Bin} = file:read_file(File),
    binary_to_term(Bin).

label(Case) ->
    maps:get(label, Case, unlabelled).

is_raises({'$raises', _, _}) -> true;
is_raises(_) -> false.

%% -------------------------------------------------------------------
%% Where the vectors live: `test/conformance' in this repository (copied
%% from lasp-lang/types' generator output, see its README), or
%% `$LASP_CONVERGE_CONFORMANCE'.

conformance_dir() ->
    lasp_converge_test_paths:conformance_dir().

%% -------------------------------------------------------------------
%% Query normalisation (README §2): sets become lists sorted in term
%% order, `=='-equal elements ordered by their external format.

norm_query({Type, _}, Q) when Type =:= state_gset; Type =:= state_twopset;
                               Type =:= state_orset; Type =:= state_awset;
                               Type =:= state_awset_ps; Type =:= state_mvregister ->
    sort_set(Q);
norm_query({state_gmap, {_CType, Entries}}, Q) when is_list(Entries), is_list(Q),
                                                    length(Entries) =:= length(Q) ->
    [case KV of
         {K, V} -> {K, norm_query(Value, V)};
         Other -> Other
     end || {{_, Value}, KV} <- lists:zip(Entries, Q)];
norm_query({state_awmap, {CType, _}}, Q) when is_list(Q) ->
    [case KV of
         {K, V} -> {K, norm_ctype(CType, V)};
         Other -> Other
     end || KV <- Q];
norm_query({state_pair, {Fst, Snd}}, {Q1, Q2}) ->
    {norm_query(Fst, Q1), norm_query(Snd, Q2)};
norm_query(_State, Q) ->
    Q.

norm_ctype(CType, V) when is_atom(CType) ->
    case lists:member(CType, ?SET_TYPES) of
        true -> sort_set(V);
        false when CType =:= state_awmap -> norm_ctype({state_awmap, [state_awset]}, V);
        false -> V
    end;
norm_ctype({state_awmap, [Sub]}, V) when is_list(V) ->
    [case KV of
         {K, X} -> {K, norm_ctype(Sub, X)};
         Other -> Other
     end || KV <- V];
norm_ctype(_, V) ->
    V.

sort_set(Q) ->
    L = case is_list(Q) of
            true -> Q;
            false ->
                try sets:to_list(Q)
                catch _:_ -> Q
                end
        end,
    case is_list(L) of
        true -> lists:sort(fun term_le/2, L);
        false -> L
    end.

term_le(X, Y) ->
    X < Y orelse (X == Y andalso term_to_binary(X) =< term_to_binary(Y)).

%% ===================================================================
%% new/1
%% ===================================================================

bottoms() ->
    #{state_gcounter => [],
      state_pncounter => [],
      state_lexcounter => [],
      state_max_int => 0,
      state_boolean => 0,
      state_gset => [],
      state_twopset => {[], []},
      state_orset => [],
      state_awset => {[], {[], []}},
      state_mvregister => {[], {[], []}},
      state_ewflag => {[], {[], []}},
      state_dwflag => {[], {[], []}},
      state_lwwregister => {0, undefined},
      state_ivar => undefined,
      state_gmap => {state_max_int, []},
      state_awmap => {state_awset, {[], {[], []}}},
      state_pair => {{state_ivar, undefined}, {state_ivar, undefined}},
      state_bcounter => {{state_pncounter, []}, {state_gmap, {state_max_int, []}}},
      state_awset_ps => {{[], []}, [], {vclock, []}}}.

new_is_bottom_test_() ->
    [{atom_to_list(Type) ++ ": new/1 is types' new/0 and is_bottom",
      fun() ->
              S = ?M:new(Type),
              case maps:find(Type, bottoms()) of
                  {ok, Payload} -> ?assertEqual({Type, Payload}, S);
                  error -> ?assertMatch({Type, _}, S)
              end,
              ?assert(?M:is_bottom(S)),
              ?assert(?M:equal(S, S)),
              ?assert(?M:is_inflation(S, S)),
              ?assertNot(?M:is_strict_inflation(S, S)),
              ?assert(erts_debug:same(S, ?M:merge(S, S)))
      end}
     || Type <- implemented_types()].

new_unknown_type_test() ->
    ?assertError({badcrdt, unknown_type}, ?M:new(state_no_such_type)),
    ?assertError({badcrdt, _}, ?M:new(<<"state_gset">>)),
    ?assertError({badcrdt, _}, ?M:new({state_gset})).

types_are_atoms_test() ->
    Types = ?M:types(),
    ?assert(length(Types) > 0),
    ?assert(lists:all(fun is_atom/1, Types)),
    ?assertEqual(length(Types), length(lists:usort(Types))).

%% ===================================================================
%% mutate/3 and delta_mutate/3, as in types' own EUnit tests
%% ===================================================================

mutate_examples_test_() ->
    Examples = #{state_gcounter => fun gcounter_example/0,
                 state_pncounter => fun pncounter_example/0,
                 state_lexcounter => fun lexcounter_example/0,
                 state_max_int => fun max_int_example/0,
                 state_boolean => fun boolean_example/0,
                 state_gset => fun gset_example/0,
                 state_twopset => fun twopset_example/0,
                 state_orset => fun orset_example/0,
                 state_awset => fun awset_example/0,
                 state_lwwregister => fun lwwregister_example/0,
                 state_ivar => fun ivar_example/0,
                 state_mvregister => fun mvregister_example/0,
                 state_ewflag => fun ewflag_example/0,
                 state_dwflag => fun dwflag_example/0},
    lists:append(
      [case maps:find(Type, Examples) of
           {ok, F} -> [{atom_to_list(Type) ++ ": mutate as types does", F}];
           error -> note("~p: no mutate example written", [Type]), []
       end || Type <- implemented_types()]).

gcounter_example() ->
    S0 = ?M:new(state_gcounter),
    {ok, S1} = ?M:mutate(increment, a, S0),
    ?assertEqual({state_gcounter, [{a, 1}]}, S1),
    {ok, S2} = ?M:mutate(increment, a, S1),
    ?assertEqual({state_gcounter, [{a, 2}]}, S2),
    {ok, S3} = ?M:mutate(increment, <<"b">>, S2),
    ?assertEqual({state_gcounter, [{a, 2}, {<<"b">>, 1}]}, S3),
    ?assertEqual(3, ?M:query(S3)),
    ?assertEqual({ok, {state_gcounter, [{a, 3}]}}, ?M:delta_mutate(increment, a, S3)),
    ?assertEqual({ok, {state_gcounter, [{{c, 1}, 1}]}}, ?M:delta_mutate(increment, {c, 1}, S3)),
    ?assertEqual({state_gcounter, [{a, 2}, {<<"b">>, 1}]},
                 ?M:merge({state_gcounter, [{a, 1}, {<<"b">>, 1}]},
                          {state_gcounter, [{a, 2}]})),
    ?assert(?M:is_inflation(S2, S3)),
    ?assertNot(?M:is_inflation(S3, S2)),
    ?assert(?M:is_strict_inflation(S2, S3)),
    ?assertEqual({state_gcounter, [{<<"b">>, 1}]}, ?M:delta(S3, S2)).

pncounter_example() ->
    S0 = ?M:new(state_pncounter),
    {ok, S1} = ?M:mutate(increment, a, S0),
    ?assertEqual({state_pncounter, [{a, {1, 0}}]}, S1),
    {ok, S2} = ?M:mutate(decrement, a, S1),
    ?assertEqual({state_pncounter, [{a, {1, 1}}]}, S2),
    {ok, S3} = ?M:mutate(decrement, b, S2),
    ?assertEqual({state_pncounter, [{a, {1, 1}}, {b, {0, 1}}]}, S3),
    ?assertEqual(-1, ?M:query(S3)),
    ?assertEqual(0, ?M:query(S2)),
    ?assertEqual({state_pncounter, [{a, {2, 1}}, {b, {0, 1}}]},
                 ?M:merge({state_pncounter, [{a, {2, 0}}]}, S3)),
    ?assert(?M:is_inflation(S1, S2)),
    ?assertNot(?M:is_inflation(S2, S1)).

lexcounter_example() ->
    S0 = ?M:new(state_lexcounter),
    {ok, S1} = ?M:mutate(increment, a, S0),
    ?assertEqual({state_lexcounter, [{a, {0, 1}}]}, S1),
    {ok, S2} = ?M:mutate(increment, a, S1),
    ?assertEqual({state_lexcounter, [{a, {0, 2}}]}, S2),
    {ok, S3} = ?M:mutate(decrement, a, S2),
    ?assertEqual({state_lexcounter, [{a, {1, 1}}]}, S3),
    ?assertEqual(1, ?M:query(S3)),
    %% The larger Left wins outright.
    ?assertEqual(S3, ?M:merge(S2, S3)),
    ?assertEqual(S3, ?M:merge(S3, S2)),
    ?assert(?M:is_inflation(S2, S3)),
    ?assertNot(?M:is_inflation(S3, S2)).

max_int_example() ->
    S0 = ?M:new(state_max_int),
    {ok, S1} = ?M:mutate(increment, a, S0),
    ?assertEqual({state_max_int, 1}, S1),
    {ok, S2} = ?M:mutate(increment, b, S1),
    ?assertEqual({state_max_int, 2}, S2),
    ?assertEqual(2, ?M:query(S2)),
    ?assertEqual(S2, ?M:merge(S1, S2)),
    ?assertEqual(S2, ?M:merge(S2, S1)),
    ?assert(?M:is_strict_inflation(S1, S2)).

boolean_example() ->
    S0 = ?M:new(state_boolean),
    ?assertEqual(false, ?M:query(S0)),
    {ok, S1} = ?M:mutate(true, a, S0),
    ?assertEqual({state_boolean, 1}, S1),
    ?assertEqual(true, ?M:query(S1)),
    ?assertEqual(S1, ?M:merge(S0, S1)),
    ?assert(?M:is_inflation(S0, S1)),
    ?assertNot(?M:is_inflation(S1, S0)).

gset_example() ->
    S0 = ?M:new(state_gset),
    {ok, S1} = ?M:mutate({add, <<"a">>}, 1, S0),
    ?assertEqual({state_gset, [<<"a">>]}, S1),
    {ok, S2} = ?M:mutate({add, <<"b">>}, 1, S1),
    ?assertEqual({state_gset, [<<"a">>, <<"b">>]}, S2),
    ?assertEqual({ok, {state_gset, []}}, ?M:delta_mutate({add, <<"a">>}, 1, S2)),
    ?assertEqual({ok, {state_gset, [<<"c">>]}}, ?M:delta_mutate({add, <<"c">>}, 1, S2)),
    ?assertEqual({ok, S2}, ?M:mutate({add, <<"a">>}, 1, S2)),
    ?assertEqual([<<"a">>, <<"b">>], lists:sort(sets:to_list(?M:query(S2)))),
    ?assertEqual(sets:from_list([<<"a">>, <<"b">>]), ?M:query(S2)),
    ?assertEqual({state_gset, [<<"a">>, <<"b">>]}, ?M:merge(S1, S2)),
    ?assertEqual({state_gset, ["a", "c"]},
                 ?M:delta({state_gset, ["a", "b", "c"]}, {state_gset, ["b", "d"]})).

twopset_example() ->
    S0 = ?M:new(state_twopset),
    {ok, S1} = ?M:mutate({add, <<"a">>}, 1, S0),
    {ok, S2} = ?M:mutate({add, <<"b">>}, 1, S1),
    {ok, S3} = ?M:mutate({rmv, <<"b">>}, 1, S2),
    ?assertEqual({state_twopset, {[<<"a">>], []}}, S1),
    ?assertEqual({state_twopset, {[<<"a">>, <<"b">>], []}}, S2),
    ?assertEqual({state_twopset, {[<<"a">>, <<"b">>], [<<"b">>]}}, S3),
    %% Removing what was never added still records the removal.
    {ok, S4} = ?M:mutate({rmv, <<"z">>}, 1, S3),
    ?assertEqual({state_twopset, {[<<"a">>, <<"b">>], [<<"b">>, <<"z">>]}}, S4),
    ?assertEqual({ok, {state_twopset, {[], []}}}, ?M:delta_mutate({add, <<"a">>}, 1, S4)),
    ?assertEqual(sets:from_list([<<"a">>]), ?M:query(S4)),
    ?assertEqual([<<"c">>],
                 sets:to_list(?M:query({state_twopset, {[<<"a">>, <<"c">>],
                                                        [<<"a">>, <<"b">>]}}))),
    ?assert(?M:is_inflation(S1, S3)),
    ?assertNot(?M:is_inflation(S3, S1)).

orset_example() ->
    S0 = ?M:new(state_orset),
    {ok, S1} = ?M:mutate({add, <<"a">>}, 1, S0),
    ?assertMatch({state_orset, [{<<"a">>, [{_, true}]}]}, S1),
    {state_orset, [{_, [{Token, true}]}]} = S1,
    ?assert(is_binary(Token) andalso byte_size(Token) =:= 20),
    %% A second add of the same element mints a second token.
    {ok, S2} = ?M:mutate({add, <<"a">>}, 1, S1),
    {state_orset, [{<<"a">>, Tokens2}]} = S2,
    ?assertEqual(2, length(Tokens2)),
    ?assert(lists:all(fun({T, true}) -> byte_size(T) =:= 20; (_) -> false end, Tokens2)),
    %% Removing an absent element changes nothing.
    ?assertEqual({ok, S2}, ?M:mutate({rmv, <<"b">>}, 1, S2)),
    {ok, S3} = ?M:mutate({rmv, <<"a">>}, 1, S2),
    ?assertEqual({state_orset, [{<<"a">>, [{T, false} || {T, true} <- Tokens2]}]}, S3),
    ?assertEqual(sets:new(), ?M:query(S3)),
    {ok, S4} = ?M:mutate({add_all, [<<"b">>, <<"c">>]}, 1, S3),
    ?assertEqual([<<"b">>, <<"c">>], lists:sort(sets:to_list(?M:query(S4)))),
    {ok, S5} = ?M:mutate({rmv_all, [<<"b">>, <<"d">>]}, 1, S4),
    ?assertEqual([<<"c">>], sets:to_list(?M:query(S5))),
    %% types' own merge examples (state_orset.erl merge_commutative_test).
    Set1 = {state_orset, [{<<"a">>, [{<<"token1">>, false}]}]},
    Set2 = {state_orset, [{<<"b">>, [{<<"token2">>, true}]}]},
    Set3 = {state_orset, [{<<"a">>, [{<<"token1">>, true}]}, {<<"b">>, [{<<"token2">>, false}]}]},
    Set1_2 = {state_orset, [{<<"a">>, [{<<"token1">>, false}]}, {<<"b">>, [{<<"token2">>, true}]}]},
    Set1_3 = {state_orset, [{<<"a">>, [{<<"token1">>, false}]}, {<<"b">>, [{<<"token2">>, false}]}]},
    ?assertEqual(Set1_2, ?M:merge(Set1, Set2)),
    ?assertEqual(Set1_2, ?M:merge(Set2, Set1)),
    ?assertEqual(Set1_3, ?M:merge(Set1, Set3)),
    ?assertEqual(Set1_3, ?M:merge(Set3, Set1)),
    ?assertEqual(Set3, ?M:merge(Set2, Set3)),
    ?assertEqual(Set1_3, ?M:merge(Set1, ?M:merge(Set2, Set3))),
    ?assertEqual(sets:from_list([<<"a">>]),
                 ?M:query({state_orset, [{<<"a">>, [{<<"token1">>, true}]},
                                         {<<"b">>, [{<<"token2">>, false}]}]})).

awset_example() ->
    S0 = ?M:new(state_awset),
    {ok, S1} = ?M:mutate({add, <<"a">>}, a, S0),
    ?assertEqual({state_awset, {[{<<"a">>, [{a, 1}]}], {[{a, 1}], []}}}, S1),
    {ok, S2} = ?M:mutate({add, <<"b">>}, <<"x">>, S1),
    ?assertEqual({state_awset, {[{<<"a">>, [{a, 1}]}, {<<"b">>, [{<<"x">>, 1}]}],
                                {[{a, 1}, {<<"x">>, 1}], []}}}, S2),
    %% Re-adding replaces the element's dots with a fresh one.
    {ok, S3} = ?M:mutate({add, <<"a">>}, a, S2),
    ?assertEqual({state_awset, {[{<<"a">>, [{a, 2}]}, {<<"b">>, [{<<"x">>, 1}]}],
                                {[{a, 2}, {<<"x">>, 1}], []}}}, S3),
    %% In types 0.1.8 removing an absent element removes no dot: the delta
    %% is empty and the state stays as it was (types' own rmv_test has
    %% `{ok, Set1} = mutate({rmv, "b"}, Actor, Set1)'; the precondition
    %% error {not_present, E} belongs to the older, pre-dot-map awset).
    ?assertEqual({ok, S3}, ?M:mutate({rmv, <<"c">>}, a, S3)),
    ?assertEqual({ok, {state_awset, {[], {[], []}}}}, ?M:delta_mutate({rmv, <<"c">>}, a, S3)),
    {ok, S3b} = ?M:mutate({rmv_all, [<<"b">>, <<"c">>]}, a, S3),
    ?assertEqual({state_awset, {[{<<"a">>, [{a, 2}]}], {[{a, 2}, {<<"x">>, 1}], []}}}, S3b),
    ?assertEqual([<<"a">>], sets:to_list(?M:query(S3b))),
    {ok, S4} = ?M:mutate({rmv, <<"a">>}, a, S3),
    ?assertEqual({state_awset, {[{<<"b">>, [{<<"x">>, 1}]}], {[{a, 2}, {<<"x">>, 1}], []}}}, S4),
    ?assertEqual(sets:from_list([<<"b">>]), ?M:query(S4)),
    {ok, S5} = ?M:mutate({add_all, [<<"c">>, <<"d">>]}, a, S4),
    ?assertEqual([<<"b">>, <<"c">>, <<"d">>], lists:sort(sets:to_list(?M:query(S5)))),
    {ok, S6} = ?M:mutate({rmv_all, [<<"b">>, <<"c">>]}, a, S5),
    ?assertEqual([<<"d">>], sets:to_list(?M:query(S6))),
    %% Add wins over a concurrent remove.
    {ok, R1} = ?M:mutate({rmv, <<"b">>}, <<"x">>, S2),
    {ok, R2} = ?M:mutate({add, <<"b">>}, a, S2),
    M = ?M:merge(R1, R2),
    ?assert(sets:is_element(<<"b">>, ?M:query(M))),
    ?assert(?M:equal(M, ?M:merge(R2, R1))),
    ?assert(?M:is_inflation(S1, S2)),
    ?assertNot(?M:is_inflation(S2, S1)).

lwwregister_example() ->
    S0 = ?M:new(state_lwwregister),
    ?assertEqual(undefined, ?M:query(S0)),
    {ok, S1} = ?M:mutate({set, 1234, "a"}, 1, S0),
    ?assertEqual({state_lwwregister, {1234, "a"}}, S1),
    {ok, S2} = ?M:mutate({set, 1235, "b"}, 1, S1),
    ?assertEqual({state_lwwregister, {1235, "b"}}, S2),
    ?assertEqual("b", ?M:query(S2)),
    %% An older write loses; on a tie the state (merge's second argument) wins.
    ?assertEqual({ok, S2}, ?M:mutate({set, 1000, "c"}, 1, S2)),
    ?assertEqual({ok, S2}, ?M:mutate({set, 1235, "z"}, 1, S2)),
    ?assertEqual({ok, {state_lwwregister, {1000, "c"}}}, ?M:delta_mutate({set, 1000, "c"}, 1, S2)),
    ?assertError({badcrdt, _}, ?M:mutate({set, not_a_timestamp, "c"}, 1, S2)),
    ?assertEqual(S2, ?M:merge(S1, S2)),
    ?assertEqual(S2, ?M:merge(S2, S1)),
    Tie = {state_lwwregister, {1235, "z"}},
    ?assertEqual(Tie, ?M:merge(S2, Tie)),
    ?assertEqual(S2, ?M:merge(Tie, S2)),
    ?assert(?M:is_inflation(S1, S2)),
    ?assertNot(?M:is_inflation(S2, S1)).

ivar_example() ->
    S0 = ?M:new(state_ivar),
    ?assertEqual(undefined, ?M:query(S0)),
    {ok, S1} = ?M:mutate({set, <<"a">>}, 1, S0),
    ?assertEqual({state_ivar, <<"a">>}, S1),
    ?assertEqual(<<"a">>, ?M:query(S1)),
    %% Write once: types has no clause for setting a set ivar.
    ?assertError({badcrdt, _}, ?M:mutate({set, <<"b">>}, 1, S1)),
    ?assertEqual(S1, ?M:merge(S0, S1)),
    ?assertEqual(S1, ?M:merge(S1, S0)),
    ?assertEqual(S1, ?M:merge(S1, S1)),
    ?assert(?M:is_inflation(S0, S1)),
    ?assertNot(?M:is_inflation(S1, S0)),
    ?assertNot(?M:is_inflation(S1, {state_ivar, <<"b">>})).

mvregister_example() ->
    S0 = ?M:new(state_mvregister),
    {ok, S1} = ?M:mutate({set, 0, v1}, 1, S0),
    ?assertEqual({state_mvregister, {[{{1, 1}, v1}], {[{1, 1}], []}}}, S1),
    {ok, S2} = ?M:mutate({set, 0, v2}, 2, S1),
    ?assertEqual({state_mvregister, {[{{2, 1}, v2}], {[{1, 1}, {2, 1}], []}}}, S2),
    {ok, S3} = ?M:mutate({set, 0, v1}, 2, S2),
    ?assertEqual({state_mvregister, {[{{2, 2}, v1}], {[{1, 1}, {2, 2}], []}}}, S3),
    ?assertEqual([v1], sets:to_list(?M:query(S3))),
    %% Concurrent writes are both kept.
    {ok, C1} = ?M:mutate({set, 0, x}, 3, S1),
    {ok, C2} = ?M:mutate({set, 0, y}, 4, S1),
    ?assertEqual([x, y], lists:sort(sets:to_list(?M:query(?M:merge(C1, C2))))),
    ?assert(?M:is_inflation(S1, S2)),
    ?assertNot(?M:is_inflation(S2, S1)).

ewflag_example() ->
    S0 = ?M:new(state_ewflag),
    ?assertEqual(false, ?M:query(S0)),
    {ok, S1} = ?M:mutate(enable, a, S0),
    ?assertEqual({state_ewflag, {[{a, 1}], {[{a, 1}], []}}}, S1),
    ?assertEqual(true, ?M:query(S1)),
    {ok, S2} = ?M:mutate(disable, a, S1),
    ?assertEqual({state_ewflag, {[], {[{a, 1}], []}}}, S2),
    ?assertEqual(false, ?M:query(S2)),
    %% Enable wins over a concurrent disable.
    {ok, E} = ?M:mutate(enable, b, S1),
    ?assertEqual(true, ?M:query(?M:merge(S2, E))).

dwflag_example() ->
    S0 = ?M:new(state_dwflag),
    ?assertEqual(true, ?M:query(S0)),
    {ok, S1} = ?M:mutate(disable, a, S0),
    ?assertEqual({state_dwflag, {[{a, 1}], {[{a, 1}], []}}}, S1),
    ?assertEqual(false, ?M:query(S1)),
    {ok, S2} = ?M:mutate(enable, a, S1),
    ?assertEqual({state_dwflag, {[], {[{a, 1}], []}}}, S2),
    ?assertEqual(true, ?M:query(S2)),
    %% Disable wins over a concurrent enable.
    {ok, D} = ?M:mutate(disable, b, S1),
    ?assertEqual(false, ?M:query(?M:merge(S2, D))).

%% ===================================================================
%% merge: the input itself when nothing is added; merge_all; delta
%% ===================================================================

merge_returns_same_term_test_() ->
    [{atom_to_list(Type) ++ ": merge hands back its input term when it adds nothing",
      fun() ->
              Bottom = ?M:new(Type),
              S = example_state(Type),
              ?assertNot(?M:is_bottom(S)),
              ?assert(erts_debug:same(S, ?M:merge(S, Bottom))),
              ?assert(erts_debug:same(S, ?M:merge(Bottom, S))),
              ?assert(erts_debug:same(S, ?M:merge(S, S))),
              Copy = binary_to_term(term_to_binary(S)),
              ?assertNot(erts_debug:same(S, Copy)),
              R = ?M:merge(S, Copy),
              ?assertEqual(S, R),
              ?assert(erts_debug:same(R, S) orelse erts_debug:same(R, Copy)),
              ?assert(erts_debug:same(S, ?M:merge_all([S]))),
              ?assert(erts_debug:same(S, ?M:merge_all([Bottom, S, Bottom])))
      end}
     || Type <- implemented_types(), example_state(Type) =/= none].

merge_all_test_() ->
    [{atom_to_list(Type) ++ ": merge_all/1 equals a fold of merge/2",
      fun() ->
              Bottom = ?M:new(Type),
              States = example_states(Type),
              ?assertEqual(fold_merge([Bottom | States]), ?M:merge_all([Bottom | States])),
              ?assertEqual(fold_merge(lists:reverse(States)), ?M:merge_all(lists:reverse(States))),
              ?assert(?M:equal(?M:merge_all(States), ?M:merge_all(lists:reverse(States))))
      end}
     || Type <- implemented_types(), example_states(Type) =/= []].

merge_all_bad_input_test() ->
    ?assertError({badcrdt, _}, ?M:merge_all([])),
    ?assertError({badcrdt, _}, ?M:merge_all(not_a_list)),
    ?assertError({badcrdt, _}, ?M:merge_all([{state_gcounter, []} | {state_gcounter, []}])),
    ?assertError({badcrdt, {type_mismatch, state_gcounter, state_gset}},
                 ?M:merge_all([{state_gcounter, []}, {state_gset, []}])).

delta_law_test_() ->
    [{atom_to_list(Type) ++ ": equal(merge(delta(A, B), B), merge(A, B))",
      fun() ->
              States = [?M:new(Type) | example_states(Type)],
              lists:foreach(
                fun({A, B}) ->
                        D = ?M:delta(A, B),
                        ?assertMatch({Type, _}, D),
                        ?assert(?M:equal(?M:merge(D, B), ?M:merge(A, B))),
                        ?assert(?M:is_inflation(D, A))
                end, [{A, B} || A <- States, B <- States])
      end}
     || Type <- implemented_types(), example_states(Type) =/= []].

%% A few states of each type reached through mutate/3 by two actors.
example_states(Type) ->
    Ops = case Type of
              state_gcounter -> [increment];
              state_pncounter -> [increment, decrement];
              state_lexcounter -> [increment, decrement];
              state_max_int -> [increment];
              state_boolean -> [true];
              state_gset -> [{add, 1}, {add, <<"b">>}, {add, {c, [1]}}];
              state_twopset -> [{add, 1}, {add, <<"b">>}, {rmv, 1}, {rmv, z}];
              state_orset -> [{add, 1}, {add, <<"b">>}, {rmv, 1}, {add_all, [x, y]}];
              state_awset -> [{add, 1}, {add, <<"b">>}, {rmv, 1}, {add_all, [x, y]}];
              state_lwwregister -> [{set, 10, a}, {set, 20, b}];
              state_mvregister -> [{set, 0, a}, {set, 0, {b, 1}}];
              state_ewflag -> [enable, disable];
              state_dwflag -> [disable, enable];
              _ -> []
          end,
    case Type of
        state_ivar ->
            [{state_ivar, <<"v">>}];
        _ when Ops =:= [] ->
            [];
        _ ->
            Bottom = ?M:new(Type),
            {L1, _} = apply_ops(Ops, a, Bottom),
            {L2, _} = apply_ops(lists:reverse(Ops), {b, 2}, lists:last([Bottom | L1])),
            {L3, _} = apply_ops(Ops, <<"c">>, Bottom),
            L1 ++ L2 ++ L3
    end.

example_state(Type) ->
    case [S || S <- example_states(Type), not ?M:is_bottom(S)] of
        [] -> none;
        Ss -> lists:last(Ss)
    end.

apply_ops(Ops, Actor, S0) ->
    lists:foldl(
      fun(Op, {Acc, S}) ->
              case ?M:mutate(Op, Actor, S) of
                  {ok, S1} -> {Acc ++ [S1], S1};
                  {error, _} -> {Acc, S}
              end
      end, {[], S0}, Ops).

%% ===================================================================
%% Errors: error:{badcrdt, Why}
%% ===================================================================

unknown_type_test() ->
    ?assertError({badcrdt, unknown_type}, ?M:merge({state_nope, []}, {state_nope, []})),
    ?assertError({badcrdt, unknown_type}, ?M:is_bottom({state_nope, []})),
    ?assertError({badcrdt, unknown_type}, ?M:query({state_nope, []})),
    ?assertError({badcrdt, unknown_type}, ?M:mutate(increment, a, {state_nope, []})),
    %% A real module of types that this library does not know.
    ?assertError({badcrdt, unknown_type}, ?M:equal({state_ormap, []}, {state_ormap, []})).

not_a_crdt_test_() ->
    G = {state_gcounter, []},
    Bad = [foo, 42, 1.5, <<"state_gcounter">>, [], [state_gcounter],
           {}, {state_gcounter}, {state_gcounter, [], []},
           {<<"state_gcounter">>, []}, {"state_gcounter", []}, {1, []},
           #{state_gcounter => []}, self(), make_ref()],
    [{lists:flatten(io_lib:format("~P is not a CRDT", [X, 5])),
      fun() ->
              ?assertError({badcrdt, not_a_crdt}, ?M:merge(X, G)),
              ?assertError({badcrdt, not_a_crdt}, ?M:merge(G, X)),
              ?assertError({badcrdt, not_a_crdt}, ?M:equal(X, G)),
              ?assertError({badcrdt, not_a_crdt}, ?M:is_inflation(G, X)),
              ?assertError({badcrdt, not_a_crdt}, ?M:is_strict_inflation(X, G)),
              ?assertError({badcrdt, not_a_crdt}, ?M:is_bottom(X)),
              ?assertError({badcrdt, not_a_crdt}, ?M:query(X)),
              ?assertError({badcrdt, not_a_crdt}, ?M:delta(X, G)),
              ?assertError({badcrdt, not_a_crdt}, ?M:mutate(increment, a, X)),
              ?assertError({badcrdt, not_a_crdt}, ?M:delta_mutate(increment, a, X)),
              ?assertError({badcrdt, not_a_crdt}, ?M:merge_all([G, X]))
      end} || X <- Bad].

type_mismatch_test() ->
    C = {state_gcounter, [{a, 1}]},
    S = {state_gset, [a]},
    ?assertError({badcrdt, {type_mismatch, state_gcounter, state_gset}}, ?M:merge(C, S)),
    ?assertError({badcrdt, {type_mismatch, state_gset, state_gcounter}}, ?M:merge(S, C)),
    ?assertError({badcrdt, {type_mismatch, state_gcounter, state_gset}}, ?M:equal(C, S)),
    ?assertError({badcrdt, {type_mismatch, state_gcounter, state_gset}}, ?M:is_inflation(C, S)),
    ?assertError({badcrdt, {type_mismatch, state_gcounter, state_gset}},
                 ?M:is_strict_inflation(C, S)),
    ?assertError({badcrdt, {type_mismatch, state_gcounter, state_gset}}, ?M:delta(C, S)).

unsorted_test() ->
    ?assertError({badcrdt, {unsorted, state_gset}}, ?M:merge({state_gset, [2, 1]}, {state_gset, []})),
    %% Duplicates, even `=='-only ones, are not strictly ascending.
    ?assertError({badcrdt, {unsorted, state_gset}}, ?M:query({state_gset, [1, 1]})),
    ?assertError({badcrdt, {unsorted, state_gset}}, ?M:query({state_gset, [1, 1.0]})),
    ?assertError({badcrdt, {unsorted, state_gset}}, ?M:is_bottom({state_gset, [b, a]})),
    ?assertError({badcrdt, {unsorted, state_gcounter}},
                 ?M:merge({state_gcounter, [{b, 1}, {a, 1}]}, {state_gcounter, []})),
    ?assertError({badcrdt, {unsorted, state_gcounter}},
                 ?M:query({state_gcounter, [{a, 1}, {a, 2}]})),
    ?assertError({badcrdt, {unsorted, state_gcounter}},
                 ?M:mutate(increment, a, {state_gcounter, [{2, 1}, {1.0, 1}]})).

improper_list_test() ->
    ?assertError({badcrdt, {improper_list, state_gset}}, ?M:query({state_gset, [1 | 2]})),
    ?assertError({badcrdt, {improper_list, state_gset}},
                 ?M:merge({state_gset, [1, 2 | tail]}, {state_gset, []})),
    ?assertError({badcrdt, {improper_list, state_gcounter}},
                 ?M:merge({state_gcounter, [{a, 1} | {b, 2}]}, {state_gcounter, []})),
    ?assertError({badcrdt, _}, ?M:merge_all([{state_gset, []} | {state_gset, []}])).

malformed_test() ->
    Bad = [{state_gcounter, foo},
           {state_gcounter, {}},
           {state_gcounter, [a]},
           {state_gcounter, [{a}]},
           {state_gcounter, [{a, 1, 2}]},
           {state_gcounter, [{a, x}]},
           {state_gcounter, [{a, 1.0}]},
           {state_gcounter, [{a, 2}, {b, <<"1">>}]},
           {state_gset, foo},
           {state_gset, {[]}},
           {state_gset, <<>>}],
    lists:foreach(
      fun({Type, _} = S) ->
              ?assertError({badcrdt, {malformed, Type}}, ?M:is_bottom(S)),
              ?assertError({badcrdt, {malformed, Type}}, ?M:merge(S, ?M:new(Type))),
              ?assertError({badcrdt, {malformed, Type}}, ?M:merge(?M:new(Type), S))
      end, Bad).

unknown_op_test() ->
    G = {state_gcounter, [{a, 1}]},
    S = {state_gset, [a]},
    ?assertError({badcrdt, {unknown_op, state_gcounter}}, ?M:mutate(frobnicate, a, G)),
    ?assertError({badcrdt, {unknown_op, state_gcounter}}, ?M:mutate({increment, x, y}, a, G)),
    ?assertError({badcrdt, {unknown_op, state_gcounter}}, ?M:delta_mutate(decrement, a, G)),
    ?assertError({badcrdt, {unknown_op, state_gset}}, ?M:mutate({rmv, a}, a, S)),
    ?assertError({badcrdt, {unknown_op, state_gset}}, ?M:mutate(add, a, S)),
    ?assertError({badcrdt, {unknown_op, state_gset}}, ?M:mutate({add, a, b}, a, S)),
    ?assertError({badcrdt, {unknown_op, state_gset}}, ?M:delta_mutate(<<"add">>, a, S)).

ivar_conflict_test_() ->
    [{"two different ivar values raise {conflict, state_ivar}",
      fun() ->
              ?assertError({badcrdt, {conflict, state_ivar}},
                           ?M:merge({state_ivar, 1}, {state_ivar, 2})),
              ?assertError({badcrdt, {conflict, state_ivar}},
                           ?M:merge({state_ivar, <<"a">>}, {state_ivar, <<"b">>})),
              %% `==' but not `=:=': types has no clause for it either.
              ?assertError({badcrdt, {conflict, state_ivar}},
                           ?M:merge({state_ivar, 1}, {state_ivar, 1.0})),
              ?assertError({badcrdt, _},
                           ?M:merge_all([{state_ivar, undefined}, {state_ivar, 1},
                                         {state_ivar, 2}])),
              ?assertEqual({state_ivar, 1}, ?M:merge({state_ivar, 1}, {state_ivar, 1}))
      end}].

%% CRDTs nested in CRDTs past the documented depth (32) are refused, not
%% walked on the native stack; shallower ones merge.
nested_crdts_past_the_depth_limit_test() ->
    Nest = fun(N) ->
                   lists:foldl(fun(_, Acc) -> {state_gmap, {state_gmap, [{k, Acc}]}} end,
                               {state_gcounter, [{a, 1}]}, lists:seq(1, N))
           end,
    Ok = Nest(20),
    ?assertEqual(Ok, ?M:merge(Ok, Ok)),
    ?assert(?M:equal(Ok, Ok)),
    Deep = Nest(40),
    ?assertError({badcrdt, too_deep}, ?M:merge(Deep, Deep)),
    ?assertError({badcrdt, too_deep}, ?M:query(Deep)),
    Deeper = Nest(100000),
    ?assertError({badcrdt, too_deep}, ?M:merge(Deeper, Deeper)).

too_deep_and_too_large_are_badcrdt_test() ->
    Deep = lists:foldl(fun(_, Acc) -> {Acc} end, x, lists:seq(1, 100000)),
    DeepList = lists:foldl(fun(_, Acc) -> [Acc] end, x, lists:seq(1, 100000)),
    %% Deep elements are plain terms to a gset: fine, or refused, never a crash.
    lists:foreach(
      fun(E) ->
              case outcome(fun() -> ?M:merge({state_gset, [E]}, {state_gset, [E]}) end) of
                  {ok, {state_gset, [E2]}} -> ?assert(E2 =:= E);
                  {raised, error, {badcrdt, _}} -> ok
              end
      end, [Deep, DeepList]).

%% ===================================================================
%% No atom is ever created from the input
%% ===================================================================

no_atom_created_test() ->
    Attempt =
        fun(Try) ->
                Names = fresh_names(Try),
                Inputs = fresh_inputs(Names),
                %% Everything this test calls runs once before counting, so
                %% that no code loading happens in between.
                _ = run_calls(Inputs),
                Before = erlang:system_info(atom_count),
                _ = run_calls(Inputs),
                After = erlang:system_info(atom_count),
                {After - Before, Names}
        end,
    %% Other processes may create atoms meanwhile: retry before failing.
    Results = retry(Attempt, 3),
    case lists:last(Results) of
        {0, _} -> ok;
        _ -> erlang:error({atoms_created, [N || {N, _} <- Results]})
    end,
    %% And none of the fresh names exists as an atom now.
    lists:foreach(
      fun(Name) ->
              ?assertError(badarg, binary_to_existing_atom(Name, utf8))
      end, lists:append([Names || {_, Names} <- Results])).

retry(Attempt, Left) ->
    retry(Attempt, 1, Left, []).

retry(Attempt, Try, Left, Acc) ->
    {Created, _} = R = Attempt(Try),
    case Created =:= 0 orelse Left =< 1 of
        true -> lists:reverse([R | Acc]);
        false -> retry(Attempt, Try + 1, Left - 1, [R | Acc])
    end.

fresh_names(Try) ->
    Unique = integer_to_binary(erlang:unique_integer([positive])),
    Prefix = iolist_to_binary(["lasp_converge_fresh_", integer_to_binary(Try), "_", Unique, "_"]),
    Names = [<<Prefix/binary, (integer_to_binary(I))/binary>> || I <- lists:seq(1, 50)],
    [N || N <- Names, not atom_exists(N)].

atom_exists(Name) ->
    try binary_to_existing_atom(Name, utf8) of
        _ -> true
    catch error:badarg -> false
    end.

fresh_inputs(Names) ->
    [N1, N2, N3, N4, N5, N6 | Rest] = Names,
    Types = ?M:types(),
    States = [{T, P} || T <- Types,
                        P <- [[N1], [{N2, 1}], {[N3], [N4]}, {[{N5, [{N6, 1}]}], {[{N1, 1}], []}},
                              {N2, N3}, N4]],
    Ops = [N1, {N2, N3}, {add, N4}, {rmv, N5}, {set, 1, N6}, {set, N1}, {N2, N3, N4},
           {increment, N5}, [N6]],
    #{states => States ++ [{N1, []}, {N2, [N3]}] ++ [{T, {N4}} || T <- Types],
      ops => Ops,
      names => Rest,
      types => Types}.

%% Calls of every function on the fresh data; the outcomes only classified.
run_calls(#{states := States, ops := Ops, names := Names, types := Types}) ->
    Bottoms = [B || T <- Types, {ok, B} <- [outcome(fun() -> ?M:new(T) end)]],
    [[outcome(fun() -> ?M:new(N) end) || N <- Names],
     [[outcome(fun() -> ?M:merge(S, B) end),
       outcome(fun() -> ?M:merge(B, S) end),
       outcome(fun() -> ?M:merge_all([B, S]) end),
       outcome(fun() -> ?M:equal(S, B) end),
       outcome(fun() -> ?M:is_inflation(S, B) end),
       outcome(fun() -> ?M:is_strict_inflation(B, S) end),
       outcome(fun() -> ?M:delta(S, B) end)]
      || S <- States, B <- Bottoms, element(1, S) =:= element(1, B)],
     [[outcome(fun() -> ?M:is_bottom(S) end),
       outcome(fun() -> ?M:query(S) end)] || S <- States],
     [[outcome(fun() -> ?M:mutate(Op, Actor, B) end),
       outcome(fun() -> ?M:delta_mutate(Op, Actor, B) end)]
      || Op <- Ops, Actor <- [hd(Names), {hd(Names), 1}], B <- Bottoms]].

%% ===================================================================
%% Helpers
%% ===================================================================

outcome(F) ->
    try F() of
        V -> {ok, V}
    catch
        Class:Reason -> {raised, Class, Reason}
    end.

%% A type is implemented when its bottom can be decoded.
implemented(Type) ->
    try ?M:is_bottom(?M:new(Type)) of
        _ -> true
    catch
        error:{badcrdt, {not_implemented, _}} -> false
    end.

implemented_types() ->
    [T || T <- ?M:types(), implemented(T)].

enumerate(L) ->
    lists:zip(lists:seq(1, length(L)), L).

note(Fmt, Args) ->
    io:format(user, "~n[lasp_converge_crdt_tests] " ++ Fmt ++ "~n", Args).
