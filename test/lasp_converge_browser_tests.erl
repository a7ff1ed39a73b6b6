%% @doc The report and the live dashboard in a real browser: Debian's
%% headless Chromium (`.ci/run' installs it) opens them offline, the test
%% reads the DOM it ends with and its console, and saves screenshots under
%% `_build/test/browser/'.
%%
%% Without a Chromium on the PATH the tests are skipped with a note, unless
%% `LASP_CONVERGE_REQUIRE_BROWSER=1' (as in CI), when they fail.
-module(lasp_converge_browser_tests).

-include_lib("eunit/include/eunit.hrl").

-define(FLAGS, "--headless --no-sandbox --disable-gpu --disable-background-networking "
               "--disable-component-update --no-first-run --enable-logging=stderr --v=0").

browser_test_() ->
    case chromium() of
        false ->
            case os:getenv("LASP_CONVERGE_REQUIRE_BROWSER") of
                "1" -> [?_assert(chromium_missing =:= found)];
                _ ->
                    io:format(user, "~nlasp_converge_browser_tests: no chromium on the PATH, "
                              "browser tests skipped~n", []),
                    []
            end;
        Exe ->
            {setup,
             fun() -> {ok, Apps} = application:ensure_all_started(lasp_converge), Apps end,
             fun(_) -> ok end,
             [{timeout, 120, {"report: every chart drawn, no console message",
                              fun() -> report(Exe) end}},
              {timeout, 120, {"dashboard: polls and redraws the live figures",
                              fun() -> dashboard(Exe) end}}]}
    end.

chromium() ->
    hd([E || N <- ["chromium", "chromium-browser", "google-chrome"],
             (E = os:find_executable(N)) =/= false] ++ [false]).

dir() ->
    D = filename:join([filename:absname("_build"), "test", "browser"]),
    ok = filelib:ensure_path(D),
    D.

%% The report of `lasp_converge_report_tests:synthetic/0''s data: 100
%% divergence samples, 150 converged records, p99 6.5 ms, a partition and
%% its heal.
report(Exe) ->
    Path = filename:join(dir(), "report.html"),
    ok = file:write_file(Path, unicode:characters_to_binary(
                                 lasp_converge_report:render([lasp_converge_report_tests:synthetic()]))),
    {Dom, Console} = dump(Exe, "file://" ++ Path, 1000),
    Charts = ["divergence-unseen", "divergence-age", "up-to-date", "convergence-cdf",
              "convergence-hist", "visibility-heatmap", "update-rate", "window-p99"],
    [?assertMatch({match, _}, re:run(Dom, "<svg[^>]*data-chart=\"" ++ C ++ "\"")) || C <- Charts],
    ?assertMatch({match, _}, re:run(Dom, "data-label=\"a@h\" data-n=\"100\" d=\"M")),
    ?assertMatch({match, _}, re:run(Dom, "data-label=\"converged updates\" data-n=\"150\" d=\"M")),
    ?assertMatch({match, _}, re:run(Dom, "data-value=\"6500\" data-label=\"p99\"")),
    ?assertEqual([], Console),
    screenshot(Exe, "file://" ++ Path, filename:join(dir(), "report.png")).

%% A tracked variable with live figures; the dashboard polls every 200 ms.
dashboard(Exe) ->
    V = {<<"browser">>, state_gset},
    ok = lasp_converge:track(V, #{nodes => [], sample_every => 10}),
    {ok, #{url := Url}} = lasp_converge_http:start(#{refresh_ms => 200}),
    try
        lists:foreach(fun(I) ->
                              Pre = {state_gset, lists:seq(1, I - 1)},
                              Post = {state_gset, lists:seq(1, I)},
                              ok = lasp_converge:updated(V, Pre, Post),
                              ok = lasp_converge:observed(V, Post)
                      end, lists:seq(1, 40)),
        timer:sleep(300),
        {Dom, Console} = dump(Exe, Url, 3000),
        {match, [Polls]} = re:run(Dom, "data-polls=\"([0-9]+)\"", [{capture, all_but_first, list}]),
        ?assert(list_to_integer(Polls) >= 2),
        {match, [Samples]} = re:run(Dom, "id=\"var-0\" data-samples=\"([0-9]+)\"",
                                    [{capture, all_but_first, list}]),
        ?assert(list_to_integer(Samples) > 0),
        %% The divergence chart has one point per sample the same answer held.
        Node = atom_to_list(node()),
        ?assertMatch({match, _}, re:run(Dom, "data-chart=\"divergence-unseen\"")),
        ?assertMatch({match, _}, re:run(Dom, "data-label=\"" ++ re_quote(Node) ++ "\" data-n=\""
                                        ++ Samples ++ "\"")),
        ?assertMatch({match, _}, re:run(Dom, "<td data-key=\"updates\">40</td>")),
        ?assertMatch({match, _}, re:run(Dom, "data-label=\"converged updates\" data-n=\"40\"")),
        ?assertEqual([], Console),
        screenshot(Exe, Url, filename:join(dir(), "dashboard.png"))
    after
        lasp_converge_http:stop(),
        lasp_converge:untrack(V)
    end.

re_quote(S) -> re:replace(S, "[.^$|()\\[\\]{}*+?\\\\@]", "\\\\&", [global, {return, list}]).

%% The DOM after `BudgetMs' of (virtual) time, and the console's lines.
dump(Exe, Url, BudgetMs) ->
    Err = filename:join(dir(), "chromium.log"),
    Cmd = lists:flatten(io_lib:format("timeout 90 ~s ~s --virtual-time-budget=~b --dump-dom '~s' 2>~s",
                                      [Exe, ?FLAGS, BudgetMs, Url, Err])),
    Dom = os:cmd(Cmd),
    {ok, Log} = file:read_file(Err),
    Console = [L || L <- binary:split(Log, <<"\n">>, [global]),
                    binary:match(L, <<":CONSOLE">>) =/= nomatch],
    {unicode:characters_to_binary(Dom), Console}.

screenshot(Exe, Url, Png) ->
    _ = file:delete(Png),
    Cmd = lists:flatten(io_lib:format("timeout 90 ~s ~s --virtual-time-budget=2000 --window-size=1400,1800 "
                                      "--screenshot='~s' '~s' 2>/dev/null", [Exe, ?FLAGS, Png, Url])),
    _ = os:cmd(Cmd),
    ?assert(filelib:file_size(Png) > 10000).
