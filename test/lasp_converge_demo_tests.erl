%% @doc `make demo' in small: the cluster demo on 3 nodes with short phases
%% ends with every update converged, every node holding the same value
%% with no update lost, and a report written; the merge demo runs.
-module(lasp_converge_demo_tests).

-include_lib("eunit/include/eunit.hrl").

cluster_demo_test_() ->
    {timeout, 120, fun cluster_demo/0}.

cluster_demo() ->
    WasAlive = is_alive(),
    Path = filename:join([filename:absname("_build"), "test", "demo", "report.html"]),
    try
        R = lasp_converge_demo:main(#{nodes => 3, scale => 0.25, state_interval => 50,
                                      report => Path}),
        ?assertMatch(#{agree := true, kept := true, report := Path}, R),
        #{updates := Made, converged := Conv} = R,
        ?assert(Made > 20),
        ?assertEqual(Made, Conv),
        {ok, Html} = file:read_file(Path),
        ?assertMatch({match, _}, re:run(Html, "data-label=\"partition")),
        ?assertMatch({match, _}, re:run(Html, "data-label=\"heal"))
    after
        WasAlive orelse net_kernel:stop()
    end.

merge_demo_test() ->
    ?assertEqual(ok, lasp_converge_demo:merge(300)).
