%% @doc lasp_converge_replica across the NIF boundary: PropEr properties
%% against lasp_converge_crdt (itself checked term for term against types),
%% the binary format under random bytes and truncations, sharing between
%% processes, and the resource lifetime.
-module(lasp_converge_replica_tests).

%% proper.hrl first: the other order redefines ?LET (STYLE.md).
-include_lib("proper/include/proper.hrl").
-include_lib("eunit/include/eunit.hrl").

-define(R, lasp_converge_replica).
-define(C, lasp_converge_crdt).
-define(OPTS(N), [{numtests, N}, {to_file, user}, {max_size, 40}]).
-define(TYPES, [state_gset, state_gcounter, state_orset, state_awset, state_pncounter,
                state_twopset, state_gmap]).

%% ===================================================================
%% Properties, one EUnit test per type and property
%% ===================================================================

props() ->
    [{"to_term(merge(from_term(A), B)) =:= merge(A, B)", fun prop_merge_is_crdt_merge/1},
     {"round trips through terms and binaries are exact", fun prop_round_trips/1},
     {"mutate applies and returns types' delta", fun prop_mutate_is_merge_of_delta/1},
     {"query, equal, inflation checks and size agree with the terms'",
      fun prop_reads_agree/1},
     {"merge is idempotent and commutative up to equal", fun prop_laws/1},
     {"merge_added/3 is lasp_converge_crdt:merge_added/2 in place",
      fun prop_merge_added_is_crdt_merge_added/1}].

props_test_() ->
    [{lists:flatten(io_lib:format("~p: ~s", [Type, Name])),
      {timeout, 120, ?_assert(proper:quickcheck(Prop(Type), ?OPTS(150)))}}
     || Type <- ?TYPES, {Name, Prop} <- props()].

prop_merge_is_crdt_merge(Type) ->
    ?FORALL({A, B}, pair(Type),
            begin
                Want = ?C:merge(A, B),
                R1 = ?R:from_term(A),
                ok = ?R:merge(R1, B),
                R2 = ?R:from_term(A),
                ok = ?R:merge(R2, ?R:to_binary(?R:from_term(B))),
                R3 = ?R:from_term(A),
                ok = ?R:merge(R3, ?R:from_term(B)),
                ?WHENFAIL(io:format("A = ~w~nB = ~w~nwant ~w~ngot ~w~n",
                                    [A, B, Want, ?R:to_term(R1)]),
                          ?R:to_term(R1) =:= Want andalso ?R:to_term(R2) =:= Want
                          andalso ?R:to_term(R3) =:= Want)
            end).

%% What a replicator reports: the same answer as the term call, from a
%% term, a binary or a replica, and the replica left as the merged term
%% (untouched when nothing was added).
prop_merge_added_is_crdt_merge_added(Type) ->
    ?FORALL({A, B}, pair(Type),
            begin
                Want = case ?C:merge_added(A, B) of
                           {A, _} -> {unchanged, A};
                           {M, Added} -> {{changed, Added}, M}
                       end,
                Got = [begin
                           R = ?R:from_term(A),
                           Res = ?R:merge_added(R, In(), true),
                           {Res, ?R:to_term(R)}
                       end
                       || In <- [fun() -> B end,
                                 fun() -> ?R:to_binary(?R:from_term(B)) end,
                                 fun() -> ?R:from_term(B) end]],
                Plain = ?R:merge_added(?R:from_term(A), B, false),
                WantPlain = case element(1, Want) of
                                unchanged -> unchanged;
                                _ -> changed
                            end,
                ?WHENFAIL(io:format("A = ~w~nB = ~w~nwant ~w~ngot ~w~n", [A, B, Want, Got]),
                          Got =:= [Want, Want, Want] andalso Plain =:= WantPlain)
            end).

prop_round_trips(Type) ->
    ?FORALL({A, _}, pair(Type),
            begin
                R = ?R:from_term(A),
                Bin = ?R:to_binary(R),
                ?R:to_term(R) =:= A
                    andalso ?R:to_term(?R:from_binary(Bin)) =:= A
                    andalso ?R:to_binary(?R:from_binary(Bin)) =:= Bin
                    andalso ?C:from_binary(?C:to_binary(A)) =:= A
                    andalso ?R:type(R) =:= Type
            end).

prop_mutate_is_merge_of_delta(Type) ->
    ?FORALL({{A, _}, Op, Actor}, {pair(Type), op(Type), actor()},
            begin
                R = ?R:from_term(A),
                {ok, D} = ?R:mutate(Op, Actor, R),
                Deterministic = not lists:member(Type, [state_orset, state_awset]),
                ?WHENFAIL(io:format("A = ~w~nOp = ~w~nD = ~w~ngot ~w~n",
                                    [A, Op, D, ?R:to_term(R)]),
                          ?R:to_term(R) =:= ?C:merge(D, A)
                          andalso (not Deterministic
                                   orelse {ok, D} =:= ?C:delta_mutate(Op, Actor, A)))
            end).

prop_reads_agree(Type) ->
    ?FORALL({A, B}, pair(Type),
            begin
                RA = ?R:from_term(A),
                RB = ?R:from_term(B),
                ?R:query(RA) =:= ?C:query(A)
                    andalso ?R:equal(RA, RB) =:= ?C:equal(A, B)
                    andalso ?R:equal(RA, B) =:= ?C:equal(A, B)
                    andalso ?R:is_inflation(RA, RB) =:= ?C:is_inflation(A, B)
                    andalso ?R:is_inflation(A, ?R:to_binary(RB)) =:= ?C:is_inflation(A, B)
                    andalso ?R:is_strict_inflation(RA, RB) =:= ?C:is_strict_inflation(A, B)
                    andalso ?R:size(RA) =:= expected_size(A)
            end).

prop_laws(Type) ->
    ?FORALL({A, B}, pair(Type),
            begin
                Self = ?R:from_term(A),
                ok = ?R:merge(Self, Self),
                AB = ?R:from_term(A),
                ok = ?R:merge(AB, B),
                BA = ?R:from_term(B),
                ok = ?R:merge(BA, A),
                ?R:to_term(Self) =:= ?C:merge(A, A) andalso ?R:equal(AB, BA)
                    andalso ?R:is_inflation(A, AB) andalso ?R:is_inflation(B, AB)
            end).

expected_size({state_gcounter, L}) -> length(L);
expected_size({state_gset, L}) -> length(L);
expected_size({state_orset, L}) -> length(L);
expected_size({state_pncounter, L}) -> length(L);
expected_size({state_twopset, {Add, _}}) -> length(Add);
expected_size({state_awset, {DotMap, _}}) -> length(DotMap);
expected_size({state_gmap, {_, L}}) -> length(L).

%% ===================================================================
%% Generators: Lasp-like states built by real operations
%% ===================================================================

%% Two replicas' states after random operations and merges between them.
pair(Type) ->
    ?LET(Cmds, list(frequency([{5, {op, choose(1, 2), op(Type), actor()}},
                               {1, {merge, choose(1, 2)}}])),
         run(Type, Cmds)).

run(Type, Cmds) ->
    B = bottom(Type),
    lists:foldl(
      fun({op, I, Op, Actor}, S) ->
              {ok, X} = ?C:mutate(Op, Actor, element(I, S)),
              setelement(I, S, X);
         ({merge, I}, {X, Y}) ->
              case I of
                  1 -> {?C:merge(X, Y), Y};
                  2 -> {X, ?C:merge(Y, X)}
              end
      end, {B, B}, Cmds).

bottom(state_gmap) -> {state_gmap, {state_gcounter, []}};
bottom(Type) -> ?C:new(Type).

actor() ->
    oneof([elements([a, b, 'node1@127.0.0.1']),
           ?LET(N, choose(1, 3), <<"actor-", (integer_to_binary(N))/binary>>),
           ?LET(N, choose(1, 2), {lasp, N})]).

%% Integers, floats `==' to them, binaries, tuples. awset matches keys
%% exactly (types raises on `=='-but-not-`=:=' keys): no floats there.
elem(state_awset) ->
    oneof([choose(-2, 6), elements([<<"a">>, <<"user">>, <<>>]),
           ?LET(N, choose(1, 3), {item, N})]);
elem(_) ->
    oneof([choose(-2, 6), elements([1.0, 2.0, 0.5]), elements([<<"a">>, <<"user">>, <<>>]),
           ?LET(N, oneof([choose(1, 3), 1.0]), {item, N}), elements([apple, pear])]).

op(state_gset = T) -> {add, elem(T)};
op(state_gcounter) -> increment;
op(state_pncounter) -> elements([increment, decrement]);
op(state_twopset = T) -> oneof([{add, elem(T)}, {rmv, elem(T)}]);
op(state_orset = T) -> oneof([{add, elem(T)}, {rmv, elem(T)}, {add_all, list(elem(T))}]);
op(state_awset = T) -> oneof([{add, elem(T)}, {add, elem(T)}, {rmv, elem(T)}]);
op(state_gmap) -> {apply, elem(state_awset), increment}.

%% ===================================================================
%% Examples and edge cases
%% ===================================================================

keyed_types_test() ->
    ?assert(?R:is_keyed(?R:new(state_gset))),
    ?assert(?R:is_keyed(?R:new(state_gcounter))),
    ?assert(?R:is_keyed(?R:new(state_orset))),
    ?assert(?R:is_keyed(?R:new(state_awset))),
    ?assert(?R:is_keyed(?R:new(state_twopset))),
    ?assertNot(?R:is_keyed(?R:new(state_pncounter))),
    %% A term with no key (a pid): held by the core, still exact.
    S = {state_gset, [1, self()]},
    R = ?R:from_term(S),
    ?assertNot(?R:is_keyed(R)),
    ?assertEqual(S, ?R:to_term(R)),
    ?assertEqual(S, ?R:to_term(?R:from_binary(?R:to_binary(R)))).

float_and_integer_keep_their_terms_test() ->
    R = ?R:from_term({state_gset, [1.0, {item, 2}]}),
    ok = ?R:merge(R, {state_gset, [1, {item, 2.0}]}),
    ?assertEqual(?C:merge({state_gset, [1.0, {item, 2}]}, {state_gset, [1, {item, 2.0}]}),
                 ?R:to_term(R)),
    Bin = ?C:to_binary({state_gset, [1.0, {item, 2}]}),
    ?assertEqual({state_gset, [1.0, {item, 2}]}, ?C:from_binary(Bin)).

mutate_error_leaves_state_test() ->
    R = ?R:new(state_gset),
    ?assertError({badcrdt, {unknown_op, state_gset}}, ?R:mutate(increment, a, R)),
    ?assertEqual({state_gset, []}, ?R:to_term(R)),
    %% types' own refusal comes back as {error, Reason}.
    B = ?R:new(state_bcounter),
    ?assertMatch({error, {precondition, _}}, ?R:mutate(decrement, a, B)),
    ?assertEqual(?C:new(state_bcounter), ?R:to_term(B)).

bad_input_test() ->
    ?assertError(badarg, ?R:to_term(make_ref())),
    ?assertError(badarg, ?R:merge(make_ref(), {state_gset, []})),
    ?assertNot(?R:is_replica(make_ref())),
    ?assert(?R:is_replica(?R:new(state_gset))),
    ?assertError({badcrdt, unknown_type}, ?R:new(no_such_type)),
    ?assertError({badcrdt, {unsorted, state_gset}}, ?R:from_term({state_gset, [b, a]})),
    ?assertError({badcrdt, {type_mismatch, state_gset, state_gcounter}},
                 ?R:merge(?R:new(state_gset), {state_gcounter, []})).

%% merge_added/3 refuses what merge/2 refuses and then leaves the replica
%% as it was; a large keyed merge (dirty twin) reports only what it added.
merge_added_refusals_and_large_states_test() ->
    R = ?R:from_term({state_gset, [a, b]}),
    ?assertError({badcrdt, {type_mismatch, state_gset, state_gcounter}},
                 ?R:merge_added(R, {state_gcounter, [{x, 1}]}, true)),
    ?assertError({badcrdt, {type_mismatch, state_gset, state_gcounter}},
                 ?R:merge_added(R, ?C:to_binary({state_gcounter, [{x, 1}]}), true)),
    ?assertError({badcrdt, {bad_binary, _}}, ?R:merge_added(R, <<"LCR", 1, 1, 0>>, true)),
    ?assertError({badcrdt, _}, ?R:merge_added(R, <<"garbage">>, false)),
    ?assertEqual({state_gset, [a, b]}, ?R:to_term(R)),
    Big = ?R:from_term({state_gcounter, [{I, I} || I <- lists:seq(1, 30000)]}),
    In = {state_gcounter, [{I, 2 * I} || I <- [0, 5, 29999]] ++ [{{n, 1}, 1}]},
    ?assertEqual({changed, {state_gcounter, [{0, 0}, {5, 10}, {29999, 59998}, {{n, 1}, 1}]}},
                 ?R:merge_added(Big, ?C:to_binary(In), true)),
    ?assertEqual(unchanged, ?R:merge_added(Big, ?R:to_binary(Big), true)),
    ?assertEqual(30002, ?R:size(Big)).

copy_is_a_snapshot_test() ->
    R = ?R:from_term({state_gset, [a]}),
    C = ?R:copy(R),
    {ok, _} = ?R:mutate({add, b}, x, R),
    ?assertEqual({state_gset, [a]}, ?R:to_term(C)),
    ?assertEqual({state_gset, [a, b]}, ?R:to_term(R)).

large_states_run_dirty_and_agree_test_() ->
    {timeout, 60,
     fun() ->
             A = {state_gset, lists:seq(1, 20000)},
             B = {state_gset, [0 | lists:seq(19995, 20010)]},
             R = ?R:from_term(A),
             ok = ?R:merge(R, B),
             ?assertEqual(?C:merge(A, B), ?R:to_term(R)),
             ?assertEqual(20011, ?R:size(R)),
             Bin = ?R:to_binary(R),
             R2 = ?R:from_binary(Bin),
             ?assert(?R:equal(R, R2)),
             O = {state_orset, [{I, [{<<I:32>>, true}]} || I <- lists:seq(1, 5000)]},
             RO = ?R:from_term(O),
             ok = ?R:merge(RO, {state_orset, [{1, [{<<1:32>>, false}]}]}),
             ?assertEqual(4999, sets:size(?R:query(RO)))
     end}.

%% ===================================================================
%% The binary format: random bytes, truncations, versions, atoms
%% ===================================================================

garbage_binaries_raise_badcrdt_test_() ->
    {timeout, 60,
     fun() ->
             rand:seed(exsss, {1, 2, 3}),
             Valid = [?C:to_binary(S) || S <- [{state_gset, [1, 2.0, {item, 1}, <<"x">>]},
                                               {state_gcounter, [{a, 3}, {<<"b">>, 1}]},
                                               {state_orset, [{x, [{<<"t">>, true}]}]},
                                               {state_gset, []}]],
             Truncations = [binary:part(B, 0, N) || B <- Valid, N <- lists:seq(0, byte_size(B) - 1)],
             Flipped = [flip(B) || B <- Valid, _ <- lists:seq(1, 500)],
             Random = [rand_bytes() || _ <- lists:seq(1, 3000)]
                 ++ [<<"LCR", 1, (rand:uniform(3) - 1), (rand_bytes())/binary>>
                     || _ <- lists:seq(1, 3000)],
             lists:foreach(fun(B) -> ?assertMatch({badcrdt, _}, raised(B)) end, Truncations),
             [?assertMatch({badcrdt, {bad_binary, bad_version}}, raised(B))
              || <<"LCR", _, Rest/binary>> <- Valid, B <- [<<"LCR", 2, Rest/binary>>]],
             lists:foreach(fun(B) -> case raised(B) of
                                         {badcrdt, _} -> ok;
                                         {ok, R} -> ?assertEqual(B, ?R:to_binary(R))
                                     end
                           end, Flipped ++ Random)
     end}.

raised(B) ->
    try ?R:from_binary(B) of
        R -> {ok, R}
    catch
        error:{badcrdt, _} = E -> E
    end.

flip(B) ->
    N = rand:uniform(byte_size(B)) - 1,
    <<P:N/binary, X, Rest/binary>> = B,
    <<P/binary, (X bxor rand:uniform(255)), Rest/binary>>.

rand_bytes() ->
    crypto:strong_rand_bytes(rand:uniform(40) - 1).

unknown_atoms_are_refused_not_created_test() ->
    Name = <<"lasp_converge_replica_tests_no_such_atom_", (integer_to_binary(erlang:unique_integer([positive])))/binary>>,
    Bin = <<"LCR", 1, 1, 1:32, 16#20, Name/binary, 0, 0>>,
    ?assertError({badcrdt, {bad_binary, unsupported}}, ?R:from_binary(Bin)),
    ?assertError(badarg, binary_to_existing_atom(Name, utf8)),
    Known = <<"LCR", 1, 1, 1:32, 16#20, "ok", 0, 0>>,
    ?assertEqual({state_gset, [ok]}, ?R:to_term(?R:from_binary(Known))).

%% ===================================================================
%% Processes: sharing, moving binaries, lifetime
%% ===================================================================

shared_between_processes_test() ->
    R = ?R:new(state_gcounter),
    Self = self(),
    Pids = [spawn_link(fun() ->
                               [{ok, _} = ?R:mutate(increment, {worker, W}, R)
                                || _ <- lists:seq(1, 250)],
                               Self ! {done, W}
                       end) || W <- lists:seq(1, 4)],
    [receive {done, W} -> ok end || W <- lists:seq(1, length(Pids))],
    ?assertEqual(1000, ?R:query(R)),
    ?assertEqual(4, ?R:size(R)).

binary_moves_between_processes_test() ->
    Sender = ?R:from_term({state_gset, lists:seq(1, 1000)}),
    Bin = ?R:to_binary(Sender),
    %% A reference-counted binary: sending it copies no bytes.
    ?assert(byte_size(Bin) > 64),
    Self = self(),
    Pid = spawn_link(fun() ->
                             Mine = ?R:from_term({state_gset, [0]}),
                             receive {merge, B} -> ok = ?R:merge(Mine, B) end,
                             Self ! {term, ?R:to_term(Mine)}
                     end),
    Pid ! {merge, Bin},
    receive {term, T} -> ?assertEqual({state_gset, lists:seq(0, 1000)}, T) end.

replicas_are_freed_by_gc_test() ->
    erlang:garbage_collect(),
    Before = lasp_converge_nif:replica_live(),
    {Pid, Ref} = spawn_monitor(fun() ->
                                       Rs = [?R:from_term({state_gset, [I]}) || I <- lists:seq(1, 1000)],
                                       exit({made, length(Rs), lasp_converge_nif:replica_live()})
                               end),
    receive {'DOWN', Ref, process, Pid, {made, 1000, During}} -> ?assert(During >= 1000) end,
    %% Every one of the thousand is gone (others, from earlier tests, may
    %% have gone too).
    ?assert(wait_live(Before, 100) =< Before).

wait_live(_Want, 0) -> lasp_converge_nif:replica_live();
wait_live(Want, N) ->
    erlang:garbage_collect(),
    case lasp_converge_nif:replica_live() of
        Live when Live =< Want -> Live;
        _ -> timer:sleep(20), wait_live(Want, N - 1)
    end.

%% ===================================================================
%% Against types itself, where the Lasp build is present
%% ===================================================================

types_merge_test_() ->
    Ebin = filename:join([code:lib_dir(lasp_converge), "..", "..", "..", "..", "..",
                          "shared", "lasp-0.8", "lib", "types", "ebin"]),
    Dirs = [D || D <- [os:getenv("LASP_CONVERGE_TYPES_EBIN", ""), Ebin,
                       "/work/shared/lasp-0.8/lib/types/ebin"],
                 D =/= "", filelib:is_dir(D)],
    case Dirs of
        [] -> [];
        [Dir | _] ->
            code:add_pathz(Dir),
            {timeout, 60,
             fun() ->
                     Cases = [{state_gset, {state_gset, [1, {item, 2}, <<"a">>]},
                               {state_gset, [1.0, {item, 1}, <<"b">>]}},
                              {state_gcounter, {state_gcounter, [{a, 2}, {<<"b">>, 1}]},
                               {state_gcounter, [{a, 1}, {{lasp, 1}, 4}]}}],
                     [begin
                          R = ?R:from_term(A),
                          ok = ?R:merge(R, ?C:to_binary(B)),
                          ?assertEqual(Type:merge(A, B), ?R:to_term(R))
                      end || {Type, A, B} <- Cases]
             end}
    end.

%% ===================================================================
%% Between nodes: a binary crosses, a reference does not
%% ===================================================================

binary_moves_between_nodes_test_() ->
    {timeout, 120,
     fun() ->
             lasp_converge_cluster:with_cluster(
               1, #{prefix => lc_replica, apps => []},
               fun(C) ->
                       [Node] = lasp_converge_cluster:nodes(C),
                       S = {state_gset, [1, 2.0, {item, <<"x">>}, <<"y">>]},
                       Bin = ?R:to_binary(?R:from_term(S)),
                       ?assertEqual(S, erpc:call(Node, lasp_converge_crdt, from_binary, [Bin])),
                       Back = erpc:call(Node, lasp_converge_crdt, to_binary,
                                        [{state_gcounter, [{a, 2}, {{lasp, 1}, 5}]}]),
                       R = ?R:from_term({state_gcounter, [{a, 3}]}),
                       ok = ?R:merge(R, Back),
                       ?assertEqual({state_gcounter, [{a, 3}, {{lasp, 1}, 5}]}, ?R:to_term(R)),
                       %% A replica made on the other node is a plain
                       %% reference here.
                       Remote = erpc:call(Node, lasp_converge_replica, new, [state_gset]),
                       ?assertError(badarg, ?R:to_term(Remote))
               end)
     end}.
