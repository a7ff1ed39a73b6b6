%% @doc `make demo': two replicas diverge, merge natively, and show it.
%%
%% Two replicas of a `state_orset' and of a `state_awset' take concurrent
%% adds and removes of the same elements (each through `mutate/3'), are
%% merged both ways, and the terminal shows their values, that both merge
%% orders agree, and what the merge cost next to the same merge written in
%% plain Erlang (`orddict'/`ordsets', as lasp-lang/types does it).
-module(lasp_converge_demo).

-export([main/0, main/1]).

-define(ELEMENTS, 10000).

%% @doc Run the demo with 10,000 elements per replica.
-spec main() -> ok.
main() ->
    main(?ELEMENTS).

%% @doc Run the demo with `N' elements per replica.
-spec main(pos_integer()) -> ok.
main(N) ->
    io:format("~nlasp_converge demo: two replicas diverge, then merge~n"
              "====================================================~n~n"),
    lists:foreach(fun(Type) -> run(Type, N) end, [state_orset, state_awset]),
    ok.

run(Type, N) ->
    io:format("~s, ~b elements per replica~n", [Type, N]),
    Bottom = lasp_converge_crdt:new(Type),
    %% Common history: both replicas start from the same N/2 elements.
    {Common, _} = timed(fun() -> apply_ops(Bottom, [{add_all, lists:seq(1, N div 2)}], <<"origin">>) end),
    %% Divergence: A adds the upper half and removes every 3rd common
    %% element; B concurrently re-adds some of those, adds its own and
    %% removes others. Each replica applies its operations one batch at a
    %% time (`add_all', `rmv_all') and singly at the end.
    OpsA = [{add_all, lists:seq(N div 2 + 1, N)},
            {rmv_all, lists:seq(3, N div 2, 3)}]
        ++ [{add, {a, E}} || E <- lists:seq(1, 200)],
    OpsB = [{add_all, lists:seq(3, N div 2, 9)},
            {add_all, [{b, E} || E <- lists:seq(1, N div 2)]},
            {rmv_all, lists:seq(2, N div 2, 5)}]
        ++ [{rmv, E} || E <- lists:seq(4, 400, 10)],
    {A, UsA} = timed(fun() -> apply_ops(Common, OpsA, <<"replica-a">>) end),
    {B, UsB} = timed(fun() -> apply_ops(Common, OpsB, <<"replica-b">>) end),
    io:format("  replica a: ~b operations (~b elements) in ~s, value has ~b elements~n",
              [length(OpsA), op_elements(OpsA), fmt_us(UsA), size_of(A)]),
    io:format("  replica b: ~b operations (~b elements) in ~s, value has ~b elements~n",
              [length(OpsB), op_elements(OpsB), fmt_us(UsB), size_of(B)]),
    {AB, UsAB} = best_of(fun() -> lasp_converge_crdt:merge(A, B) end),
    {BA, _} = best_of(fun() -> lasp_converge_crdt:merge(B, A) end),
    Agree = lasp_converge_crdt:equal(AB, BA),
    Value = lasp_converge_crdt:query(AB),
    io:format("  merged:    ~b elements; merge(a, b) and merge(b, a) agree: ~p~n",
              [sets:size(Value), Agree]),
    Sample = lists:sublist(lists:sort(sets:to_list(Value)), 8),
    io:format("             first elements: ~w ...~n", [Sample]),
    {Plain, UsPlain} = best_of(fun() -> plain_merge(A, B) end),
    Same = Plain =:= AB,
    io:format("  merge time: native ~s, plain Erlang ~s (~.1fx), same term: ~p~n",
              [fmt_us(UsAB), fmt_us(UsPlain), UsPlain / max(UsAB, 1), Same]),
    Delta = lasp_converge_crdt:delta(B, A),
    io:format("  delta(b, a): what a is missing from b, ~b of b's ~b elements'"
              " entries~n~n", [payload_size(Delta), payload_size(B)]),
    ok.

apply_ops(State, Ops, Actor) ->
    lists:foldl(fun(Op, S) ->
                        case lasp_converge_crdt:mutate(Op, Actor, S) of
                            {ok, S1} -> S1;
                            {error, _} -> S   % e.g. removing an absent element
                        end
                end, State, Ops).

op_elements(Ops) ->
    lists:sum([case Op of
                   {_, Es} when is_list(Es) -> length(Es);
                   _ -> 1
               end || Op <- Ops]).

size_of(S) ->
    sets:size(lasp_converge_crdt:query(S)).

payload_size({state_orset, P}) -> length(P);
payload_size({state_awset, {DotMap, _}}) -> length(DotMap).

%% The same merges, written plainly on orddict/ordsets as types does.
plain_merge({state_orset, A}, {state_orset, B}) ->
    {state_orset,
     orddict:merge(fun(_, T1, T2) ->
                           orddict:merge(fun(_, X, Y) -> X andalso Y end, T1, T2)
                   end, A, B)};
plain_merge({state_awset, {M1, C1}}, {state_awset, {M2, C2}}) ->
    {state_awset, {dot_map_merge(M1, C1, M2, C2), cc_union(C1, C2)}}.

%% Walk both dot maps in key order, as types' dot_map:merge does; a key
%% whose merged dot set is empty is dropped.
dot_map_merge(M1, C1, M2, C2) ->
    dot_map_merge(M1, C1, M2, C2, []).

dot_map_merge([], _, [], _, Acc) ->
    lists:reverse(Acc);
dot_map_merge([{K, D1} | R1], C1, [{K, D2} | R2], C2, Acc) ->
    dot_map_merge(R1, C1, R2, C2, keep(K, dot_set_merge(D1, C1, D2, C2), Acc));
dot_map_merge([{K1, D1} | R1], C1, [{K2, _} | _] = M2, C2, Acc) when K1 < K2 ->
    dot_map_merge(R1, C1, M2, C2, keep(K1, dot_set_merge(D1, C1, [], C2), Acc));
dot_map_merge([], C1, [{K2, D2} | R2], C2, Acc) ->
    dot_map_merge([], C1, R2, C2, keep(K2, dot_set_merge([], C1, D2, C2), Acc));
dot_map_merge(M1, C1, [{K2, D2} | R2], C2, Acc) when M1 =:= [] orelse element(1, hd(M1)) > K2 ->
    dot_map_merge(M1, C1, R2, C2, keep(K2, dot_set_merge([], C1, D2, C2), Acc));
dot_map_merge([{K1, D1} | R1], C1, [], C2, Acc) ->
    dot_map_merge(R1, C1, [], C2, keep(K1, dot_set_merge(D1, C1, [], C2), Acc)).

keep(_, [], Acc) -> Acc;
keep(K, D, Acc) -> [{K, D} | Acc].

dot_set_merge(D1, C1, D2, C2) ->
    ordsets:union(ordsets:intersection(D1, D2),
                  ordsets:union([D || D <- D1, not in_cc(D, C2)],
                                [D || D <- D2, not in_cc(D, C1)])).

in_cc({Actor, Seq} = Dot, {Compressed, Cloud}) ->
    case orddict:find(Actor, Compressed) of
        {ok, Max} when Seq =< Max -> true;
        _ -> ordsets:is_element(Dot, Cloud)
    end.

cc_union({Co1, Cl1}, {Co2, Cl2}) ->
    Co = orddict:merge(fun(_, X, Y) -> max(X, Y) end, Co1, Co2),
    Cl = ordsets:union(Cl1, Cl2),
    lists:foldl(fun({Actor, Seq} = Dot, {CoAcc, ClAcc}) ->
                        Cur = case orddict:find(Actor, CoAcc) of
                                  {ok, V} -> V;
                                  error -> 0
                              end,
                        if Seq =:= Cur + 1 -> {orddict:store(Actor, Seq, CoAcc), ClAcc};
                           Seq > Cur + 1 -> {CoAcc, ordsets:add_element(Dot, ClAcc)};
                           true -> {CoAcc, ClAcc}
                        end
                end, {Co, []}, Cl).

timed(F) ->
    T0 = erlang:monotonic_time(microsecond),
    R = F(),
    {R, erlang:monotonic_time(microsecond) - T0}.

best_of(F) ->
    Runs = [timed(F) || _ <- lists:seq(1, 5)],
    {R, _} = hd(Runs),
    {R, lists:min([Us || {_, Us} <- Runs])}.

fmt_us(Us) when Us >= 1000000 -> io_lib:format("~.2f s", [Us / 1000000]);
fmt_us(Us) when Us >= 1000 -> io_lib:format("~.2f ms", [Us / 1000]);
fmt_us(Us) -> io_lib:format("~b us", [Us]).
