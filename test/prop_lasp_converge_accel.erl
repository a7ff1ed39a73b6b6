%% @doc `lasp_converge_accel''s hot functions against types' own modules,
%% loaded from the real Lasp build's `lib/types/ebin' (see
%% `lasp_converge_real_lasp:lib_dir/0'; skipped with a message without it).
%%
%% For each accelerated type, random Lasp-like pairs `(A, B)' (elements
%% and actors mixing integers, atoms, binaries and tuples): B an inflation
%% of A (a merge with a third state), A itself, an equal copy, an
%% unrelated state, A an inflation of B. Every hot function must answer
%% as types' function does, term for term, or raise the same error. A
%% fraction of the inputs is bent out of shape (keys out of order, a key
%% `==' but not `=:=' its neighbour, an entry that is not a pair, a value
%% of the wrong shape), where types' own answer (or error) must come back.
-module(prop_lasp_converge_accel).

-include_lib("proper/include/proper.hrl").
-include_lib("eunit/include/eunit.hrl").

-define(A, lasp_converge_accel).
-define(OPTS(N), [{numtests, N}, {to_file, user}, {max_size, 40}]).
-define(TYPES, [state_gcounter, state_pncounter, state_lexcounter, state_orset,
                state_gmap, state_awset]).

agree_test_() ->
    case lasp_converge_real_lasp:add_types_path() of
        {error, Why} ->
            io:format(user, "~nprop_lasp_converge_accel: skipped, ~p~n", [Why]),
            [];
        ok ->
            [{timeout, 120,
              {atom_to_list(T),
               ?_assert(proper:quickcheck(prop_agrees_with_types(T), ?OPTS(300)))}}
             || T <- ?TYPES]
    end.

%% 5,000 entries, inflations and not: the answers of the quadratic loops.
large_test_() ->
    case lasp_converge_real_lasp:add_types_path() of
        {error, _} ->
            [];
        ok ->
            {timeout, 120,
             fun() ->
                     N = 5000,
                     Keys = [key(I) || I <- lists:seq(1, N)],
                     G1 = {state_gcounter, orddict:from_list([{K, 2} || K <- Keys])},
                     G2 = {state_gcounter, orddict:from_list([{K, 3} || K <- Keys])},
                     {state_gcounter, [{K0, _} | Rest]} = G2,
                     G3 = {state_gcounter, [{K0, 1} | Rest]},
                     O1 = {state_orset, orddict:from_list([{K, [{<<"t">>, true}]} || K <- Keys])},
                     {state_orset, [{E0, _} | ORest]} = O1,
                     O2 = {state_orset, [{E0, [{<<"t">>, false}]} | ORest]},
                     [same(T, F, X, Y)
                      || {T, Pairs} <- [{state_gcounter, [{G1, G2}, {G2, G1}, {G1, G3}, {G3, G1},
                                                          {G2, G2}]},
                                        {state_orset, [{O1, O2}, {O2, O1}, {O1, O1}]}],
                         {X, Y} <- Pairs,
                         F <- [is_inflation, is_strict_inflation, equal]]
             end}
    end.

key(I) ->
    case I rem 3 of
        0 -> I;
        1 -> integer_to_binary(I);
        2 -> {node, I}
    end.

same(Type, F, X, Y) ->
    ?assertEqual({F, outcome(fun() -> Type:F(X, Y) end)},
                 {F, outcome(fun() -> ?A:F(Type, Type, X, Y) end)}).

outcome(Fun) ->
    try {ok, Fun()}
    catch C:R -> {C, R}
    end.

prop_agrees_with_types(Type) ->
    ?FORALL({A, B}, pair(Type),
            begin
                Rs = [{F, outcome(fun() -> Type:F(A, B) end),
                       outcome(fun() -> ?A:F(Type, Type, A, B) end)}
                      || F <- [merge, is_inflation, is_strict_inflation, equal]],
                %% The NIF's term API alone: types' answer, or a
                %% `{badcrdt, _}' refusal (then the accelerated module
                %% answers with types' code).
                Ns = [{{nif, F}, Want, Got}
                      || {F, Want, _} <- Rs,
                         Got <- [outcome(fun() -> lasp_converge_crdt:F(A, B) end)],
                         not is_refusal(Got)],
                Bad = [R || {_, Want, Got} = R <- Rs ++ Ns, Want =/= Got],
                ?WHENFAIL(io:format(user, "~p~n~p~n~p~n", [A, B, Bad]),
                          collect(kind(Rs), Bad =:= []))
            end).

is_refusal({error, {badcrdt, _}}) -> true;
is_refusal(_) -> false.

%% What the pair tested: inflation, strict, neither; or raised.
kind(Rs) ->
    case [R || {is_strict_inflation, R, _} <- Rs] of
        [{ok, true}] -> strict;
        [{ok, false}] ->
            case [R || {is_inflation, R, _} <- Rs] of
                [{ok, true}] -> inflation;
                _ -> no_inflation
            end;
        _ -> raised
    end.

%%--------------------------------------------------------------------
%% Generators
%%--------------------------------------------------------------------

pair(Type) ->
    ?LET({A, C, How, Bend}, {state(Type), state(Type), how(), bend()},
         begin
             {X, Y} = case How of
                          inflation -> {A, Type:merge(A, C)};
                          deflation -> {Type:merge(A, C), A};
                          same -> {A, A};
                          copy -> {A, binary_to_term(term_to_binary(A))};
                          other -> {A, C}
                      end,
             case Bend of
                 none -> {X, Y};
                 {left, B} -> {bent(B, X), Y};
                 {right, B} -> {X, bent(B, Y)}
             end
         end).

how() -> frequency([{4, inflation}, {2, deflation}, {1, same}, {1, copy}, {2, other}]).

bend() ->
    frequency([{8, none}, {1, {left, oneof([reverse, float, junk, value])}},
               {1, {right, oneof([reverse, float, junk, value])}}]).

%% A list payload (or a gmap's entries) bent out of orddict shape.
bent(How, {state_gmap, {C, L}}) -> {state_gmap, {C, bend_list(How, L)}};
bent(_How, {state_awset, _} = S) -> S;
bent(How, {T, L}) when is_list(L) -> {T, bend_list(How, L)}.

bend_list(reverse, L) -> lists:reverse(L);
bend_list(float, [{K, V} | T]) when is_integer(K) -> [{K, V}, {float(K), V} | T];
bend_list(float, L) -> [{1, 0}, {1.0, 0} | L];
bend_list(junk, L) -> [junk | L];
bend_list(value, [{K, _} | T]) -> [{K, {odd}} | T];
bend_list(value, L) -> L.

actor() ->
    oneof([oneof([a, b, c, 'n1@host', 'n2@host']),
           ?LET(I, range(1, 6), integer_to_binary(I)),
           ?LET(I, range(1, 4), {<<"node">>, I}),
           range(1, 6)]).

element() ->
    oneof([range(0, 20),
           ?LET(I, range(0, 10), <<"e", (integer_to_binary(I))/binary>>),
           ?LET({I, J}, {range(0, 4), range(0, 3)}, {I, <<"x">>, J})]).

count() -> range(0, 4).

state(state_gcounter) ->
    ?LET(L, list({actor(), count()}), {state_gcounter, orddict:from_list(L)});
state(state_pncounter) ->
    ?LET(L, list({actor(), {count(), count()}}), {state_pncounter, orddict:from_list(L)});
state(state_lexcounter) ->
    ?LET(L, list({actor(), {range(-2, 2), count()}}), {state_lexcounter, orddict:from_list(L)});
state(state_orset) ->
    ?LET(L, list({element(), tokens()}), {state_orset, orddict:from_list(L)});
state(state_gmap) ->
    ?LET(L, list({element(), state(state_gcounter)}),
         {state_gmap, {state_gcounter, orddict:from_list(L)}});
state(state_awset) ->
    %% Large enough, at times, for the NIF path (64 elements and more).
    ?LET({Ops, Bulk}, {list({oneof([add, rmv]), element(), actor()}),
                       oneof([[], ?LET(N, range(60, 150), lists:seq(1000, 1000 + N))])},
         lists:foldl(fun({Op, E, Actor}, S) ->
                             case state_awset:mutate({Op, E}, Actor, S) of
                                 {ok, S1} -> S1;
                                 {error, _} -> S
                             end
                     end,
                     case Bulk of
                         [] -> state_awset:new();
                         _ -> element(2, state_awset:mutate({add_all, Bulk}, a, state_awset:new()))
                     end,
                     Ops)).

tokens() ->
    ?LET(L, non_empty(list({?LET(I, range(1, 5), <<"tok", (integer_to_binary(I))/binary>>),
                            boolean()})),
         orddict:from_list(L)).
