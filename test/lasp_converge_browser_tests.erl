%% @doc The report, the sweep page and the live dashboard in a real browser:
%% Debian's headless Chromium (`.ci/run' installs it) opens them offline,
%% the test reads the DOM it ends with and its console, and saves
%% screenshots under `_build/test/browser/'.
%%
%% The layout is checked from the rendered page, at 800, 1200 and 1600 px:
%% a script added to a copy of the page measures every text box of every
%% chart and writes what it finds into the DOM (no two text boxes of a
%% chart overlap, no text leaves its chart, no two charts overlap, every
%% chart has both axes labelled, the page is no wider than the window, the
%% swimlane heatmap has one readable row label per node).
%%
%% Without a Chromium on the PATH the tests are skipped with a note, unless
%% `LASP_CONVERGE_REQUIRE_BROWSER=1' (as in CI), when they fail.
-module(lasp_converge_browser_tests).

-include_lib("eunit/include/eunit.hrl").

-define(FLAGS, "--headless --no-sandbox --disable-gpu --disable-background-networking "
               "--disable-component-update --no-first-run --hide-scrollbars "
               "--enable-logging=stderr --v=0").
-define(WIDTHS, [800, 1200, 1600]).

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
             [{timeout, 240, {"report: every chart drawn and readable, no console message",
                              fun() -> report(Exe) end}},
              {timeout, 240, {"sweep page: heatmaps, frontier and speed chart readable",
                              fun() -> sweep(Exe) end}},
              {timeout, 240, {"dashboard: polls and redraws the live figures",
                              fun() -> dashboard(Exe) end}},
              {timeout, 120, {"dashboard: says where the variables are aggregated",
                              fun() -> dashboard_elsewhere(Exe) end}},
              {timeout, 240, {"dashboard: a 3-node cluster with a partition",
                              fun() -> dashboard_cluster(Exe) end}}]}
    end.

chromium() ->
    hd([E || N <- ["chromium", "chromium-browser", "google-chrome"],
             (E = os:find_executable(N)) =/= false] ++ [false]).

dir() ->
    D = filename:join([filename:absname("_build"), "test", "browser"]),
    ok = filelib:ensure_path(D),
    D.

%% The report of a demo-like run (five nodes, a partition and its heal,
%% the tuner's changes, a malformed mark) and of
%% `lasp_converge_report_tests:synthetic/0''s data (100 divergence
%% samples, 150 converged records, p99 6.5 ms).
report(Exe) ->
    Path = filename:join(dir(), "report.html"),
    Html = unicode:characters_to_binary(
             lasp_converge_report:render([lasp_converge_report_tests:demo_like(),
                                          lasp_converge_report_tests:synthetic()],
                                         #{title => "lasp_converge demo"})),
    ok = file:write_file(Path, Html),
    {Dom, Console} = dump(Exe, "file://" ++ Path, 1000, 1400),
    Charts = ["marks", "swimlanes", "divergence-unseen", "divergence-age", "up-to-date",
              "update-rate", "window-p99", "settings", "convergence-cdf", "convergence-hist",
              "visibility-heatmap", "speed"],
    [?assertMatch({match, _}, re:run(Dom, "<svg[^>]*data-chart=\"" ++ C ++ "\"")) || C <- Charts],
    ?assertMatch({match, _}, re:run(Dom, "data-label=\"worst node\" data-n=\"100\" d=\"M")),
    ?assertMatch({match, _}, re:run(Dom, "data-label=\"converged updates\" data-n=\"150\" d=\"M")),
    ?assertMatch({match, _}, re:run(Dom, "data-value=\"6500\" data-label=\"p99\"")),
    ?assertEqual([], Console),
    [layout(Exe, Html, "report", W, #{rows => ["n1", "n2", "n3", "n4", "n5"]}) || W <- ?WIDTHS],
    screenshot(Exe, "file://" ++ Path, filename:join(dir(), "report.png"), 1400, 4200),
    %% The pictures for the guide: the time column of the demo-like run.
    Timeline = picture(Html, "<div class=\"timeline\">", "</div>"),
    TPath = filename:join(dir(), "timeline.html"),
    ok = file:write_file(TPath, Timeline),
    screenshot(Exe, "file://" ++ TPath, filename:join(dir(), "report-timeline.png"), 800, 1000).

%% The sweep page of a simulated 5-node cluster (as `make demo' draws it).
sweep(Exe) ->
    Path = filename:join(dir(), "sweep.html"),
    {ok, Rows} = lasp_converge_sim:sweep(#{var => {<<"demo">>, state_awset}, nodes => 5,
                                           latency => {uniform, 200, 2000}, duration => 10000},
                                         #{rates => [0.2, 2, 20, 200],
                                           intervals => [50, 250, 1000, 2000]}),
    Html = unicode:characters_to_binary(lasp_converge_report:render_sweep(Rows, #{})),
    ok = file:write_file(Path, Html),
    {Dom, Console} = dump(Exe, "file://" ++ Path, 1000, 1400),
    [?assertMatch({match, _}, re:run(Dom, "<svg[^>]*data-chart=\"" ++ C ++ "\""))
     || C <- ["sweep-p99", "sweep-msgs", "sweep-frontier", "sweep-speed"]],
    ?assertMatch({match, _}, re:run(Dom, "data-diagonal=\"y=x\"")),
    ?assertEqual([], Console),
    [layout(Exe, Html, "sweep", W, #{}) || W <- ?WIDTHS],
    screenshot(Exe, "file://" ++ Path, filename:join(dir(), "sweep.png"), 1600, 1500),
    SPath = filename:join(dir(), "sweep-picture.html"),
    ok = file:write_file(SPath, picture(Html, "<div class=\"charts\">", "<table")),
    screenshot(Exe, "file://" ++ SPath, filename:join(dir(), "sweep-page.png"), 1600, 1000).

%% A page holding the part of `Html' from `From' to just before `To'.
picture(Html, From, To) ->
    [Head, Rest] = binary:split(Html, <<"<body>">>),
    {S, _} = binary:match(Rest, unicode:characters_to_binary(From)),
    Part = binary:part(Rest, S, byte_size(Rest) - S),
    {E, _} = binary:match(Part, unicode:characters_to_binary(To)),
    [Head, "<body>", binary:part(Part, 0, E), "</body></html>\n"].

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
                              ok = lasp_converge:observed(V, Post),
                              timer:sleep(2)
                      end, lists:seq(1, 40)),
        ok = lasp_converge:mark(#{at_us => erlang:system_time(microsecond), tuner => x,
                                  key => {k}, old => 1, new => 2}),
        timer:sleep(300),
        {Dom, Console} = dump(Exe, Url, 3000, 1400),
        {match, [Polls]} = re:run(Dom, "data-polls=\"([0-9]+)\"", [{capture, all_but_first, list}]),
        ?assert(list_to_integer(Polls) >= 2),
        {match, [Samples]} = re:run(Dom, "id=\"var-0\" data-samples=\"([0-9]+)\"",
                                    [{capture, all_but_first, list}]),
        ?assert(list_to_integer(Samples) > 0),
        %% The divergence chart has one point per sample the same answer held.
        ?assertMatch({match, _}, re:run(Dom, "data-chart=\"swimlanes\"")),
        ?assertMatch({match, _}, re:run(Dom, "data-label=\"all nodes\" data-n=\"" ++ Samples ++ "\"")),
        ?assertMatch({match, _}, re:run(Dom, "data-key=\"updates\">40<")),
        ?assertMatch({match, _}, re:run(Dom, "data-label=\"converged updates\" data-n=\"40\"")),
        %% The malformed mark is drawn like any other.
        ?assertMatch({match, _}, re:run(Dom, "<td class=\"mark\">\\{k\\} 1→2</td>", [unicode])),
        %% Where the variable is aggregated.
        ?assertMatch({match, _}, re:run(Dom, "id=\"where\"[^>]*>This node, [^<]*, aggregates 1 "
                                        "variable: browser · gset", [unicode])),
        ?assertEqual([], Console),
        %% The same layout checks on the DOM the dashboard ended with.
        Static = re:replace(Dom, "<script>.*?</script>", "", [dotall, global, {return, binary}]),
        [layout(Exe, Static, "dashboard", W, #{rows => [short_self()]}) || W <- ?WIDTHS],
        %% The picture from the DOM it ended with: a page that keeps polling
        %% can keep Chromium's virtual time from ever running out.
        SPath = filename:join(dir(), "dashboard-local.html"),
        ok = file:write_file(SPath, Static),
        screenshot(Exe, "file://" ++ SPath, filename:join(dir(), "dashboard-local.png"), 1200, 1800)
    after
        lasp_converge_http:stop(),
        lasp_converge:untrack(V)
    end.

%% Three peers replicate an orset every 100 ms; the first tracks it and
%% serves the dashboard. Updates, a partition of the third node, the heal:
%% the page shows a swimlane per node with the short names, and the marks.
dashboard_cluster(Exe) ->
    WasAlive = is_alive(),
    try
        lasp_converge_cluster:with_cluster(3, #{prefix => lc_dash}, fun(C) ->
            Ns = [N1, N2, N3] = lasp_converge_cluster:nodes(C),
            Call = fun(N, M, F, A) -> lasp_converge_cluster:call(C, N, M, F, A) end,
            Var = {<<"shop">>, state_orset},
            [{ok, _} = Call(N, lasp_converge_replicator, set, [#{state_interval => 100}]) || N <- Ns],
            ok = Call(N1, lasp_converge, track, [Var, #{nodes => Ns}]),
            {ok, _} = Call(N1, lasp_converge_replicator, declare, [Var, state_orset, #{nodes => Ns}]),
            Upd = fun(K) ->
                          N = lists:nth(K rem 3 + 1, Ns),
                          {ok, _} = Call(N, lasp_converge_replicator, update, [Var, {add, K}, N]),
                          timer:sleep(20)
                  end,
            lists:foreach(Upd, lists:seq(1, 30)),
            ok = lasp_converge_fault:partition(C, [[N1, N2], [N3]]),
            lists:foreach(Upd, lists:seq(31, 60)),
            ok = lasp_converge_fault:heal(C),
            lists:foreach(Upd, lists:seq(61, 80)),
            timer:sleep(1000),
            {ok, #{url := Url}} = Call(N1, lasp_converge_http, start, [#{refresh_ms => 500}]),
            {Dom, Console} = dump(Exe, Url, 1500, 1400),
            ?assertEqual([], Console),
            ?assertMatch({match, _}, re:run(Dom, "aggregates 1 variable: shop · orset", [unicode])),
            ?assertMatch({match, _}, re:run(Dom, ">partition n1,n2 \\| n3<")),
            Static = re:replace(Dom, "<script>.*?</script>", "", [dotall, global, {return, binary}]),
            [layout(Exe, Static, "dashboard-cluster", W, #{rows => ["n1", "n2", "n3"]}) || W <- ?WIDTHS],
            SPath = filename:join(dir(), "dashboard-cluster.html"),
            ok = file:write_file(SPath, Static),
            screenshot(Exe, "file://" ++ SPath, filename:join(dir(), "dashboard.png"), 1400, 1300)
        end)
    after
        WasAlive orelse net_kernel:stop()
    end.

short_self() ->
    [Name | _] = string:split(atom_to_list(node()), "@"),
    Name.

%% A dashboard on a node that aggregates nothing says so, and names the
%% connected node that aggregates the variable.
dashboard_elsewhere(Exe) ->
    WasAlive = is_alive(),
    Name = list_to_atom("lc_browser_" ++ os:getpid()),
    _ = WasAlive orelse net_kernel:start([Name, shortnames]),
    {ok, Peer, Other} = peer:start_link(#{name => list_to_atom("lc_browser_agg_" ++ os:getpid()),
                                          args => ["-pa" | code:get_path()]}),
    try
        {ok, _} = erpc:call(Other, application, ensure_all_started, [lasp_converge]),
        V = {<<"elsewhere">>, state_orset},
        ok = erpc:call(Other, lasp_converge, track, [V, #{nodes => [Other]}]),
        {ok, #{url := Url}} = lasp_converge_http:start(#{refresh_ms => 200}),
        try
            {Dom, Console} = dump(Exe, Url, 1500, 1200),
            ?assertMatch({match, _}, re:run(Dom, "aggregates no variable", [unicode])),
            ?assertMatch({match, _}, re:run(Dom, re_quote(atom_to_list(Other)) ++ "[^<]*elsewhere · orset",
                                            [unicode])),
            ?assertEqual([], Console)
        after
            lasp_converge_http:stop()
        end
    after
        peer:stop(Peer),
        WasAlive orelse net_kernel:stop()
    end.

re_quote(S) -> re:replace(S, "[.^$|()\\[\\]{}*+?\\\\@]", "\\\\&", [global, {return, list}]).

%% ---- layout checks in the page ----

%% Open a copy of `Html' with the checking script at `Width' px and assert
%% on what the script found.
layout(Exe, Html, Name, Width, Expect) ->
    Path = filename:join(dir(), Name ++ "-check-" ++ integer_to_list(Width) ++ ".html"),
    [Body | _] = binary:split(iolist_to_binary(Html), <<"</body>">>),
    ok = file:write_file(Path, [Body, "<script>", check_js(), "</script></body></html>\n"]),
    {Dom, _} = dump(Exe, "file://" ++ Path, 500, Width),
    {match, [Report]} = re:run(Dom, "<pre id=\"lc-check\">(.*?)</pre>",
                               [dotall, unicode, {capture, all_but_first, binary}]),
    Lines = [L || L <- binary:split(Report, <<"\n">>, [global]), L =/= <<>>],
    Problems = [L || L <- Lines, lists:any(fun(P) -> binary:match(L, P) =/= nomatch end,
                                           [<<"overlap:">>, <<"outside:">>, <<"unlabelled:">>,
                                            <<"charts-overlap:">>, <<"page-overflow:">>])],
    _ = [io:format(user, "~n~ts at ~b px: ~ts", [Name, Width, P]) || P <- Problems],
    ?assertEqual({Name, Width, []}, {Name, Width, Problems}),
    {match, [N]} = re:run(Report, "charts: ([0-9]+)", [{capture, all_but_first, list}]),
    ?assert(list_to_integer(N) >= 4),
    case Expect of
        #{rows := Rows} ->
            {match, [Got]} = re:run(Report, "swimlane-rows: ([^\n]*)",
                                    [unicode, {capture, all_but_first, binary}]),
            Labels = binary:split(Got, <<"|">>, [global]),
            %% Each data section draws one swimlane; the first is the one expected.
            ?assertEqual([unicode:characters_to_binary(R) || R <- Rows],
                         lists:sublist(Labels, length(Rows)));
        _ ->
            ok
    end.

%% The script: every text box of every chart, measured as drawn.
check_js() ->
    <<"(function(){\n"
      "const out=[];const svgs=[...document.querySelectorAll('svg.lc-chart')];\n"
      "out.push('charts: '+svgs.length);\n"
      "const name=t=>(t.firstChild&&t.firstChild.nodeValue||'').trim();\n"
      "const rects=[];\n"
      "for(const svg of svgs){\n"
      "  const id=svg.dataset.chart, sb=svg.getBoundingClientRect(); rects.push([id,sb]);\n"
      "  const ts=[...svg.querySelectorAll('text')].filter(t=>name(t)!=='')\n"
      "    .map(t=>[name(t),t.getBoundingClientRect()]);\n"
      "  for(const [s,r] of ts){\n"
      "    if(r.left<sb.left-1||r.right>sb.right+1||r.top<sb.top-1||r.bottom>sb.bottom+1)\n"
      "      out.push('outside: '+id+': '+s);\n"
      "  }\n"
      "  for(let i=0;i<ts.length;i++)for(let j=i+1;j<ts.length;j++){\n"
      "    const a=ts[i][1],b=ts[j][1];\n"
      "    const w=Math.min(a.right,b.right)-Math.max(a.left,b.left);\n"
      "    const h=Math.min(a.bottom,b.bottom)-Math.max(a.top,b.top);\n"
      "    if(w>1&&h>1)out.push('overlap: '+id+': '+ts[i][0]+' / '+ts[j][0]);\n"
      "  }\n"
      "  if(svg.dataset.kind!=='lane'){\n"
      "    const ls=[...svg.querySelectorAll('text.lc-label')].filter(t=>name(t)!=='');\n"
      "    if(ls.length<2)out.push('unlabelled: '+id);\n"
      "  }\n"
      "}\n"
      "for(let i=0;i<rects.length;i++)for(let j=i+1;j<rects.length;j++){\n"
      "  const a=rects[i][1],b=rects[j][1];\n"
      "  const w=Math.min(a.right,b.right)-Math.max(a.left,b.left);\n"
      "  const h=Math.min(a.bottom,b.bottom)-Math.max(a.top,b.top);\n"
      "  if(w>1&&h>1)out.push('charts-overlap: '+rects[i][0]+' / '+rects[j][0]);\n"
      "}\n"
      "const de=document.documentElement;\n"
      "if(de.scrollWidth>de.clientWidth+1)out.push('page-overflow: '+de.scrollWidth+' > '+de.clientWidth);\n"
      "const lanes=[...document.querySelectorAll('svg[data-chart=swimlanes] text.lc-row')];\n"
      "out.push('swimlane-rows: '+lanes.map(name).join('|'));\n"
      "const pre=document.createElement('pre');pre.id='lc-check';pre.textContent=out.join('\\n');\n"
      "document.body.appendChild(pre);\n"
      "})();\n">>.

%% ---- chromium ----

%% The DOM after `BudgetMs' of (virtual) time at `Width' px, and the
%% console's lines.
dump(Exe, Url, BudgetMs, Width) ->
    Err = filename:join(dir(), "chromium.log"),
    Cmd = lists:flatten(io_lib:format("timeout 90 ~s ~s --virtual-time-budget=~b --window-size=~b,2000 "
                                      "--dump-dom '~s' 2>~s",
                                      [Exe, ?FLAGS, BudgetMs, Width, Url, Err])),
    Dom = os:cmd(Cmd),
    {ok, Log} = file:read_file(Err),
    Console = [L || L <- binary:split(Log, <<"\n">>, [global]),
                    binary:match(L, <<":CONSOLE">>) =/= nomatch],
    {unicode:characters_to_binary(Dom), Console}.

screenshot(Exe, Url, Png, W, H) ->
    _ = file:delete(Png),
    Cmd = lists:flatten(io_lib:format("timeout 180 ~s ~s --virtual-time-budget=1000 --window-size=~b,~b "
                                      "--screenshot='~s' '~s' 2>/dev/null", [Exe, ?FLAGS, W, H, Png, Url])),
    _ = os:cmd(Cmd),
    ?assert(filelib:file_size(Png) > 10000).
