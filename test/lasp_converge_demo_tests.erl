%% @doc `make demo' in small: the cluster demo on 3 nodes with short phases
%% ends with every update converged, every node holding the same value
%% with no update lost, a report and a sweep page written; the merge demo
%% runs.
-module(lasp_converge_demo_tests).

-include_lib("eunit/include/eunit.hrl").

cluster_demo_test_() ->
    {timeout, 120, fun cluster_demo/0}.

cluster_demo() ->
    WasAlive = is_alive(),
    Path = filename:join([filename:absname("_build"), "test", "demo", "report.html"]),
    Sweep = filename:join([filename:absname("_build"), "test", "demo", "sweep.html"]),
    try
        R = lasp_converge_demo:main(#{nodes => 3, scale => 0.25, state_interval => 50,
                                      report => Path, sweep => Sweep}),
        ?assertMatch(#{agree := true, kept := true, report := Path, sweep := Sweep}, R),
        #{updates := Made, converged := Conv} = R,
        ?assert(Made > 20),
        ?assertEqual(Made, Conv),
        {ok, Html} = file:read_file(Path),
        ?assertMatch({match, _}, re:run(Html, "data-label=\"fault: partition")),
        ?assertMatch({match, _}, re:run(Html, "data-label=\"fault: heal")),
        ?assertMatch({match, _}, re:run(Html, ">partition n1,n2 \\| n3<")),
        {ok, SweepHtml} = file:read_file(Sweep),
        %% 4 rates x 4 intervals.
        {match, Cells} = re:run(SweepHtml, "data-chart=\"sweep-p99\".*?</svg>", [dotall]),
        [{S, L}] = Cells,
        {match, Rects} = re:run(binary:part(SweepHtml, S, L), "<rect class=\"lc-cell[^\"]*\" data-x=",
                                [global]),
        ?assertEqual(16, length(Rects))
    after
        WasAlive orelse net_kernel:stop()
    end.

merge_demo_test() ->
    ?assertEqual(ok, lasp_converge_demo:merge(300)).
