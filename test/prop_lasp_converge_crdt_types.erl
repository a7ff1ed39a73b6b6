%% @doc Differential properties: `lasp_converge_crdt' against the real
%% lasp-lang/types 0.1.8, term for term.
%%
%% The compiled types 0.1.8 that Lasp 0.8.2 ships is looked for in
%% `../shared/lasp-0.8/lib/types/ebin' beside the repository root (or in
%% `$LASP_CONVERGE_TYPES_EBIN'). It is added to the code path for these
%% tests only. Where it is absent, the properties are skipped with a note on
%% the console; the hand-written regressions in `lasp_converge_crdt_tests'
%% still run.
%%
%% For every one of the 19 types, a scenario runs random operations on 2-3
%% replicas through types' own `mutate/3', `delta_mutate/3' and `merge/2',
%% so every state is one types accepts. The pools are built to make
%% `=='-but-not-`=:=' terms meet: `1' and `1.0', `{1}' and `{1.0}', lists
%% and nested tuples holding them, bignums and the floats equal to them,
%% binaries and atoms; actors and lwwregister timestamps likewise (bignums
%% past 64 bits, negative ones). Then, on states seen along the way (replica
%% states, snapshots, deltas):
%%
%% - `merge' (both argument orders), `equal', `is_inflation' and
%%   `is_strict_inflation' (both orders), `is_bottom' and `query' give
%%   exactly (`=:=') what types gives;
%% - every deterministic `mutate/3' and `delta_mutate/3' step (all but
%%   orset's token-drawing `add'/`add_all') gives exactly what types gives,
%%   `{error, _}' answers included.
%%
%% Where types raises, the library raises too, in the same class (`error'),
%% with the reason `{badcrdt, Why}' its documentation promises instead of
%% types' `function_clause', `badmatch' or `case_clause'.
-module(prop_lasp_converge_crdt_types).

%% proper.hrl first: the other order redefines ?LET (STYLE.md).
-include_lib("proper/include/proper.hrl").
-include_lib("eunit/include/eunit.hrl").

-export([prop_agrees_with_types/1, write_vectors/1]).

-define(M, lasp_converge_crdt).
-define(TESTS, 250).
-define(TALLY, {?MODULE, tally}).

-define(TYPES, [state_gcounter, state_pncounter, state_lexcounter, state_max_int,
                state_boolean, state_gset, state_twopset, state_orset, state_awset,
                state_awset_ps, state_lwwregister, state_ivar, state_mvregister,
                state_ewflag, state_dwflag, state_bcounter, state_gmap, state_pair,
                state_awmap]).

-define(SET_TYPES, [state_gset, state_twopset, state_orset, state_awset,
                    state_mvregister, state_awset_ps]).

%% ===================================================================
%% EUnit entry points
%% ===================================================================

agrees_with_types_test_() ->
    case types_ebin() of
        {ok, Dir} ->
            {setup,
             fun() -> load_types(Dir) end,
             fun(Added) -> unload_types(Added) end,
             [{lists:flatten(io_lib:format("~p: every function agrees with types 0.1.8 "
                                           "term for term", [Type])),
               {timeout, 300, fun() -> run(Type) end}}
              || Type <- ?TYPES]};
        {error, Tried} ->
            note("types 0.1.8 not found (looked in ~p); differential properties "
                 "skipped. Set LASP_CONVERGE_TYPES_EBIN to its ebin folder to run them.",
                 [Tried]),
            []
    end.

%% States past the normal-scheduler budget take the dirty path: the same
%% comparisons on two large replicas per type, built by types, whose
%% elements, keys and actors are `==' twins of each other's.
large_states_agree_with_types_test_() ->
    case types_ebin() of
        {ok, Dir} ->
            {setup,
             fun() -> load_types(Dir) end,
             fun(Added) -> unload_types(Added) end,
             [{lists:flatten(io_lib:format("~p: large states agree with types 0.1.8", [Type])),
               {timeout, 300, fun() -> large(Type) end}}
              || Type <- [state_gset, state_twopset, state_orset, state_awset_ps,
                          state_gcounter, state_mvregister, state_gmap, state_pair]]};
        {error, _} ->
            %% agrees_with_types_test_/0 prints the note.
            []
    end.

large(Type) ->
    {A, B} = large_pair(Type, 1500),
    Bad = compare_lattice(Type, A, B),
    show_bad(Bad),
    ?assertEqual([], Bad).

%% Replica `a' uses integers, replica `b' the floats equal to them (and
%% bignums past 64 bits), in elements, keys, timestamps and actors.
large_pair(Type, N) ->
    Ints = [I * 3 || I <- lists:seq(1, N)],
    Twin = fun(I) when I rem 2 =:= 0 -> float(I); (I) -> I + (1 bsl 64) end,
    Ops = fun(Side) ->
                  X = fun(I) -> case Side of a -> I; b -> Twin(I) end end,
                  %% Timestamps are integers (types' guard): past 64 bits,
                  %% unique per side.
                  Ts = fun(I) -> case Side of a -> (1 bsl 70) + 2 * I;
                                              b -> (1 bsl 70) + 2 * I + 1
                                 end
                       end,
                  case Type of
                      state_gset -> [{{add, {e, X(I)}}, Side} || I <- Ints];
                      state_twopset -> [{Op, Side} || I <- Ints,
                                                     Op <- [{add, [X(I)]}, {rmv, [X(I + 3)]}]];
                      state_orset -> [{{add_by_token, <<(I rem 7):160>>, X(I)}, Side}
                                      || I <- Ints];
                      state_awset_ps -> [{{add, X(I)}, {<<"o">>, Side}} || I <- Ints];
                      state_gcounter -> [{increment, {n, X(I)}} || I <- Ints];
                      state_mvregister -> [{{set, 0, X(I)}, {n, X(I)}} || I <- Ints];
                      state_gmap -> [{{apply, X(I rem 500), {set, Ts(I), Side}},
                                      Side} || I <- Ints];
                      state_pair -> [{{fst, {set, Ts(I), Side}}, Side}
                                     || I <- lists:sublist(Ints, 20)]
                                    ++ [{{snd, {add, X(I)}}, Side} || I <- Ints]
                  end
          end,
    Bottom = case Type of
                 state_gmap -> state_gmap:new([state_lwwregister]);
                 state_pair -> state_pair:new([state_lwwregister, state_gset]);
                 _ -> Type:new()
             end,
    Build = fun(Side) ->
                    lists:foldl(fun({Op, Actor}, S) ->
                                        {ok, S1} = Type:mutate(Op, Actor, S),
                                        S1
                                end, Bottom, Ops(Side))
            end,
    {Build(a), Build(b)}.

run(Type) ->
    Tally = counters:new(3, []),
    persistent_term:put(?TALLY, Tally),
    try
        Passed = proper:quickcheck(prop_agrees_with_types(Type),
                                   [{numtests, ?TESTS}, {to_file, user}, {max_size, 30}]),
        [Calls, Raised, Mutations] = [counters:get(Tally, I) || I <- [1, 2, 3]],
        note("~p: ~b lattice calls and ~b mutate/delta_mutate calls compared with "
             "types, ~b of them where types raises",
             [Type, Calls, Mutations, Raised]),
        ?assert(Passed),
        ?assert(Calls > 0)
    after
        persistent_term:erase(?TALLY)
    end.

%% ===================================================================
%% The property
%% ===================================================================

prop_agrees_with_types(Type) ->
    ?FORALL(Sc, scenario(Type),
            begin
                {Hist, Steps} = simulate(Sc),
                {A, B, C} = picks(Sc, Hist),
                Bad = compare_lattice(Type, A, B) ++ compare_lattice(Type, B, C)
                    ++ lists:append([compare_mutation(Type, Step) || Step <- Steps]),
                ?WHENFAIL(show_bad(Bad), Bad =:= [])
            end).

%% Every lattice function on `(A, B)', both orders where it has two.
compare_lattice(Type, A, B) ->
    Calls = [{merge, [A, B]}, {merge, [B, A]}, {equal, [A, B]}, {equal, [B, A]},
             {is_inflation, [A, B]}, {is_inflation, [B, A]},
             {is_strict_inflation, [A, B]}, {is_strict_inflation, [B, A]},
             {is_bottom, [A]}, {is_bottom, [B]}, {query, [A]}, {query, [B]}],
    [Bad || {F, Args} <- Calls, Bad <- compare(Type, F, Args, 1)].

compare_mutation(Type, {Op, Actor, S}) ->
    compare(Type, mutate, [Op, Actor, S], 3) ++ compare(Type, delta_mutate, [Op, Actor, S], 3).

compare(Type, F, Args, Counter) ->
    Expected = outcome(fun() -> apply(Type, F, Args) end),
    Got = outcome(fun() -> apply(?M, F, Args) end),
    tally(Counter),
    case Expected of
        {raised, _, _} -> tally(2);
        _ -> ok
    end,
    case agrees(Expected, Got) of
        true -> [];
        false -> [#{call => {F, Args}, types => Expected, got => Got}]
    end.

agrees({ok, V}, {ok, W}) -> V =:= W;
agrees({raised, Class, _}, {raised, Class, {badcrdt, _}}) -> true;
agrees(_, _) -> false.

outcome(F) ->
    try F() of
        V -> {ok, V}
    catch
        Class:Reason -> {raised, Class, Reason}
    end.

%% ===================================================================
%% Scenarios, run by types itself
%% ===================================================================

-record(sc, {type, bottom, actors, cmds, picks}).

scenario(Type) ->
    ?LET({NRep, Actors, Pool, Bottom}, {choose(2, 3), actors(), pool(), bottom(Type)},
         ?LET({Cmds, Picks}, {cmds(Type, Bottom, NRep, Pool, Actors),
                              {pick(), pick(), pick()}},
              #sc{type = Type, bottom = Bottom, actors = lists:sublist(Actors, NRep),
                  cmds = Cmds, picks = Picks})).

pick() -> choose(0, 1 bsl 20).

bottom(state_gmap) ->
    ?LET(CType, elements([state_gcounter, state_pncounter, state_max_int, state_boolean,
                          state_gset, state_twopset, state_awset, state_lwwregister,
                          state_orset, state_lexcounter, {state_pair, [state_lwwregister,
                                                                       state_gset]},
                          {state_gmap, [state_lwwregister]}]),
         {state_gmap, {CType, []}});
bottom(state_pair) ->
    ?LET({T1, T2}, elements([{state_gcounter, state_gset}, {state_awset, state_gcounter},
                             {state_lwwregister, state_lwwregister},
                             {state_lwwregister, state_pncounter},
                             {state_twopset, state_awset}, {state_orset, state_lexcounter},
                             {state_mvregister, state_ewflag},
                             {{state_gmap, [state_lwwregister]}, state_max_int},
                             {{state_pair, [state_lwwregister, state_gset]}, state_gset}]),
         state_pair:new([T1, T2]));
bottom(state_awmap) ->
    ?LET(CType, elements([state_awset, state_mvregister, state_ewflag, state_dwflag,
                          {state_awmap, [state_awset]}, {state_awmap, [state_mvregister]}]),
         state_awmap:new([CType]));
bottom(Type) ->
    Type:new().

%% Actors: atoms, binaries, tuples, integers, and `=='-but-not-`=:=' pairs
%% (`{lasp, 1}' and `{lasp, 1.0}', `1' and `1.0'); replicas may share an
%% actor up to `=='.
actors() ->
    vector(3, actor()).

actor() ->
    elements(['node1@127.0.0.1', 'node2@127.0.0.1', <<"actor-1">>, <<"actor-2">>,
              {lasp, 1}, {lasp, 1.0}, 1, 1.0, 1 bsl 66, float(1 bsl 66), [a, 2], [a, 2.0]]).

%% A small pool of elements, drawn from a palette where most terms have a
%% twin that is `==' but not `=:='.
pool() ->
    ?LET(N, choose(1, 6), vector(N, elem())).

elem() ->
    elements([0, 0.0, 1, 1.0, 2, 2.0, -1, -1.0, 1 bsl 70, float(1 bsl 70),
              -(1 bsl 65), float(-(1 bsl 65)), (1 bsl 64) + 1,
              {1}, {1.0}, [1], [1.0], {t, [1, <<"v">>]}, {t, [1.0, <<"v">>]},
              {{2, a}}, {{2.0, a}}, <<"a">>, <<"b">>, <<>>, apple, banana,
              {tag, 1 bsl 64}, {tag, float(1 bsl 64)}, #{k => 1}, #{k => 1.0}, #{1 => k},
              #{1.0 => k}, <<1:3>>, <<"b", 1:1>>]).

%% lwwregister timestamps: bignums past 64 bits, negative ones, ties.
timestamp() ->
    elements([0, 1, 2, 7, -3, 1 bsl 63, (1 bsl 63) - 1, 1 bsl 64, (1 bsl 64) + 1,
              1 bsl 70, (1 bsl 70) + 1, -(1 bsl 64), -(1 bsl 70), 1 bsl 200]).

%% orset tokens from a small pool, so that two replicas may add by the same
%% token (add_by_token).
token() ->
    elements([<<1:160>>, <<2:160>>, <<3:160>>]).

cmds(Type, Bottom, NRep, Pool, Actors) ->
    Rep = choose(1, NRep),
    ?SIZED(Size,
           resize(min(Size, 20),
                  list(frequency([{6, {op, Rep, state_op(Type, Bottom, Pool, Actors)}},
                                  {2, {delta_op, Rep, state_op(Type, Bottom, Pool, Actors)}},
                                  {3, {merge, Rep, Rep, boolean()}}])))).

state_op(state_gmap, {state_gmap, {CType, _}}, Pool, Actors) ->
    %% `{apply, Key, OpType, Op}' may give a key another type than CType.
    frequency([{4, {apply, elements(Pool), ctype_op(CType, Pool, Actors)}},
               {1, ?LET(OpType, elements([state_gcounter, state_lwwregister]),
                        {apply, elements(Pool), OpType, op(OpType, Pool, Actors)})}]);
state_op(state_pair, {state_pair, {{T1, _} = F, {T2, _} = S}}, Pool, Actors) ->
    oneof([{fst, ctype_op(ctype_of(T1, F), Pool, Actors)},
           {snd, ctype_op(ctype_of(T2, S), Pool, Actors)}]);
state_op(state_awmap, {state_awmap, {CType, _}}, Pool, Actors) ->
    awmap_op(CType, Pool, Actors);
state_op(Type, _Bottom, Pool, Actors) ->
    op(Type, Pool, Actors).

ctype_of(state_gmap, {state_gmap, {CType, _}}) -> {state_gmap, [CType]};
ctype_of(state_pair, {state_pair, {{T1, _} = F, {T2, _} = S}}) ->
    {state_pair, [ctype_of(T1, F), ctype_of(T2, S)]};
ctype_of(T, _) -> T.

ctype_op({state_gmap, [CType]}, Pool, Actors) ->
    {apply, elements(Pool), ctype_op(CType, Pool, Actors)};
ctype_op({state_pair, [T1, T2]}, Pool, Actors) ->
    oneof([{fst, ctype_op(T1, Pool, Actors)}, {snd, ctype_op(T2, Pool, Actors)}]);
ctype_op({state_awmap, [Sub]}, Pool, Actors) ->
    awmap_op(Sub, Pool, Actors);
ctype_op(Type, Pool, Actors) ->
    op(Type, Pool, Actors).

awmap_op(CType, Pool, Actors) ->
    K = elements(Pool),
    frequency([{3, {apply, K, ctype_op(CType, Pool, Actors)}}, {1, {rmv, K}}]).

op(Type, Pool, Actors) ->
    E = elements(Pool),
    Es = list(elements(Pool)),
    case Type of
        state_gcounter -> increment;
        state_max_int -> increment;
        state_pncounter -> elements([increment, decrement]);
        state_lexcounter -> elements([increment, decrement]);
        state_boolean -> true;
        state_gset -> oneof([{add, E}, {add, E}, {add_all, Es}]);
        state_twopset -> oneof([{add, E}, {rmv, E}, {add_all, Es}, {rmv_all, Es}]);
        state_orset -> oneof([{add, E}, {add_by_token, token(), E}, {add_by_token, token(), E},
                              {rmv, E}, {add_all, Es}, {rmv_all, Es}]);
        state_awset -> oneof([{add, E}, {add, E}, {rmv, E}, {add_all, Es}, {rmv_all, Es}]);
        state_awset_ps -> oneof([{add, E}, {add, E}, {rmv, E}, {add_all, Es}, {rmv_all, Es}]);
        state_lwwregister -> {set, timestamp(), E};
        state_mvregister -> {set, timestamp(), E};
        state_ivar -> {set, E};
        state_ewflag -> elements([enable, disable]);
        state_dwflag -> elements([enable, disable]);
        state_bcounter -> frequency([{3, increment}, {2, decrement},
                                     {2, {move, choose(1, 2), elements(Actors)}}])
    end.

%% Run the commands through types. A step types raises on is skipped (an
%% awset merge of two keys `==' but not `=:=', an ivar set twice, ...).
%% Returns every state seen (replica states and deltas) and every
%% deterministic mutation `{Op, Actor, StateBefore}'.
simulate(#sc{type = Type, bottom = Bottom, actors = Actors, cmds = Cmds}) ->
    Reps0 = list_to_tuple([Bottom || _ <- Actors]),
    {_, Hist, Steps} =
        lists:foldl(
          fun({merge, I, J, Order}, {Reps, Hist, Steps}) ->
                  {SI, SJ} = {element(I, Reps), element(J, Reps)},
                  case outcome(fun() when Order -> Type:merge(SI, SJ);
                                  () -> Type:merge(SJ, SI)
                               end) of
                      {ok, S1} -> {setelement(I, Reps, S1), [S1 | Hist], Steps};
                      _ -> {Reps, Hist, Steps}
                  end;
             ({Kind, R, Op}, {Reps, Hist, Steps}) ->
                  S = element(R, Reps),
                  Actor = actor_for(Type, lists:nth(R, Actors)),
                  Steps1 = case deterministic(Bottom, Op) of
                               true -> [{Op, Actor, S} | Steps];
                               false -> Steps
                           end,
                  case Kind of
                      op ->
                          case outcome(fun() -> Type:mutate(Op, Actor, S) end) of
                              {ok, {ok, S1}} -> {setelement(R, Reps, S1), [S1 | Hist], Steps1};
                              _ -> {Reps, Hist, Steps1}
                          end;
                      delta_op ->
                          case outcome(fun() ->
                                               {ok, D} = Type:delta_mutate(Op, Actor, S),
                                               {D, Type:merge(D, S)}
                                       end) of
                              {ok, {D, S1}} -> {setelement(R, Reps, S1), [S1, D | Hist], Steps1};
                              _ -> {Reps, Hist, Steps1}
                          end
                  end
          end, {Reps0, [Bottom], []}, Cmds),
    {lists:reverse(Hist), lists:reverse(Steps)}.

%% awset_ps events are `{ObjectId, Actor}', as Lasp passes them.
actor_for(state_awset_ps, Actor) -> {<<"object">>, Actor};
actor_for(_Type, Actor) -> Actor.

%% orset's `add' and `add_all' draw random tokens, at any nesting level.
deterministic(Bottom, Op) ->
    case innermost(Op) of
        {Add, _} when Add =:= add; Add =:= add_all -> not mentions(state_orset, Bottom);
        _ -> true
    end.

innermost({apply, _K, Op}) -> innermost(Op);
innermost({apply, _K, _OpType, Op}) -> innermost(Op);
innermost({fst, Op}) -> innermost(Op);
innermost({snd, Op}) -> innermost(Op);
innermost(Op) -> Op.

mentions(X, X) -> true;
mentions(X, T) when is_tuple(T) -> mentions(X, tuple_to_list(T));
mentions(X, [H | T]) -> mentions(X, H) orelse mentions(X, T);
mentions(_, _) -> false.

picks(#sc{picks = {P1, P2, P3}}, Hist) ->
    N = length(Hist),
    {lists:nth(1 + P1 rem N, Hist), lists:nth(1 + P2 rem N, Hist),
     lists:nth(1 + P3 rem N, Hist)}.

%% ===================================================================
%% Vectors of the same classes, for a clone without types
%% ===================================================================

%% @doc Write `test/vectors/types_terms.etf' (checked by
%% `lasp_converge_crdt_tests', with or without types at hand): cases drawn
%% from the scenarios above where the classes meet (`=='-but-not-`=:='
%% terms, `merge(A, B) =/= merge(B, A)', bignum timestamps, types raising),
%% each computed by types 0.1.8 in the format of
%% `../shared/conformance/README.md' (pair cases), plus mutation cases
%% `#{type, label => mutate, op, actor, state, mutate, delta_mutate}'.
%% Run from the repository root, types' ebin on the path:
%% `prop_lasp_converge_crdt_types:write_vectors("test/vectors/types_terms.etf")'.
-spec write_vectors(file:filename()) -> ok.
write_vectors(File) ->
    rand:seed(exsss, {16, 16, 16}),
    Cases = lists:append([type_vectors(Type, 14, 6) || Type <- ?TYPES]),
    ok = filelib:ensure_dir(File),
    ok = file:write_file(File, term_to_binary(Cases, [compressed])).

type_vectors(Type, NPairs, NMutations) ->
    Samples = [begin
                   {ok, Sc} = proper_gen:pick(scenario(Type), 20),
                   {Hist, Steps} = simulate(Sc),
                   {A, B, _} = picks(Sc, Hist),
                   {{A, B}, Steps}
               end || _ <- lists:seq(1, 400)],
    Pairs = lists:sublist(lists:usort([P || {P, _} <- Samples, interesting(Type, P)]),
                          NPairs),
    Muts = lists:sublist(lists:usort([S || {_, Steps} <- Samples, S <- Steps,
                                           interesting_mutation(S)]),
                         NMutations),
    [pair_case(Type, A, B) || {A, B} <- Pairs] ++ [mutation_case(Type, S) || S <- Muts].

interesting(Type, {A, B}) ->
    M1 = outcome(fun() -> Type:merge(A, B) end),
    M2 = outcome(fun() -> Type:merge(B, A) end),
    M1 =/= M2 orelse twins(A, B) orelse has_bignum({A, B}).

interesting_mutation({Op, Actor, S}) ->
    twins(Op, S) orelse twins(Actor, S) orelse has_bignum(Op).

%% Whether some subterm of X is `==' but not `=:=' to some subterm of Y.
twins(X, Y) ->
    Xs = subterms(X),
    Ys = subterms(Y),
    lists:any(fun(T) -> lists:any(fun(U) -> T == U andalso T =/= U end, Ys) end, Xs).

subterms(T) when is_tuple(T) -> [T | subterms(tuple_to_list(T))];
subterms([H | R]) -> subterms(H) ++ subterms(R);
subterms([]) -> [];
subterms(T) -> [T].

has_bignum(T) ->
    lists:any(fun(X) -> is_integer(X) andalso abs(X) >= 1 bsl 60 end, subterms(T)).

pair_case(Type, A, B) ->
    Merge = vec(fun() -> Type:merge(A, B) end),
    Base = #{type => Type, label => twins_and_bignums, a => A, b => B,
             merge => Merge,
             merge_ba => vec(fun() -> Type:merge(B, A) end),
             equal => vec(fun() -> Type:equal(A, B) end),
             is_inflation_ab => vec(fun() -> Type:is_inflation(A, B) end),
             is_inflation_ba => vec(fun() -> Type:is_inflation(B, A) end),
             is_strict_inflation_ab => vec(fun() -> Type:is_strict_inflation(A, B) end),
             is_strict_inflation_ba => vec(fun() -> Type:is_strict_inflation(B, A) end),
             query_a => vec(fun() -> q(A) end),
             query_b => vec(fun() -> q(B) end),
             is_bottom_a => vec(fun() -> Type:is_bottom(A) end),
             is_bottom_b => vec(fun() -> Type:is_bottom(B) end)},
    case Merge of
        {'$raises', _, _} -> Base;
        M -> Base#{query_merge => vec(fun() -> q(M) end)}
    end.

mutation_case(Type, {Op, Actor, S}) ->
    #{type => Type, label => mutate, op => Op, actor => Actor, state => S,
      mutate => vec(fun() -> Type:mutate(Op, Actor, S) end),
      delta_mutate => vec(fun() -> Type:delta_mutate(Op, Actor, S) end)}.

%% A value, or `{'$raises', Class, Tag}' (README §1).
vec(F) ->
    try F()
    catch Class:Reason ->
            Tag = case Reason of
                      R when is_atom(R) -> R;
                      R when is_tuple(R), tuple_size(R) > 0 -> element(1, R);
                      _ -> other
                  end,
            {'$raises', Class, Tag}
    end.

%% The normalised query of README §2.
q({Type, _} = S) ->
    norm(S, Type:query(S)).

norm({Type, _}, Q) when Type =:= state_gset; Type =:= state_twopset; Type =:= state_orset;
                        Type =:= state_awset; Type =:= state_awset_ps;
                        Type =:= state_mvregister ->
    sort_set(sets:to_list(Q));
norm({state_gmap, {_, Entries}}, Q) ->
    [{K, norm(V, QV)} || {{_, V}, {K, QV}} <- lists:zip(Entries, Q)];
norm({state_awmap, {CType, _}}, Q) ->
    [{K, norm_ctype(CType, V)} || {K, V} <- Q];
norm({state_pair, {F, S}}, {Q1, Q2}) ->
    {norm(F, Q1), norm(S, Q2)};
norm(_, Q) ->
    Q.

norm_ctype({state_awmap, [Sub]}, V) -> [{K, norm_ctype(Sub, X)} || {K, X} <- V];
norm_ctype(CType, V) ->
    case lists:member(CType, ?SET_TYPES) of
        true -> sort_set(sets:to_list(V));
        false -> V
    end.

sort_set(L) ->
    lists:sort(fun(X, Y) -> X < Y orelse (X == Y andalso term_to_binary(X) =< term_to_binary(Y))
               end, L).

%% ===================================================================
%% Finding and loading types 0.1.8
%% ===================================================================

types_ebin() ->
    case os:getenv("LASP_CONVERGE_TYPES_EBIN") of
        Dir when is_list(Dir), Dir =/= "" ->
            case has_types(Dir) of
                true -> {ok, Dir};
                false -> {error, [Dir]}
            end;
        _ ->
            {ok, Cwd} = file:get_cwd(),
            Starts = [Cwd, filename:dirname(filename:absname(?FILE)),
                      filename:dirname(filename:absname(code:which(?MODULE)))],
            Candidates = lists:usort(
                           [filename:join([Root, "..", "shared", "lasp-0.8", "lib", "types",
                                           "ebin"])
                            || Start <- Starts, Root <- ancestors(Start)]),
            case [C || C <- Candidates, has_types(C)] of
                [Found | _] -> {ok, Found};
                [] -> {error, Candidates}
            end
    end.

has_types(Dir) ->
    filelib:is_regular(filename:join(Dir, "state_awset_ps.beam")).

ancestors(Dir) ->
    case filename:dirname(Dir) of
        Dir -> [Dir];
        Parent -> [Dir | ancestors(Parent)]
    end.

%% Load types' modules from `Dir' (only there: a module of the same name
%% elsewhere on the path would not be the oracle). Returns what to undo
%% afterwards: whether the folder was added to the path, and which modules
%% were loaded here, so that later tests see the VM as it was.
load_types(Dir) ->
    Added = not lists:member(Dir, code:get_path()),
    true = code:add_pathz(Dir),
    Mods = [list_to_atom(filename:basename(F, ".beam"))
            || F <- filelib:wildcard(filename:join(Dir, "*.beam"))],
    Loaded = [Mod || Mod <- Mods, load_from(Dir, Mod)],
    {Added, Dir, Loaded}.

%% Whether `Mod' was (re)loaded from `Dir' here. One already loaded (by an
%% earlier test, maybe through another spelling of the same folder) will do
%% when it is the same code as `Dir''s.
load_from(Dir, Mod) ->
    case code:is_loaded(Mod) of
        {file, Path} when is_list(Path) ->
            {ok, {Mod, Md5}} = beam_lib:md5(filename:join(Dir, atom_to_list(Mod) ++ ".beam")),
            case Mod:module_info(md5) =:= Md5 of
                true ->
                    false;
                false ->
                    erlang:error({types_module_shadowed, Mod, Path})
            end;
        _ ->
            {module, Mod} = code:load_abs(filename:join(Dir, atom_to_list(Mod))),
            true
    end.

unload_types({Added, Dir, Loaded}) ->
    lists:foreach(fun(Mod) ->
                          _ = code:purge(Mod),
                          _ = code:delete(Mod),
                          _ = code:purge(Mod)
                  end, Loaded),
    case Added of
        true -> code:del_path(Dir);
        false -> ok
    end.

%% ===================================================================
%% Helpers
%% ===================================================================

tally(Ix) ->
    case persistent_term:get(?TALLY, undefined) of
        undefined -> ok;
        Ref -> counters:add(Ref, Ix, 1)
    end.

show_bad(Bad) ->
    lists:foreach(fun(#{call := {F, Args}, types := E, got := G}) ->
                          io:format(user, "  ~p(~P)~n    types: ~P~n    got:   ~P~n",
                                    [F, Args, 40, E, 40, G, 40])
                  end, lists:sublist(Bad, 4)).

note(Fmt, Args) ->
    io:format(user, "~n[prop_lasp_converge_crdt_types] " ++ Fmt ++ "~n", Args).
