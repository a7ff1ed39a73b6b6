%% Dirty-scheduler, dashboard-limit and atom figures for bench/README.md
%% ("Simulator off the schedulers, dashboard limits"). Not part of `make
%% bench`: run it by hand (see there).
-module(lasp_converge_robust_bench).
-export([run/0]).

-spec run() -> ok.
run() ->
    {ok, _} = application:ensure_all_started(lasp_converge),
    %% 1. a dirty merge while K long simulations run
    K = erlang:system_info(dirty_cpu_schedulers) + 1,
    Long = #{nodes => 20000, fanout => 3, state_interval => 1000, updates => [], until => 4999000},
    Ps = [spawn(fun() -> lasp_converge_sim:run(Long) end) || _ <- lists:seq(1, K)],
    timer:sleep(500),
    A = {state_gset, lists:seq(1, 400000, 2)}, B = {state_gset, lists:seq(2, 400000, 2)},
    {T, _} = timer:tc(fun() -> lasp_converge_nif:crdt_merge_dirty(A, B) end),
    {T0, _} = begin [exit(P, kill) || P <- Ps], W = fun W() -> case lasp_converge_sim:active() of 0 -> ok; _ -> timer:sleep(1), W() end end, timer:tc(W) end,
    {T2, _} = timer:tc(fun() -> lasp_converge_nif:crdt_merge_dirty(A, B) end),
    io:format("merge with ~p runs active: ~p ms; idle: ~p ms; runs gone ~p ms after kill~n", [K, T div 1000, T2 div 1000, T0 div 1000]),
    %% 2. a 10 MB query string
    {ok, #{port := Port}} = lasp_converge_http:start(),
    {ok, S} = gen_tcp:connect({127,0,0,1}, Port, [binary, {active, false}]),
    Q = binary:copy(<<"a">>, 10000000),
    {T3, R} = timer:tc(fun() ->
        _ = gen_tcp:send(S, [<<"GET /api/var?x=">>, Q, <<" HTTP/1.1\r\nHost: localhost\r\n\r\n">>]),
        gen_tcp:recv(S, 0, 30000) end),
    io:format("10 MB query: ~p ms, ~p~n", [T3 div 1000, case R of {ok, <<L:12/binary, _/binary>>} -> L; E -> E end]),
    %% 3. atoms over 20 start/stop cycles
    lasp_converge_http:stop(),
    C = fun() -> {ok, _} = lasp_converge_http:start(), ok = lasp_converge_http:stop() end,
    C(), C(), A0 = erlang:system_info(atom_count), [C() || _ <- lists:seq(1, 20)],
    io:format("atoms over 20 cycles: +~p~n", [erlang:system_info(atom_count) - A0]).
