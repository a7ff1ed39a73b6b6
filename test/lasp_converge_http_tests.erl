%% @doc The dashboard's server (`lasp_converge_http'): loopback by default,
%% any free port, the page and the two JSON endpoints, and 400/404/405 for
%% everything else; nothing is read from the file system.
-module(lasp_converge_http_tests).

-include_lib("eunit/include/eunit.hrl").

http_test_() ->
    {setup,
     fun() -> {ok, Apps} = application:ensure_all_started(lasp_converge), Apps end,
     fun(_) -> lasp_converge_http:stop() end,
     [fun endpoints/0]}.

endpoints() ->
    V = {<<"http">>, state_gcounter},
    ok = lasp_converge:track(V, #{nodes => []}),
    try
        ok = lasp_converge:updated(V, {state_gcounter, []}, {state_gcounter, [{a, 1}]}),
        ?assertEqual({error, bad_opts}, lasp_converge_http:start(#{port => -1})),
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

index_of(X, L) -> length(lists:takewhile(fun(Y) -> Y =/= X end, L)).

fetch(Url) ->
    {ok, {{_, Code, _}, Headers, Body}} = httpc:request(get, {Url, []}, [], []),
    {Code, proplists:get_value("content-type", Headers), Body}.
