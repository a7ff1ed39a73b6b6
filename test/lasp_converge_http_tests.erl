%% @doc The dashboard's server (`lasp_converge_http'): loopback by default,
%% any free port, the page and the two JSON endpoints, and 400/404/405 for
%% everything else; nothing is read from the file system. A query that is
%% not UTF-8 answers 400, an oversized URI 414 and a body 413 at once, a
%% foreign `Host' 400, and starting and stopping on port 0 creates no atoms.
-module(lasp_converge_http_tests).

-export([log/2]).

-include_lib("eunit/include/eunit.hrl").

http_test_() ->
    {setup,
     fun() -> {ok, Apps} = application:ensure_all_started(lasp_converge), Apps end,
     fun(_) -> lasp_converge_http:stop() end,
     [fun endpoints/0, fun bad_queries/0, fun sizes/0, fun hosts/0,
      fun restarts_create_no_atoms/0, fun host_rules/0]}.

endpoints() ->
    V = {<<"http">>, state_gcounter},
    ok = lasp_converge:track(V, #{nodes => []}),
    try
        ok = lasp_converge:updated(V, {state_gcounter, []}, {state_gcounter, [{a, 1}]}),
        ?assertEqual({error, {bad_option, port, -1}}, lasp_converge_http:start(#{port => -1})),
        ?assertEqual({error, not_started}, lasp_converge_http:url()),
        {ok, #{port := Port, url := Url}} = lasp_converge_http:start(),
        ?assert(Port > 0),
        ?assertEqual("http://127.0.0.1:" ++ integer_to_list(Port) ++ "/", Url),
        ?assertEqual({ok, Url}, lasp_converge_http:url()),
        ?assertEqual({error, already_started}, lasp_converge_http:start()),
        %% Bound to loopback only: this machine's other addresses refuse.
        {ok, Ifs} = inet:getifaddrs(),
        Others = [A || {_, Props} <- Ifs, {addr, A = {X, _, _, _}} <- Props, X =/= 127],
        [?assertMatch({error, _}, gen_tcp:connect(A, Port, [], 2000)) || A <- Others],
        {ok, S} = gen_tcp:connect({127, 0, 0, 1}, Port, [], 2000),
        ok = gen_tcp:close(S),
        {200, "text/html" ++ _, Page} = fetch(Url),
        ?assertMatch({match, _}, re:run(Page, "setTimeout\\(poll, REFRESH\\)")),
        {200, "application/json" ++ _, Vars} = fetch(Url ++ "api/vars"),
        Id = lists:flatten(io_lib:format("~b", [index_of(V, lasp_converge:tracked())])),
        ?assertMatch({match, _}, re:run(Vars, "\\{\"id\":" ++ Id ++ ",\"name\":")),
        {200, _, One} = fetch(Url ++ "api/var?id=" ++ Id),
        ?assertMatch({match, _}, re:run(One, "\"updates\":1")),
        ?assertMatch({match, _}, re:run(One, "\"html\":\"\\\\u003csection>")),
        [?assertMatch({404, _, _}, fetch(Url ++ P))
         || P <- ["api/var?id=999", "nope", "api/vars/x", "../../etc/passwd",
                  "%2e%2e/%2e%2e/etc/passwd", "?x=1"]],
        [?assertMatch({400, _, _}, fetch(Url ++ P))
         || P <- ["api/var", "api/var?id=", "api/var?id=abc", "api/var?id=-3",
                  "api/var?id=1&id=2"]],
        {ok, {{_, 405, _}, _, _}} = httpc:request(post, {Url, [], "text/plain", "x"}, [], []),
        {ok, {{_, 200, _}, _, ""}} = httpc:request(head, {Url, []}, [], []),
        ?assertEqual(ok, lasp_converge_http:stop()),
        ?assertEqual({error, not_started}, lasp_converge_http:stop()),
        ?assertMatch({error, _}, httpc:request(get, {Url, []}, [{timeout, 2000}], []))
    after
        lasp_converge:untrack(V)
    end.

with_server(Opts, F) ->
    {ok, #{port := Port}} = lasp_converge_http:start(Opts),
    try F(Port) after lasp_converge_http:stop() end.

%% One request as raw bytes; the status code and the body.
raw(Port, Request) ->
    {ok, S} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}], 5000),
    try
        ok = gen_tcp:send(S, Request),
        Answer = recv_all(S, <<>>),
        <<"HTTP/1.", _, " ", C:3/binary, _/binary>> = Answer,
        [_, Body] = binary:split(Answer, <<"\r\n\r\n">>),
        {binary_to_integer(C), Body}
    after
        gen_tcp:close(S)
    end.

recv_all(S, Acc) ->
    case gen_tcp:recv(S, 0, 30000) of
        {ok, B} -> recv_all(S, <<Acc/binary, B/binary>>);
        {error, _} -> Acc
    end.

get(Port, Path, Host) ->
    raw(Port, ["GET ", Path, " HTTP/1.1\r\nHost: ", Host, "\r\nConnection: close\r\n\r\n"]).

local(Port) ->
    "127.0.0.1:" ++ integer_to_list(Port).

bad_queries() ->
    with_server(#{}, fun(Port) ->
        %% Percent-encoded bytes that are not UTF-8, and raw ones.
        [?assertMatch({400, _}, get(Port, P, local(Port)))
         || P <- ["/api/var?id=%FF", "/api/var?id=%C3%28", "/api/var?%FF=1",
                  <<"/api/var?id=", 255>>, <<"/api/var?id=1", 192, 128>>]]
    end).

sizes() ->
    with_server(#{}, fun(Port) ->
        Long = ["/api/var?id=1&x=", lists:duplicate(200000, $a)],
        ?assertMatch({414, _}, get(Port, Long, local(Port))),
        %% Under the cap, still answered.
        ?assertMatch({200, _}, get(Port, ["/api/vars?x=", lists:duplicate(4000, $a)],
                                  local(Port))),
        ?assertMatch({413, _}, raw(Port, ["GET / HTTP/1.1\r\nHost: ", local(Port),
                                          "\r\nX-Big: ", lists:duplicate(20000, $a),
                                          "\r\n\r\n"])),
        ?assertMatch({413, _}, raw(Port, ["POST / HTTP/1.1\r\nHost: ", local(Port),
                                          "\r\nContent-Length: 10000000\r\n\r\n", "xx"]))
    end).

hosts() ->
    with_server(#{}, fun(Port) ->
        P = integer_to_list(Port),
        [?assertMatch({200, _}, get(Port, "/api/vars", H))
         || H <- ["127.0.0.1:" ++ P, "localhost:" ++ P, "LocalHost:" ++ P, "[::1]:" ++ P,
                  "10.1.2.3:" ++ P]],
        [?assertMatch({400, <<"host not allowed\n">>}, get(Port, "/api/vars", H))
         || H <- ["evil.example:" ++ P, "evil.example", "localhost", "localhost:1",
                  "127.0.0.1", "localhost.evil.example:" ++ P, "127.0.0.1:" ++ P ++ "x",
                  "[::1:" ++ P, ""]],
        %% No Host at all (HTTP/1.0): not a browser.
        ?assertMatch({200, _}, raw(Port, "GET /api/vars HTTP/1.0\r\n\r\n"))
    end),
    with_server(#{allowed_hosts => ["dash.example", <<"other.example:8443">>]}, fun(Port) ->
        P = integer_to_list(Port),
        ?assertMatch({200, _}, get(Port, "/api/vars", "dash.example:" ++ P)),
        ?assertMatch({200, _}, get(Port, "/api/vars", "Other.Example:8443")),
        ?assertMatch({400, _}, get(Port, "/api/vars", "other.example:" ++ P)),
        ?assertMatch({400, _}, get(Port, "/api/vars", "evil.example:" ++ P))
    end),
    with_server(#{allowed_hosts => any}, fun(Port) ->
        ?assertMatch({200, _}, get(Port, "/api/vars", "evil.example"))
    end),
    ?assertEqual({error, {bad_option, allowed_hosts, some}},
                 lasp_converge_http:start(#{allowed_hosts => some})).

%% inets names a server's processes after its port, with atoms: a fresh
%% port each time left about 7 atoms per start and stop.
restarts_create_no_atoms() ->
    Cycle = fun() -> with_server(#{}, fun(P) -> P end) end,
    _ = [Cycle() || _ <- lists:seq(1, 3)],
    Atoms = erlang:system_info(atom_count),
    Ports = [Cycle() || _ <- lists:seq(1, 20)],
    ?assert(erlang:system_info(atom_count) - Atoms < 20),
    ?assert(length(lists:usort(Ports)) =< 8).

%% The Host rules on their own, port 80 included.
host_rules() ->
    G = lasp_converge_http_guard,
    Ip = {127, 0, 0, 1},
    ?assert(G:host_allowed("localhost", Ip, 80, [])),
    ?assert(G:host_allowed("localhost:80", Ip, 80, [])),
    ?assert(G:host_allowed("[::1]", Ip, 80, [])),
    ?assertNot(G:host_allowed("[::1", Ip, 80, [])),
    ?assertNot(G:host_allowed("[zz]", Ip, 80, [])),
    ?assert(G:host_allowed(undefined, Ip, 80, [])),
    ?assert(G:host_allowed("a.example", Ip, 80, ["a.example"])),
    ?assertNot(G:host_allowed("a.example", Ip, 81, ["a.example"])),
    ?assert(G:host_allowed("a.example:81", Ip, 81, ["a.example"])),
    ?assertNot(G:host_allowed("1.2.3.4.5:80", Ip, 80, [])),
    ?assertNot(G:host_allowed("localhost:99999", Ip, 80, [])),
    ?assertNot(G:host_allowed("x.example", Ip, 80, [<<255>>, 1, "a:b:c"])),
    ?assertEqual({ok, [{"id", "1"}]}, G:query("id=1")),
    ?assertEqual(error, G:query("id=%FF")).

index_of(X, L) -> length(lists:takewhile(fun(Y) -> Y =/= X end, L)).

fetch(Url) ->
    {ok, {{_, Code, _}, Headers, Body}} = httpc:request(get, {Url, []}, [], []),
    {Code, proplists:get_value("content-type", Headers), Body}.

%% Options are checked by name, and a taken port is an error of its own,
%% returned without starting httpd (whose supervisor would log a crash).
start_errors_test() ->
    ?assertEqual({error, {bad_opts, [{port, 1}]}}, lasp_converge_http:start([{port, 1}])),
    ?assertEqual({error, {unknown_option, prot}}, lasp_converge_http:start(#{prot => 8080})),
    ?assertEqual({error, {bad_option, refresh_ms, 0}},
                 lasp_converge_http:start(#{refresh_ms => 0})),
    ?assertEqual({error, {bad_option, ip, localhost}}, lasp_converge_http:start(#{ip => localhost})),
    {ok, L} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
    {ok, Busy} = inet:port(L),
    try
        Reports = capture_reports(
                    fun() ->
                            ?assertEqual({error, {eaddrinuse, Busy}},
                                         lasp_converge_http:start(#{port => Busy}))
                    end),
        ?assertEqual([], Reports),
        ?assertEqual({error, not_started}, lasp_converge_http:url())
    after
        gen_tcp:close(L)
    end.

%% Log events of level error and above emitted while Fun runs.
capture_reports(Fun) ->
    Self = self(),
    Id = list_to_atom("lc_http_capture_" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = logger:add_handler(Id, lasp_converge_http_tests, #{config => Self, level => error}),
    try
        Fun(),
        timer:sleep(200),
        collect([])
    after
        logger:remove_handler(Id)
    end.

collect(Acc) ->
    receive {captured_log, E} -> collect([E | Acc])
    after 0 -> lists:reverse(Acc)
    end.

%% logger handler callback.
log(#{msg := Msg}, #{config := Pid}) ->
    Pid ! {captured_log, Msg}.
