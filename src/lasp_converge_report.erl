%% @doc Convergence as pictures: a self-contained HTML report and a terminal
%% summary.
%%
%% `write(Path, Vars)' writes one HTML file (inline SVG and CSS, no
%% external assets, no script) with, per tracked variable:
%%
%% <ul>
%% <li>a summary table (updates, converged, pending, unconverged,
%%     percentiles, clock uncertainty) and one row per node;</li>
%% <li>divergence over time: how many updates each node is missing, and
%%     the age of the oldest, with the fraction of nodes up to date;</li>
%% <li>the convergence-time distribution, as a CDF and a histogram on a log
%%     time axis, p50/p99/p999 marked;</li>
%% <li>per-node visibility latency, as a heatmap (nodes by log-time
%%     bins);</li>
%% <li>update rate and p99 convergence time per window, so that a change of
%%     rate or of propagation interval shows;</li>
%% <li>the marks recorded on the variable (`lasp_converge:mark/1': faults,
%%     interval changes, ...) as vertical lines on every time axis, and
%%     listed.</li>
%% </ul>
%%
%% Times on the time axes are seconds since the first sample; latencies are
%% in microseconds as the tracker measures them. `render/1' builds the page
%% from data gathered by `collect/1', so it can be tested without a
%% cluster. `print/1' prints a compact table, a sparkline of divergence and
%% a text histogram to the terminal.
-module(lasp_converge_report).

-export([write/2, write/3, render/1, render/2, section/1, css/0, collect/1, print/1,
         format/1, hist_bins/1, windows/2, sparkline/1]).

-type data() :: #{var := term(), stats := map(), divergence := [map()],
                  records := [map()], marks := [term()]}.
-export_type([data/0]).

-define(S, lasp_converge_svg).
-define(SPARK, [16#2581, 16#2582, 16#2583, 16#2584, 16#2585, 16#2586, 16#2587, 16#2588]).

%% ===================================================================
%% API
%% ===================================================================

%% @equiv write(Path, Vars, #{})
-spec write(file:filename_all(), [term()]) -> {ok, file:filename_all()} | {error, term()}.
write(Path, Vars) ->
    write(Path, Vars, #{}).

%% @doc Write the report on `Vars' (tracked variables, aggregated on this
%% node or any member) to `Path'. Options: `title'. Returns `{error,
%% {not_tracked, Var}}' if one is not tracked.
-spec write(file:filename_all(), [term()], map()) ->
          {ok, file:filename_all()} | {error, term()}.
write(Path, Vars, Opts) when is_list(Vars), is_map(Opts) ->
    case collect_all(Vars, []) of
        {ok, Data} ->
            Html = render(Data, Opts),
            case filelib:ensure_dir(Path) of
                ok ->
                    case file:write_file(Path, unicode:characters_to_binary(Html)) of
                        ok -> {ok, Path};
                        {error, _} = E -> E
                    end;
                {error, _} = E -> E
            end;
        {error, _} = E ->
            E
    end;
write(_, _, _) ->
    {error, bad_args}.

collect_all([], Acc) -> {ok, lists:reverse(Acc)};
collect_all([V | Vs], Acc) ->
    case collect(V) of
        {ok, D} -> collect_all(Vs, [D | Acc]);
        {error, not_tracked} -> {error, {not_tracked, V}};
        {error, _} = E -> E
    end.

%% @doc What the report draws for `Var', from the tracker.
-spec collect(term()) -> {ok, data()} | {error, term()}.
collect(Var) ->
    case lasp_converge:stats(Var) of
        S when is_map(S) ->
            Div = ok_list(lasp_converge:divergence(Var)),
            Recs = ok_list(lasp_converge:records(Var)),
            Marks = ok_list(lasp_converge:marks(Var)),
            {ok, #{var => Var, stats => S, divergence => Div, records => Recs,
                   marks => Marks}};
        {error, _} = E ->
            E
    end.

ok_list(L) when is_list(L) -> L;
ok_list(_) -> [].

%% @equiv render(Data, #{})
-spec render([data()]) -> iodata().
render(Data) ->
    render(Data, #{}).

%% @doc The HTML page for the variables' data.
-spec render([data()], map()) -> iodata().
render(Data, Opts) ->
    Title = maps:get(title, Opts, "lasp_converge report"),
    ["<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>",
     ?S:esc(Title), "</title>\n<style>", css(), "</style></head>\n<body>\n<h1>",
     ?S:esc(Title), "</h1>\n<p class=\"meta\">Written ",
     calendar:system_time_to_rfc3339(erlang:system_time(second)), " on ",
     ?S:esc(atom_to_list(node())), ". Latencies in microseconds as measured; time axes in "
     "seconds since the first sample; dashed lines are marks (faults, interval changes).</p>\n",
     [section(D) || D <- Data],
     "</body></html>\n"].

%% @doc Print `Var''s summary to the terminal: figures, a divergence
%% sparkline and a histogram of convergence times.
-spec print(term()) -> ok | {error, term()}.
print(Var) ->
    case collect(Var) of
        {ok, D} -> io:put_chars(format(D));
        {error, _} = E -> E
    end.

%% ===================================================================
%% One variable
%% ===================================================================

%% @doc The part of the page about one variable (a `<section>'), as the
%% live dashboard also shows it.
-spec section(data()) -> iodata().
section(D = #{var := Var, stats := S, divergence := Div, records := Recs, marks := Marks0}) ->
    T0 = t0(D),
    Marks = [M || M <- Marks0, mark_time(M) =/= undefined],
    VLines = [{(mark_time(M) - T0) / 1.0e6, mark_label(M), "lc-fault"} || M <- Marks],
    Id = ?S:esc(io_lib:format("~0tp", [Var])),
    Nodes = lists:usort(lists:append([maps:keys(maps:get(nodes, X, #{})) || X <- Div])
                        ++ maps:keys(maps:get(per_node, S, #{}))),
    Conv = lists:sort([C || #{outcome := converged, convergence_us := C} <- Recs,
                            is_integer(C)]),
    ["<section>\n<h2>", Id, "</h2>\n",
     summary(S),
     "<div class=\"charts\">\n",
     divergence_charts(Div, Nodes, T0, VLines),
     distribution_charts(Conv, S),
     latency_heatmap(Recs, S),
     rate_charts(Recs, T0, VLines, intervals(Marks, T0)),
     "</div>\n",
     marks_table(Marks, T0),
     "</section>\n"].

t0(#{divergence := Div, records := Recs, marks := Marks}) ->
    Ts = [T || #{t_us := T} <- lists:sublist(Div, 1)]
        ++ [T || #{ts_us := T} <- Recs]
        ++ [T || M <- Marks, (T = mark_time(M)) =/= undefined],
    case Ts of
        [] -> 0;
        _ -> lists:min(Ts)
    end.

mark_time(#{at_us := T}) when is_integer(T) -> T;
mark_time(_) -> undefined.

mark_label(#{tuner := _, key := K, old := O, new := N}) when is_boolean(N) ->
    io_lib:format("~ts ~0tp → ~0tp", [K, O, N]);
mark_label(#{tuner := _, key := K, old := O, new := N}) ->
    io_lib:format("~ts ~0tp → ~0tp ms", [K, O, N]);
mark_label(M = #{}) ->
    Kind = hd([V || K <- [fault, kind, event, tuner, label], (V = maps:get(K, M, undefined)) =/= undefined]
              ++ [mark]),
    case maps:get(args, M, undefined) of
        undefined -> io_lib:format("~0tp", [Kind]);
        Args -> io_lib:format("~0tp ~0tp", [Kind, Args])
    end.

summary(S) ->
    Keys = [updates, converged, pending, unconverged, p50, p90, p99, p999, max, mean,
            clock_uncertainty_us],
    PerNode = maps:get(per_node, S, #{}),
    ["<table class=\"summary\"><tr>", [["<th>", atom_to_list(K), "</th>"] || K <- Keys],
     "</tr>\n<tr>", [["<td data-key=\"", atom_to_list(K), "\">", cell(K, maps:get(K, S, undefined)),
                      "</td>"] || K <- Keys], "</tr></table>\n",
     "<table class=\"nodes\"><tr><th>node</th><th>seen (remote updates)</th><th>p50</th>"
     "<th>p99</th><th>max</th><th>pending</th><th>clock uncertainty</th></tr>\n",
     [["<tr><td>", ?S:esc(atom_to_list(N)), "</td><td>", cell(count, maps:get(count, M, undefined)),
       "</td><td>", cell(p50, maps:get(p50, M, undefined)), "</td><td>",
       cell(p99, maps:get(p99, M, undefined)), "</td><td>", cell(max, maps:get(max, M, undefined)),
       "</td><td>", cell(pending, maps:get(pending, M, undefined)), "</td><td>",
       cell(clock_uncertainty_us, maps:get(clock_uncertainty_us, M, undefined)), "</td></tr>\n"]
      || {N, M} <- lists:sort(maps:to_list(PerNode)), is_atom(N)],
     "</table>\n"].

cell(_, undefined) -> "–";
cell(K, V) when K =:= updates; K =:= converged; K =:= pending; K =:= unconverged;
                K =:= count ->
    integer_to_list(V);
cell(_, V) when is_number(V) -> ?S:fmt_us(V);
cell(_, V) -> ?S:esc(io_lib:format("~0tp", [V])).

divergence_charts([], _, _, _) ->
    note("divergence", "No divergence samples yet.");
divergence_charts(Div, Nodes, T0, VLines) ->
    X = fun(#{t_us := T}) -> (T - T0) / 1.0e6 end,
    Unseen = [#{label => atom_label(N),
                points => [{X(Smp), maps:get(unseen, maps:get(N, Ns))}
                           || Smp = #{nodes := Ns} <- Div, is_map_key(N, Ns)]}
              || N <- Nodes],
    Age = [#{label => atom_label(N),
             points => [{X(Smp), age(maps:get(N, Ns))} || Smp = #{nodes := Ns} <- Div,
                                                        is_map_key(N, Ns)]}
           || N <- Nodes],
    Up = [#{label => "nodes up to date", points => [{X(Smp), U} || Smp = #{up_to_date := U} <- Div]}],
    Common = #{x_label => "time (s)", step => true, vlines => VLines, x_format => fun ?S:fmt_num/1},
    [?S:line(Unseen, Common#{id => "divergence-unseen",
                             title => "Updates each node has not seen",
                             y_label => "updates", y_format => fun ?S:fmt_num/1}),
     ?S:line(Age, Common#{id => "divergence-age",
                          title => "Age of the oldest update each node has not seen",
                          y_label => "age", y_format => fun ?S:fmt_us/1}),
     ?S:line(Up, Common#{id => "up-to-date", title => "Fraction of nodes up to date",
                         y_label => "fraction", y_range => {0, 1.05}, height => 180,
                         y_format => fun ?S:fmt_num/1})].

age(#{oldest_unseen_age_us := A}) when is_integer(A) -> A;
age(_) -> 0.

distribution_charts([], _) ->
    note("distribution", "No converged updates in the record window yet.");
distribution_charts(Conv, S) ->
    N = length(Conv),
    Marks = [{V, atom_to_list(K), "lc-pct"} || K <- [p50, p99, p999],
                                               is_integer(V = maps:get(K, S, undefined)), V > 0],
    %% 0 us does not fit a log axis: draw it at 1 us.
    Cdf = [{max(1, C), I / N} || {I, C} <- lists:zip(lists:seq(1, N), Conv)],
    [?S:line([#{label => "converged updates", points => Cdf}],
             #{id => "convergence-cdf", title => "Convergence time, cumulative",
               x_scale => log, x_label => "convergence time", x_format => fun ?S:fmt_us/1,
               y_label => "fraction of updates", y_range => {0, 1.05}, step => true,
               vlines => Marks, y_format => fun ?S:fmt_num/1}),
     ?S:bars(hist_bins(Conv),
             #{id => "convergence-hist", title => "Convergence time, histogram",
               x_scale => log, x_label => "convergence time", x_format => fun ?S:fmt_us/1,
               vlines => Marks})].

%% @doc Log-spaced bins (five a decade) of microsecond values:
%% `[{Lo, Hi, Count}]', values below 1 counted in the first.
-spec hist_bins([number()]) -> [{number(), number(), non_neg_integer()}].
hist_bins([]) ->
    [];
hist_bins(Vs) ->
    Key = fun(V) -> floor(math:log10(max(1, V)) * 5 + 1.0e-9) end,
    Counts = lists:foldl(fun(V, M) -> maps:update_with(Key(V), fun(C) -> C + 1 end, 1, M) end,
                         #{}, Vs),
    Ks = maps:keys(Counts),
    [{math:pow(10, K / 5), math:pow(10, (K + 1) / 5), maps:get(K, Counts, 0)}
     || K <- lists:seq(lists:min(Ks), lists:max(Ks))].

latency_heatmap(Recs, S) ->
    Nodes = [N || {N, _} <- lists:sort(maps:to_list(maps:get(per_node, S, #{}))), is_atom(N)],
    Lat = [{N, max(1, T - Ts)} || #{ts_us := Ts, seen := Seen, origin := O} <- Recs,
                                 {N, T} <- maps:to_list(Seen), N =/= O],
    case Lat of
        [] ->
            note("visibility", "No remote updates seen in the record window yet.");
        _ ->
            Bins = [{Lo, Hi} || {Lo, Hi, _} <- hist_bins([L || {_, L} <- Lat])],
            Rows = [[length([1 || {N1, L} <- Lat, N1 =:= N, L >= Lo, L < Hi]) || {Lo, Hi} <- Bins]
                    || N <- Nodes],
            ?S:heatmap({[atom_label(N) || N <- Nodes], Bins, Rows},
                       #{id => "visibility-heatmap",
                         title => "When each node first held a remote update (latency)",
                         x_scale => log, x_label => "visibility latency",
                         x_format => fun ?S:fmt_us/1})
    end.

%% The propagation interval over time, from the tuner's marks: its old
%% value from the start, then each new one (in µs, to share the p99 axis).
intervals(Marks, T0) ->
    case [{(T - T0) / 1.0e6, O, N} || #{tuner := _, at_us := T, old := O, new := N} <- Marks,
                                     is_number(O), is_number(N)] of
        [] -> [];
        [{_, O0, _} | _] = Changes -> [{0.0, O0 * 1000} | [{X, N * 1000} || {X, _, N} <- Changes]]
    end.

rate_charts([], _, _, _) ->
    [];
rate_charts(Recs, T0, VLines, Intervals) ->
    Ws = windows(Recs, T0),
    Interval = case Intervals of
                   [] -> [];
                   _ -> [#{label => "propagation interval", points => Intervals}]
               end,
    [?S:line([#{label => "updates/s", points => [{T, R} || {T, R, _} <- Ws]}],
             #{id => "update-rate", title => "Update rate", x_label => "time (s)",
               y_label => "updates/s", vlines => VLines, height => 200,
               y_format => fun ?S:fmt_num/1}),
     ?S:line([#{label => "p99 convergence", points => [{T, P} || {T, _, P} <- Ws, P > 0]}
              | Interval],
             #{id => "window-p99", step_series => ["propagation interval"],
               title => case Interval of
                            [] -> "p99 convergence time per window";
                            _ -> "p99 convergence time per window, and the propagation interval"
                        end,
               x_label => "time (s)", y_label => "p99", y_scale => log,
               y_format => fun ?S:fmt_us/1, vlines => VLines, height => 200})].

%% @doc Records in about 40 equal windows of their update times:
%% `[{StartSeconds, UpdatesPerSecond, P99Us}]' (P99 0 when none converged).
-spec windows([map()], integer()) -> [{float(), float(), number()}].
windows([], _) ->
    [];
windows(Recs, T0) ->
    Ts = [T || #{ts_us := T} <- Recs],
    {Lo, Hi} = {lists:min(Ts), lists:max(Ts)},
    W = max(1000, (Hi - Lo) div 40 + 1),
    Groups = lists:foldl(fun(R = #{ts_us := T}, M) ->
                                 maps:update_with((T - Lo) div W, fun(L) -> [R | L] end, [R], M)
                         end, #{}, Recs),
    [begin
         G = maps:get(K, Groups, []),
         Cs = lists:sort([C || #{outcome := converged, convergence_us := C} <- G,
                               is_integer(C)]),
         P99 = case Cs of
                   [] -> 0;
                   _ -> lists:nth(max(1, ceil(0.99 * length(Cs))), Cs)
               end,
         {(Lo + K * W - T0) / 1.0e6, length(G) / (W / 1.0e6), P99}
     end || K <- lists:seq(0, (Hi - Lo) div W)].

marks_table([], _) ->
    [];
marks_table(Marks, T0) ->
    ["<table class=\"marks\"><tr><th>time (s)</th><th>mark</th></tr>\n",
     [["<tr><td>", ?S:fmt_num((mark_time(M) - T0) / 1.0e6), "</td><td>", ?S:esc(mark_label(M)),
       "</td></tr>\n"] || M <- Marks],
     "</table>\n"].

note(Id, Text) ->
    ["<p class=\"empty\" data-chart=\"", Id, "\">", Text, "</p>\n"].

atom_label(A) when is_atom(A) -> atom_to_list(A);
atom_label(X) -> io_lib:format("~0tp", [X]).

%% @doc The page's stylesheet.
-spec css() -> iodata().
css() ->
    ":root{--fg:#1d2330;--bg:#ffffff;--muted:#5b6475;--grid:#e3e6ec;--axis:#8a93a5;"
    "--c0:#2f6fdb;--c1:#d9480f;--c2:#2b8a3e;--c3:#9c36b5;--c4:#e67700;--c5:#0b7285;"
    "--c6:#c2255c;--c7:#5f3dc4;--mark:#c92a2a;--bar:#2f6fdb}\n"
    "@media (prefers-color-scheme: dark){:root{--fg:#e6e9ef;--bg:#14171c;--muted:#9aa3b5;"
    "--grid:#2a2f38;--axis:#6b7384;--c0:#74a7ff;--c1:#ff8a4c;--c2:#5fd37a;--c3:#d38cf0;"
    "--c4:#ffc14d;--c5:#4fd1e0;--c6:#ff7aa8;--c7:#a98bff;--mark:#ff6b6b;--bar:#74a7ff}}\n"
    "@media print{:root{--fg:#000;--bg:#fff;--grid:#ddd}}\n"
    "body{font:14px/1.4 system-ui,sans-serif;color:var(--fg);background:var(--bg);"
    "margin:24px;max-width:1600px}\n"
    "h1{font-size:22px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid var(--grid)}\n"
    ".meta,.empty{color:var(--muted)}\n"
    "table{border-collapse:collapse;margin:8px 0 12px}td,th{padding:3px 10px;text-align:right;"
    "border-bottom:1px solid var(--grid)}th{color:var(--muted);font-weight:600}\n"
    ".charts{display:flex;flex-wrap:wrap;gap:12px}\n"
    ".lc-chart{max-width:100%;height:auto;font-size:11px}\n"
    ".lc-chart text{fill:var(--fg)}.lc-title{font-size:13px;font-weight:600}\n"
    ".lc-tick{fill:var(--muted)!important}.lc-label{fill:var(--muted)!important}\n"
    ".lc-axis{stroke:var(--axis)}.lc-grid{stroke:var(--grid)}\n"
    ".lc-line{fill:none;stroke-width:1.6}\n"
    ".lc-s0{stroke:var(--c0);fill:var(--c0)}.lc-s1{stroke:var(--c1);fill:var(--c1)}"
    ".lc-s2{stroke:var(--c2);fill:var(--c2)}.lc-s3{stroke:var(--c3);fill:var(--c3)}"
    ".lc-s4{stroke:var(--c4);fill:var(--c4)}.lc-s5{stroke:var(--c5);fill:var(--c5)}"
    ".lc-s6{stroke:var(--c6);fill:var(--c6)}.lc-s7{stroke:var(--c7);fill:var(--c7)}\n"
    "path.lc-line{fill:none}\n"
    ".lc-bar{fill:var(--bar);opacity:.8}.lc-cell{fill:var(--c0)}\n"
    ".lc-mark line{stroke:var(--mark);stroke-dasharray:4 3}.lc-mark text{fill:var(--mark)!important}\n"
    ".lc-pct line{stroke:var(--c4)}.lc-pct text{fill:var(--c4)!important}\n"
    ".lc-legend text{fill:var(--fg)}\n".

%% ===================================================================
%% Terminal
%% ===================================================================

%% @doc The terminal summary of one variable's data.
-spec format(data()) -> unicode:chardata().
format(#{var := Var, stats := S, divergence := Div, records := Recs}) ->
    Row = fun(K) -> io_lib:format("~12ts", [cell(K, maps:get(K, S, undefined))]) end,
    Keys = [updates, converged, pending, unconverged, p50, p99, p999, max],
    Conv = [C || #{outcome := converged, convergence_us := C} <- Recs, is_integer(C)],
    Totals = [lists:sum([maps:get(unseen, L, 0) || L <- maps:values(Ns)])
              || #{nodes := Ns} <- Div],
    [io_lib:format("~ts~n", [io_lib:format("~0tp", [Var])]),
     [io_lib:format("~12ts", [atom_to_list(K)]) || K <- Keys], "\n",
     [Row(K) || K <- Keys], "\n",
     io_lib:format("clock uncertainty ~ts~n",
                   [cell(clock_uncertainty_us, maps:get(clock_uncertainty_us, S, undefined))]),
     case Totals of
         [] -> [];
         _ -> io_lib:format("unseen over time  ~ts  (max ~b)~n",
                            [sparkline(Totals), lists:max(Totals)])
     end,
     text_histogram(Conv)].

%% @doc A sparkline of non-negative numbers (at most 60 characters; longer
%% series are averaged down).
-spec sparkline([number()]) -> unicode:chardata().
sparkline([]) ->
    "";
sparkline(Vs0) ->
    Vs = squeeze(Vs0, 60),
    Max = lists:max(Vs),
    [case Max of
         0 -> hd(?SPARK);
         _ -> lists:nth(1 + min(7, floor(V / Max * 7.999)), ?SPARK)
     end || V <- Vs].

squeeze(Vs, N) when length(Vs) =< N -> Vs;
squeeze(Vs, N) ->
    Len = length(Vs),
    T = list_to_tuple(Vs),
    [begin
         A = I * Len div N + 1,
         B = max(A, (I + 1) * Len div N),
         lists:sum([element(J, T) || J <- lists:seq(A, B)]) / (B - A + 1)
     end || I <- lists:seq(0, N - 1)].

text_histogram([]) ->
    "";
text_histogram(Conv) ->
    Bins = hist_bins(Conv),
    Max = lists:max([C || {_, _, C} <- Bins]),
    ["convergence time (recent updates):\n",
     [io_lib:format("  ~10ts ~-40ts ~b~n",
                    [?S:fmt_us(round(Lo)), lists:duplicate(max(1, round(C / Max * 40)), $#), C])
      || {Lo, _, C} <- Bins, C > 0]].
