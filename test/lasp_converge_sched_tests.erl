%% @doc Scheduling: no call of `lasp_converge_crdt' holds a normal scheduler
%% for long (the module doc promises about 100 microseconds; large inputs
%% move to a dirty CPU scheduler).
%%
%% The test process installs itself as the system monitor with
%% `{long_schedule, 5}' (restoring the previous monitor afterwards) and runs
%% every function on the largest conformance vectors and on generated
%% states of up to 100,000 entries. The calls run one at a time in a worker
%% process: the VM sends no system-monitor message about the monitoring
%% process itself, so calls made by the test process would go unreported.
%%
%% Each call runs between two `erlang:yield/0's (after a garbage
%% collection of the worker, outside them), so a schedule holding a whole
%% NIF call starts and ends in `run_call/1'. A long_schedule of the worker
%% whose two ends both lie in OTP library code (the `sets' set that query/1
%% builds, a garbage collection there) or in the worker's own loop is the
%% caller's Erlang code, not the NIF: it is shown, not counted. Any other
%% long_schedule may be the NIF's: that call runs again once, and the
%% test fails when it is reported again (a single wall-clock hiccup of a
%% loaded machine does not fail it). All messages are shown.
-module(lasp_converge_sched_tests).

-include_lib("eunit/include/eunit.hrl").

-define(M, lasp_converge_crdt).
-define(LONG_SCHEDULE_MS, 5).
-define(ENTRIES, 100000).
-define(WORKER_HEAP_WORDS, 4 * 1024 * 1024).

no_long_schedule_on_large_states_test_() ->
    {timeout, 600,
     {"no call holds a normal scheduler >= 5 ms on the largest vectors and 100k-entry states",
      fun() ->
              Pairs = vector_pairs() ++ generated_pairs(),
              ?assert(length(Pairs) > 0),
              check_no_long_schedule(Pairs)
      end}}.

%% Few entries but large element terms: a call weighs its inputs (binaries
%% by their size) before it decides to stay on the normal scheduler.
no_long_schedule_on_large_elements_test_() ->
    {timeout, 600,
     {"no call holds a normal scheduler >= 5 ms on few but large elements",
      fun() -> check_no_long_schedule(large_element_pairs()) end}}.

%% The normal-scheduler NIF hands a call to its dirty twin exactly when the
%% inputs weigh more than 4,000 units (`Limits::NORMAL_WEIGHT'): a list cell,
%% a tuple, an immediate or any other term 1; a binary 1 plus 1 per 64 bytes
%% (heap, refc and sub-binaries alike); a bignum 1 plus 1 per 8 digit words;
%% a bitstring, a map or a fun always too heavy. Inputs here stay far below
%% the decoder's cell budget, so the weight alone decides.
weight_decides_the_dirty_hop_test() ->
    Refc = binary:copy(<<"r">>, 5000),
    Bins = [binary:copy(<<"h">>, 60), binary:copy(<<"h">>, 64),
            binary:copy(<<"k">>, 1000), Refc, binary:part(Refc, 10, 3000),
            binary:part(Refc, 1, 9)],
    Elems = fun(K, S) -> lists:usort([{I, binary:part(B, 0, min(S, byte_size(B)))}
                                      || I <- lists:seq(1, K), B <- Bins]) end,
    Cases = [{{state_gset, Elems(K, S)}, {state_gset, Elems(K2, S2)}}
             || {K, S} <- [{1, 10}, {3, 1000}, {5, 3000}, {9, 5000}, {14, 5000}],
                {K2, S2} <- [{1, 64}, {2, 2999}, {6, 5000}, {13, 5000}]]
        %% At the limit: 8 + Size div 64 units with one binary.
        ++ [{{state_gset, [Bin]}, {state_gset, []}}
            || Size <- [3992 * 64 - 1, 3992 * 64, 3992 * 64 + 63, 3993 * 64],
               Bin <- [binary:copy(<<"b">>, Size),
                       binary:part(binary:copy(<<"b">>, Size + 5), 5, Size)]]
        ++ [{{state_gset, [{<<1:3>>}]}, {state_gset, []}},
            {{state_gset, [#{}]}, {state_gset, []}},
            {{state_gset, [fun erlang:abs/1]}, {state_gset, []}},
            {{state_gset, [fun() -> Bins end]}, {state_gset, []}}]
        %% Bignums: 1 plus 1 per 8 digit words; at the limit with one.
        ++ [{{state_gset, [1 bsl (64 * Words - 1)]}, {state_gset, []}}
            || Words <- [3992 * 8 - 1, 3992 * 8, 3992 * 8 + 7, 3993 * 8]]
        ++ [{{state_gset, lists:seq(1 bsl 200, (1 bsl 200) + K)}, {state_gset, []}}
            || K <- [100, 1000, 2000]],
    Outcomes = [{weight(A) + weight(B) > 4000, hopped(A, B)} || {A, B} <- Cases],
    %% Both outcomes occur, and they match the model every time.
    ?assert(lists:member({true, true}, Outcomes)),
    ?assert(lists:member({false, false}, Outcomes)),
    ?assertEqual([Heavy || {Heavy, _} <- Outcomes], [H || {_, H} <- Outcomes]).

hopped(A, B) ->
    try lasp_converge_nif:crdt_merge(A, B) of
        _ -> false
    catch error:lasp_converge_dirty -> true
    end.

weight([H | T]) -> 1 + weight(H) + weight(T);
weight(T) when is_tuple(T) -> 1 + lists:sum([weight(E) || E <- tuple_to_list(T)]);
weight(B) when is_binary(B) -> 1 + byte_size(B) div 64;
%% A bignum's flat size is its header and its digit words.
weight(I) when is_integer(I) -> 1 + max(0, erts_debug:flat_size(I) - 1) div 8;
weight(B) when is_bitstring(B) -> 1000000;
weight(M) when is_map(M) -> 1000000;
weight(F) when is_function(F) -> 1000000;
weight(_) -> 1.

%% ===================================================================
%% The check
%% ===================================================================

check_no_long_schedule(Pairs) ->
    %% Load every module the calls use before monitoring.
    _ = [catch run_call(C) || P <- small_pairs(), C <- calls(P)],
    _ = flush_monitor_messages(),
    Calls = lists:append([calls(P) || P <- Pairs]),
    %% One worker per pair: each holds only its own inputs, so the garbage
    %% collection before each call stays short.
    Results = lists:append([monitored(calls(P)) || P <- Pairs]),
    %% A long schedule inside the caller's own Erlang code (the sets built
    %% by query/1, or a garbage collection there) is not the NIF's doing;
    %% and a wall-clock hiccup of a loaded machine does not reproduce.
    %% Every call with a long_schedule that may be the NIF's runs again
    %% once, and only one that does it again fails the test.
    Suspects = [{N, Label, Ms} || {N, {Label, Ms}} <- lists:zip(lists:seq(1, length(Results)), Results),
                                  lists:any(fun is_nif_side/1, Ms)],
    Elsewhere = [{Label, Ms} || {Label, Ms} <- Results, Ms =/= [],
                                not lists:any(fun is_nif_side/1, Ms)],
    Confirmed = [{Label, First, Again}
                 || {N, Label, First} <- Suspects,
                    [{_, Again}] <- [monitored([lists:nth(N, Calls)])],
                    lists:any(fun is_nif_side/1, Again)],
    note("~p calls on ~p input pairs: ~p long_schedule (>= ~p ms) in the caller's Erlang "
         "code, ~p possibly in a NIF, ~p of those again on a second run",
         [length(Results), length(Pairs), length(Elsewhere), ?LONG_SCHEDULE_MS,
          length(Suspects), length(Confirmed)]),
    [note("not counted (caller's Erlang code) ~p:~n  ~p", [L, Ms]) || {L, Ms} <- Elsewhere],
    [note("not reproduced ~p:~n  ~p", [L, Ms])
     || {_, L, Ms} <- Suspects, not lists:keymember(L, 1, Confirmed)],
    case Confirmed of
        [] -> ok;
        _ ->
            lists:foreach(fun({Label, First, Again}) ->
                                  note("~p:~n  first run: ~p~n  second run: ~p",
                                       [Label, First, Again])
                          end, Confirmed),
            erlang:error({long_schedule, [Label || {Label, _, _} <- Confirmed]})
    end.

%% Run the calls one by one in a worker while this process is the system
%% monitor; [{Label, LongScheduleMessagesOfTheWorkerOrThisProcess}].
monitored(Calls) ->
    Self = self(),
    %% The inputs are copied into the worker before monitoring starts.
    %% A heap large enough for the largest result (a 100k-entry merge), so
    %% that building it never triggers a collection inside the call's
    %% schedule.
    Worker = spawn_opt(fun() ->
                               garbage_collect(),
                               Self ! {ready, self()},
                               worker(Self, Calls)
                       end, [link, {min_heap_size, ?WORKER_HEAP_WORDS}]),
    receive {ready, Worker} -> ok end,
    Prev = erlang:system_monitor(Self, [{long_schedule, ?LONG_SCHEDULE_MS}]),
    Results =
        try
            drive(Worker, 1, [])
        after
            restore_system_monitor(Prev)
        end,
    Stray = flush_monitor_messages(),
    Others = [M || {_, Ms} <- Results, {monitor, Who, _, _} = M <- Ms,
                   Who =/= Worker, Who =/= Self] ++ Stray,
    Others =/= [] andalso note("long_schedule of other processes (not counted): ~p", [Others]),
    [{Label, [Info || {monitor, Who, long_schedule, Info} <- Ms,
                      Who =:= Worker orelse Who =:= Self]}
     || {Label, Ms} <- Results].

%% Both ends of the schedule in OTP library code (sets, lists, ...): the
%% caller's Erlang code, not a NIF call. An end the VM reports as
%% `undefined' counts as OTP code when the other end is; anything else may
%% be the NIF.
is_nif_side(Info) ->
    Ours = fun({?MODULE, run_call, 1}) -> true;
              ({M, _, _}) -> lists:member(M, [lasp_converge_nif, lasp_converge_crdt]);
              (_) -> true
           end,
    case {proplists:get_value(in, Info), proplists:get_value(out, Info)} of
        {undefined, undefined} -> true;
        {undefined, Out} -> Ours(Out);
        {In, undefined} -> Ours(In);
        {In, Out} -> Ours(In) orelse Ours(Out)
    end.

%% Ask the worker for call N until it has none left; collect the messages
%% that arrived for each call.
drive(Worker, N, Acc) ->
    Worker ! {run, N},
    receive
        {ran, Worker, N, Label} ->
            %% Let the VM deliver what it noticed at the last schedule-out.
            timer:sleep(5),
            drive(Worker, N + 1, [{Label, flush_monitor_messages()} | Acc]);
        {finished, Worker} ->
            lists:reverse(Acc)
    after 300000 ->
            erlang:error({worker_timeout, N})
    end.

worker(Parent, Calls) ->
    receive
        {run, N} when N =< length(Calls) ->
            {Label, _} = Call = lists:nth(N, Calls),
            %% Collect garbage, then yield, so that no collection of the
            %% inputs falls into the call's schedule.
            garbage_collect(),
            erlang:yield(),
            run_call(Call),
            Parent ! {ran, self(), N, Label},
            worker(Parent, Calls);
        {run, _} ->
            Parent ! {finished, self()}
    end.

restore_system_monitor(undefined) ->
    _ = erlang:system_monitor(undefined),
    ok;
restore_system_monitor({Pid, Opts}) ->
    _ = erlang:system_monitor(Pid, Opts),
    ok.

flush_monitor_messages() ->
    receive
        {monitor, _, long_schedule, _} = M -> [M | flush_monitor_messages()]
    after 0 -> []
    end.

%% Every function on one pair of states of the same type, labelled.
calls({A, B, Op, Actor}) ->
    T = element(1, A),
    Size = erts_debug:flat_size({A, B}),
    L = fun(F) -> {T, F, Size} end,
    [{L(merge_ab), fun() -> ?M:merge(A, B) end},
     {L(merge_ba), fun() -> ?M:merge(B, A) end},
     {L(merge_all), fun() -> ?M:merge_all([A, B, A]) end},
     {L(equal_ab), fun() -> ?M:equal(A, B) end},
     {L(equal_aa), fun() -> ?M:equal(A, A) end},
     {L(is_inflation_ab), fun() -> ?M:is_inflation(A, B) end},
     {L(is_inflation_ba), fun() -> ?M:is_inflation(B, A) end},
     {L(is_strict_inflation_ab), fun() -> ?M:is_strict_inflation(A, B) end},
     {L(is_bottom_a), fun() -> ?M:is_bottom(A) end},
     %% query/1's NIF part: the `sets' its wrapper builds from the result
     %% are the caller's Erlang code (hashing large elements takes long).
     {L(query_a), fun() -> query_nif(A) end},
     {L(delta_ab), fun() -> ?M:delta(A, B) end},
     {L(delta_ba), fun() -> ?M:delta(B, A) end},
     {L(mutate), fun() -> ?M:mutate(Op, Actor, A) end},
     {L(delta_mutate), fun() -> ?M:delta_mutate(Op, Actor, B) end}].

query_nif(S) ->
    try lasp_converge_nif:crdt_query(S)
    catch error:lasp_converge_dirty -> lasp_converge_nif:crdt_query_dirty(S)
    end.

%% A raise of {badcrdt, _} is an answer too (ivar conflicts), but not
%% too_large: these inputs are within the documented limits.
%% The call runs between two yields, so a schedule that holds it whole
%% starts and ends in run_call/1 (both ends are reported as here).
run_call({_Label, F}) ->
    erlang:yield(),
    try F() of
        _ -> erlang:yield()
    catch
        error:{badcrdt, Why} when Why =/= too_large -> erlang:yield()
    end.

%% ===================================================================
%% Inputs
%% ===================================================================

%% The `large' cases of every implemented type's vector file (and its
%% largest case when it has none).
vector_pairs() ->
    case conformance_dir() of
        error ->
            note("conformance vectors not found; only generated states checked", []),
            [];
        {ok, Dir} ->
            lists:append(
              [begin
                   {ok, Bin} = file:read_file(File),
                   Cases = binary_to_term(Bin),
                   Large = case [C || C <- Cases, maps:get(label, C, none) =:= large] of
                               [] -> [largest(Cases)];
                               L -> L
                           end,
                   [{maps:get(a, C), maps:get(b, C), op(T), <<"actor-sched">>} || C <- Large]
               end
               || T <- implemented_types(),
                  File <- [filename:join(Dir, atom_to_list(T) ++ ".etf")],
                  filelib:is_regular(File)])
    end.

largest(Cases) ->
    Sized = [{erts_debug:flat_size({maps:get(a, C), maps:get(b, C)}), C} || C <- Cases],
    element(2, lists:last(lists:keysort(1, Sized))).

%% Two overlapping states of ?ENTRIES entries each, built directly as
%% valid sorted terms.
generated_pairs() ->
    N = ?ENTRIES,
    Half = N div 2,
    Gen = #{state_gcounter =>
                {{state_gcounter, [{I, I rem 7 + 1} || I <- lists:seq(1, N)]},
                 {state_gcounter, [{I, 3} || I <- lists:seq(Half + 1, N + Half)]}},
            state_pncounter =>
                {{state_pncounter, [{I, {I rem 5 + 1, I rem 3}} || I <- lists:seq(1, N)]},
                 {state_pncounter, [{I, {2, 2}} || I <- lists:seq(Half + 1, N + Half)]}},
            state_gset =>
                {{state_gset, lists:seq(1, N)},
                 {state_gset, lists:seq(Half + 1, N + Half)}},
            state_twopset =>
                {{state_twopset, {lists:seq(1, N), lists:seq(1, N, 3)}},
                 {state_twopset, {lists:seq(Half + 1, N + Half), lists:seq(Half + 1, N + Half, 5)}}},
            state_orset =>
                {{state_orset, [{I, [{<<I:160>>, true}]} || I <- lists:seq(1, N)]},
                 {state_orset, [{I, [{<<I:160>>, I rem 2 =:= 0}]} || I <- lists:seq(Half + 1, N + Half)]}},
            state_awset =>
                {{state_awset, {[{I, [{a, I}]} || I <- lists:seq(1, N)], {[{a, N}], []}}},
                 {state_awset, {[{I, [{b, I}]} || I <- lists:seq(Half + 1, N + Half)],
                                {[{b, N + Half}], []}}}}},
    [{A, B, op(T), <<"actor-sched">>}
     || T <- implemented_types(), {ok, {A, B}} <- [maps:find(T, Gen)]].

%% Under the 2,000-cell budget, but every element a large binary sharing a
%% long common prefix with the others (parts of two equal 1 MB binaries,
%% ordered by length), so that each comparison reads about 1 MB; and
%% registers whose values are equal lists of such binaries.
large_element_pairs() ->
    Size = 1 bsl 20,
    Big1 = binary:copy(<<"x">>, Size),
    Big2 = binary:copy(<<"x">>, Size),
    Elems = fun(Big, From) -> [binary:part(Big, 0, Size - 2000 + I)
                               || I <- lists:seq(From, 1800, 2)] end,
    {E1, E2} = {Elems(Big1, 1), Elems(Big2, 2)},
    %% Register values: equal (==, =:=) but not the same term.
    {V1, V2} = {[binary:part(Big1, 0, Size - I) || I <- lists:seq(1, 200)],
                [binary:part(Big2, 0, Size - I) || I <- lists:seq(1, 200)]},
    Gen = #{state_gset => {{state_gset, E1}, {state_gset, E2}},
            state_ivar => {{state_ivar, V1}, {state_ivar, V2}},
            state_lwwregister => {{state_lwwregister, {7, V1}}, {state_lwwregister, {7, V2}}},
            state_gcounter => {{state_gcounter, [{E, 1} || E <- E1]},
                               {state_gcounter, [{E, 2} || E <- E2]}},
            state_orset => {{state_orset, [{E, [{<<1:160>>, true}]} || E <- E1]},
                            {state_orset, [{E, [{<<2:160>>, true}]} || E <- E2]}}},
    %% Bignums that differ only in their last digit: comparing two reads
    %% them whole, as it reads binaries with a long common prefix.
    %% (100 a side of 32,000 digit words held a normal scheduler for 6-8 ms
    %% when a bignum weighed 1.)
    Huge = 1 bsl (64 * 32000),
    {N1, N2} = {[Huge + I || I <- lists:seq(1, 200, 2)],
                [Huge + I || I <- lists:seq(2, 200, 2)]},
    Bignums = [{{state_gset, N1}, {state_gset, N2}, op(state_gset)},
               {{state_gcounter, [{N, 1} || N <- N1]},
                {state_gcounter, [{N, 2} || N <- N2]}, op(state_gcounter)}],
    [{A, B, op(T), <<"actor-sched">>}
     || T <- implemented_types(), {ok, {A, B}} <- [maps:find(T, Gen)]]
        ++ [{A, B, Op, <<"actor-sched">>} || {A, B, Op} <- Bignums].

small_pairs() ->
    [{?M:new(T), ?M:new(T), op(T), <<"actor-sched">>} || T <- implemented_types()].

%% One valid operation per type.
op(state_gcounter) -> increment;
op(state_max_int) -> increment;
op(state_pncounter) -> decrement;
op(state_lexcounter) -> decrement;
op(state_boolean) -> true;
op(state_gset) -> {add, <<"sched">>};
op(state_twopset) -> {rmv, <<"sched">>};
op(state_orset) -> {add, <<"sched">>};
op(state_awset) -> {add, <<"sched">>};
op(state_lwwregister) -> {set, 1 bsl 40, <<"sched">>};
op(state_mvregister) -> {set, 0, <<"sched">>};
op(state_ivar) -> {set, <<"sched">>};
op(state_ewflag) -> enable;
op(state_dwflag) -> disable;
op(_) -> no_op_known.

%% ===================================================================
%% Helpers
%% ===================================================================

implemented(Type) ->
    try ?M:is_bottom(?M:new(Type)) of
        _ -> true
    catch
        error:{badcrdt, {not_implemented, _}} -> false
    end.

implemented_types() ->
    [T || T <- ?M:types(), implemented(T)].

%% The repository's test/conformance (or $LASP_CONVERGE_CONFORMANCE).
conformance_dir() ->
    case lasp_converge_test_paths:conformance_dir() of
        {ok, Dir} -> {ok, Dir};
        {error, _} -> error
    end.

note(Fmt, Args) ->
    io:format(user, "~n[lasp_converge_sched_tests] " ++ Fmt ++ "~n", Args).
