%% @doc The registry (`lasp_converge_registry') and the supervision tree
%% under `lasp_converge_sup': who owns what, what restarts what, and which
%% mistakes stay quiet `{error, _}' answers.
-module(lasp_converge_registry_tests).

-include_lib("eunit/include/eunit.hrl").

-export([log/2]).

-define(R, lasp_converge_registry).

registry_test_() ->
    {setup,
     fun() -> {ok, Apps} = application:ensure_all_started(lasp_converge), Apps end,
     fun(Apps) -> [application:stop(A) || A <- lists:reverse(Apps)] end,
     [{"the table is protected", fun table_is_protected/0},
      {"a tracker's rows go when it dies", fun rows_go_with_their_process/0},
      {"counters and sequence numbers", fun counters/0},
      {"last state sent is swapped", fun last_sent/0},
      {"controllers are found through the registry", fun controllers/0},
      {"the tree reads as documented", fun tree_shape/0},
      {"a tracker crash leaves the rest alone", fun tracker_crash_is_contained/0},
      {"a registry crash restarts what depends on it", fun registry_crash_restarts_dependants/0},
      {"expected errors log nothing", fun expected_errors_are_quiet/0}]}.

table_is_protected() ->
    ?assertEqual(protected, ets:info(?R, protection)),
    ?assertEqual(whereis(?R), ets:info(?R, owner)),
    ?assertError(badarg, ets:insert(?R, {{tracker, x}, self(), member, self(), undefined, 0})).

%% A process registers as a tracker; a second one is refused while it
%% lives; when it is killed (no clean-up of its own) the registry removes
%% its rows, so the variable can be registered again.
rows_go_with_their_process() ->
    V = {<<"reg_rows">>, state_gset},
    Self = self(),
    P = spawn(fun() ->
                      Self ! {registered, ?R:register_tracker(V, member, Self, undefined)},
                      ok = ?R:set_seq(V, 41),
                      _ = ?R:claim_type(V, state_gset),
                      Self ! ready,
                      receive never -> ok end
              end),
    receive {registered, R} -> ?assertEqual(ok, R) end,
    receive ready -> ok end,
    ?assertMatch({ok, #{pid := P, role := member, agg := Self}}, ?R:tracker(V)),
    ?assertEqual({error, already_tracked}, ?R:register_tracker(V, member, self(), undefined)),
    ?assertEqual(42, ?R:next_seq(V)),
    ?assertEqual(state_gset, ?R:claim_type(V, state_orset)),
    Ref = erlang:monitor(process, P),
    exit(P, kill),
    receive {'DOWN', Ref, process, P, _} -> ok end,
    wait(fun() -> ?R:seq(V) =:= 0 end),
    ?assertEqual(error, ?R:tracker(V)),
    ?assertEqual(0, ?R:seq(V)),
    ?assertEqual(state_orset, ?R:claim_type(V, state_orset)),
    ok = ?R:register_tracker(V, member, self(), undefined),
    ok = ?R:unregister_tracker(V),
    ?assertEqual(error, ?R:tracker(V)).

counters() ->
    K = {reg_test, erlang:unique_integer()},
    ?assertEqual(0, ?R:count(K)),
    ok = ?R:bump(K),
    ok = ?R:bump(K),
    ?assertEqual(2, ?R:count(K)),
    ?assertEqual(2, proplists:get_value(element(2, K), ?R:counts(reg_test))),
    ok = ?R:clear_count(K),
    ?assertEqual(0, ?R:count(K)),
    %% Sequence numbers from many processes at once: each given once.
    V = {<<"reg_seq">>, state_gset},
    Self = self(),
    _ = [spawn(fun() -> Self ! {seqs, [?R:next_seq(V) || _ <- lists:seq(1, 100)]} end)
         || _ <- lists:seq(1, 8)],
    Seqs = lists:append([receive {seqs, L} -> L end || _ <- lists:seq(1, 8)]),
    ?assertEqual(lists:seq(1, 800), lists:sort(Seqs)),
    ?assertEqual(800, ?R:seq(V)).

last_sent() ->
    V = {<<"reg_last">>, state_gset},
    ?assertEqual(undefined, ?R:swap_last_sent(V, {state_gset, [a]})),
    ?assertEqual({state_gset, [a]}, ?R:swap_last_sent(V, {state_gset, [a, b]})),
    ?assertEqual({state_gset, [a, b]}, ?R:last_sent(V)).

controllers() ->
    V = {<<"reg_ctl">>, state_gset},
    {ok, Pid} = lasp_converge_tuner:start(V, {fixed, 5000}, #{nodes => [node()]}),
    try
        ?assertEqual({ok, Pid}, ?R:controller(V)),
        ?assert(lists:member(V, lasp_converge_tuner:running())),
        ?assertEqual({error, already_started},
                     lasp_converge_tuner:start(V, {fixed, 5000}, #{nodes => [node()]})),
        ?assertEqual([Pid], [P || {_, P, _, _} <- supervisor:which_children(lasp_converge_tuner_sup)])
    after
        ok = lasp_converge_tuner:stop(V)
    end,
    ?assertEqual({error, not_running}, lasp_converge_tuner:stop(V)),
    wait(fun() -> ?R:controller(V) =:= error end),
    ?assertNot(lists:member(V, lasp_converge_tuner:running())).

tree_shape() ->
    ?assertEqual([lasp_converge_registry, lasp_converge_tracker_sup, lasp_converge_replicator,
                  lasp_converge_tuner_sup],
                 lists:reverse([Id || {Id, _, _, _} <- supervisor:which_children(lasp_converge_sup)])),
    {ok, {#{strategy := rest_for_one}, _}} = lasp_converge_sup:init([]),
    {ok, {#{strategy := simple_one_for_one}, [#{restart := temporary}]}} =
        lasp_converge_tracker_sup:init([]),
    {ok, {#{strategy := simple_one_for_one}, [#{restart := temporary}]}} =
        lasp_converge_tuner_sup:init([]),
    ?assertEqual(ok, lasp_converge_replicator:ensure_started()).

tracker_crash_is_contained() ->
    V = {<<"reg_crash">>, state_gset},
    Before = pids(),
    ok = lasp_converge:track(V, #{nodes => []}),
    {ok, #{pid := T}} = ?R:tracker(V),
    {ok, Obs} = ?R:observer(V),
    Ref = erlang:monitor(process, Obs),
    exit(T, kill),
    receive {'DOWN', Ref, process, Obs, _} -> ok end,
    wait(fun() -> ?R:observer(V) =:= error end),
    ?assertEqual({error, not_tracked}, lasp_converge:stats(V)),
    ?assertEqual(Before, pids()),
    %% Tracked again at once: nothing of the dead tracker is left.
    ok = lasp_converge:track(V, #{nodes => []}),
    ok = lasp_converge:untrack(V).

registry_crash_restarts_dependants() ->
    V = {<<"reg_restart">>, state_gset},
    ok = lasp_converge:track(V, #{nodes => []}),
    {ok, #{pid := T}} = ?R:tracker(V),
    TRef = erlang:monitor(process, T),
    #{registry := Reg, tracker_sup := TS, replicator := Rep, tuner_sup := TuS} = pids(),
    exit(Reg, kill),
    receive {'DOWN', TRef, process, T, _} -> ok end,
    wait(fun() ->
                 maps:size(maps:filter(fun(_, P) -> is_pid(P) end, pids())) =:= 4
                     andalso whereis(lasp_converge_tuner_sup) =/= TuS
         end),
    #{registry := Reg2, tracker_sup := TS2, replicator := Rep2, tuner_sup := TuS2} = pids(),
    ?assert(Reg2 =/= Reg andalso TS2 =/= TS andalso Rep2 =/= Rep andalso TuS2 =/= TuS),
    ?assertEqual({error, not_tracked}, lasp_converge:stats(V)),
    ?assertEqual(protected, ets:info(?R, protection)),
    ok = lasp_converge:track(V, #{nodes => []}),
    ok = lasp_converge:untrack(V).

%% Mistakes a caller can make are `{error, _}' answers, with no crash or
%% supervisor report in the log.
expected_errors_are_quiet() ->
    ok = logger:add_handler(?MODULE, ?MODULE, #{level => all, config => #{pid => self()}}),
    try
        V = {<<"reg_quiet">>, state_gset},
        ?assertEqual({error, {bad_option, horizon, "30s"}},
                     lasp_converge:track(V, #{horizon => "30s"})),
        ?assertEqual({error, {unknown_option, horizn}}, lasp_converge:track(V, #{horizn => 1})),
        ?assertEqual({error, not_tracked},
                     lasp_converge_tuner:start(V, {target_p99, 100}, #{nodes => [node()]})),
        ok = lasp_converge:track(V, #{nodes => []}),
        ?assertEqual({error, already_tracked}, lasp_converge:track(V, #{nodes => []})),
        ok = lasp_converge:untrack(V),
        ?assertEqual({error, not_tracked}, lasp_converge:untrack(V)),
        receive {logged, Event} -> ?assertEqual(nothing_logged, Event)
        after 300 -> ok
        end
    after
        logger:remove_handler(?MODULE)
    end.

%% logger handler: forwards warnings and worse to the test.
log(#{level := Level} = Event, #{config := #{pid := Pid}}) ->
    case logger:compare_levels(Level, warning) of
        lt -> ok;
        _ -> Pid ! {logged, maps:with([level, msg], Event)}
    end.

pids() ->
    #{registry => whereis(lasp_converge_registry),
      tracker_sup => whereis(lasp_converge_tracker_sup),
      replicator => whereis(lasp_converge_replicator),
      tuner_sup => whereis(lasp_converge_tuner_sup)}.

wait(F) -> wait(F, 500).

wait(F, 0) -> ?assert(F());
wait(F, N) ->
    case F() of
        true -> ok;
        false -> timer:sleep(10), wait(F, N - 1)
    end.
