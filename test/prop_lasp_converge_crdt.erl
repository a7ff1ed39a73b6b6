%% @doc PropEr properties of `lasp_converge_crdt' across the NIF boundary,
%% run from EUnit.
%%
%% States are built the way Lasp builds them: random sequences of real
%% operations through `mutate/3' and `delta_mutate/3' on 2-3 replicas, each
%% with its own actor, with random merges in either argument order. Three of
%% the states seen along the way (replica states, snapshots, deltas) are
%% then checked against the lattice laws, every type on its own.
%%
%% The garbage property feeds random and corrupted terms to every function:
%% each call returns or raises `error:{badcrdt, _}', nothing else.
%%
%% Types that still raise `{badcrdt, {not_implemented, T}}' are skipped with
%% a note on the console.
-module(prop_lasp_converge_crdt).

%% proper.hrl first: the other order redefines ?LET (STYLE.md).
-include_lib("proper/include/proper.hrl").
-include_lib("eunit/include/eunit.hrl").

-define(M, lasp_converge_crdt).
-define(BIG, '$prop_lasp_converge_big').
-define(LAW_TESTS, 300).
-define(GARBAGE_TESTS, 10000).
-define(OPTS(N), [{numtests, N}, {to_file, user}, {max_size, 30}]).

%% ===================================================================
%% EUnit entry points
%% ===================================================================

laws() ->
    [{commutative, "merge is commutative up to equal/2", fun prop_merge_commutative/1},
     {associative, "merge is associative up to equal/2", fun prop_merge_associative/1},
     {idempotent, "merge is idempotent: merge(A, A) =:= A", fun prop_merge_idempotent/1},
     {inflates, "merge inflates both arguments", fun prop_merge_is_inflation_of_both/1},
     {inflation, "is_inflation(A, B) =:= equal(merge(A, B), B)",
      fun prop_inflation_is_merge_order/1},
     {strict, "is_strict_inflation(A, B) =:= is_inflation(A, B) andalso not equal(A, B)",
      fun prop_strict_inflation_is_inflation_and_not_equal/1},
     {equal, "equal/2 is reflexive and symmetric", fun prop_equal_is_reflexive_and_symmetric/1},
     {delta, "delta law: equal(merge(delta(A, B), B), merge(A, B))", fun prop_delta_law/1},
     {merge_all, "merge_all([A, B, C]) =:= merge(merge(A, B), C)",
      fun prop_merge_all_is_fold_of_merge/1},
     {mutate_inflates, "every mutation is an inflation", fun prop_mutate_is_inflation/1},
     {mutate_is_merge_of_delta, "mutate(Op) is merge(delta_mutate(Op), State)",
      fun prop_mutate_is_merge_of_delta/1},
     {query_bounded, "query of a merge is bounded by the queries of its arguments",
      fun prop_query_of_merge_is_bounded/1}].

laws_test_() ->
    {Types, Skipped} = lists:partition(fun testable/1, ?M:types()),
    lists:foreach(fun(T) -> note("~p: ~s, properties skipped", [T, why_skipped(T)]) end,
                  Skipped),
    [{lists:flatten(io_lib:format("~p: ~s", [Type, Law])),
      {timeout, 120,
       ?_assert(proper:quickcheck(Prop(Type), ?OPTS(?LAW_TESTS)))}}
     || Type <- Types, {Id, Law, Prop} <- laws(), applies(Id, Type)].

garbage_test_() ->
    [{"garbage never crashes: a result or error:{badcrdt, _}",
      {timeout, 120,
       ?_assert(proper:quickcheck(prop_garbage_returns_or_raises_badcrdt(),
                                  ?OPTS(?GARBAGE_TESTS)))}}].

%% ===================================================================
%% Lattice laws
%% ===================================================================

prop_merge_commutative(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, _} = picks(Sc),
                AB = ?M:merge(A, B),
                BA = ?M:merge(B, A),
                ?WHENFAIL(show([{a, A}, {b, B}, {'merge(a,b)', AB}, {'merge(b,a)', BA}]),
                          ?M:equal(AB, BA))
            end).

prop_merge_associative(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, C} = picks(Sc),
                L = ?M:merge(?M:merge(A, B), C),
                R = ?M:merge(A, ?M:merge(B, C)),
                ?WHENFAIL(show([{a, A}, {b, B}, {c, C}, {'(a+b)+c', L}, {'a+(b+c)', R}]),
                          ?M:equal(L, R))
            end).

prop_merge_idempotent(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, _, _} = picks(Sc),
                AA = ?M:merge(A, A),
                ?WHENFAIL(show([{a, A}, {'merge(a,a)', AA}]),
                          AA =:= A andalso ?M:equal(AA, A))
            end).

prop_merge_is_inflation_of_both(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, _} = picks(Sc),
                AB = ?M:merge(A, B),
                ?WHENFAIL(show([{a, A}, {b, B}, {'merge(a,b)', AB}]),
                          ?M:is_inflation(A, AB) andalso ?M:is_inflation(B, AB))
            end).

prop_inflation_is_merge_order(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, _} = picks(Sc),
                Infl = ?M:is_inflation(A, B),
                ByMerge = ?M:equal(?M:merge(A, B), B),
                ?WHENFAIL(show([{a, A}, {b, B}, {is_inflation, Infl},
                                {'equal(merge(a,b),b)', ByMerge}]),
                          Infl =:= ByMerge)
            end).

prop_strict_inflation_is_inflation_and_not_equal(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, _} = picks(Sc),
                Strict = ?M:is_strict_inflation(A, B),
                Generic = ?M:is_inflation(A, B) andalso not ?M:equal(A, B),
                ?WHENFAIL(show([{a, A}, {b, B}, {is_strict_inflation, Strict},
                                {'is_inflation andalso not equal', Generic}]),
                          Strict =:= Generic)
            end).

prop_equal_is_reflexive_and_symmetric(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, _} = picks(Sc),
                Copy = binary_to_term(term_to_binary(A)),
                ?WHENFAIL(show([{a, A}, {b, B}]),
                          ?M:equal(A, A) andalso ?M:equal(A, Copy)
                          andalso ?M:equal(A, B) =:= ?M:equal(B, A))
            end).

prop_delta_law(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, _} = picks(Sc),
                D = ?M:delta(A, B),
                L = ?M:merge(D, B),
                R = ?M:merge(A, B),
                ?WHENFAIL(show([{a, A}, {b, B}, {'delta(a,b)', D}, {'merge(delta,b)', L},
                                {'merge(a,b)', R}]),
                          ?M:equal(L, R) andalso ?M:is_inflation(D, A))
            end).

prop_merge_all_is_fold_of_merge(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, C} = picks(Sc),
                All = ?M:merge_all([A, B, C]),
                Fold = ?M:merge(?M:merge(A, B), C),
                ?WHENFAIL(show([{a, A}, {b, B}, {c, C}, {merge_all, All}, {fold, Fold}]),
                          All =:= Fold)
            end).

prop_mutate_is_inflation(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                #{steps := Steps} = run(Sc),
                Bad = [S || {mutate, _Op, Before, After} = S <- Steps,
                            not ?M:is_inflation(Before, After)],
                ?WHENFAIL(show([{not_inflations, Bad}]), Bad =:= [])
            end).

%% types' state_type:mutate/3 is `merge(Delta, State)' (in that order); the
%% exact term must agree, except where an op draws random tokens (orset).
prop_mutate_is_merge_of_delta(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                #{steps := Steps} = run(Sc),
                Bad = [{Op, Actor, Before, Mutated, Merged}
                       || {mutate, {Op, Actor}, Before, Mutated} <- Steps,
                          {ok, D} <- [?M:delta_mutate(Op, Actor, Before)],
                          Merged <- [?M:merge(D, Before)],
                          Merged =/= Mutated],
                ?WHENFAIL(show([{'mutate =/= merge(delta_mutate, state)', Bad}]), Bad =:= [])
            end).

prop_query_of_merge_is_bounded(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, _} = picks(Sc),
                AB = ?M:merge(A, B),
                {QA, QB, QM} = {q(A), q(B), q(AB)},
                ?WHENFAIL(show([{a, A}, {b, B}, {'merge(a,b)', AB},
                                {'q(a)', QA}, {'q(b)', QB}, {'q(merge)', QM}]),
                          query_bounded(Type, QA, QB, QM))
            end).

%% Grow-only types: the merge's query holds both queries. Set-valued types
%% with removals: it invents no element. Registers: it is one of the two.
query_bounded(Type, QA, QB, QM) ->
    case query_kind(Type) of
        grow_set -> subset_eq(QA ++ QB, QM);
        number -> QM >= QA andalso QM >= QB;
        flag_or -> QM =:= (QA orelse QB);
        %% orset keeps the first argument's key term, which may be `=='
        %% to, but not `=:=', the element that made it visible.
        no_invention -> subset_eq(QM, QA ++ QB);
        one_of -> QM =:= QA orelse QM =:= QB
    end.

query_kind(state_gset) -> grow_set;
query_kind(state_gcounter) -> number;
query_kind(state_max_int) -> number;
query_kind(state_boolean) -> flag_or;
query_kind(state_twopset) -> no_invention;
query_kind(state_orset) -> no_invention;
query_kind(state_awset) -> no_invention;
query_kind(state_mvregister) -> no_invention;
query_kind(state_lwwregister) -> one_of;
query_kind(state_ivar) -> one_of;
query_kind(_) -> none.

applies(query_bounded, Type) -> query_kind(Type) =/= none;
%% orset draws a random token for every add.
applies(mutate_is_merge_of_delta, Type) -> Type =/= state_orset;
applies(_, _) -> true.

q(S) ->
    Q = ?M:query(S),
    case is_list(Q) orelse not sets:is_set(Q) of
        true -> Q;
        false -> sets:to_list(Q)
    end.

%% Every element of Xs is `==' to some element of Ys.
subset_eq(Xs, Ys) ->
    lists:all(fun(X) -> lists:any(fun(Y) -> Y == X end, Ys) end, Xs).

%% ===================================================================
%% Scenarios: replicas, real operations, merges
%% ===================================================================

-record(sc, {type, actors, pool, cmds, picks}).

scenario(Type) ->
    ?LET({NRep, Actors, Pool}, {choose(2, 3), actors(), pool(Type)},
         ?LET({Cmds, Picks}, {cmds(Type, NRep, Pool), {pick(), pick(), pick()}},
              #sc{type = Type, actors = lists:sublist(Actors, NRep), pool = Pool,
                  cmds = Cmds, picks = Picks})).

pick() -> choose(0, 1 bsl 20).

cmds(Type, NRep, Pool) ->
    Rep = choose(1, NRep),
    ?SIZED(Size,
           resize(min(Size, 25),
                  list(frequency([{6, {op, Rep, op(Type, Pool)}},
                                  {2, {delta_op, Rep, op(Type, Pool)}},
                                  {3, {merge, Rep, Rep, boolean()}}])))).

%% Actors: atoms from a fixed pool, binaries, tuples; all different (`==').
actors() ->
    ?SUCHTHAT(As, vector(3, actor()), length(lists:usort(As)) =:= 3).

actor() ->
    oneof([elements(['node1@127.0.0.1', 'node2@127.0.0.1', 'node3@127.0.0.1', a, b, c]),
           ?LET(N, choose(1, 9), <<"actor-", (integer_to_binary(N))/binary>>),
           ?LET({H, N}, {elements([lasp1@host, lasp2@host]), choose(1, 3)}, {H, N})]).

%% Elements: small integers, floats `==' to them, binaries, atoms, nested
%% tuples. awset keys are matched exactly by types (two `=='-but-not-`=:='
%% keys make it raise), so its pool holds no such pair.
pool(Type) ->
    ?LET(Es, ?LET(N, choose(1, 6), vector(N, elem())),
         case Type of
             state_awset -> lists:usort(Es);
             _ -> Es
         end).

elem() ->
    frequency([{3, choose(-2, 5)},
               {2, elements([0.0, 1.0, 2.0, -1.0, 0.5])},
               {2, elements([<<"a">>, <<"b">>, <<>>, <<"user">>])},
               {2, elements([apple, banana, 'user@example.com'])},
               {1, ?LET({T, N}, {elements([item, tag]), choose(1, 3)}, {T, N})},
               {1, ?LET(N, oneof([choose(1, 2), elements([1.0, 2.0])]), {tag, [N, {sub, <<"v">>}]})},
               {1, ?LET(E, elements([1, 1.0, a]), {E})}]).

op(Type, Pool) ->
    E = elements(Pool),
    Es = list(elements(Pool)),
    case Type of
        state_gcounter -> increment;
        state_max_int -> increment;
        state_pncounter -> elements([increment, decrement]);
        state_lexcounter -> elements([increment, decrement]);
        state_boolean -> true;
        state_gset -> {add, E};
        state_twopset -> oneof([{add, E}, {rmv, E}]);
        state_orset -> oneof([{add, E}, {rmv, E}, {add_all, Es}, {rmv_all, Es}]);
        state_awset -> oneof([{add, E}, {add, E}, {rmv, E}, {add_all, Es}, {rmv_all, Es}]);
        state_lwwregister -> {set, timestamp, E};
        state_mvregister -> {set, timestamp, E};
        state_ivar -> {set, first_of_pool};
        state_ewflag -> elements([enable, disable]);
        state_dwflag -> elements([enable, disable])
    end.

%% Types this module knows how to operate on.
has_ops(Type) ->
    lists:member(Type, [state_gcounter, state_max_int, state_pncounter, state_lexcounter,
                        state_boolean, state_gset, state_twopset, state_orset, state_awset,
                        state_lwwregister, state_mvregister, state_ivar, state_ewflag,
                        state_dwflag]).

testable(Type) ->
    implemented(Type) andalso has_ops(Type).

why_skipped(Type) ->
    case implemented(Type) of
        false -> "not implemented yet";
        true -> "no operation generator written for it"
    end.

%% Run the commands; every state seen is kept in `history' (replica states
%% after each step, and every delta), every mutation in `steps'.
run(#sc{type = Type, actors = Actors, pool = Pool, cmds = Cmds}) ->
    Bottom = ?M:new(Type),
    Reps0 = list_to_tuple([Bottom || _ <- Actors]),
    {_, Hist, Steps, _} =
        lists:foldl(
          fun(Cmd, {Reps, Hist, Steps, Step}) ->
                  case Cmd of
                      {merge, I, J, Order} ->
                          {SI, SJ} = {element(I, Reps), element(J, Reps)},
                          S1 = case Order of
                                   true -> ?M:merge(SI, SJ);
                                   false -> ?M:merge(SJ, SI)
                               end,
                          {setelement(I, Reps, S1), [S1 | Hist], Steps, Step + 1};
                      {Kind, R, Op0} ->
                          S = element(R, Reps),
                          Actor = lists:nth(R, Actors),
                          case instantiate(Type, Op0, Step, Pool, S) of
                              skip ->
                                  {Reps, Hist, Steps, Step + 1};
                              Op when Kind =:= op ->
                                  case mutate_ok(?M:mutate(Op, Actor, S)) of
                                      {ok, S1} ->
                                          {setelement(R, Reps, S1), [S1 | Hist],
                                           [{mutate, {Op, Actor}, S, S1} | Steps], Step + 1}
                                  end;
                              Op ->
                                  case mutate_ok(?M:delta_mutate(Op, Actor, S)) of
                                      {ok, D} ->
                                          S1 = ?M:merge(D, S),
                                          {setelement(R, Reps, S1), [S1, D | Hist],
                                           [{delta_mutate, {Op, Actor}, S, S1} | Steps],
                                           Step + 1}
                                  end
                          end
                  end
          end, {Reps0, [Bottom], [], 1}, Cmds),
    #{history => lists:reverse(Hist), steps => lists:reverse(Steps)}.

%% No operation generated here makes types 0.1.8 answer `{error, _}'
%% (its awset removes an absent element with an empty delta).
mutate_ok({ok, S}) -> {ok, S};
mutate_ok(Other) -> erlang:error({unexpected_mutate_result, Other}).

%% Timestamps are unique per scenario (LWW ties are not commutative in
%% types); an ivar is set once, to one value shared by all replicas.
instantiate(_Type, {set, timestamp, V}, Step, _Pool, _S) ->
    {set, Step, V};
instantiate(state_ivar, {set, first_of_pool}, _Step, [V | _], S) ->
    case S of
        {state_ivar, undefined} -> {set, V};
        _ -> skip
    end;
instantiate(_Type, Op, _Step, _Pool, _S) ->
    Op.

picks(Sc) ->
    #{history := Hist} = run(Sc),
    {P1, P2, P3} = Sc#sc.picks,
    N = length(Hist),
    {lists:nth(1 + P1 rem N, Hist), lists:nth(1 + P2 rem N, Hist),
     lists:nth(1 + P3 rem N, Hist)}.

%% ===================================================================
%% Garbage: every function, random and corrupted inputs
%% ===================================================================

prop_garbage_returns_or_raises_badcrdt() ->
    Seeds = seeds(),
    ?FORALL(Call, garbage_call(Seeds),
            begin
                Outcome = classify(Call),
                ?WHENFAIL(show([{call, Call}, {outcome, Outcome}]), Outcome =:= fine)
            end).

classify({F, Args0}) ->
    Args = expand(Args0),
    try apply(?M, F, Args) of
        _ -> fine
    catch
        error:{badcrdt, _} -> fine;
        Class:Reason -> {Class, Reason}
    end.

garbage_call(Seeds) ->
    St = state_like(Seeds),
    Valid = elements(Seeds),
    Two = frequency([{1, {St, St}}, {1, {St, Valid}}, {1, {Valid, St}}, {1, {Valid, Valid}},
                     {6, same_type_pair(Seeds)}]),
    oneof([?LET(X, oneof([garbage(), elements(?M:types())]), {new, [X]}),
           ?LET({A, B}, Two, {merge, [A, B]}),
           ?LET(L, oneof([list(oneof([St, Valid])), garbage(), improper(oneof([St, Valid]))]),
                {merge_all, [L]}),
           ?LET({A, B}, Two, {equal, [A, B]}),
           ?LET({A, B}, Two, {is_inflation, [A, B]}),
           ?LET({A, B}, Two, {is_strict_inflation, [A, B]}),
           ?LET(A, oneof([St, Valid]), {is_bottom, [A]}),
           ?LET(A, oneof([St, Valid]), {query, [A]}),
           ?LET({A, B}, Two, {delta, [A, B]}),
           ?LET({Op, Actor, S}, {garbage_op(), actor_or_garbage(), oneof([St, Valid, Valid])},
                {mutate, [Op, Actor, S]}),
           ?LET({Op, Actor, S}, {garbage_op(), actor_or_garbage(), oneof([St, Valid, Valid])},
                {delta_mutate, [Op, Actor, S]})]).

%% A corrupted state and a valid one of the same type, in either order.
same_type_pair(Seeds) ->
    ?LET(S, elements(Seeds),
         ?LET({C, V}, {corrupt(S), elements([X || X <- Seeds, element(1, X) =:= element(1, S)])},
              oneof([{C, V}, {V, C}]))).

actor_or_garbage() ->
    oneof([actor(), garbage()]).

%% Something shaped like a state: a corrupted real state, a type atom with a
%% random payload, or anything at all.
state_like(Seeds) ->
    frequency([{5, ?LET(S, elements(Seeds), corrupt(S))},
               {3, ?LET({T, P}, {elements(?M:types()), oneof([garbage(), big()])}, {T, P})},
               {1, oneof([garbage(), big()])}]).

garbage_op() ->
    oneof([elements([increment, decrement, true, enable, disable, add, rmv, set]),
           ?LET({Tag, X}, {elements([add, rmv, add_all, rmv_all, set, add_by_token, apply]),
                           oneof([garbage(), elem(), list(elem())])}, {Tag, X}),
           ?LET({X, Y}, {oneof([int(), garbage()]), oneof([elem(), garbage()])}, {set, X, Y}),
           garbage()]).

%% Replace one random subterm of T by garbage, or reorder, duplicate or
%% break one of its lists.
corrupt(T) ->
    frequency([{2, garbage()}, {1, big()}, {8, corrupt_inside(T)}]).

corrupt_inside(T) when is_tuple(T), tuple_size(T) > 0 ->
    ?LET(I, choose(1, tuple_size(T)),
         ?LET(E, corrupt(element(I, T)), setelement(I, T, E)));
corrupt_inside([_ | _] = L) when length(L) > 0 ->
    case is_proper(L) of
        false -> garbage();
        true ->
            ?LET(I, choose(1, length(L)),
                 oneof([?LET(E, corrupt(lists:nth(I, L)), replace_nth(I, E, L)),
                        lists:reverse(L),
                        L ++ [lists:nth(I, L)],
                        [lists:nth(I, L) | L],
                        ?LET(Tail, garbage_leaf(), L ++ Tail),
                        ?LET(X, garbage(), lists:sublist(L, I) ++ [X | lists:nthtail(I, L)])]))
    end;
corrupt_inside(_) ->
    garbage().

is_proper(L) ->
    try length(L) of _ -> true
    catch error:badarg -> false
    end.

replace_nth(I, E, L) ->
    lists:sublist(L, I - 1) ++ [E | lists:nthtail(I, L)].

improper(G) ->
    ?LET({Xs, Tail}, {non_empty(list(G)), garbage_leaf()}, Xs ++ Tail).

garbage() ->
    ?SIZED(Size, garbage(min(Size, 5))).

garbage(0) ->
    garbage_leaf();
garbage(N) ->
    frequency([{6, garbage_leaf()},
               {2, ?LAZY(?LET(L, list(garbage(N div 2)), list_to_tuple(L)))},
               {2, ?LAZY(list(garbage(N div 2)))},
               {1, ?LAZY(improper(garbage(N div 2)))},
               {1, ?LAZY(?LET(KVs, list({garbage(N div 3), garbage(N div 3)}), maps:from_list(KVs)))},
               {1, ?LAZY(?LET(KVs, list({garbage(N div 3), garbage(N div 3)}), lists:usort(KVs)))},
               {1, ?LAZY(?LET({T, P}, {elements(?M:types()), garbage(N - 1)}, {T, P}))}]).

garbage_leaf() ->
    frequency([{3, int()},
               {1, elements([1 bsl 63, (1 bsl 63) - 1, -(1 bsl 63), -(1 bsl 63) - 1,
                             1 bsl 64, 1 bsl 200, -(1 bsl 90)])},
               {2, elements([0.0, -0.0, 1.0, 2.5, 1.0e300, -1.0e-300,
                             9007199254740992.0, 18446744073709551616.0])},
               {2, elements([undefined, true, false, ok, error, increment, add, rmv, set,
                             enable, disable, vclock, delta, dot_map, dot_set, state_gmap,
                             state_awmap, state_pair | ?M:types()])},
               {2, binary()},
               {1, ?LET(N, choose(1, 7), <<0:N>>)},
               {1, elements([[], {}, #{}, <<>>, "", [[]], {{}}])},
               {1, ?LAZY(self())},
               {1, ?LAZY(make_ref())},
               {1, elements([fun() -> ok end, fun lists:reverse/1])}]).

%% Past the normal-scheduler budget, or deeper than any real state.
big() ->
    oneof([?LET(N, choose(1, 3000), {?BIG, deep, N}),
           ?LET(N, choose(1000, 5000), {?BIG, seq, N}),
           ?LET(N, choose(1000, 5000), {?BIG, gset, N})]).

%% Large and deep terms travel through PropEr as small descriptors (PropEr
%% walks every generated value), and are built just before the call.
expand({?BIG, deep, N}) ->
    lists:foldl(fun(I, Acc) when I rem 2 =:= 0 -> [Acc]; (_, Acc) -> {Acc} end,
                leaf, lists:seq(1, N));
expand({?BIG, seq, N}) ->
    lists:seq(1, N);
expand({?BIG, gset, N}) ->
    {state_gset, lists:seq(1, N)};
expand([H | T]) ->
    [expand(H) | expand(T)];
expand(T) when is_tuple(T) ->
    list_to_tuple(expand(tuple_to_list(T)));
expand(M) when is_map(M) ->
    maps:from_list(expand(maps:to_list(M)));
expand(X) ->
    X.

%% Valid states of every implemented type to corrupt.
seeds() ->
    Implemented = [T || T <- ?M:types(), implemented(T)],
    Bottoms = [?M:new(T) || T <- Implemented],
    Grown = lists:append(
              [lists:sublist(lists:reverse(maps:get(history, run(seed_scenario(T)))), 4)
               || T <- Implemented, has_ops(T)]),
    lists:usort(Bottoms ++ Grown).

seed_scenario(Type) ->
    Pool = [1, <<"b">>, {tag, [1, {sub, <<"v">>}]}, apple],
    Ops = [{op, R, Op} || R <- [1, 2, 1], Op <- seed_ops(Type, Pool)],
    #sc{type = Type, actors = ['node1@127.0.0.1', <<"actor-2">>], pool = Pool,
        cmds = Ops ++ [{merge, 1, 2, true}] ++ Ops, picks = {0, 0, 0}}.

seed_ops(Type, Pool) ->
    case Type of
        state_gcounter -> [increment];
        state_max_int -> [increment];
        state_pncounter -> [increment, decrement];
        state_lexcounter -> [increment, decrement];
        state_boolean -> [true];
        state_gset -> [{add, E} || E <- Pool];
        state_twopset -> [{add, E} || E <- Pool] ++ [{rmv, hd(Pool)}];
        state_orset -> [{add, E} || E <- Pool] ++ [{rmv, hd(Pool)}];
        state_awset -> [{add, E} || E <- Pool] ++ [{rmv, hd(Pool)}];
        state_lwwregister -> [{set, timestamp, E} || E <- Pool];
        state_mvregister -> [{set, timestamp, E} || E <- Pool];
        state_ivar -> [{set, first_of_pool}];
        state_ewflag -> [enable, disable, enable];
        state_dwflag -> [disable, enable, disable]
    end.

%% ===================================================================
%% Helpers
%% ===================================================================

implemented(Type) ->
    try ?M:is_bottom(?M:new(Type)) of
        _ -> true
    catch
        error:{badcrdt, {not_implemented, _}} -> false
    end.

show(KVs) ->
    lists:foreach(fun({K, V}) -> io:format(user, "  ~p = ~P~n", [K, V, 40]) end, KVs).

note(Fmt, Args) ->
    io:format(user, "~n[prop_lasp_converge_crdt] " ++ Fmt ++ "~n", Args).
