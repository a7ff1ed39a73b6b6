%% @doc The charts (`lasp_converge_svg'), the HTML report and the terminal
%% summary (`lasp_converge_report'): scales and ticks, empty data, one
%% point, a million points thinned, the page drawn from synthetic data
%% checked against that data, and a report written from a real 3-node run
%% with a partition.
-module(lasp_converge_report_tests).

-include_lib("eunit/include/eunit.hrl").

%% For lasp_converge_browser_tests.
-export([synthetic/0]).

-define(S, lasp_converge_svg).
-define(R, lasp_converge_report).
-define(CL, lasp_converge_cluster).

%% ===================================================================
%% Scales and ticks
%% ===================================================================

linear_ticks_are_round_and_cover_the_range_test() ->
    ?assertEqual([0, 20, 40, 60, 80, 100], ?S:ticks(0, 100, 5)),
    ?assertEqual([0, 0.5, 1], ?S:ticks(0, 1.2, 3)),
    ?assertEqual([-10, -5, 0, 5], ?S:ticks(-12, 7, 4)),
    %% 1-2-5 steps only, ascending, within the range.
    [begin
         T = ?S:ticks(Lo, Hi, 5),
         ?assert(length(T) >= 2),
         ?assert(lists:all(fun(X) -> X >= Lo - 1.0e-9 andalso X =< Hi + 1.0e-9 end, T)),
         [Step | _] = Steps = [B - A || {A, B} <- lists:zip(lists:droplast(T), tl(T))],
         ?assert(lists:all(fun(S) -> abs(S - Step) < 1.0e-9 end, Steps)),
         Mant = Step / math:pow(10, math:floor(math:log10(Step))),
         ?assert(lists:any(fun(M) -> abs(Mant - M) < 1.0e-6 end, [1, 2, 5]))
     end || {Lo, Hi} <- [{0, 7}, {3, 1000}, {0.001, 0.0173}, {-5, 5}, {100, 101}]],
    ?assertEqual([4], ?S:ticks(4, 4, 5)).

log_ticks_are_powers_of_ten_test() ->
    ?assertEqual([1, 10, 100, 1000], ?S:log_ticks(1, 1000)),
    ?assertEqual([100, 1000, 10000], ?S:log_ticks(150, 9000)),
    ?assertEqual([1, 10], ?S:log_ticks(3, 3)).

formats_test() ->
    ?assertEqual("850 µs", unicode:characters_to_list(?S:fmt_us(850))),
    ?assertEqual("12 ms", unicode:characters_to_list(?S:fmt_us(12000))),
    ?assertEqual("1.5 s", unicode:characters_to_list(?S:fmt_us(1500000))),
    ?assertEqual("0.25", lists:flatten(?S:fmt_num(0.25))),
    ?assertEqual("&lt;a&amp;b&gt;", lists:flatten(?S:esc("<a&b>"))).

%% ===================================================================
%% Thinning
%% ===================================================================

downsample_keeps_short_series_test() ->
    Ps = [{I, I * I} || I <- lists:seq(1, 50)],
    ?assertEqual(Ps, ?S:downsample(Ps, 100)).

a_million_points_are_thinned_with_their_peaks_test() ->
    N = 1000000,
    %% A slow wave with one spike and one dip.
    Ps = [{I, case I of 777777 -> 5000; 123456 -> -5000; _ -> (I rem 1000) end}
          || I <- lists:seq(1, N)],
    D = ?S:downsample(Ps, 2000),
    ?assert(length(D) =< 2000),
    ?assert(length(D) > 400),
    ?assert(lists:member({777777, 5000}, D)),
    ?assert(lists:member({123456, -5000}, D)),
    ?assertEqual({1, 1}, hd(D)),
    ?assertEqual({N, 0}, lists:last(D)),
    Xs = [X || {X, _} <- D],
    ?assertEqual(Xs, lists:usort(Xs)),
    %% And drawing it stays small.
    Svg = unicode:characters_to_binary(?S:line([#{label => "wave", points => Ps}], #{id => "big"})),
    ?assert(byte_size(Svg) < 200000),
    ?assertMatch({match, _}, re:run(Svg, "data-n=\"1000000\"")).

%% ===================================================================
%% Charts on edge data
%% ===================================================================

empty_and_one_point_charts_draw_test() ->
    E = unicode:characters_to_binary(?S:line([#{label => "none", points => []}], #{id => "e"})),
    ?assertMatch({match, _}, re:run(E, "data-n=\"0\"")),
    ?assertMatch({match, _}, re:run(E, "^<svg", [multiline])),
    One = unicode:characters_to_binary(?S:line([#{label => "one", points => [{5, 5}]}],
                                   #{id => "o", x_scale => log, y_scale => log})),
    ?assertMatch({match, _}, re:run(One, "data-n=\"1\" d=\"M")),
    %% Nothing positive on a log axis: no path points, still a chart.
    Neg = unicode:characters_to_binary(?S:line([#{label => "neg", points => [{0, 1}, {-1, 2}]}],
                                   #{id => "n", x_scale => log})),
    ?assertMatch({match, _}, re:run(Neg, "d=\"\"")),
    %% All points at one x, as floats.
    Flat = unicode:characters_to_binary(?S:line([#{label => "f", points => [{0.0, 2.0}, {0.0, 2.0}]}],
                                                #{id => "f", step => true})),
    ?assertMatch({match, _}, re:run(Flat, "data-n=\"2\"")),
    Fixed = unicode:characters_to_binary(?S:line([#{label => "x", points => [{1, 1}]}],
                                                 #{id => "x", x_range => {1, 1}})),
    ?assertMatch({match, _}, re:run(Fixed, "data-n=\"1\"")),
    B = unicode:characters_to_binary(?S:bars([], #{id => "b"})),
    ?assertMatch({match, _}, re:run(B, "data-bins=\"0\"")),
    H = unicode:characters_to_binary(?S:heatmap({[], [], []}, #{id => "h"})),
    ?assertMatch({match, _}, re:run(H, "data-kind=\"heatmap\"")).

markers_sit_at_their_values_test() ->
    Svg = unicode:characters_to_binary(
            ?S:line([#{label => "s", points => [{0, 0}, {10, 10}]}],
                    #{id => "m", x_range => {0, 10}, y_range => {0, 10},
                      vlines => [{5, "half", "c"}], hlines => [{10, "top", "c"}]})),
    %% The plot box is x 70..740 and y 34..214 on a 760x260 chart.
    ?assertMatch({match, _}, re:run(Svg, "data-value=\"5\" data-label=\"half\">"
                                         "<line x1=\"405.0\"")),
    ?assertMatch({match, _}, re:run(Svg, "data-value=\"10\" data-label=\"top\">"
                                         "<line x1=\"70\" y1=\"34.0\"")).

%% Every point of every series lands inside the plot box (x 70..740,
%% y 34..214), whatever the data's range.
points_stay_inside_the_plot_test() ->
    Cases = [[{0, 0}, {10, 100}], [{-5, 3}, {5, -3}], [{1.0e6, 7}, {2.0e6, 9}],
             [{I, (I * 37) rem 11} || I <- lists:seq(1, 300)]],
    [begin
         Svg = unicode:characters_to_binary(?S:line([#{label => "s", points => Ps}],
                                                    #{id => "in", step => Step})),
         {match, [D]} = re:run(Svg, "<path[^>]* d=\"([^\"]*)\"", [{capture, all_but_first, list}]),
         Nums = [list_to_float(N) || N <- string:lexemes(D, "MLh ")],
         {Xs, Ys} = unzip_pairs(Nums),
         ?assert(lists:all(fun(X) -> X >= 70 - 0.05 andalso X =< 740 + 0.05 end, Xs)),
         ?assert(lists:all(fun(Y) -> Y >= 34 - 0.05 andalso Y =< 214 + 0.05 end, Ys)),
         %% The highest point reaches near the top (4% headroom).
         ?assert(lists:min(Ys) < 34 + 180 * 0.05)
     end || Ps <- Cases, Step <- [false, true]].

unzip_pairs([X, Y | T]) -> {Xs, Ys} = unzip_pairs(T), {[X | Xs], [Y | Ys]};
unzip_pairs(_) -> {[], []}.

hist_bins_count_every_value_test() ->
    Vs = [1, 2, 3, 10, 11, 100, 1000, 1000, 99999, 0],
    Bins = ?R:hist_bins(Vs),
    ?assertEqual(length(Vs), lists:sum([C || {_, _, C} <- Bins])),
    [?assert(Hi > Lo) || {Lo, Hi, _} <- Bins],
    %% Five bins a decade, contiguous.
    [?assert(abs(Hi - Lo2) < 1.0e-6 * Hi) || {{_, Hi, _}, {Lo2, _, _}} <- lists:zip(lists:droplast(Bins), tl(Bins))],
    ?assertEqual([], ?R:hist_bins([])).

%% ===================================================================
%% The page, from synthetic data
%% ===================================================================

synthetic() ->
    T0 = 1700000000000000,
    Div = [#{t_us => T0 + I * 10000, up_to_date => (I rem 3) / 2,
             nodes => #{a@h => #{unseen => I rem 4, oldest_unseen_age_us => I * 100},
                        b@h => #{unseen => 0, oldest_unseen_age_us => undefined}}}
           || I <- lists:seq(0, 99)],
    Recs = [#{origin => a@h, seq => I, ts_us => T0 + I * 5000, outcome => converged,
              convergence_us => 1000 + I * 37, missing => [], reason => undefined,
              seen => #{a@h => T0 + I * 5000, b@h => T0 + I * 5000 + 900 + I * 30}}
            || I <- lists:seq(1, 150)],
    Stats = #{updates => 150, converged => 150, pending => 0, unconverged => 0,
              p50 => 3800, p90 => 6000, p99 => 6500, p999 => 6550, max => 6550,
              mean => 3775.0, clock_uncertainty_us => 120,
              per_node => #{a@h => #{p50 => undefined, p99 => undefined, max => undefined,
                                     pending => 0, count => 0, clock_uncertainty_us => 0},
                            b@h => #{p50 => 3100, p99 => 5300, max => 5400, pending => 0,
                                     count => 150, clock_uncertainty_us => 120}}},
    Marks = [#{at_us => T0 + 300000, fault => partition, args => [[a@h], [b@h]]},
             #{at_us => T0 + 600000, fault => heal, args => []},
             not_a_timed_mark],
    #{var => {<<"x">>, state_orset}, stats => Stats, divergence => Div, records => Recs,
      marks => Marks}.

page_draws_every_chart_from_the_data_test() ->
    Html = unicode:characters_to_binary(?R:render([synthetic()])),
    Charts = ["divergence-unseen", "divergence-age", "up-to-date", "convergence-cdf",
              "convergence-hist", "visibility-heatmap", "update-rate", "window-p99"],
    [?assertMatch({match, _}, re:run(Html, "data-chart=\"" ++ C ++ "\"")) || C <- Charts],
    %% One divergence point per sample and node; one CDF point per converged record.
    ?assertMatch({match, _}, re:run(Html, "data-label=\"a@h\" data-n=\"100\"")),
    ?assertMatch({match, _}, re:run(Html, "data-label=\"converged updates\" data-n=\"150\"")),
    %% The percentiles marked at the reported values, the faults on the time axes.
    ?assertMatch({match, _}, re:run(Html, "data-value=\"6500\" data-label=\"p99\"")),
    {match, Parts} = re:run(Html, "data-label=\"partition", [global]),
    ?assert(length(Parts) >= 4),
    ?assertMatch({match, _}, re:run(Html, "<td data-key=\"p99\">6.5 ms</td>")),
    %% Heatmap counts add up to the remote sightings (b@h saw all 150).
    {match, Cells} = re:run(Html, "data-row=\"b@h\" data-count=\"([0-9]+)\"",
                            [global, {capture, all_but_first, list}]),
    ?assertEqual(150, lists:sum([list_to_integer(C) || [C] <- Cells])),
    %% Self-contained: no external reference, no script.
    nomatch = re:run(Html, "(src=|href=|<script|@import|url\\()"),
    ok.

%% The tuner's marks draw the propagation interval next to p99 and label
%% each change, propagation on update included (not an interval).
tuner_marks_draw_the_interval_test() ->
    D0 = #{marks := Marks} = synthetic(),
    T0 = 1700000000000000,
    Tuner = [#{at_us => T0 + 200000, tuner => v, key => state_interval, old => 250, new => 120,
               why => over_target},
             #{at_us => T0 + 500000, tuner => v, key => state_interval, old => 120, new => 60,
               why => over_target},
             #{at_us => T0 + 700000, tuner => v, key => propagate_on_update, old => false,
               new => true, why => quiet}],
    Html = unicode:characters_to_binary(?R:render([D0#{marks := Marks ++ Tuner}])),
    ?assertMatch({match, _}, re:run(Html, "data-label=\"propagation interval\" data-n=\"3\"")),
    ?assertMatch({match, _}, re:run(Html, "state_interval 250 → 120 ms", [unicode])),
    ?assertMatch({match, _}, re:run(Html, "propagate_on_update false → true<", [unicode])),
    ?assertMatch({match, _}, re:run(Html, "and the propagation interval")).

page_with_no_data_says_so_test() ->
    D = #{var => v, stats => #{updates => 0}, divergence => [], records => [], marks => []},
    Html = unicode:characters_to_binary(?R:render([D])),
    ?assertMatch({match, _}, re:run(Html, "No divergence samples yet")),
    ?assertMatch({match, _}, re:run(Html, "No converged updates")).

terminal_summary_test() ->
    Out = unicode:characters_to_binary(?R:format(synthetic())),
    ?assertMatch({match, _}, re:run(Out, "p99")),
    ?assertMatch({match, _}, re:run(Out, "6.5 ms")),
    ?assertMatch({match, _}, re:run(Out, "unseen over time", [unicode])),
    ?assertMatch({match, _}, re:run(Out, "convergence time \\(recent updates\\)")),
    ?assertEqual(60, length(unicode:characters_to_list(?R:sparkline(lists:seq(1, 500))))),
    ?assertEqual([16#2581, 16#2588], unicode:characters_to_list(?R:sparkline([0, 9]))).

%% ===================================================================
%% A real run
%% ===================================================================

real_run_test_() ->
    {timeout, 120, fun real_run/0}.

%% Three peers replicate an orset (50 ms ticks); node 1 tracks it. Updates
%% on every node, a partition of node 3 for half a second, heal, more
%% updates; then the report written by node 1 holds the run's figures and
%% marks, and print/1 works there.
real_run() ->
    WasAlive = is_alive(),
    try
        ?CL:with_cluster(3, #{prefix => lc_report}, fun(C) ->
            Ns = [N1, N2, N3] = ?CL:nodes(C),
            Var = {<<"report">>, state_orset},
            [{ok, _} = ?CL:call(C, N, lasp_converge_replicator, set, [#{state_interval => 50}])
             || N <- Ns],
            ok = ?CL:call(C, N1, lasp_converge, track, [Var, #{nodes => Ns}]),
            {ok, _} = ?CL:call(C, N1, lasp_converge_replicator, declare,
                               [Var, state_orset, #{nodes => Ns}]),
            Upd = fun(K) ->
                          N = lists:nth(K rem 3 + 1, Ns),
                          {ok, _} = ?CL:call(C, N, lasp_converge_replicator, update,
                                             [Var, {add, K}, N]),
                          timer:sleep(10)
                  end,
            lists:foreach(Upd, lists:seq(1, 20)),
            ok = lasp_converge_fault:partition(C, [[N1, N2], [N3]]),
            lists:foreach(Upd, lists:seq(21, 40)),
            timer:sleep(500),
            ok = lasp_converge_fault:heal(C),
            lists:foreach(Upd, lists:seq(41, 60)),
            wait(fun() -> maps:get(converged, ?CL:call(C, N1, lasp_converge, stats, [Var])) =:= 60
                 end, 20000),
            Path = filename:join([filename:absname("_build"), "test", "report",
                                  "lasp_converge_report_tests.html"]),
            {ok, Path} = ?CL:call(C, N1, lasp_converge_report, write, [Path, [Var]]),
            {ok, Html} = file:read_file(Path),
            ?assertMatch({match, _}, re:run(Html, "data-chart=\"convergence-cdf\"")),
            ?assertMatch({match, _}, re:run(Html, "data-label=\"converged updates\" data-n=\"60\"")),
            ?assertMatch({match, _}, re:run(Html, "<td data-key=\"updates\">60</td>")),
            ?assertMatch({match, _}, re:run(Html, "data-label=\"partition")),
            ?assertMatch({match, _}, re:run(Html, "data-label=\"heal")),
            [?assertMatch({match, _}, re:run(Html, "data-label=\"" ++ atom_to_list(N) ++ "\""))
             || N <- Ns],
            Recs = ?CL:call(C, N1, lasp_converge, records, [Var]),
            ?assertEqual(60, length(Recs)),
            ?assert(lists:all(fun(#{outcome := O, seen := S}) ->
                                      O =:= converged andalso lists:sort(maps:keys(S)) =:= lists:sort(Ns)
                              end, Recs)),
            ?assertEqual(ok, ?CL:call(C, N1, lasp_converge, print, [Var])),
            ?assertEqual({error, {not_tracked, nope}},
                         ?CL:call(C, N1, lasp_converge_report, write, [Path, [nope]]))
        end)
    after
        WasAlive orelse net_kernel:stop()
    end.

wait(F, Ms) when Ms > 0 ->
    case F() of
        true -> ok;
        false -> timer:sleep(50), wait(F, Ms - 50)
    end;
wait(F, _) ->
    ?assert(F()).
