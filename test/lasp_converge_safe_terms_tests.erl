%% @doc The two ways the native library reads terms give the same answers.
%%
%% The library reads lists, tuples, atoms, small integers and binaries from
%% the VM's term layout once a load-time check has verified it (`fast'),
%% and through the NIF API otherwise (`safe'). A VM started with
%% `LASP_CONVERGE_SAFE_TERMS=1' in its environment uses the safe path. These
%% tests start such a node with OTP's `peer' (connected over its standard
%% input and output, so this node need not be distributed), check that it
%% reports `safe', and run the conformance vectors (every case of every
%% type, both argument orders), our own vectors, and generated Lasp-like
%% states through both nodes: each answer of the safe path must be the
%% answer of the fast path here, term for term, and the vectors' expected
%% merges and inflation checks must hold on the safe path too.
-module(lasp_converge_safe_terms_tests).

-include_lib("eunit/include/eunit.hrl").

-export([answers/1, generated/1]).

-define(M, lasp_converge_crdt).
-define(ENV, "LASP_CONVERGE_SAFE_TERMS").

safe_path_test_() ->
    {setup, fun start_safe_peer/0, fun stop_peer/1,
     fun(Peer) ->
             {inorder,
              [{"this node reads terms from their words",
                fun() -> ?assertEqual(fast, lasp_converge_nif:term_path()) end},
               {"LASP_CONVERGE_SAFE_TERMS=1 forces the safe path",
                fun() ->
                        ?assertEqual(safe, call(Peer, lasp_converge_nif, term_path, [])),
                        Info = call(Peer, lasp_converge_nif, nif_info, []),
                        ?assertEqual([{raw_bignum, false}, {raw_binary, false},
                                      {raw_layout, false}, {safe_terms, true}],
                                     lists:sort(Info)),
                        ?assertMatch([_ | _], [K || {K, true} <- lasp_converge_nif:nif_info(),
                                                    K =/= safe_terms])
                end},
               {timeout, 300,
                {"conformance vectors: the safe path agrees with the fast path and with types",
                 fun() -> check_conformance(Peer) end}},
               {timeout, 120,
                {"own vectors (== but not =:=, bignums): both paths agree",
                 fun() -> check_same(Peer, own_cases()) end}},
               {timeout, 120,
                {"generated Lasp-like states with refc and sub-binaries: both paths agree",
                 fun() ->
                         [begin
                              Local = generated(Seed),
                              ?assert(length(Local) > 20),
                              ?assertEqual(Local, call(Peer, ?MODULE, generated, [Seed]))
                          end || Seed <- [1, 2, 3]]
                 end}}]}
     end}.

%% ===================================================================
%% Checks
%% ===================================================================

check_conformance(Peer) ->
    {ok, Dir} = lasp_converge_test_paths:conformance_dir(),
    Files = filelib:wildcard(filename:join(Dir, "state_*.etf")),
    ?assert(length(Files) >= 19),
    lists:foreach(
      fun(File) ->
              {ok, Bin} = file:read_file(File),
              Cases = binary_to_term(Bin),
              Safe = check_same(Peer, Cases),
              %% The vectors' own answers, on the safe path.
              Bad = [{I, Key}
                     || {I, {C, Got}} <- enumerate(lists:zip(Cases, Safe)),
                        {Key, Value} <- Got,
                        not agrees(maps:get(Key, C, absent), Value)],
              ?assertEqual({filename:basename(File), []},
                           {filename:basename(File), lists:sublist(Bad, 10)})
      end, Files).

%% Runs every case on both nodes; returns the peer's answers.
check_same(Peer, Cases) ->
    ?assert(length(Cases) > 0),
    Fast = answers(Cases),
    Safe = call(Peer, ?MODULE, answers, [Cases]),
    ?assertEqual(length(Cases), length(Safe)),
    Diff = [{I, C, F, S} || {I, {C, F, S}} <- enumerate(lists:zip3(Cases, Fast, Safe)),
                            F =/= S],
    case Diff of
        [] -> ok;
        [{I, C, F, S} | _] ->
            io:format(user, "~ncase ~p: ~P~nfast: ~P~nsafe: ~P~n", [I, C, 30, F, 30, S, 30])
    end,
    ?assertEqual(0, length(Diff)),
    Safe.

%% A raise in types must be a badcrdt raise here; a value must be equal.
agrees(absent, _) -> true;
agrees({'$raises', _, _}, {raised, error, {badcrdt, _}}) -> true;
agrees({'$raises', _, _}, _) -> false;
agrees(Expected, {ok, Got}) -> Expected =:= Got;
agrees(_, _) -> false.

%% @private What both nodes compute for each case (run on either).
-spec answers([map()]) -> [[{atom(), term()}]].
answers(Cases) ->
    [case_answers(C) || C <- Cases].

case_answers(#{a := A, b := B}) ->
    [{merge, outcome(fun() -> ?M:merge(A, B) end)},
     {merge_ba, outcome(fun() -> ?M:merge(B, A) end)},
     {equal, outcome(fun() -> ?M:equal(A, B) end)},
     {is_inflation_ab, outcome(fun() -> ?M:is_inflation(A, B) end)},
     {is_inflation_ba, outcome(fun() -> ?M:is_inflation(B, A) end)},
     {is_strict_inflation_ab, outcome(fun() -> ?M:is_strict_inflation(A, B) end)},
     {is_strict_inflation_ba, outcome(fun() -> ?M:is_strict_inflation(B, A) end)},
     {is_bottom_a, outcome(fun() -> ?M:is_bottom(A) end)},
     {is_bottom_b, outcome(fun() -> ?M:is_bottom(B) end)},
     {local_query_a, outcome(fun() -> norm(?M:query(A)) end)},
     {local_delta, outcome(fun() -> ?M:delta(A, B) end)}];
case_answers(#{op := Op, actor := Actor, state := S}) ->
    [{local_mutate, outcome(fun() -> ?M:mutate(Op, Actor, S) end)}];
case_answers(#{}) ->
    [].

%% @private States built on the node that runs it, so that its binaries are
%% that node's own heap, refc and sub-binaries; returns the answers of
%% merges, inflation checks and queries over them.
-spec generated(pos_integer()) -> [term()].
generated(Seed) ->
    _ = rand:seed(exsss, {Seed, 17, 4242}),
    Big = binary:copy(<<"lasp-converge-">>, 40),
    Elems = [1, -5, 1 bsl 70, 2.5, <<"k">>, <<"key-000000">>, Big,
             binary:part(Big, 3, 200), binary:part(Big, 1, 7),
             {user, 1, <<"x">>}, {user, 2, [a, <<"y">>]}, {}, [1, 2 | 3], atom_elem],
    Actors = [a1, <<"actor-b">>, {node, 3, <<"n">>}, {node, 3, <<"m">>}],
    Pick = fun(L) -> lists:nth(rand:uniform(length(L)), L) end,
    Build = fun(Type, Ops) ->
                    lists:foldl(fun(_, S) ->
                                        case outcome(fun() -> ?M:mutate(Ops(Pick), Pick(Actors), S) end) of
                                            {ok, {ok, S1}} -> S1;
                                            _ -> S
                                        end
                                end, ?M:new(Type), lists:seq(1, 25))
            end,
    Specs = [{state_gset, fun(P) -> {add, P(Elems)} end},
             {state_twopset, fun(P) -> P([{add, P(Elems)}, {add, P(Elems)}, {rmv, P(Elems)}]) end},
             {state_awset, fun(P) -> P([{add, P(Elems)}, {add, P(Elems)}, {add, P(Elems)}, {rmv, P(Elems)}]) end},
             {state_gcounter, fun(_) -> increment end},
             {state_pncounter, fun(P) -> P([increment, decrement, increment]) end},
             {state_lwwregister, fun(P) -> {set, P([1, 2, 1 bsl 66]), P(Elems)} end}],
    lists:append(
      [begin
           A = Build(Type, Ops),
           B = Build(Type, Ops),
           Ab = ?M:merge(A, B),
           [outcome(fun() -> ?M:merge(A, B) end),
            outcome(fun() -> ?M:merge(B, A) end),
            outcome(fun() -> ?M:equal(A, B) end),
            outcome(fun() -> ?M:equal(Ab, ?M:merge(B, A)) end),
            outcome(fun() -> ?M:is_inflation(A, Ab) end),
            outcome(fun() -> ?M:is_strict_inflation(A, B) end),
            outcome(fun() -> ?M:is_inflation(Ab, A) end),
            outcome(fun() -> norm(?M:query(Ab)) end),
            outcome(fun() -> ?M:delta(Ab, A) end)]
       end || {Type, Ops} <- Specs]).

%% ===================================================================
%% Helpers
%% ===================================================================

own_cases() ->
    {ok, Root} = lasp_converge_test_paths:root(),
    {ok, Bin} = file:read_file(filename:join([Root, "test", "vectors", "types_terms.etf"])),
    binary_to_term(Bin).

norm(Q) ->
    case sets:is_set(Q) of
        true -> lists:sort(sets:to_list(Q));
        false -> Q
    end.

enumerate(L) ->
    lists:zip(lists:seq(1, length(L)), L).

outcome(F) ->
    try F() of
        V -> {ok, V}
    catch
        Class:Reason -> {raised, Class, Reason}
    end.

start_safe_peer() ->
    Name = list_to_atom(lists:concat(["lc_safe_terms_", os:getpid(), "_",
                                      erlang:unique_integer([positive])])),
    Paths = lists:usort([filename:dirname(code:which(M))
                         || M <- [lasp_converge_nif, ?M, lasp_converge_test_paths, ?MODULE]]),
    {ok, Peer, _Node} = peer:start_link(#{name => Name,
                                         connection => standard_io,
                                         env => [{?ENV, "1"}],
                                         args => lists:append([["-pa", P] || P <- Paths])}),
    Peer.

stop_peer(Peer) ->
    peer:stop(Peer).

call(Peer, M, F, A) ->
    peer:call(Peer, M, F, A, 120000).
