%% @doc PropEr properties of `lasp_converge_crdt' across the NIF boundary,
%% run from EUnit.
%%
%% States are built the way Lasp builds them: random sequences of real
%% operations through `mutate/3' and `delta_mutate/3' on 2-3 replicas, each
%% with its own actor, with random merges in either argument order. Three of
%% the states seen along the way (replica states, snapshots, deltas) are
%% then checked against the lattice laws, every type on its own.
%%
%% Composite types (gmap, pair, awmap) draw their value types per scenario
%% (a gmap of gcounters, a pair of a gcounter and a gset, an awmap of
%% mvregisters, ...) and nest the operations: `{apply, Key, Op}',
%% `{fst, Op}', `{rmv, Key}'. Where types 0.1.8 itself raises on well-formed
%% states (bcounter once both sides hold the same transfer, awset_ps
%% equal/is_inflation on a delta), a law that meets that `{badcrdt, _}' is
%% counted as not checkable for that case; each law prints how many cases
%% it checked and fails if it checked none.
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
-define(TALLY, {?MODULE, tally}).
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
     {strict, "is_strict_inflation(A, B) =:= is_inflation(A, B) andalso not equal(A, B)"
              " (pair, bcounter: by parts)",
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
      {timeout, 120, fun() -> run_law(Type, Law, Prop) end}}
     || Type <- Types, {Id, Law, Prop} <- laws(), applies(Id, Type)].

%% Run one law, counting the cases it could check (see law/3).
run_law(Type, Law, Prop) ->
    Tally = counters:new(3, []),
    persistent_term:put(?TALLY, Tally),
    try
        Passed = proper:quickcheck(Prop(Type), ?OPTS(?LAW_TESTS)),
        Checked = counters:get(Tally, 1),
        Unchecked = counters:get(Tally, 2),
        Excused = counters:get(Tally, 3),
        case Unchecked + Excused > 0 orelse may_raise_type(Type)
            orelse lists:member(Type, composites()) of
            true ->
                note("~p: ~s: ~b cases checked, ~b not checkable (types raises), "
                     "~b where types 0.1.8 itself breaks the law",
                     [Type, Law, Checked, Unchecked, Excused]);
            false ->
                ok
        end,
        ?assert(Passed),
        ?assert(Checked > 0)
    after
        persistent_term:erase(?TALLY)
    end.

garbage_test_() ->
    [{"garbage never crashes: a result or error:{badcrdt, _}",
      {timeout, 120,
       ?_assert(proper:quickcheck(prop_garbage_returns_or_raises_badcrdt(),
                                  ?OPTS(?GARBAGE_TESTS)))}}].

term_order_test_() ->
    [{"the NIF orders terms as Erlang does (merge of one-element gsets, "
      "the order check of a two-element gset)",
      {timeout, 120,
       ?_assert(proper:quickcheck(prop_term_order_is_erlangs(),
                                  [{numtests, 3000}, {to_file, user}, {max_size, 20}]))}},
     {"tuples nested past the native comparison's depth still compare right",
      fun deep_terms_compare_right/0}].

%% ===================================================================
%% Term order: the NIF's comparisons against the VM's
%% ===================================================================

%% Merging `[A]' with `[B]' is `ordsets:union/2' (which keeps A on `=='), and
%% `[A, B]' is a valid gset exactly when `A < B'.
prop_term_order_is_erlangs() ->
    ?FORALL({A, B}, {order_term(), order_term()},
            begin
                Union = ?M:merge({state_gset, [A]}, {state_gset, [B]}),
                Valid = try ?M:is_bottom({state_gset, [A, B]}) of
                            false -> true
                        catch error:{badcrdt, _} -> false
                        end,
                ?WHENFAIL(show([{a, A}, {b, B}, {union, Union}, {valid, Valid}]),
                          Union =:= {state_gset, ordsets:union([A], [B])}
                          andalso Valid =:= (A < B))
            end).

%% Terms that meet often and differ late: a small pool of leaves of every
%% kind the NIF reads itself (small integers, atoms, heap and refc binaries,
%% tuples, lists) or hands to the VM (floats equal to integers, bignums,
%% sub-binaries, bitstrings, pids, references, maps), nested in tuples and
%% proper and improper lists.
order_term() ->
    ?SIZED(S, order_term(S)).

order_term(S) when S =< 1 ->
    order_leaf();
order_term(S) ->
    Sub = order_term(S div 3),
    frequency([{3, order_leaf()},
               {2, ?LET(L, list(Sub), list_to_tuple(L))},
               {2, list(Sub)},
               {1, ?LET({L, T}, {non_empty(list(Sub)), order_leaf()}, improper_of(L, T))}]).

order_leaf() ->
    Long = binary:copy(<<"x">>, 200),
    oneof([integer(-3, 3),
           elements([-1.0, 0.0, 1.0, 2.5]),
           elements([1 bsl 64, -(1 bsl 64), (1 bsl 64) + 1]),
           elements([a, b, item, 'lasp@host', '']),
           ?LET(N, integer(0, 3), binary:copy(<<"b">>, N)),
           ?LET(N, integer(62, 66), <<(binary:copy(<<"k">>, N))/binary, N>>),
           ?LET(N, integer(0, 2), <<Long/binary, N>>),
           ?LET(N, integer(0, 4), binary:part(Long, N, 3)),
           elements([<<1:3>>, <<"b", 1:1>>]),
           elements([self(), make_ref(), #{}, #{a => 1}, []])]).

improper_of([X], T) -> [X | T];
improper_of([X | Xs], T) -> [X | improper_of(Xs, T)].

deep_terms_compare_right() ->
    Nest = fun(Leaf) -> lists:foldl(fun(_, Acc) -> {x, Acc} end, Leaf, lists:seq(1, 60)) end,
    NestL = fun(Leaf) -> lists:foldl(fun(_, Acc) -> [Acc, y] end, Leaf, lists:seq(1, 60)) end,
    Pairs = [{Nest(1), Nest(2)}, {Nest(<<"b">>), Nest(<<"a">>)}, {Nest(1), Nest(1.0)},
             {NestL(a), NestL(b)}, {NestL(2), NestL(2)}],
    [begin
         ?assertEqual({state_gset, ordsets:union([A], [B])},
                      ?M:merge({state_gset, [A]}, {state_gset, [B]})),
         ?assertEqual({state_gset, ordsets:union([B], [A])},
                      ?M:merge({state_gset, [B]}, {state_gset, [A]}))
     end || {A, B} <- Pairs].

%% ===================================================================
%% Lattice laws
%% ===================================================================

prop_merge_commutative(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, _} = picks(Sc),
                law(Type, [A, B],
                    fun() ->
                            AB = ?M:merge(A, B),
                            BA = ?M:merge(B, A),
                            {?M:equal(AB, BA),
                             [{a, A}, {b, B}, {'merge(a,b)', AB}, {'merge(b,a)', BA}]}
                    end)
            end).

prop_merge_associative(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, C} = picks(Sc),
                law(Type, [A, B, C],
                    fun() ->
                            L = ?M:merge(?M:merge(A, B), C),
                            R = ?M:merge(A, ?M:merge(B, C)),
                            {?M:equal(L, R),
                             [{a, A}, {b, B}, {c, C}, {'(a+b)+c', L}, {'a+(b+c)', R}]}
                    end,
                    fun types_breaks_associativity/2)
            end).

prop_merge_idempotent(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, _, _} = picks(Sc),
                law(Type, [A],
                    fun() ->
                            AA = ?M:merge(A, A),
                            {AA =:= A andalso ?M:equal(AA, A), [{a, A}, {'merge(a,a)', AA}]}
                    end)
            end).

prop_merge_is_inflation_of_both(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, _} = picks(Sc),
                law(Type, [A, B],
                    fun() ->
                            AB = ?M:merge(A, B),
                            {?M:is_inflation(A, AB) andalso ?M:is_inflation(B, AB),
                             [{a, A}, {b, B}, {'merge(a,b)', AB}]}
                    end)
            end).

prop_inflation_is_merge_order(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, _} = picks(Sc),
                law(Type, [A, B],
                    fun() ->
                            Infl = ?M:is_inflation(A, B),
                            ByMerge = ?M:equal(?M:merge(A, B), B),
                            {Infl =:= ByMerge,
                             [{a, A}, {b, B}, {is_inflation, Infl},
                              {'equal(merge(a,b),b)', ByMerge}]}
                    end,
                    fun types_breaks_inflation/2)
            end).

prop_strict_inflation_is_inflation_and_not_equal(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, _} = picks(Sc),
                law(Type, [A, B],
                    fun() ->
                            Strict = ?M:is_strict_inflation(A, B),
                            Expected = strict_by_parts(Type, A, B),
                            {Strict =:= Expected,
                             [{a, A}, {b, B}, {is_strict_inflation, Strict},
                              {expected, Expected}]}
                    end)
            end).

%% README §5: every type uses the generic strict inflation except pair and
%% bcounter, whose strict inflation is (strict1 and infl2) or (infl1 and
%% strict2) over their two components.
strict_by_parts(state_bcounter, {state_bcounter, {P1, T1}}, {state_bcounter, {P2, T2}}) ->
    strict_by_parts(state_pair, {state_pair, {P1, wrap_transfers(T1)}},
                    {state_pair, {P2, wrap_transfers(T2)}});
strict_by_parts(Type, {Type, {X1, Y1}}, {Type, {X2, Y2}})
  when Type =:= state_pair ->
    (?M:is_strict_inflation(X1, X2) andalso ?M:is_inflation(Y1, Y2))
        orelse (?M:is_inflation(X1, X2) andalso ?M:is_strict_inflation(Y1, Y2));
strict_by_parts(_Type, A, B) ->
    ?M:is_inflation(A, B) andalso not ?M:equal(A, B).

%% A bcounter's transfers are a gmap of max_ints whose values are raw
%% integers (README §5), which is no well-formed gmap; wrapped as
%% `{state_max_int, N}' it is one, and agrees with types wherever types does
%% not raise (a shared `{From, To}' key; then the NIF raises too).
wrap_transfers({state_gmap, {CType, T}}) ->
    {state_gmap, {CType, [{K, {state_max_int, N}} || {K, N} <- T]}}.

prop_equal_is_reflexive_and_symmetric(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, _} = picks(Sc),
                law(Type, [A, B],
                    fun() ->
                            Copy = binary_to_term(term_to_binary(A)),
                            {?M:equal(A, A) andalso ?M:equal(A, Copy)
                             andalso ?M:equal(A, B) =:= ?M:equal(B, A),
                             [{a, A}, {b, B}]}
                    end)
            end).

prop_delta_law(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, _} = picks(Sc),
                law(Type, [A, B],
                    fun() ->
                            D = ?M:delta(A, B),
                            L = ?M:merge(D, B),
                            R = ?M:merge(A, B),
                            {?M:equal(L, R) andalso ?M:is_inflation(D, A),
                             [{a, A}, {b, B}, {'delta(a,b)', D}, {'merge(delta,b)', L},
                              {'merge(a,b)', R}]}
                    end)
            end).

prop_merge_all_is_fold_of_merge(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, C} = picks(Sc),
                law(Type, [A, B, C],
                    fun() ->
                            All = ?M:merge_all([A, B, C]),
                            Fold = ?M:merge(?M:merge(A, B), C),
                            {All =:= Fold,
                             [{a, A}, {b, B}, {c, C}, {merge_all, All}, {fold, Fold}]}
                    end)
            end).

prop_mutate_is_inflation(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                #{steps := Steps} = run(Sc),
                Bad = [S || {mutate, _Op, Before, After} = S <- Steps,
                            not step_law(Type, [Before, After],
                                         fun() -> ?M:is_inflation(Before, After) end)],
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
                          Merged <- [catch_merge(Type, D, Before)],
                          not step_law(Type, [D, Before],
                                       fun() -> raise_if_caught(Merged) =:= Mutated end)],
                ?WHENFAIL(show([{'mutate =/= merge(delta_mutate, state)', Bad}]), Bad =:= [])
            end).

catch_merge(_Type, X, Y) ->
    try ?M:merge(X, Y)
    catch error:{badcrdt, _} = E -> {'$caught', E}
    end.

raise_if_caught({'$caught', E}) -> erlang:error(E);
raise_if_caught(X) -> X.

%% One case of a law: `Fun' computes `{Holds, Shown}'. If it raises
%% `error:{badcrdt, _}' where types 0.1.8 raises too on these inputs
%% (may_raise/2), the case is not checkable: it is counted, not failed.
law(Type, Inputs, Fun) ->
    law(Type, Inputs, Fun, fun(_, _) -> false end).

%% `TypesBreaks(Type, Inputs)': types 0.1.8 itself breaks the law on such
%% inputs, so a false result is counted (and printed), not failed.
law(Type, Inputs, Fun, TypesBreaks) ->
    try Fun() of
        {true, _Shown} ->
            tally(1),
            true;
        {Holds, Shown} ->
            case TypesBreaks(Type, Inputs) of
                true ->
                    tally(3),
                    true;
                false ->
                    ?WHENFAIL(show(Shown), Holds)
            end
    catch
        error:{badcrdt, Why} = Reason ->
            case may_raise(Type, Inputs, Why) of
                true ->
                    tally(2),
                    true;
                false ->
                    ?WHENFAIL(show([{inputs, Inputs}, {raised, Reason}]), false)
            end
    end.

%% The same for one step of a run: true, false, or true when not checkable.
step_law(Type, Inputs, Fun) ->
    try Fun() of
        Holds -> tally(1), Holds
    catch
        error:{badcrdt, Why} ->
            case may_raise(Type, Inputs, Why) of
                true -> tally(2), true;
                false -> false
            end
    end.

tally(Ix) ->
    case persistent_term:get(?TALLY, undefined) of
        undefined -> ok;
        Ref -> counters:add(Ref, Ix, 1)
    end.

%% README §5. bcounter: its transfers map holds raw integers, so types'
%% merge, equal and is_inflation raise once two sides hold the same
%% `{From, To}' (even `merge(X, X)'); any input with a transfer may meet
%% that. awset_ps: equal and is_inflation raise on a delta (its AllEvents is
%% an ordset, not a vclock).
may_raise(state_bcounter, Inputs, {conflict, state_bcounter}) ->
    lists:any(fun has_transfer/1, Inputs);
may_raise(state_awset_ps, Inputs, {malformed, state_awset_ps}) ->
    lists:any(fun is_ps_delta/1, Inputs);
may_raise(_Type, _Inputs, _Why) ->
    false.

%% awset_ps: a delta's AllEvents is a bare ordset of events; types' merge
%% joins it into a vclock (JAE, README §5), which then claims every earlier
%% event of that actor as seen. Merged first into a state that lacks those
%% earlier events (bottom, say), the result treats them as removed, so
%% types' own merge is not associative once a delta is among the inputs:
%%   A = bottom, B = a delta holding only event {X, 2} (element <<"a">>),
%%   C = a full state with events {X, 1..3} (elements 2, <<"a">>, apple):
%%   merge(merge(A, B), C) drops element 2, merge(A, merge(B, C)) keeps it.
%% The NIF follows types term for term here (README §5, merge steps 2-3).
types_breaks_associativity(state_awset_ps, Inputs) ->
    lists:any(fun is_ps_delta/1, Inputs);
types_breaks_associativity(_Type, _Inputs) ->
    false.

%% awset_ps: types' is_inflation compares the vclocks with VI (README §5),
%% which stops at the first entry whose counter differs and answers with
%% that entry alone. So when A's vclock lists `{X, 1}' before `{Y, 7}' and B
%% holds `{X, 2}' but no Y at all, types says B inflates A, although the
%% merge adds Y's events to B:
%%   A = {vclock, [{X, 1}, {Y, 7}]} (one element, added by both),
%%   B = {vclock, [{X, 2}]} (the same element, X's adds only):
%%   is_inflation(A, B) = true, equal(merge(A, B), B) = false.
%% Such a case is excused where VI's answer differs from comparing every
%% entry; the NIF follows types term for term.
types_breaks_inflation(state_awset_ps, [{_, {_, _, {vclock, VA}}}, {_, {_, _, {vclock, VB}}}]) ->
    vi_first_difference(VA, VB) =/= vclock_dominated(VA, VB);
types_breaks_inflation(_Type, _Inputs) ->
    false.

vi_first_difference([], _VB) ->
    true;
vi_first_difference([{Id, C} | Rest], VB) ->
    case lists:keyfind(Id, 1, VB) of
        false -> false;
        {_, CB} when CB == C -> vi_first_difference(Rest, VB);
        {_, CB} -> C < CB
    end.

vclock_dominated(VA, VB) ->
    lists:all(fun({Id, C}) ->
                      case lists:keyfind(Id, 1, VB) of
                          false -> false;
                          {_, CB} -> C =< CB
                      end
              end, VA).

may_raise_type(Type) ->
    lists:member(Type, [state_bcounter, state_awset_ps]).

has_transfer({state_bcounter, {_, {state_gmap, {_, [_ | _]}}}}) -> true;
has_transfer(_) -> false.

is_ps_delta({state_awset_ps, {_, _, {vclock, _}}}) -> false;
is_ps_delta({state_awset_ps, _}) -> true;
is_ps_delta(_) -> false.

prop_query_of_merge_is_bounded(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {A, B, _} = picks(Sc),
                law(Type, [A, B],
                    fun() ->
                            AB = ?M:merge(A, B),
                            {QA, QB, QM} = {q(A), q(B), q(AB)},
                            {query_bounded(Type, QA, QB, QM),
                             [{a, A}, {b, B}, {'merge(a,b)', AB},
                              {'q(a)', QA}, {'q(b)', QB}, {'q(merge)', QM}]}
                    end)
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

-record(sc, {type, bottom, actors, pool, cmds, picks}).

scenario(Type) ->
    ?LET({NRep, Actors, Pool, Bottom}, {choose(2, 3), actors(), pool(Type), bottom(Type)},
         ?LET({Cmds, Picks}, {cmds(Bottom, NRep, Pool), {pick(), pick(), pick()}},
              #sc{type = Type, bottom = Bottom, actors = lists:sublist(Actors, NRep),
                  pool = Pool, cmds = Cmds, picks = Picks})).

%% The starting state. Composites draw their value types: those the
%% vectors cover, except orset (random tokens, see
%% prop_mutate_is_merge_of_delta) and ivar (set once, see instantiate/6).
bottom(state_gmap) ->
    ?LET(CType, elements([state_gcounter, state_pncounter, state_max_int, state_boolean,
                          state_gset, state_twopset, state_awset, state_lwwregister]),
         {state_gmap, {CType, []}});
bottom(state_pair) ->
    ?LET({T1, T2}, elements([{state_gcounter, state_gset}, {state_awset, state_gcounter},
                             {state_boolean, state_max_int}, {state_lwwregister, state_pncounter},
                             {state_twopset, state_awset}, {state_gset, state_awset}]),
         {state_pair, {?M:new(T1), ?M:new(T2)}});
bottom(state_awmap) ->
    ?LET(CType, elements([state_awset, state_mvregister, state_ewflag, state_dwflag,
                          {state_awmap, [state_awset]}]),
         {state_awmap, {CType, {[], {[], []}}}});
bottom(Type) ->
    ?M:new(Type).

pick() -> choose(0, 1 bsl 20).

cmds(Bottom, NRep, Pool) ->
    Rep = choose(1, NRep),
    ?SIZED(Size,
           resize(min(Size, 25),
                  list(frequency([{6, {op, Rep, state_op(Bottom, Pool)}},
                                  {2, {delta_op, Rep, state_op(Bottom, Pool)}},
                                  {3, {merge, Rep, Rep, boolean()}}])))).

%% Actors: atoms from a fixed pool, binaries, tuples; all different (`==').
actors() ->
    ?SUCHTHAT(As, vector(3, actor()), length(lists:usort(As)) =:= 3).

actor() ->
    oneof([elements(['node1@127.0.0.1', 'node2@127.0.0.1', 'node3@127.0.0.1', a, b, c]),
           ?LET(N, choose(1, 9), <<"actor-", (integer_to_binary(N))/binary>>),
           ?LET({H, N}, {elements([lasp1@host, lasp2@host]), choose(1, 3)}, {H, N})]).

%% Elements: small integers, bignums, floats `==' to either, binaries,
%% atoms, nested tuples and lists holding them. awset keys are matched
%% exactly by types (two `=='-but-not-`=:=' keys make it raise), so its pool
%% (and a composite's, which may hold awsets) holds no such pair; awset_ps
%% keys its orddicts by `==' and meets them.
pool(Type) ->
    ?LET(Es, ?LET(N, choose(1, 6), vector(N, elem())),
         case lists:member(Type, [state_awset | composites()]) of
             true -> lists:usort(Es);
             false -> Es
         end).

composites() ->
    [state_gmap, state_pair, state_awmap, state_bcounter].

elem() ->
    frequency([{3, choose(-2, 5)},
               {2, elements([0.0, 1.0, 2.0, -1.0, 0.5])},
               {1, elements([1 bsl 64, (1 bsl 64) + 1, -(1 bsl 70), 1 bsl 70,
                             float(1 bsl 64), float(-(1 bsl 70))])},
               {1, ?LET(N, elements([1, 1.0, 1 bsl 64, float(1 bsl 64)]),
                        oneof([[N], [a, {N}], {[N, <<"v">>]}]))},
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
        %% Timestamps past 64 bits too (types' `non_neg_integer()'; a
        %% negative one sorts below bottom's 0, where types' own delta law
        %% fails: prop_lasp_converge_crdt_types compares those with types);
        %% unique per step (instantiate/6).
        state_lwwregister -> {set, {timestamp, elements([0, 1 bsl 64, 1 bsl 70])}, E};
        state_mvregister -> {set, timestamp, E};
        state_ivar -> {set, first_of_pool};
        state_ewflag -> elements([enable, disable]);
        state_dwflag -> elements([enable, disable]);
        %% The actor is `{ObjectId, Actor}' (actor_for/2); removing an
        %% absent element is `{error, {precondition, _}}', a skipped step.
        state_awset_ps -> oneof([{add, E}, {add, E}, {rmv, E}]);
        %% `{move, N, {replica, I}}' names the receiving replica (may be the
        %% mover itself); a decrement or move beyond the actor's rights is
        %% `{error, {precondition, _}}', a skipped step.
        state_bcounter -> frequency([{3, increment}, {2, decrement},
                                     {2, {move, choose(1, 2), {replica, choose(1, 3)}}}])
    end.

%% Composites nest the value type's operations, as the state's structure
%% (its CType, or a pair's component types) says.
state_op({state_gmap, {CType, _}}, Pool) ->
    {apply, elements(Pool), op(CType, Pool)};
state_op({state_pair, {{T1, _}, {T2, _}}}, Pool) ->
    oneof([{fst, op(T1, Pool)}, {snd, op(T2, Pool)}]);
state_op({state_awmap, {CType, _}}, Pool) ->
    awmap_op(CType, Pool);
state_op({Type, _}, Pool) ->
    op(Type, Pool).

awmap_op(CType, Pool) ->
    K = elements(Pool),
    frequency([{3, {apply, K, ctype_op(CType, Pool)}}, {1, {rmv, K}}]).

ctype_op({state_awmap, [Sub]}, Pool) -> awmap_op(Sub, Pool);
ctype_op(Type, Pool) -> op(Type, Pool).

%% Types this module knows how to operate on.
has_ops(Type) ->
    lists:member(Type, [state_gcounter, state_max_int, state_pncounter, state_lexcounter,
                        state_boolean, state_gset, state_twopset, state_orset, state_awset,
                        state_lwwregister, state_mvregister, state_ivar, state_ewflag,
                        state_dwflag, state_awset_ps | composites()]).

testable(Type) ->
    implemented(Type) andalso has_ops(Type).

why_skipped(Type) ->
    case implemented(Type) of
        false -> "not implemented yet";
        true -> "no operation generator written for it"
    end.

%% Run the commands; every state seen is kept in `history' (replica states
%% after each step, and every delta), every mutation in `steps'.
run(#sc{type = Type, bottom = Bottom, actors = Actors, pool = Pool, cmds = Cmds}) ->
    Reps0 = list_to_tuple([Bottom || _ <- Actors]),
    {_, Hist, Steps, _} =
        lists:foldl(
          fun(Cmd, {Reps, Hist, Steps, Step}) ->
                  case Cmd of
                      {merge, I, J, Order} ->
                          {SI, SJ} = {element(I, Reps), element(J, Reps)},
                          case sim(Type, fun() when Order -> ?M:merge(SI, SJ);
                                            () -> ?M:merge(SJ, SI)
                                         end) of
                              {ok, S1} ->
                                  {setelement(I, Reps, S1), [S1 | Hist], Steps, Step + 1};
                              skip ->
                                  {Reps, Hist, Steps, Step + 1}
                          end;
                      {Kind, R, Op0} ->
                          S = element(R, Reps),
                          Actor = actor_for(Type, lists:nth(R, Actors)),
                          case instantiate(Type, Op0, Step, Pool, S, Actors) of
                              skip ->
                                  {Reps, Hist, Steps, Step + 1};
                              Op when Kind =:= op ->
                                  case sim(Type, fun() -> mutate_ok(?M:mutate(Op, Actor, S)) end) of
                                      {ok, S1} ->
                                          {setelement(R, Reps, S1), [S1 | Hist],
                                           [{mutate, {Op, Actor}, S, S1} | Steps], Step + 1};
                                      skip ->
                                          {Reps, Hist, Steps, Step + 1}
                                  end;
                              Op ->
                                  case sim(Type, fun() -> delta_step(Op, Actor, S) end) of
                                      {ok, {D, S1}} ->
                                          {setelement(R, Reps, S1), [S1, D | Hist],
                                           [{delta_mutate, {Op, Actor}, S, S1} | Steps],
                                           Step + 1};
                                      skip ->
                                          {Reps, Hist, Steps, Step + 1}
                                  end
                          end
                  end
          end, {Reps0, [Bottom], [], 1}, Cmds),
    #{history => lists:reverse(Hist), steps => lists:reverse(Steps)}.

%% One step of the simulation. A step types 0.1.8 refuses is skipped: a
%% precondition (`{error, {precondition, _}}': bcounter rights, awset_ps
%% removing an absent element), or a bcounter merge of two sides holding the
%% same transfer (types raises, README §5).
sim(Type, Fun) ->
    try Fun() of
        {error, {precondition, _}} when Type =:= state_bcounter; Type =:= state_awset_ps ->
            skip;
        {ok, _} = Ok -> Ok;
        S -> {ok, S}
    catch
        error:{badcrdt, {conflict, state_bcounter}} when Type =:= state_bcounter -> skip
    end.

delta_step(Op, Actor, S) ->
    case mutate_ok(?M:delta_mutate(Op, Actor, S)) of
        {ok, D} -> {D, ?M:merge(D, S)};
        Refused -> Refused
    end.

%% awset_ps events are `{ObjectId, Actor}', as Lasp passes them (README §3).
actor_for(state_awset_ps, Actor) -> {<<"prop-object">>, Actor};
actor_for(_Type, Actor) -> Actor.

%% Only types' own preconditions are `{error, _}' (see sim/2).
mutate_ok({ok, S}) -> {ok, S};
mutate_ok({error, {precondition, _}} = E) -> E;
mutate_ok(Other) -> erlang:error({unexpected_mutate_result, Other}).

%% Timestamps are unique per scenario (LWW ties are not commutative in
%% types), at any nesting level; an ivar is set once, to one value shared by
%% all replicas; a bcounter move names its receiver by replica number.
instantiate(state_ivar, {set, first_of_pool}, _Step, [V | _], S, _Actors) ->
    case S of
        {state_ivar, undefined} -> {set, V};
        _ -> skip
    end;
instantiate(_Type, Op, Step, _Pool, _S, Actors) ->
    nested(Op, Step, Actors).

nested({set, {timestamp, Base}, V}, Step, _Actors) -> {set, Base + Step, V};
nested({set, timestamp, V}, Step, _Actors) -> {set, Step, V};
nested({move, N, {replica, I}}, _Step, Actors) ->
    {move, N, lists:nth(min(I, length(Actors)), Actors)};
nested({apply, K, Op}, Step, Actors) -> {apply, K, nested(Op, Step, Actors)};
nested({fst, Op}, Step, Actors) -> {fst, nested(Op, Step, Actors)};
nested({snd, Op}, Step, Actors) -> {snd, nested(Op, Step, Actors)};
nested(Op, _Step, _Actors) -> Op.

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
    #sc{type = Type, bottom = ?M:new(Type), actors = ['node1@127.0.0.1', <<"actor-2">>],
        pool = Pool,
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
        state_dwflag -> [disable, enable, disable];
        state_awset_ps -> [{add, E} || E <- Pool] ++ [{rmv, hd(Pool)}];
        state_bcounter -> [increment, increment, {move, 1, {replica, 2}}, decrement];
        %% new/1 gives types' defaults: a gmap of max_ints, an awmap of
        %% awsets, a pair of ivars (set once: not mutated here).
        state_gmap -> [{apply, E, increment} || E <- Pool];
        state_awmap -> [{apply, E, {add, E}} || E <- Pool] ++ [{rmv, hd(Pool)}];
        state_pair -> []
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
