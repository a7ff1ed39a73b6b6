%% Cost of the operations plane: building the /metrics text, the tracker's
%% per-tick read of finished updates (lasp_converge_telemetry:tracker_tick/3)
%% with and without a `telemetry' module, and the "is telemetry loaded"
%% check. Single node; minimum of several runs.
%%
%%   erlc -o _build/bench bench/lasp_converge_metrics_bench.erl
%%   erl -noshell -pa _build/default/lib/lasp_converge/ebin -pa _build/bench \
%%       -s lasp_converge_metrics_bench main -s init stop
-module(lasp_converge_metrics_bench).

-export([main/0]).

-define(RUNS, 9).

main() ->
    {ok, _} = application:ensure_all_started(lasp_converge),
    io:format("enabled() without telemetry: ~.1f ns/call~n", [per_call_ns(100000)]),
    [tick(K, false) || K <- [0, 100, 1000]],
    load_noop_telemetry(),
    io:format("enabled() with telemetry:    ~.1f ns/call~n", [per_call_ns(100000)]),
    [tick(K, true) || K <- [100, 1000]],
    [scrape(V) || V <- [1, 10, 100]],
    ok.

per_call_ns(N) ->
    _ = lasp_converge_telemetry:enabled(),
    Best = lists:min([begin
                          T0 = erlang:monotonic_time(nanosecond),
                          loop(N),
                          erlang:monotonic_time(nanosecond) - T0
                      end || _ <- lists:seq(1, ?RUNS)]),
    Best / N.

loop(0) -> ok;
loop(N) -> _ = lasp_converge_telemetry:enabled(), loop(N - 1).

%% K updates converge between two ticks: the tick's cost.
tick(K, Telemetry) ->
    Us = lists:min([one_tick(K) || _ <- lists:seq(1, ?RUNS)]),
    io:format("tracker tick, ~b converged since the last (telemetry ~p): ~b us~n",
              [K, Telemetry, Us]).

one_tick(K) ->
    Var = {bench, erlang:unique_integer()},
    ok = lasp_converge:track(Var, #{nodes => [], tick => false, clock => false}),
    {ok, {aggregator, _, Res, _}} = lasp_converge_tracker:lookup(Var),
    lists:foldl(fun(I, S0) ->
                        {ok, S1} = lasp_converge_crdt:mutate({add, I}, a, S0),
                        ok = lasp_converge:updated(Var, S0, S1),
                        S1
                end, lasp_converge_crdt:new(state_gset), lists:seq(1, K)),
    Self = self(),
    %% In a process of its own, as in the tracker (the count read is kept
    %% in the process dictionary).
    spawn(fun() ->
                  T0 = erlang:monotonic_time(microsecond),
                  ok = lasp_converge_telemetry:tracker_tick(Var, Res, #{0 => node()}),
                  Self ! {took, erlang:monotonic_time(microsecond) - T0}
          end),
    receive {took, T} -> ok = lasp_converge:untrack(Var), T end.

load_noop_telemetry() ->
    Forms = [{attribute, 1, module, telemetry}, {attribute, 1, export, [{execute, 3}]},
             {function, 1, execute, 3, [{clause, 1, [{var, 1, '_'}, {var, 1, '_'}, {var, 1, '_'}],
                                         [], [{atom, 1, ok}]}]}],
    {ok, telemetry, Bin} = compile:forms(Forms),
    {module, telemetry} = code:load_binary(telemetry, "telemetry.erl", Bin).

%% V variables with 100 converged updates each: one lasp_converge:metrics/0.
scrape(V) ->
    Vars = [{scrape, V, I} || I <- lists:seq(1, V)],
    [begin
         ok = lasp_converge:track(X, #{nodes => [], tick => false, clock => false}),
         lists:foldl(fun(I, S0) ->
                             {ok, S1} = lasp_converge_crdt:mutate({add, I}, a, S0),
                             ok = lasp_converge:updated(X, S0, S1),
                             S1
                     end, lasp_converge_crdt:new(state_gset), lists:seq(1, 100))
     end || X <- Vars],
    Best = lists:min([element(1, timer:tc(lasp_converge, metrics, [])) || _ <- lists:seq(1, ?RUNS)]),
    Size = byte_size(lasp_converge:metrics()),
    io:format("metrics/0 with ~b variable(s): ~b us, ~b bytes~n", [V, Best, Size]),
    [ok = lasp_converge:untrack(X) || X <- Vars].
