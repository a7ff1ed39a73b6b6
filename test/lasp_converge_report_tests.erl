%% @doc The charts (`lasp_converge_svg'), the HTML report and the terminal
%% summary (`lasp_converge_report'): scales and ticks, empty data, one
%% point, a million points thinned, the page drawn from synthetic data
%% checked against that data, and a report written from a real 3-node run
%% with a partition.
-module(lasp_converge_report_tests).

-include_lib("eunit/include/eunit.hrl").

%% For lasp_converge_browser_tests.
-export([synthetic/0, demo_like/0, sweep_rows/0]).

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
    %% The plot box is x 78..600 and y 34..214 on a 760x260 chart (the
    %% legend to the right).
    ?assertMatch({match, _}, re:run(Svg, "data-value=\"5\" data-label=\"half\">"
                                         "<line x1=\"339.0\"")),
    ?assertMatch({match, _}, re:run(Svg, "data-value=\"10\" data-label=\"top\">"
                                         "<line x1=\"78\" y1=\"34.0\"")).

%% Every point of every series lands inside the plot box (x 78..600,
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
         ?assert(lists:all(fun(X) -> X >= 78 - 0.05 andalso X =< 600 + 0.05 end, Xs)),
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

%% Like `make demo': five nodes with long names, 25 s of updates at 5, 100
%% and 10 a second, a 2+3 partition from 17 s to 22 s during which the
%% other side's updates stay unseen, the tuner changing the interval and
%% push, a fault mark of an unknown kind and a malformed tuner mark.
demo_like() ->
    T0 = 1800000000000000,
    Ns = [list_to_atom("lc_demo_7391_" ++ integer_to_list(I) ++ "@vm") || I <- lists:seq(1, 5)],
    {A, B} = lists:split(2, Ns),
    Sec = fun(S) -> T0 + round(S * 1.0e6) end,
    Rate = fun(S) when S < 8 -> 5; (S) when S < 12 -> 100; (S) when S < 22 -> 10; (S) when S < 27 -> 5;
              (_) -> 0 end,
    %% Update times: Rate(S) a second.
    Ups = lists:reverse(lists:foldl(fun(Ms, Acc) ->
                                            S = Ms / 1000,
                                            case Rate(S) of
                                                0 -> Acc;
                                                R when Ms rem (1000 div R) =:= 0 -> [S | Acc];
                                                _ -> Acc
                                            end
                                    end, [], lists:seq(0, 29999))),
    Part = fun(S) -> S >= 17 andalso S < 22 end,
    Recs = [begin
                Origin = lists:nth(I rem 5 + 1, Ns),
                Base = 40000 + (I * 7919) rem 90000 + case S >= 8 andalso S < 12 of true -> 150000; false -> 0 end,
                Seen = maps:from_list(
                         [{N, Sec(S) + case N of
                                           Origin -> 0;
                                           _ -> case Part(S) andalso (lists:member(N, A) xor lists:member(Origin, A)) of
                                                    true -> round((22 - S) * 1.0e6) + Base;
                                                    false -> Base + (I * 131 + erlang:phash2(N, 50000))
                                                end
                                       end} || N <- Ns]),
                Conv = lists:max(maps:values(Seen)) - Sec(S),
                #{origin => Origin, seq => I, ts_us => Sec(S), outcome => converged,
                  convergence_us => Conv, missing => [], reason => undefined, seen => Seen}
            end || {I, S} <- lists:zip(lists:seq(1, length(Ups)), Ups)],
    Div = [#{t_us => Sec(S), up_to_date => length([1 || N <- Ns, unseen(Recs, N, Sec(S)) =:= 0]) / 5,
             nodes => maps:from_list([{N, #{unseen => unseen(Recs, N, Sec(S)),
                                            oldest_unseen_age_us => oldest(Recs, N, Sec(S))}} || N <- Ns])}
           || S <- [X / 10 || X <- lists:seq(0, 299, 2)]],
    Conv = lists:sort([C || #{convergence_us := C} <- Recs]),
    Pct = fun(P) -> lists:nth(max(1, ceil(P * length(Conv))), Conv) end,
    PerNode = maps:from_list([{N, #{p50 => 90000, p99 => 4200000, max => 5100000, pending => 0,
                                    count => length(Recs) * 4 div 5, clock_uncertainty_us => 300}}
                              || N <- Ns]),
    Stats = #{updates => length(Recs), converged => length(Recs), pending => 0, unconverged => 0,
              p50 => Pct(0.5), p90 => Pct(0.9), p99 => Pct(0.99), p999 => Pct(0.999),
              max => lists:last(Conv), mean => lists:sum(Conv) / length(Conv),
              clock_uncertainty_us => 300, per_node => PerNode},
    Tuner = fun(S, K, O, N) -> #{at_us => Sec(S), tuner => {<<"demo">>, state_awset}, key => K,
                                 old => O, new => N, why => over_target} end,
    Marks = [Tuner(1.2, state_interval, 250, 278), Tuner(3.1, state_interval, 278, 2000),
             Tuner(8.4, propagate_on_update, false, true), Tuner(9.0, state_interval, 2000, 1000),
             Tuner(9.6, state_interval, 1000, 500), Tuner(10.3, state_interval, 500, 278),
             Tuner(12.5, propagate_on_update, true, false),
             #{at_us => Sec(17), fault => partition, args => [[A, B]]},
             Tuner(17.4, state_interval, 278, 120), Tuner(19.5, state_interval, 120, 60),
             #{at_us => Sec(22), fault => heal, args => []},
             Tuner(24.0, state_interval, 60, 400),
             #{at_us => Sec(26), fault => delay, args => [hd(Ns), lists:last(Ns), 200]},
             #{at_us => Sec(26.2), tuner => x, key => {k}, old => 1, new => 2}],
    #{var => {<<"demo">>, state_awset}, stats => Stats, divergence => Div, records => Recs,
      marks => Marks, settings => #{state_interval => 400, propagate_on_update => false,
                                    mode => state_based, at_us => Sec(30)}}.

unseen(Recs, N, T) ->
    length([1 || #{ts_us := Ts, seen := Seen} <- Recs, Ts =< T, maps:get(N, Seen) > T]).

oldest(Recs, N, T) ->
    case [T - Ts || #{ts_us := Ts, seen := Seen} <- Recs, Ts =< T, maps:get(N, Seen) > T] of
        [] -> undefined;
        Ages -> lists:max(Ages)
    end.

%% A sweep's rows as `lasp_converge_scenario:sweep/2' gives them: p99
%% about half an interval plus 2 ms, messages per update falling with the
%% interval and the rate; one run that did not converge.
sweep_rows() ->
    [#{var => {<<"sweep">>, state_gset}, rate => R, state_interval => I, updates => 30,
       p50 => I * 400 + 1000, p99 => I * 600 + 2000, max => I * 700 + 3000,
       msgs_per_update => 20 * max(1.0, 1000 / (I * R)), bytes_per_update => 900.0,
       converged => not (R =:= 100 andalso I =:= 1000), agree => true, duration_ms => 3000}
     || R <- [0.5, 2, 10, 100], I <- [20, 100, 250, 1000]].

page_draws_every_chart_from_the_data_test() ->
    Html = unicode:characters_to_binary(?R:render([synthetic()])),
    Charts = ["marks", "swimlanes", "divergence-unseen", "divergence-age", "up-to-date",
              "convergence-cdf", "convergence-hist", "visibility-heatmap", "update-rate",
              "window-p99", "speed"],
    [?assertMatch({match, _}, re:run(Html, "data-chart=\"" ++ C ++ "\"")) || C <- Charts],
    %% One divergence point per sample; one CDF point per converged record.
    ?assertMatch({match, _}, re:run(Html, "data-label=\"all nodes\" data-n=\"100\"")),
    ?assertMatch({match, _}, re:run(Html, "data-label=\"converged updates\" data-n=\"150\"")),
    %% The percentiles marked at the reported values, the faults on the time axes.
    ?assertMatch({match, _}, re:run(Html, "data-value=\"6500\" data-label=\"p99\"")),
    {match, Parts} = re:run(Html, "data-label=\"fault: partition", [global]),
    ?assert(length(Parts) >= 4),
    ?assertMatch({match, _}, re:run(Html, "data-key=\"p99\">6.5 ms<")),
    %% Heatmap counts add up to the remote sightings (b saw all 150).
    {match, Cells} = re:run(Html, "data-chart=\"visibility-heatmap\".*?</svg>", [dotall]),
    [{S, L}] = Cells,
    {match, Counts} = re:run(binary:part(Html, S, L), "data-row=\"b\" data-count=\"([0-9]+)\"",
                             [global, {capture, all_but_first, list}]),
    ?assertEqual(150, lists:sum([list_to_integer(C) || [C] <- Counts])),
    %% The untimed mark is listed too.
    ?assertMatch({match, _}, re:run(Html, "<td>–</td><td class=\"mark\">not_a_timed_mark</td>",
                                    [unicode])),
    %% Self-contained: no external reference, no script.
    nomatch = re:run(Html, "(src=|href=|<script|@import|url\\()"),
    ok.

%% Node names shortened to what tells them apart; the full names in the
%% node table.
short_names_test() ->
    ?assertEqual(#{'lc_demo_7391_1@vm' => "n1", 'lc_demo_7391_12@vm' => "n12"},
                 ?R:short_names(['lc_demo_7391_1@vm', 'lc_demo_7391_12@vm'])),
    ?assertEqual(#{'alpha@a' => "alpha@a", 'beta@b' => "beta@b"},
                 ?R:short_names(['alpha@a', 'beta@b'])),
    ?assertEqual(#{'x_1@h' => "n1", 'x_1_2@h' => "1_2"}, ?R:short_names(['x_1@h', 'x_1_2@h'])),
    %% A name that is all prefix keeps every name whole.
    ?assertEqual(#{'x_@h' => "x_", 'x_y@h' => "x_y"}, ?R:short_names(['x_@h', 'x_y@h'])),
    ?assertEqual(#{'solo@host' => "solo"}, ?R:short_names(['solo@host'])),
    ?assertEqual(#{1 => "n1", 2 => "n2"}, ?R:short_names([1, 2])),
    Html = unicode:characters_to_binary(?R:render([demo_like()])),
    ?assertMatch({match, _}, re:run(Html, "<td class=\"short\">n3</td><td class=\"full\">"
                                          "lc_demo_7391_3@vm</td>")),
    ?assertEqual(nomatch, re:run(Html, "<text[^>]*>lc_demo_7391")).

var_titles_test() ->
    ?assertEqual("demo · awset", ?R:var_title({<<"demo">>, state_awset})),
    ?assertEqual("x · gcounter", ?R:var_title({x, state_gcounter})),
    ?assertEqual("{1,2,3}", ?R:var_title({1, 2, 3})),
    ?assertEqual("café · gset", ?R:var_title({<<"caf", 233>>, state_gset})).

%% Marks get short labels in a lane of their own; the charts only draw
%% dashed lines, with the whole mark on hover and in the table.
marks_in_a_lane_with_short_labels_test() ->
    Html = unicode:characters_to_binary(?R:render([demo_like()])),
    {match, [Lane]} = re:run(Html, "<svg[^>]*data-chart=\"marks\".*?</svg>",
                             [dotall, {capture, first, binary}]),
    [?assertMatch({match, _}, re:run(Lane, ">" ++ L ++ "</text>", [unicode]))
     || L <- ["partition n1,n2 \\| n3,n4,n5", "heal", "interval 278→2000 ms", "push on",
              "push off", "delay n1→n5 200 ms", "\\{k\\} 1→2"]],
    {match, [Marks]} = re:run(Lane, "data-marks=\"([0-9]+)\"", [{capture, all_but_first, list}]),
    ?assertEqual(14, list_to_integer(Marks)),
    %% No label text on the time charts: only lines with a title.
    {match, [Unseen]} = re:run(Html, "<svg[^>]*data-chart=\"divergence-unseen\".*?</svg>",
                               [dotall, {capture, first, binary}]),
    ?assertEqual(nomatch, re:run(Unseen, "<text[^>]*>[^<]*(partition|heal|interval)")),
    ?assertMatch({match, _}, re:run(Unseen, "<title>fault: partition \\[\\[\\[lc_demo_7391_1@vm")),
    %% In the table, the short label and the whole mark.
    ?assertMatch({match, _}, re:run(Html, "<td>17</td><td class=\"mark\">partition n1,n2 \\| "
                                          "n3,n4,n5</td>")).

%% One row per node on the swimlane heatmap, on the same time axis as the
%% line charts, with its colour scale.
swimlanes_share_the_time_axis_test() ->
    Html = unicode:characters_to_binary(?R:render([demo_like()])),
    {match, [Sw]} = re:run(Html, "<svg[^>]*data-chart=\"swimlanes\".*?</svg>",
                           [dotall, {capture, first, binary}]),
    {match, Rows} = re:run(Sw, "<text class=\"lc-tick lc-row\"[^>]*>([^<]*)<",
                           [global, {capture, all_but_first, binary}]),
    ?assertEqual([<<"n1">>, <<"n2">>, <<"n3">>, <<"n4">>, <<"n5">>], [R || [R] <- Rows]),
    ?assertMatch({match, _}, re:run(Sw, "class=\"lc-scale\"")),
    ?assertMatch({match, _}, re:run(Sw, "updates not seen")),
    %% The partitioned side (n3..n5 miss n1,n2's updates) is darker during
    %% the partition than before it.
    Counts = fun(Row) ->
                     {match, Cs} = re:run(Sw, "data-row=\"" ++ Row ++ "\" data-count=\"([0-9]+)\"",
                                          [global, {capture, all_but_first, list}]),
                     [list_to_integer(C) || [C] <- Cs]
             end,
    N4 = Counts("n4"),
    ?assertEqual(120, length(N4)),
    %% Bins of 0.25 s: 5..7 s before, 20..21.75 s during the partition.
    ?assert(lists:max(lists:sublist(N4, 81, 7)) > 3 * lists:max(lists:sublist(N4, 21, 8))),
    %% The same x axis as the line charts: the same ticks at the same places.
    Ticks = fun(Svg) ->
                    {match, T} = re:run(Svg, "<text class=\"lc-tick\" x=\"([0-9.]+)\" y=\"[0-9.]+\" "
                                        "text-anchor=\"middle\">([^<]*)<",
                                        [global, {capture, all_but_first, binary}]),
                    T
            end,
    {match, [Line]} = re:run(Html, "<svg[^>]*data-chart=\"update-rate\".*?</svg>",
                             [dotall, {capture, first, binary}]),
    ?assertEqual(Ticks(Line), Ticks(Sw)).

%% The settings in force are drawn from the settings, not only from
%% changes: a run at a fixed interval shows it.
settings_are_always_drawn_test() ->
    D = (synthetic())#{settings => #{state_interval => 200, propagate_on_update => false,
                                     mode => state_based}},
    Html = unicode:characters_to_binary(?R:render([D])),
    ?assertMatch({match, _}, re:run(Html, "data-row=\"interval\" data-text=\"200 ms\"")),
    ?assertMatch({match, _}, re:run(Html, "data-row=\"push\" data-text=\"off\"")),
    ?assertMatch({match, _}, re:run(Html, "data-row=\"mode\" data-text=\"state\"")),
    ?assertMatch({match, _}, re:run(Html, "data-label=\"interval\" data-n=\"2\"")),
    %% With the tuner's changes: the values before each, then the one now.
    Html2 = unicode:characters_to_binary(?R:render([demo_like()])),
    {match, Ints} = re:run(Html2, "data-row=\"interval\" data-text=\"([0-9]+) ms\"",
                           [global, {capture, all_but_first, list}]),
    ?assertEqual(["250", "278", "2000", "1000", "500", "278", "120", "60", "400"],
                 [I || [I] <- Ints]),
    {match, Push} = re:run(Html2, "data-row=\"push\" data-text=\"([^\"]+)\"",
                           [global, {capture, all_but_first, list}]),
    ?assertEqual(["off", "on update", "off"], [P || [P] <- Push]),
    %% How the windows are keyed is said.
    ?assertMatch({match, _}, re:run(Html2, "time the update was made")).

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
    %% Three intervals (and the last held to the end).
    ?assertMatch({match, _}, re:run(Html, "data-label=\"interval\" data-n=\"4\"")),
    ?assertMatch({match, _}, re:run(Html, ">interval 250→120 ms<", [unicode])),
    ?assertMatch({match, _}, re:run(Html, "tuner: state_interval 250 → 120 \\(over_target\\)",
                                    [unicode])),
    ?assertMatch({match, _}, re:run(Html, ">push on<", [unicode])).

%% Any term is a mark, and draws.
any_mark_renders_test() ->
    D0 = #{marks := Marks} = synthetic(),
    T = 1700000000000000 + 400000,
    Odd = [#{at_us => T, tuner => x, key => {k}, old => 1, new => 2},
           #{at_us => T, tuner => x, key => <<"k">>, old => [a], new => #{b => 1}},
           #{at_us => T, tuner => x, key => state_interval, old => undefined, new => 5},
           #{at_us => T, fault => {weird, 1}, args => not_a_list},
           #{at_us => T, fault => partition, args => [[[not_a_node]], 3]},
           #{at_us => T, fault => delay, args => [1, 2]},
           #{at_us => T + 0.5, kind => <<"caf", 233>>},
           #{at_us => 0, fault => heal},
           #{at_us => -5, label => "neg"},
           #{at_us => 1.0e300, fault => heal},
           #{at_us => undefined},
           {at_us, T}, 42, <<255, 0>>, [16#D800], self(), make_ref()],
    Html = unicode:characters_to_binary(?R:render([D0#{marks := Marks ++ Odd}])),
    ?assertMatch({match, _}, re:run(Html, ">\\{k\\} 1→2<", [unicode])),
    {match, Rows} = re:run(Html, "<tr><td>[^<]*</td><td class=\"mark\">", [global]),
    ?assertEqual(length(Marks) + length(Odd), length(Rows)),
    %% A mark far from the data does not stretch the time axis.
    ?assertMatch({match, _}, re:run(Html, "data-chart=\"swimlanes\"")),
    %% The partition, the heal and the 7 odd marks within the data's time.
    ?assertMatch({match, _}, re:run(Html, "data-chart=\"marks\" data-kind=\"lane\" data-marks=\"9\"")),
    %% The dashboard's section too.
    _ = iolist_size(unicode:characters_to_binary(?R:section(D0#{marks := Odd}))).

%% A defect: a malformed mark made report:write and the dashboard fail for
%% every variable until reset.
malformed_mark_does_not_break_write_test() ->
    {ok, _} = application:ensure_all_started(lasp_converge),
    V = {<<"malformed">>, state_gset},
    ok = lasp_converge:track(V, #{nodes => []}),
    try
        ok = lasp_converge:updated(V, {state_gset, []}, {state_gset, [1]}),
        ok = lasp_converge:mark(#{at_us => erlang:system_time(microsecond), tuner => x,
                                  key => {k}, old => 1, new => 2}),
        wait(fun() -> length(lasp_converge:marks(V)) =:= 1 end, 2000),
        Path = filename:join([filename:absname("_build"), "test", "report", "malformed.html"]),
        ?assertEqual({ok, Path}, ?R:write(Path, [V])),
        {ok, Html} = file:read_file(Path),
        ?assertMatch({match, _}, re:run(Html, ">\\{k\\} 1→2<", [unicode]))
    after
        lasp_converge:untrack(V)
    end.

%% A defect: a title that is not valid UTF-8 raised instead of returning
%% an error.
bad_title_is_an_error_test() ->
    {ok, _} = application:ensure_all_started(lasp_converge),
    V = {<<"title">>, state_gset},
    ok = lasp_converge:track(V, #{nodes => []}),
    try
        Path = filename:join([filename:absname("_build"), "test", "report", "title.html"]),
        ?assertEqual({error, {bad_title, <<"caf", 233>>}},
                     ?R:write(Path, [V], #{title => <<"caf", 233>>})),
        ?assertEqual({error, {bad_title, {no, text}}}, ?R:write(Path, [V], #{title => {no, text}})),
        ?assertEqual({ok, Path}, ?R:write(Path, [V], #{title => <<"café"/utf8>>})),
        ?assertEqual({error, {bad_title, <<255>>}}, ?R:write_sweep(Path, [], #{title => <<255>>})),
        %% Unknown option keys are refused, not ignored.
        ?assertEqual({error, {unknown_option, titel}}, ?R:write(Path, [V], #{titel => "x"})),
        ?assertEqual({error, {unknown_option, target}},
                     ?R:write_sweep(Path, [], #{target => 100})),
        ?assertEqual({error, {bad_opts, [{title, "x"}]}}, ?R:write(Path, [V], [{title, "x"}]))
    after
        lasp_converge:untrack(V)
    end.

%% A defect: more than 60 samples with nothing unseen crashed print/1 (the
%% squeezed all-zero series has a float maximum, 0.0).
sparkline_of_zeros_test() ->
    ?assertEqual(lists:duplicate(60, 16#2581),
                 unicode:characters_to_list(?R:sparkline(lists:duplicate(61, 0)))),
    ?assertEqual(lists:duplicate(60, $_), lists:flatten(?R:sparkline(lists:duplicate(500, 0), ascii))),
    ?assertEqual(lists:duplicate(60, 16#2581),
                 unicode:characters_to_list(?R:sparkline(lists:duplicate(61, 0.0)))),
    D = (synthetic())#{divergence => [#{t_us => I, up_to_date => 1.0,
                                        nodes => #{a@h => #{unseen => 0}}} || I <- lists:seq(1, 200)]},
    ?assertMatch({match, _}, re:run(unicode:characters_to_binary(?R:format(D)), "unseen over time")).

page_with_no_data_says_so_test() ->
    D = #{var => v, stats => #{updates => 0}, divergence => [], records => [], marks => []},
    Html = unicode:characters_to_binary(?R:render([D])),
    ?assertMatch({match, _}, re:run(Html, "No divergence samples yet")),
    ?assertMatch({match, _}, re:run(Html, "No converged updates")).

terminal_summary_test() ->
    Out = unicode:characters_to_binary(?R:format(synthetic())),
    ?assertMatch({match, _}, re:run(Out, "p99")),
    ?assertMatch({match, _}, re:run(Out, "6.5 ms")),
    ?assertMatch({match, _}, re:run(Out, "x · orset", [unicode])),
    ?assertMatch({match, _}, re:run(Out, "unseen over time", [unicode])),
    ?assertMatch({match, _}, re:run(Out, "convergence time \\(recent updates\\)")),
    ?assertEqual(60, length(unicode:characters_to_list(?R:sparkline(lists:seq(1, 500))))),
    ?assertEqual([16#2581, 16#2588], unicode:characters_to_list(?R:sparkline([0, 9]))).

%% Where the output is not UTF-8: plain ASCII, the columns aligned.
terminal_summary_in_ascii_test() ->
    Out = lists:flatten(?R:format(demo_like(), ascii)),
    ?assert(lists:all(fun(C) -> C < 128 end, Out)),
    ?assertMatch({match, _}, re:run(Out, "demo - awset")),
    ?assertMatch({match, _}, re:run(Out, "unseen over time  [_.:=+*#-]+  \\(max")),
    [Head, Values | _] = tl(string:split(Out, "\n", all)),
    %% Every figure ends where its heading ends.
    ?assertEqual(length(Head), length(Values)),
    {match, HE} = re:run(Head, "[^ ]+", [global]),
    {match, VE} = re:run(Values, "[^ ]+(?: (?:us|ms|s))?", [global]),
    ?assertEqual([S + L || [{S, L}] <- HE], [S + L || [{S, L}] <- VE]),
    %% And print/1 picks ASCII on a Latin-1 output.
    {ok, _} = application:ensure_all_started(lasp_converge),
    V = {<<"ascii">>, state_gset},
    ok = lasp_converge:track(V, #{nodes => []}),
    try
        ok = lasp_converge:updated(V, {state_gset, []}, {state_gset, [1]}),
        ok = lasp_converge:observed(V, {state_gset, [1]}),
        {ok, Dev} = file:open(filename:join([filename:absname("_build"), "test", "print.txt"]),
                              [write]),
        Old = group_leader(),
        group_leader(Dev, self()),
        try ok = ?R:print(V) after group_leader(Old, self()) end,
        ok = file:close(Dev),
        {ok, Bin} = file:read_file(filename:join([filename:absname("_build"), "test", "print.txt"])),
        ?assert(lists:all(fun(C) -> C < 128 end, binary_to_list(Bin))),
        ?assertMatch({match, _}, re:run(Bin, "ascii - gset"))
    after
        lasp_converge:untrack(V)
    end.

%% ===================================================================
%% Sweeps
%% ===================================================================

%% The frontier: per rate, the cheapest interval whose p99 meets the target.
frontier_test() ->
    Rows = sweep_rows(),
    %% Default target: converge within the time between updates.
    F = ?R:frontier(Rows, #{}),
    %% 100/s: even 20 ms (p99 14 ms) is slower than the 10 ms between updates.
    ?assertEqual([{0.5, 1000}, {2, 250}, {10, 100}],
                 [{R, I} || #{rate := R, state_interval := I} <- F]),
    %% A target of 100 ms: 100 ms is enough and cheapest at every rate.
    ?assertEqual([{0.5, 100}, {2, 100}, {10, 100}, {100, 100}],
                 [{R, I} || #{rate := R, state_interval := I} <- ?R:frontier(Rows, #{target_p99 => 100})]).

sweep_page_draws_the_rows_test() ->
    Rows = sweep_rows(),
    Html = unicode:characters_to_binary(?R:render_sweep(Rows, #{target_p99 => 100})),
    [?assertMatch({match, _}, re:run(Html, "data-chart=\"" ++ C ++ "\""))
     || C <- ["sweep-p99", "sweep-msgs", "sweep-frontier", "sweep-speed"]],
    %% Every cell of the grid: 4 rates × 4 intervals, the failed run empty.
    {match, [P99]} = re:run(Html, "<svg[^>]*data-chart=\"sweep-p99\".*?</svg>",
                            [dotall, {capture, first, binary}]),
    {match, Cells} = re:run(P99, "<rect class=\"lc-cell[^\"]*\" data-x=", [global]),
    ?assertEqual(16, length(Cells)),
    ?assertMatch({match, _}, re:run(P99, "data-x=\"100/s\" data-y=\"1000 ms\" data-value=\"\"")),
    ?assertMatch({match, _}, re:run(P99, "data-x=\"30/min\" data-y=\"100 ms\" data-value=\"62000\"")),
    %% Target 100 ms: the 100 ms interval (p99 62 ms) is the cheapest at every rate.
    {match, Outlined} = re:run(P99, "lc-cell lc-frontier\" data-x=\"([^\"]+)\" data-y=\"([^\"]+)\"",
                               [global, {capture, all_but_first, list}]),
    ?assertEqual([["30/min", "100 ms"], ["2/s", "100 ms"], ["10/s", "100 ms"], ["100/s", "100 ms"]],
                 lists:sort(fun([A, _], [B, _]) -> rate_order(A) =< rate_order(B) end, Outlined)),
    %% The speed chart: a dot per converged run, the diagonal.
    {match, Dots} = re:run(Html, "<circle", [global]),
    ?assertEqual(15 + 4, length(Dots)),
    ?assertMatch({match, _}, re:run(Html, "data-diagonal=\"y=x\"")),
    ?assertMatch({match, _}, re:run(Html, "changes faster than it converges")),
    ?assertMatch({match, _}, re:run(Html, "converges faster than it changes")),
    ?assertEqual({error, bad_rows}, ?R:write_sweep("/tmp/x.html", [#{rate => 1}])),
    ?assertEqual({error, bad_target}, ?R:write_sweep("/tmp/x.html", Rows, #{target_p99 => 0})).

rate_order("30/min") -> 0;
rate_order("2/s") -> 1;
rate_order("10/s") -> 2;
rate_order("100/s") -> 3.

%% A simulator sweep gives rows of the same shape, and they draw.
sim_sweep_rows_draw_test() ->
    {ok, Rows} = lasp_converge_sim:sweep(#{nodes => 5, duration => 5000},
                                         #{rates => [1, 20], intervals => [50, 500]}),
    ?assertEqual(4, length(Rows)),
    [begin
         ?assert(is_integer(P99) andalso P99 > 0),
         ?assert(is_float(M) andalso M > 0),
         ?assert(C)
     end || #{p99 := P99, msgs_per_update := M, converged := C} <- Rows],
    %% A longer interval: slower convergence, fewer messages.
    Get = fun(R, I, K) -> hd([maps:get(K, Row) || Row = #{rate := R1, state_interval := I1} <- Rows,
                                                  R1 == R, I1 == I]) end,
    ?assert(Get(20, 500, p99) > Get(20, 50, p99)),
    ?assert(Get(20, 500, msgs_per_update) < Get(20, 50, msgs_per_update)),
    Path = filename:join([filename:absname("_build"), "test", "report", "sim_sweep.html"]),
    ?assertEqual({ok, Path}, ?R:write_sweep(Path, Rows)),
    {ok, Html} = file:read_file(Path),
    ?assertMatch({match, _}, re:run(Html, "data-chart=\"sweep-speed\"")).

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
            %% A change made by hand, not by the tuner: drawn as well.
            {ok, _} = ?CL:call(C, N1, lasp_converge_replicator, set, [#{state_interval => 80}]),
            lists:foreach(Upd, lists:seq(41, 60)),
            wait(fun() -> maps:get(converged, ?CL:call(C, N1, lasp_converge, stats, [Var])) =:= 60
                 end, 20000),
            Path = filename:join([filename:absname("_build"), "test", "report",
                                  "lasp_converge_report_tests.html"]),
            {ok, Path} = ?CL:call(C, N1, lasp_converge_report, write, [Path, [Var]]),
            {ok, Html} = file:read_file(Path),
            ?assertMatch({match, _}, re:run(Html, "data-chart=\"convergence-cdf\"")),
            ?assertMatch({match, _}, re:run(Html, "data-label=\"converged updates\" data-n=\"60\"")),
            ?assertMatch({match, _}, re:run(Html, "data-key=\"updates\">60<")),
            ?assertMatch({match, _}, re:run(Html, "data-label=\"fault: partition")),
            ?assertMatch({match, _}, re:run(Html, "data-label=\"fault: heal")),
            ?assertMatch({match, _}, re:run(Html, ">partition n1,n2 \\| n3<")),
            Short = maps:values(?R:short_names(Ns)),
            [?assertMatch({match, _}, re:run(Html, "data-row=\"" ++ N ++ "\"")) || N <- Short],
            [?assertMatch({match, _}, re:run(Html, "<td class=\"full\">" ++ atom_to_list(N)))
             || N <- Ns],
            %% The intervals it ran at, from the settings and their recorded
            %% changes: 50 ms (set before tracking began), then 80 ms.
            {match, Ints} = re:run(Html, "data-row=\"interval\" data-text=\"([0-9]+) ms\"",
                                   [global, {capture, all_but_first, list}]),
            ?assertEqual(["50", "80"], [I || [I] <- Ints]),
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
