%% @doc Binary payloads (`lasp_converge_payload') against types' own
%% `state_gset' and `state_gcounter', loaded from the real Lasp build's
%% `lib/types/ebin' (skipped with a message without it).
%%
%% Random Lasp-like states (elements and actors mixing integers, floats
%% `==' to them, atoms, binaries and tuples), in pairs where the second is
%% the first, a merge of it with a third state, or unrelated: every call
%% Lasp makes, given binary payloads, or a binary beside a term, must
%% answer as types does for the terms: a state that decodes to exactly
%% (`=:=') types' state, the same booleans and query values.
-module(prop_lasp_converge_payload).

-include_lib("proper/include/proper.hrl").
-include_lib("eunit/include/eunit.hrl").

-define(P, lasp_converge_payload).
-define(OPTS(N), [{numtests, N}, {to_file, user}, {max_size, 40}]).

agree_test_() ->
    case lasp_converge_real_lasp:add_types_path() of
        {error, Why} ->
            io:format(user, "~nprop_lasp_converge_payload: skipped, ~p~n", [Why]),
            [];
        ok ->
            {setup,
             fun() -> Was = ?P:mode(), ok = ?P:set_mode(binary), Was end,
             fun(Was) -> ?P:set_mode(Was) end,
             [{timeout, 120,
               {atom_to_list(T) ++ " " ++ atom_to_list(What),
                ?_assert(proper:quickcheck(Prop(T), ?OPTS(400)))}}
              || T <- [state_gset, state_gcounter],
                 {What, Prop} <- [{lattice, fun prop_lattice/1},
                                  {mutate, fun prop_mutate/1}]]}
    end.

bin(S) ->
    {ok, B} = ?P:to_binary(S),
    B.

back(X) -> ?P:to_term(X).

norm(V) ->
    case sets:is_set(V) of
        true -> lists:sort(sets:to_list(V));
        false -> V
    end.

outcome(Fun) ->
    try {ok, Fun()}
    catch C:R -> {C, R}
    end.

%% merge, is_inflation, is_strict_inflation and equal, binary-binary and
%% mixed, against types on the terms.
prop_lattice(T) ->
    ?FORALL({A, B}, pair(T),
            begin
                {BA, BB} = {bin(A), bin(B)},
                Want = T:merge(A, B),
                Merges = [?P:merge(T, T, X, Y) || {X, Y} <- [{BA, BB}, {A, BB}, {BA, B}]],
                Bools = [{F, T:F(A, B), [?P:F(T, T, X, Y) || {X, Y} <- [{BA, BB}, {A, BB}, {BA, B}]]}
                         || F <- [is_inflation, is_strict_inflation, equal]],
                %% Lasp's bind: merge, then is_strict_inflation(Stored, Merged),
                %% answered from the merge's walk.
                MBin = ?P:merge(T, T, BA, BB),
                Strict = [?P:F(T, T, BA, MBin) || F <- [is_strict_inflation, is_inflation, equal]]
                    =:= [T:F(A, Want) || F <- [is_strict_inflation, is_inflation, equal]],
                MergesOk = lists:all(fun(M) -> is_binary(element(2, M)) andalso back(M) =:= Want end,
                                     Merges),
                BoolsOk = lists:all(fun({_, W, Gs}) -> Gs =:= [W, W, W] end, Bools),
                Query = norm(T:query(A)) =:= norm(?P:call(T, T, query, [BA])),
                Bottom = T:is_bottom(A) =:= ?P:call(T, T, is_bottom, [BA]),
                Decomp = [back(X) || X <- ?P:call(T, T, join_decomposition, [BA])]
                    =:= T:join_decomposition(A),
                ?WHENFAIL(io:format(user, "~p~n~p~nmerge ~p~ngot ~p~n~p~n",
                                    [A, B, Want, [back(M) || M <- Merges], Bools]),
                          MergesOk andalso Strict andalso BoolsOk andalso Query andalso Bottom
                          andalso Decomp)
            end).

%% mutate and delta_mutate on a binary state: the binary of types' answer.
prop_mutate(T) ->
    ?FORALL({S, Op, Actor}, {state(T), op(T), elem()},
            begin
                Bs = bin(S),
                R = [{F, outcome(fun() -> T:F(Op, Actor, S) end),
                      outcome(fun() ->
                                      {ok, X} = ?P:F(T, T, Op, Actor, Bs),
                                      true = is_binary(element(2, X)),
                                      {ok, back(X)}
                              end)}
                     || F <- [mutate, delta_mutate]],
                ?WHENFAIL(io:format(user, "~p ~p ~p~n~p~n", [S, Op, Actor, R]),
                          lists:all(fun({_, W, G}) -> W =:= G end, R))
            end).

op(state_gset) -> {add, elem()};
op(state_gcounter) -> increment.

%% Lasp-like terms, with `==' pairs (1 and 1.0, {k, 2} and {k, 2.0}).
elem() ->
    ?LET({K, N}, {range(0, 6), range(0, 15)},
         case K of
             0 -> N;
             1 -> float(N);
             2 -> lists:nth(1 + N rem 3, [a, b, node_x]);
             3 -> <<"e", (integer_to_binary(N))/binary>>;
             4 -> {k, N};
             5 -> {k, float(N)};
             6 -> {<<"n">>, N, [x]}
         end).

state(state_gset) ->
    ?LET(Es, list(elem()), {state_gset, ordsets:from_list(Es)});
state(state_gcounter) ->
    ?LET(Es, list({elem(), range(1, 5)}), {state_gcounter, orddict:from_list(Es)}).

pair(T) ->
    ?LET({A, C, K}, {state(T), state(T), range(0, 3)},
         case K of
             0 -> {A, T:merge(A, C)};
             1 -> {T:merge(A, C), A};
             2 -> {A, A};
             3 -> {A, C}
         end).

%% Garbage never passes for a state, and never takes the VM down.
bad_binary_test_() ->
    case lasp_converge_real_lasp:add_types_path() of
        {error, _} ->
            [];
        ok ->
            fun() ->
                    Was = ?P:mode(),
                    ok = ?P:set_mode(binary),
                    try
                        G = bin({state_gset, [1, {c, 3}, <<"b">>]}),
                        rand:seed(exsss, {1, 2, 3}),
                        Outcomes = [outcome(fun() ->
                                                    ?P:merge(state_gset, state_gset, G,
                                                             {state_gset, mangle(element(2, G))})
                                            end) || _ <- lists:seq(1, 2000)],
                        %% Each either a valid state or a badcrdt raise.
                        [case O of
                             {ok, M} -> ?assertMatch({state_gset, L} when is_list(L), back(M));
                             {error, E} -> ?assertMatch({badcrdt, _}, E)
                         end || O <- Outcomes],
                        ?assert(lists:any(fun(O) -> element(1, O) =:= error end, Outcomes)),
                        C = bin({state_gcounter, [{a, 1}]}),
                        ?assertError({badcrdt, {type_mismatch, state_gset, state_gcounter}},
                                     ?P:merge(state_gset, state_gset, G,
                                              {state_gset, element(2, C)}))
                    after
                        ?P:set_mode(Was)
                    end
            end
    end.

mangle(B) ->
    I = rand:uniform(byte_size(B)) - 1,
    <<H:I/binary, _, T/binary>> = B,
    <<H/binary, (rand:uniform(256) - 1), T/binary>>.

%% Every export of the accelerated `state_gset' and `state_gcounter' in
%% binary mode (the generated modules, nested calls between them
%% included: `delta' calls `join_decomposition', `new', `merge' ...)
%% against types' own modules on the same terms, computed before
%% accelerating: 300 random cases per type.
generated_modules_test_() ->
    case lasp_converge_real_lasp:add_types_path() of
        {error, _} ->
            [];
        ok ->
            {timeout, 120,
             fun() ->
                     Cases = [{T, pick(case_of(T))} || T <- [state_gset, state_gcounter],
                                                       _ <- lists:seq(1, 300)],
                     %% types' own answers, on terms.
                     Want = [answers(T, C, fun(S) -> S end) || {T, C} <- Cases],
                     %% Answers, not errors, for almost every call.
                     Errors = [R || As <- Want, {_, R} <- As, element(1, R) =/= ok],
                     ?assert(length(Errors) < 10),
                     {ok, _} = lasp_converge_accel:accelerate(#{payload => binary}),
                     try
                         Got = [answers(T, C, fun bin/1) || {T, C} <- Cases],
                         [?assertEqual({T, C, W}, {T, C, G})
                          || {{T, C}, W, G} <- lists:zip3(Cases, Want, Got)],
                         %% States come back as binaries.
                         [?assertMatch({T, B} when is_binary(B), T:new()) || T <- ?P:types()]
                     after
                         {ok, _} = lasp_converge_accel:decelerate(#{grace => 0})
                     end,
                     ?assertEqual(term, ?P:mode())
             end}
    end.

pick(Gen) ->
    {ok, V} = proper_gen:pick(Gen, 30),
    V.

case_of(T) ->
    ?LET({{A, B}, Op, Actor, N}, {pair(T), op(T), elem(), range(0, 12)}, {A, B, Op, Actor, N}).

%% What each export answers for one case, `Rep' giving the state
%% arguments' representation; states in answers read back as terms.
answers(T, {A, B, Op, Actor, N}, Rep) ->
    {RA, RB} = {Rep(A), Rep(B)},
    Threshold = case T of
                    state_gset -> {cardinality, N};
                    state_gcounter -> {value, N}
                end,
    Irr = case T:join_decomposition(RA) of
              [I | _] -> [I];
              [] -> []
          end,
    Calls = [{merge, [RA, RB]}, {merge, [A, RB]}, {merge, [RA, B]},
             {is_inflation, [RA, RB]}, {is_inflation, [A, RB]},
             {is_strict_inflation, [RA, RB]}, {is_strict_inflation, [RA, B]},
             {equal, [RA, RB]}, {equal, [RB, A]},
             {is_inflation, [Threshold, RA]}, {is_strict_inflation, [Threshold, RA]},
             {query, [RA]}, {is_bottom, [RA]}, {join_decomposition, [RA]},
             {digest, [RA]}, {delta, [RA, {state, RB}]},
             {mutate, [Op, Actor, RA]}, {delta_mutate, [Op, Actor, RA]},
             {encode, [erlang, RA]}, {decode, [erlang, term_to_binary(A)]},
             {new, []}, {new, [[]]}]
        ++ [{irreducible_is_strict_inflation, [I, {state, RB}]} || I <- Irr],
    [{F, norm_answer(outcome(fun() -> apply(T, F, Args) end))} || {F, Args} <- Calls].

norm_answer({ok, X}) -> {ok, norm_deep(X)};
norm_answer({Class, {Reason, _}}) -> {Class, Reason};
norm_answer(Other) -> Other.

norm_deep({T, P} = S) when is_binary(P), (T =:= state_gset orelse T =:= state_gcounter) ->
    back(S);
norm_deep(L) when is_list(L) -> [norm_deep(X) || X <- L];
norm_deep({ok, X}) -> {ok, norm_deep(X)};
norm_deep({state, X}) -> {state, norm_deep(X)};
norm_deep(X) ->
    case sets:is_set(X) of
        true -> {set, lists:sort(sets:to_list(X))};
        false -> X
    end.
