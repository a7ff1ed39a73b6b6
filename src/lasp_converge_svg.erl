%% @doc Charts as inline SVG, for the HTML report, the sweep page and the
%% dashboard.
%%
%% Kinds: `line/2' (series of points, straight, as steps or as dots, on
%% linear or logarithmic axes, optionally with the diagonal `y = x' and its
%% two regions), `bars/2' (a histogram of bins), `heatmap/2' (rows of
%% counts over bins of the x axis: latency bins, or time for the per-node
%% swimlanes), `grid/2' (a value per cell of two categorical axes, as in a
%% sweep of rate by interval), `lane/2' (short labels of events above a
%% time axis) and `bands/2' (rows of labelled segments over time: settings
%% in force).
%%
%% Every chart is one `<svg>' element that draws itself with the page's CSS
%% classes (`lc-axis', `lc-grid', `lc-s0'..`lc-s7', ...), so one stylesheet
%% gives it a light and a dark look. Its layout is fixed in its own
%% coordinates (a `viewBox'), so it scales with the page without reflowing:
%% the title at the top left, the plot box, the axis labels below and to
%% the left, and the legend (series, marked values, colour scale) in a
%% margin of its own on the right. Text that could be long is shortened to
%% the room it has, with the whole text in a `<title>' (shown on hover).
%% Charts given the same `width', `left', `right' and `x_range' share their
%% x axis pixel for pixel, so they can be stacked on one time axis.
%%
%% Each chart carries `data-' attributes with what it drew (`data-chart',
%% per series `data-label' and `data-n', marked values such as
%% `data-value'), so a test can check the drawing against the data.
%%
%% Long series are thinned before drawing: `downsample/2' keeps, per
%% column of pixels, the first, lowest, highest and last point, so peaks
%% survive and a million points draw as a few thousand.
%%
%% Axes: `ticks/3' picks 1-2-5 steps on a linear axis; `log_ticks/2' powers
%% of ten on a log axis. Formatters for microseconds (`fmt_us/1') and
%% seconds (`fmt_s/1') label them.
-module(lasp_converge_svg).

-export([line/2, bars/2, heatmap/2, grid/2, lane/2, bands/2, downsample/2, ticks/3,
         log_ticks/2, fmt_us/1, fmt_s/1, fmt_num/1, esc/1, short/2, text_width/1, to_text/1]).

-type point() :: {number(), number()}.
-type series() :: #{label := iodata(), points := [point()], class => iodata(),
                    dots => boolean()}.
-type scale() :: linear | log.
-type opts() :: #{id => iodata(), title => iodata(),
                  x_label => iodata(), y_label => iodata(),
                  x_scale => scale(), y_scale => scale(),
                  x_format => fun((number()) -> iodata()),
                  y_format => fun((number()) -> iodata()),
                  x_range => {number(), number()}, y_range => {number(), number()},
                  width => pos_integer(), height => pos_integer(),
                  left => pos_integer(), right => non_neg_integer(),
                  step => boolean(), step_series => [iodata()],
                  max_points => pos_integer(),
                  diagonal => boolean(),
                  scale_label => iodata(),
                  scale_format => fun((number()) -> iodata()),
                  series_label => iodata(),
                  cell_format => fun((number()) -> iodata()),
                  color_scale => scale(),
                  outline => [{pos_integer(), pos_integer()}],
                  outline_label => iodata(),
                  x_name => iodata(), y_name => iodata(),
                  rows => pos_integer(),
                  vlines => [{number(), iodata(), iodata()}],
                  hlines => [{number(), iodata(), iodata()}]}.
-export_type([point/0, series/0, opts/0]).

-define(W, 760).
-define(H, 260).
-define(ML, 78).
-define(MR, 160).
-define(MT, 34).
-define(MB, 46).
%% Estimated advance of a character at the charts' 11 px (DejaVu Sans, the
%% widest of the usual sans fonts, is about 6.4 px on average).
-define(CHAR, 6.8).
-define(TITLE_CHAR, 8.4).
%% How many steps the colour scales have.
-define(STEPS, 5).

%% ===================================================================
%% Line charts
%% ===================================================================

%% @doc A line chart of `Series'. With `step => true' each series holds its
%% value until the next point (counts over time); `step_series' names the
%% series drawn so when the others are not; a series with `dots => true' is
%% drawn as dots. `vlines' are vertical markers `{X, Label, Class}': thin
%% dashed lines with their label on hover; those of class `lc-pct' (p50,
%% p99, ...) are also named in the legend. `hlines' are horizontal ones.
%% `diagonal => true' (for equal log axes) draws `y = x' and names the
%% regions on either side. Points outside a log axis's positive range are
%% left out.
-spec line([series()], opts()) -> iodata().
line(Series0, Opts) ->
    XS = maps:get(x_scale, Opts, linear),
    YS = maps:get(y_scale, Opts, linear),
    Max = maps:get(max_points, Opts, 1500),
    Series = [S#{points := downsample(drawable(XS, YS, Ps), Max), n => length(Ps)}
              || S = #{points := Ps} <- Series0],
    All = lists:append([Ps || #{points := Ps} <- Series]),
    VX = [X || {X, _, _} <- maps:get(vlines, Opts, [])],
    HY = [Y || {Y, _, _} <- maps:get(hlines, Opts, [])],
    XR = range(XS, maps:get(x_range, Opts, undefined), [X || {X, _} <- All] ++ VX),
    YR = range(YS, maps:get(y_range, Opts, undefined),
               [Y || {_, Y} <- All] ++ HY ++ [0 || YS =:= linear]),
    Frame = frame(Opts),
    {Fx, Fy} = mappers(Frame, XS, XR, YS, YR),
    Step = maps:get(step, Opts, false),
    Steps = [unicode:characters_to_binary(L) || L <- maps:get(step_series, Opts, [])],
    Paths = [series_path(I, S, Fx, Fy, Step orelse lists:member(unicode:characters_to_binary(L), Steps),
                         XR, XS)
             || {I, S = #{label := L}} <- enumerate(Series)],
    Pct = [{dash, "lc-pct", [L, " ", (maps:get(x_format, Opts, fun fmt_num/1))(X)]}
           || {X, L, "lc-pct"} <- maps:get(vlines, Opts, []), in(XS, XR, X)],
    Items = [{swatch, series_class(I, S), L} || {I, S = #{label := L}} <- enumerate(Series),
                                                not string:is_empty(L)]
        ++ Pct,
    svg(Opts, Frame, "line",
        [axes(Frame, XS, XR, YS, YR, Opts),
         case maps:get(diagonal, Opts, false) of
             true -> diagonal(Frame, Fx, Fy, XR, YR);
             false -> []
         end,
         Paths,
         vlines(Frame, Fx, XS, XR, Opts),
         [hline(Frame, Fy(Y), L, C, Y) || {Y, L, C} <- maps:get(hlines, Opts, []), in(YS, YR, Y)],
         legend(Frame, Items)]).

drawable(XS, YS, Ps) ->
    [{X, Y} || {X, Y} <- Ps, is_number(X), is_number(Y),
               XS =:= linear orelse X > 0, YS =:= linear orelse Y > 0].

series_class(I, S) ->
    maps:get(class, S, ["lc-s", integer_to_list(I rem 8)]).

series_path(I, #{label := Label, points := Ps, n := N} = S, Fx, Fy, Step, {_, X1}, XS) ->
    Class = series_class(I, S),
    case maps:get(dots, S, false) of
        true ->
            ["<g class=\"lc-dots ", Class, "\" data-label=\"", esc(Label), "\" data-n=\"",
             integer_to_list(N), "\">",
             [io_lib:format("<circle cx=\"~.1f\" cy=\"~.1f\" r=\"4\"><title>~ts</title></circle>",
                            [Fx(X), Fy(Y), esc(maps:get(tip, S, Label))])
              || {X, Y} <- Ps],
             "</g>\n"];
        false ->
            Pts = case Step of
                      true -> steps(Ps, X1, XS);
                      false -> Ps
                  end,
            D = case Pts of
                    [] -> "";
                    [{X, Y}] -> io_lib:format("M~.1f ~.1fh0.01", [Fx(X), Fy(Y)]);
                    [{X0, Y0} | Rest] ->
                        [io_lib:format("M~.1f ~.1f", [Fx(X0), Fy(Y0)]),
                         [io_lib:format("L~.1f ~.1f", [Fx(X), Fy(Y)]) || {X, Y} <- Rest]]
                end,
            ["<path class=\"lc-line ", Class, "\" data-label=\"", esc(Label),
             "\" data-n=\"", integer_to_list(N), "\" d=\"", D, "\"/>\n"]
    end.

%% Hold each value until the next point; the last one to the right edge.
steps([], _, _) -> [];
steps([{X, Y}], X1, _) -> [{X, Y}, {max(X, X1), Y}];
steps([{X, Y}, {X2, _} = Next | Rest], X1, XS) ->
    [{X, Y}, {X2, Y} | steps([Next | Rest], X1, XS)].

%% The line y = x across the plot, the region above it shaded, and each
%% region named in its corner.
diagonal(Frame, Fx, Fy, {X0, X1}, {Y0, Y1}) ->
    {L, T, R, B} = plot_box(Frame),
    Lo = max(X0, Y0),
    Hi = min(X1, Y1),
    case Hi > Lo of
        false ->
            [];
        true ->
            {Ax, Ay, Bx, By} = {Fx(Lo), Fy(Lo), Fx(Hi), Fy(Hi)},
            [io_lib:format("<path class=\"lc-region\" d=\"M~.1f ~.1fL~.1f ~.1fL~b ~bL~b ~bZ\">"
                           "<title>convergence slower than the time between updates</title>"
                           "</path>\n", [Ax, Ay, Bx, By, L, T, L, B]),
             io_lib:format("<line class=\"lc-diag\" data-diagonal=\"y=x\" x1=\"~.1f\" y1=\"~.1f\""
                           " x2=\"~.1f\" y2=\"~.1f\"/>\n", [Ax, Ay, Bx, By]),
             io_lib:format("<text class=\"lc-region-label\" x=\"~b\" y=\"~b\">changes faster than it"
                           " converges</text>\n", [L + 6, T + 14]),
             io_lib:format("<text class=\"lc-region-label\" x=\"~b\" y=\"~b\" text-anchor=\"end\">"
                           "converges faster than it changes</text>\n", [R - 6, B - 8])]
    end.

%% ===================================================================
%% Histograms and heatmaps
%% ===================================================================

%% @doc A histogram: `Bins' are `{Lo, Hi, Count}' on the x axis (log when
%% `x_scale => log'); `vlines' mark values (p50, p99, ...).
-spec bars([{number(), number(), non_neg_integer()}], opts()) -> iodata().
bars(Bins0, Opts) ->
    XS = maps:get(x_scale, Opts, linear),
    Bins = [B || {Lo, Hi, _} = B <- Bins0, XS =:= linear orelse Lo > 0, Hi > Lo],
    XR = range(XS, maps:get(x_range, Opts, undefined),
               lists:append([[Lo, Hi] || {Lo, Hi, _} <- Bins])
               ++ [X || {X, _, _} <- maps:get(vlines, Opts, [])]),
    YR = range(linear, undefined, [0 | [C || {_, _, C} <- Bins]]),
    Frame = frame(Opts),
    {Fx, Fy} = mappers(Frame, XS, XR, linear, YR),
    {_, _, _, Y0} = plot_box(Frame),
    Rects = [io_lib:format("<rect class=\"lc-bar\" data-lo=\"~ts\" data-hi=\"~ts\" data-count=\"~b\""
                           " x=\"~.1f\" y=\"~.1f\" width=\"~.1f\" height=\"~.1f\"/>\n",
                           [fmt_num(Lo), fmt_num(Hi), C, Fx(Lo), Fy(C),
                            max(0.5, Fx(Hi) - Fx(Lo) - 1), Y0 - Fy(C)])
             || {Lo, Hi, C} <- Bins, C > 0],
    Pct = [{dash, "lc-pct", [L, " ", (maps:get(x_format, Opts, fun fmt_num/1))(X)]}
           || {X, L, "lc-pct"} <- maps:get(vlines, Opts, []), in(XS, XR, X)],
    svg(Opts#{y_label => maps:get(y_label, Opts, "updates")}, Frame, "bars",
        [axes(Frame, XS, XR, linear, YR,
              Opts#{y_format => fun fmt_num/1, y_label => maps:get(y_label, Opts, "updates")}),
         ["<g data-bins=\"", integer_to_list(length(Bins)), "\">", Rects, "</g>"],
         vlines(Frame, Fx, XS, XR, Opts),
         legend(Frame, [{swatch, "lc-bar", maps:get(series_label, Opts, "updates")} | Pct])]).

%% @doc A heatmap: one row per label, one column per `{Lo, Hi}' bin of the
%% x axis (log when `x_scale => log'; linear, e.g. time, with `x_range' to
%% share another chart's axis); `Counts' is a list (one per row) of lists
%% (one per column). Darker is more; the colour scale, with
%% `scale_label' as its caption, is the legend. `vlines' as in `line/2'.
-spec heatmap({[iodata()], [{number(), number()}], [[non_neg_integer()]]}, opts()) -> iodata().
heatmap({Rows, Cols, Counts}, Opts) ->
    XS = maps:get(x_scale, Opts, linear),
    NR = max(1, length(Rows)),
    Frame0 = frame(Opts),
    %% Room on the left for the longest row label, unless given.
    Left = case maps:find(left, Opts) of
               {ok, L0} -> L0;
               error -> min(300, max(?ML, label_room(Rows)))
           end,
    %% Tall enough for a row per label and for the colour scale.
    Frame = Frame0#{height => lists:max([maps:get(height, Frame0), ?MT + ?MB + 22 * NR,
                                         ?MT + 34 + 16 * ?STEPS]),
                    left => Left},
    XR = range(XS, maps:get(x_range, Opts, undefined),
               lists:append([[Lo, Hi] || {Lo, Hi} <- Cols])),
    {Fx, _} = mappers(Frame, XS, XR, linear, {0, 1}),
    {_, Top, _, Bottom} = plot_box(Frame),
    RowH = (Bottom - Top) / NR,
    Peak = lists:max([1 | lists:append(Counts)]),
    Cells = [[io_lib:format("<rect class=\"lc-cell\" data-row=\"~ts\" data-count=\"~b\" x=\"~.1f\""
                            " y=\"~.1f\" width=\"~.1f\" height=\"~.1f\" fill-opacity=\"~.3f\">"
                            "<title>~ts: ~b</title></rect>\n",
                            [esc(R), C, Fx(Lo), Top + (I - 1) * RowH,
                             max(0.5, Fx(Hi) - Fx(Lo) - 0.5), max(1.0, RowH - 2),
                             shade(C, Peak), esc(R), C])
              || {{Lo, Hi}, C} <- lists:zip(Cols, Cs), in(XS, XR, Lo)]
             || {I, R, Cs} <- lists:zip3(lists:seq(1, length(Rows)), Rows, Counts)],
    Labels = [io_lib:format("<text class=\"lc-tick lc-row\" x=\"~.1f\" y=\"~.1f\" text-anchor=\"end\">"
                            "~ts<title>~ts</title></text>\n",
                            [Left - 6.0, Top + (I - 0.5) * RowH + 4, esc(short(R, 24)), esc(R)])
              || {I, R} <- enumerate1(Rows)],
    svg(Opts, Frame, "heatmap",
        [x_axis(Frame, XS, XR, Opts),
         y_label(Frame, Opts),
         ["<g data-rows=\"", integer_to_list(length(Rows)), "\">", Cells, "</g>"], Labels,
         vlines(Frame, Fx, XS, XR, Opts),
         scale_legend(Frame, 0, Peak, maps:get(scale_label, Opts, "count"), fun fmt_num/1)]).

%% The room row labels of up to 24 characters take, and the y label's.
label_room(Rows) ->
    34 + round(?CHAR * lists:max([0 | [min(24, string:length(text(R))) || R <- Rows]])).

shade(C, _) when C =< 0 -> 0.0;
shade(C, Peak) -> 0.12 + 0.88 * min(1.0, C / Peak).

%% The colour scale, in the legend margin: `?STEPS' swatches from the
%% lowest value to the highest, each with the value it stands for.
scale_legend(#{width := W, right := Rm}, Lo, Hi, Caption, Fmt) ->
    X = W - Rm + 14,
    %% Counts: whole numbers only, each once.
    Vals = lists:usort([round(Lo + (Hi - Lo) * I / (?STEPS - 1)) || I <- lists:seq(0, ?STEPS - 1)]),
    Cap = short(Caption, legend_chars(Rm)),
    ["<g class=\"lc-scale\" data-lo=\"", esc(fmt_num(Lo)), "\" data-hi=\"", esc(fmt_num(Hi)), "\">",
     io_lib:format("<text class=\"lc-legend-title\" x=\"~b\" y=\"~b\">~ts<title>~ts</title></text>",
                   [X, ?MT + 8, esc(Cap), esc(Caption)]),
     [io_lib:format("<rect class=\"lc-cell\" x=\"~b\" y=\"~b\" width=\"14\" height=\"12\""
                    " fill-opacity=\"~.3f\" stroke=\"currentColor\" stroke-opacity=\"0.25\"/>"
                    "<text x=\"~b\" y=\"~b\">~ts</text>",
                    [X, ?MT + 16 + 16 * I, case I of 0 -> 0.0; _ -> shade(V, Hi) end,
                     X + 20, ?MT + 26 + 16 * I, esc(Fmt(V))])
      || {I, V} <- enumerate(Vals)],
     "</g>\n"].

%% @doc A grid of values over two categorical axes: `{XCats, YCats, Values}'
%% with `Values' one list per y category (bottom row first) of one number or
%% `undefined' per x category. Each cell is shaded by its value (on a log
%% scale with `color_scale => log') and shows it (`cell_format'); cells in
%% `outline' (`[{XIndex, YIndex}]', 1-based) are outlined. The colour scale
%% is the legend.
-spec grid({[iodata()], [iodata()], [[number() | undefined]]}, opts()) -> iodata().
grid({XCats, YCats, Values}, Opts) ->
    Frame0 = frame(Opts),
    NX = max(1, length(XCats)),
    NY = max(1, length(YCats)),
    Frame = Frame0#{height => max(maps:get(height, Frame0), ?MT + ?MB + 26 * NY)},
    {L, T, R, B} = plot_box(Frame),
    CW = (R - L) / NX,
    CH = (B - T) / NY,
    Fmt = maps:get(cell_format, Opts, fun fmt_num/1),
    Vs = [V || Row <- Values, V <- Row, is_number(V)],
    CS = maps:get(color_scale, Opts, linear),
    {Lo, Hi} = case [V || V <- Vs, CS =:= linear orelse V > 0] of
                   [] -> {0, 1};
                   Pos -> {lists:min(Pos), lists:max(Pos)}
               end,
    Level = fun(V) when not is_number(V) -> 0.0;
               (V) when CS =:= log, V =< 0 -> 0.12;
               (_) when Hi == Lo -> 0.6;
               (V) when CS =:= log ->
                    0.12 + 0.88 * (math:log(V) - math:log(Lo)) / (math:log(Hi) - math:log(Lo));
               (V) -> 0.12 + 0.88 * (V - Lo) / (Hi - Lo)
            end,
    Outline = maps:get(outline, Opts, []),
    Cells = [begin
                 X = L + (XI - 1) * CW,
                 Y = B - YI * CH,
                 Op = Level(V),
                 Txt = case V of
                           undefined -> "–";
                           _ -> Fmt(V)
                       end,
                 Tip = [maps:get(x_name, Opts, "x"), " ", XC, ", ", maps:get(y_name, Opts, "y"), " ",
                        YC, ": ", Txt],
                 [io_lib:format("<rect class=\"lc-cell~ts\" data-x=\"~ts\" data-y=\"~ts\" data-value=\"~ts\""
                                " x=\"~.1f\" y=\"~.1f\" width=\"~.1f\" height=\"~.1f\" fill-opacity=\"~.3f\">"
                                "<title>~ts</title></rect>",
                                [case lists:member({XI, YI}, Outline) of
                                     true -> " lc-frontier";
                                     false -> ""
                                 end, esc(XC), esc(YC),
                                 case V of undefined -> ""; _ -> esc(fmt_num(V)) end,
                                 X + 1, Y + 1, CW - 2, CH - 2, Op, esc(Tip)]),
                  case text_width(Txt) < CW - 4 andalso CH >= 14 of
                      true ->
                          io_lib:format("<text class=\"lc-cell-text~ts\" x=\"~.1f\" y=\"~.1f\""
                                        " text-anchor=\"middle\">~ts</text>\n",
                                        [case Op > 0.55 of true -> " lc-on-dark"; false -> "" end,
                                         X + CW / 2, Y + CH / 2 + 4, esc(Txt)]);
                      false -> "\n"
                  end]
             end || {YI, YC, Row} <- lists:zip3(lists:seq(1, length(YCats)), YCats, Values),
                    {XI, XC, V} <- lists:zip3(lists:seq(1, length(XCats)), XCats,
                                              pad_row(Row, length(XCats)))],
    XTicks = [io_lib:format("<text class=\"lc-tick\" x=\"~.1f\" y=\"~b\" text-anchor=\"middle\">~ts</text>\n",
                            [L + (I - 0.5) * CW, B + 18, esc(C)]) || {I, C} <- enumerate1(XCats)],
    YTicks = [io_lib:format("<text class=\"lc-tick\" x=\"~b\" y=\"~.1f\" text-anchor=\"end\">~ts</text>\n",
                            [L - 6, B - (I - 0.5) * CH + 4, esc(C)]) || {I, C} <- enumerate1(YCats)],
    LegendFmt = maps:get(scale_format, Opts, Fmt),
    svg(Opts, Frame, "grid",
        [Cells, XTicks, YTicks,
         io_lib:format("<text class=\"lc-label\" x=\"~b\" y=\"~b\" text-anchor=\"middle\">~ts</text>\n",
                       [round((L + R) / 2), B + 38, esc(maps:get(x_label, Opts, ""))]),
         y_label(Frame, Opts),
         case Vs of
             [] -> [];
             _ -> scale_legend_values(Frame, Lo, Hi, CS, maps:get(scale_label, Opts, "value"),
                                      LegendFmt, Level)
         end,
         case Outline of
             [] -> [];
             _ -> legend_at(Frame, ?MT + 30 + 16 * ?STEPS,
                            [{frontier, "lc-frontier", maps:get(outline_label, Opts, "outlined")}])
         end]).

pad_row(Row, N) when length(Row) >= N -> lists:sublist(Row, N);
pad_row(Row, N) -> Row ++ lists:duplicate(N - length(Row), undefined).

scale_legend_values(#{width := W, right := Rm}, Lo, Hi, CS, Caption, Fmt, Level) ->
    X = W - Rm + 14,
    Vals = case CS of
               log when Lo > 0 ->
                   [math:exp(math:log(Lo) + (math:log(Hi) - math:log(Lo)) * I / (?STEPS - 1))
                    || I <- lists:seq(0, ?STEPS - 1)];
               _ -> [Lo + (Hi - Lo) * I / (?STEPS - 1) || I <- lists:seq(0, ?STEPS - 1)]
           end,
    ["<g class=\"lc-scale\">",
     io_lib:format("<text class=\"lc-legend-title\" x=\"~b\" y=\"~b\">~ts<title>~ts</title></text>",
                   [X, ?MT + 8, esc(short(Caption, legend_chars(Rm))), esc(Caption)]),
     [io_lib:format("<rect class=\"lc-cell\" x=\"~b\" y=\"~b\" width=\"14\" height=\"12\""
                    " fill-opacity=\"~.3f\"/><text x=\"~b\" y=\"~b\">~ts</text>",
                    [X, ?MT + 16 + 16 * I, Level(V), X + 20, ?MT + 26 + 16 * I, esc(Fmt(V))])
      || {I, V} <- enumerate(Vals)],
     "</g>\n"].

%% @doc A lane of event labels over a time axis: `Marks' are `{X, Short,
%% Full}'; each gets a tick at its time and its short label, on the first
%% of up to `rows' (default 4) rows where it does not run into another, the
%% full text on hover. Labels that find no room keep their tick (and
%% hover). Share `width', `left', `right' and `x_range' with the charts
%% below.
-spec lane([{number(), iodata(), iodata()}], opts()) -> iodata().
lane(Marks0, Opts) ->
    MaxRows = maps:get(rows, Opts, 4),
    XR = range(linear, maps:get(x_range, Opts, undefined), [X || {X, _, _} <- Marks0]),
    Marks = lists:keysort(1, [M || {X, _, _} = M <- Marks0, in(linear, XR, X)]),
    Frame0 = frame(Opts),
    W = maps:get(width, Frame0),
    Place = place(Marks, Frame0, XR, MaxRows),
    Rows = lists:max([1 | [Row + 1 || {_, _, _, {Row, _, _}} <- Place]]),
    H = 38 + 16 * Rows,
    Frame = Frame0#{height => H},
    {Fx, _} = mappers(Frame#{height => 2 * H}, linear, XR, linear, {0, 1}),
    {L, _, R, _} = plot_box(Frame),
    Body = [begin
                Px = Fx(X),
                case P of
                    none ->
                        io_lib:format("<g class=\"lc-lane-mark\" data-label=\"~ts\"><line x1=\"~.1f\""
                                      " y1=\"~b\" x2=\"~.1f\" y2=\"~b\"/><title>~ts</title></g>\n",
                                      [esc(Full), Px, H - 12, Px, H, esc(Full)]);
                    {Row, Anchor, Tx} ->
                        Y = 34 + 16 * Row,
                        io_lib:format("<g class=\"lc-lane-mark\" data-label=\"~ts\"><line x1=\"~.1f\""
                                      " y1=\"~b\" x2=\"~.1f\" y2=\"~b\"/><text x=\"~.1f\" y=\"~b\""
                                      " text-anchor=\"~ts\">~ts</text><title>~ts</title></g>\n",
                                      [esc(Full), Px, Y - 10, Px, H, Tx, Y, Anchor, esc(Short),
                                       esc(Full)])
                end
            end || {X, Short, Full, P} <- Place],
    Id = maps:get(id, Opts, "lane"),
    ["<svg class=\"lc-chart lc-lane\" xmlns=\"http://www.w3.org/2000/svg\" data-chart=\"", esc(Id),
     "\" data-kind=\"lane\" data-marks=\"", integer_to_list(length(Marks)), "\" viewBox=\"0 0 ",
     integer_to_list(W), " ", integer_to_list(H), "\" width=\"", integer_to_list(W),
     "\" height=\"", integer_to_list(H), "\" role=\"img\">\n<title>",
     esc(maps:get(title, Opts, "marks")), "</title>\n",
     io_lib:format("<text class=\"lc-title\" x=\"~b\" y=\"14\">~ts</text>\n",
                   [L, esc(maps:get(title, Opts, "marks"))]),
     io_lib:format("<line class=\"lc-axis\" x1=\"~b\" y1=\"~b\" x2=\"~b\" y2=\"~b\"/>\n",
                   [L, H - 1, R, H - 1]),
     Body, "</svg>\n"].

%% Greedy rows: a label starts 3 px right of its tick (or ends 3 px left of
%% it near the right edge) and takes the first row where it clears the
%% last label by 8 px.
place(Marks, Frame, XR, MaxRows) ->
    {Fx, _} = mappers(Frame, linear, XR, linear, {0, 1}),
    W = maps:get(width, Frame),
    {Placed, _} =
        lists:mapfoldl(
          fun({X, Short, Full}, Ends) ->
                  Px = Fx(X),
                  Wd = text_width(Short),
                  {Anchor, Lo, Hi, Tx} = case Px + 3 + Wd =< W - 4 of
                                             true -> {"start", Px + 3, Px + 3 + Wd, Px + 3};
                                             false -> {"end", Px - 3 - Wd, Px - 3, Px - 3}
                                         end,
                  Free = [Row || Row <- lists:seq(0, MaxRows - 1),
                                 maps:get(Row, Ends, -1.0e9) + 8 =< Lo, Lo >= 2],
                  case Free of
                      [Row | _] -> {{X, Short, Full, {Row, Anchor, Tx}}, Ends#{Row => Hi}};
                      [] -> {{X, Short, Full, none}, Ends}
                  end
          end, #{}, Marks),
    Placed.

%% @doc Rows of labelled segments over a time axis (the settings in force):
%% `Rows' are `{Label, [{X0, X1, Text}]}'. A segment shows its text when it
%% fits, and always on hover. Share `width', `left', `right' and `x_range'
%% with the charts above.
-spec bands([{iodata(), [{number(), number(), iodata()}]}], opts()) -> iodata().
bands(Rows, Opts) ->
    NR = max(1, length(Rows)),
    Frame0 = frame(Opts),
    Frame = Frame0#{height => ?MT + ?MB + 24 * NR},
    XR = range(linear, maps:get(x_range, Opts, undefined),
               lists:append([[A, B] || {_, Segs} <- Rows, {A, B, _} <- Segs])),
    {Fx, _} = mappers(Frame, linear, XR, linear, {0, 1}),
    {L, Top, _, _} = plot_box(Frame),
    Body = [[io_lib:format("<text class=\"lc-tick lc-row\" x=\"~b\" y=\"~b\" text-anchor=\"end\">"
                           "~ts</text>\n", [L - 6, Top + 24 * (I - 1) + 16, esc(Label)]),
             [begin
                  {A, B} = {Fx(max(X0, element(1, XR))), Fx(min(X1, element(2, XR)))},
                  Wd = B - A,
                  ["<g class=\"lc-band\" data-row=\"", esc(Label), "\" data-text=\"", esc(Text), "\">",
                   io_lib:format("<rect class=\"lc-band-~b\" x=\"~.1f\" y=\"~b\" width=\"~.1f\""
                                 " height=\"20\"/>", [J rem 2, A, Top + 24 * (I - 1) + 2, max(0.5, Wd - 1)]),
                   case text_width(Text) + 6 < Wd of
                       true ->
                           io_lib:format("<text x=\"~.1f\" y=\"~b\">~ts</text>",
                                         [A + 4, Top + 24 * (I - 1) + 16, esc(Text)]);
                       false -> []
                   end,
                   "<title>", esc(Label), ": ", esc(Text), "</title></g>\n"]
              end || {J, {X0, X1, Text}} <- enumerate(Segs), X1 > X0]]
            || {I, {Label, Segs}} <- enumerate1(Rows)],
    svg(Opts, Frame, "bands",
        [x_axis(Frame, linear, XR, Opts), y_label(Frame, Opts), Body]).
%% ===================================================================
%% Scales, ticks, thinning
%% ===================================================================

%% @doc Thin `Points' (sorted by x) to about `Max': per column (of `Max div
%% 4' over the x range) the first, lowest, highest and last point.
-spec downsample([point()], pos_integer()) -> [point()].
downsample(Points, Max) when length(Points) =< Max ->
    Points;
downsample(Points, Max) ->
    Xs = [X || {X, _} <- Points],
    {X0, X1} = {lists:min(Xs), lists:max(Xs)},
    Cols = max(1, Max div 4),
    Width = case X1 - X0 of D when D == 0 -> 1; D -> D end,
    Col = fun(X) -> min(Cols - 1, trunc((X - X0) / Width * Cols)) end,
    bucket(Points, Col, undefined, []).

bucket([], _, undefined, Acc) ->
    lists:reverse(Acc);
bucket([], _, {_, Ps}, Acc) ->
    lists:reverse(lists:reverse(keep(lists:reverse(Ps)), Acc));
bucket([{X, _} = P | Rest], Col, Cur, Acc) ->
    C = Col(X),
    case Cur of
        {C, Ps} -> bucket(Rest, Col, {C, [P | Ps]}, Acc);
        undefined -> bucket(Rest, Col, {C, [P]}, Acc);
        {_, Ps} -> bucket(Rest, Col, {C, [P]}, lists:reverse(keep(lists:reverse(Ps)), Acc))
    end.

%% First, lowest, highest, last, in x order, without repeats.
keep([P]) -> [P];
keep(Ps) ->
    First = hd(Ps),
    Last = lists:last(Ps),
    Lo = lists:foldl(fun({_, Y} = P, {_, Ym}) when Y < Ym -> P; (_, M) -> M end, First, Ps),
    Hi = lists:foldl(fun({_, Y} = P, {_, Ym}) when Y > Ym -> P; (_, M) -> M end, First, Ps),
    dedup(lists:sort(fun({A, _}, {B, _}) -> A =< B end, [First, Lo, Hi, Last])).

dedup([A, A | T]) -> dedup([A | T]);
dedup([A | T]) -> [A | dedup(T)];
dedup([]) -> [].

%% @doc About `N' round ticks (steps of 1, 2 or 5 times a power of ten)
%% covering `[Lo, Hi]'.
-spec ticks(number(), number(), pos_integer()) -> [number()].
ticks(Lo, Hi, _N) when Hi =< Lo ->
    [Lo];
ticks(Lo, Hi, N) ->
    Raw = (Hi - Lo) / max(1, N),
    P = math:pow(10, math:floor(math:log10(Raw))),
    Step = hd([S * P || S <- [1, 2, 5, 10], S * P >= Raw]),
    First = math:ceil(Lo / Step - 1.0e-9) * Step,
    Count = trunc((Hi - First) / Step + 1.0e-9),
    [clean(First + I * Step) || I <- lists:seq(0, Count)].

clean(X) when abs(X - round(X)) < 1.0e-9 -> round(X);
clean(X) -> X.

%% @doc The powers of ten within `[Lo, Hi]' (both > 0), at least the two
%% around the range.
-spec log_ticks(number(), number()) -> [number()].
log_ticks(Lo, Hi) ->
    E0 = floor(math:log10(Lo) + 1.0e-9),
    E1 = ceil(math:log10(Hi) - 1.0e-9),
    [pow10(E) || E <- lists:seq(E0, max(E0, E1))].

pow10(E) when E >= 0 -> round(math:pow(10, E));
pow10(E) -> math:pow(10, E).

range(_, {Lo, Hi}, _) ->
    {Lo, Hi};
range(linear, undefined, []) ->
    {0, 1};
range(linear, undefined, Vs) ->
    {Lo, Hi} = {lists:min(Vs), lists:max(Vs)},
    case Hi - Lo of
        D when D == 0, Lo >= 0 -> {0, Hi + 1};
        D when D == 0 -> {Lo - 1, Hi + 1};
        D -> {Lo, Hi + D * 0.04}
    end;
range(log, undefined, Vs0) ->
    case [V || V <- Vs0, is_number(V), V > 0] of
        [] -> {1, 10};
        Vs ->
            Lo = pow10(floor(math:log10(lists:min(Vs)) + 1.0e-9)),
            Hi = pow10(ceil(math:log10(lists:max(Vs)) - 1.0e-9)),
            {Lo, case Hi =< Lo of true -> Lo * 10; false -> Hi end}
    end.

in(linear, {Lo, Hi}, X) -> X >= Lo andalso X =< Hi;
in(log, {Lo, Hi}, X) -> X > 0 andalso X >= Lo andalso X =< Hi.

mappers(Frame, XS, XR, YS, YR) ->
    {L, T, R, B} = plot_box(Frame),
    {fun(X) -> L + (R - L) * frac(XS, XR, X) end,
     fun(Y) -> B - (B - T) * frac(YS, YR, Y) end}.

frac(_, {Lo, Hi}, _) when Hi == Lo -> 0.5;
frac(linear, {Lo, Hi}, V) -> (V - Lo) / (Hi - Lo);
frac(log, {Lo, Hi}, V) -> (math:log10(V) - math:log10(Lo)) / (math:log10(Hi) - math:log10(Lo)).

%% ===================================================================
%% Frame, axes, markers, legend
%% ===================================================================

frame(Opts) ->
    #{width => maps:get(width, Opts, ?W), height => maps:get(height, Opts, ?H),
      left => maps:get(left, Opts, ?ML), right => maps:get(right, Opts, ?MR)}.

plot_box(#{width := W, height := H, left := L, right := Rm}) ->
    {L, ?MT, W - Rm, H - ?MB}.

svg(Opts, Frame = #{width := W, height := H}, Kind, Body) ->
    Id = maps:get(id, Opts, Kind),
    Title = maps:get(title, Opts, ""),
    %% The title may use the whole width.
    Shown = short(Title, max(10, trunc((W - maps:get(left, Frame) - 8) / ?TITLE_CHAR))),
    ["<svg class=\"lc-chart\" xmlns=\"http://www.w3.org/2000/svg\" data-chart=\"", esc(Id),
     "\" data-kind=\"", Kind, "\" viewBox=\"0 0 ", integer_to_list(W), " ", integer_to_list(H),
     "\" width=\"", integer_to_list(W), "\" height=\"", integer_to_list(H), "\" role=\"img\">\n",
     "<title>", esc(case Title of "" -> Id; _ -> Title end), "</title>\n",
     "<text class=\"lc-title\" x=\"", integer_to_list(maps:get(left, Frame)), "\" y=\"20\">",
     esc(Shown), "</text>\n",
     Body, "</svg>\n"].

axes(Frame, XS, XR, YS, YR, Opts) ->
    [x_axis(Frame, XS, XR, Opts), y_axis(Frame, YS, YR, Opts)].

x_axis(Frame, XS, {Lo, Hi} = XR, Opts) ->
    {L, T, R, B} = plot_box(Frame),
    Fmt = maps:get(x_format, Opts, fun fmt_num/1),
    Ticks0 = case XS of
                 linear -> ticks(Lo, Hi, max(2, min(6, (R - L) div 90)));
                 log -> log_ticks(Lo, Hi)
             end,
    {Fx, _} = mappers(Frame, XS, XR, linear, {0, 1}),
    Ticks = spaced([X || X <- Ticks0, in(XS, XR, X)], Fx, Fmt),
    [io_lib:format("<line class=\"lc-axis\" x1=\"~b\" y1=\"~b\" x2=\"~b\" y2=\"~b\"/>\n",
                   [L, B, R, B]),
     [io_lib:format("<line class=\"lc-grid\" x1=\"~.1f\" y1=\"~b\" x2=\"~.1f\" y2=\"~b\"/>"
                    "<text class=\"lc-tick\" x=\"~.1f\" y=\"~b\" text-anchor=\"middle\">~ts</text>\n",
                    [Fx(X), T, Fx(X), B, Fx(X), B + 18, esc(Fmt(X))])
      || X <- Ticks],
     io_lib:format("<text class=\"lc-label\" x=\"~b\" y=\"~b\" text-anchor=\"middle\">~ts</text>\n",
                   [round((L + R) / 2), B + 38, esc(maps:get(x_label, Opts, ""))])].

%% Tick labels that would touch the one before are left out.
spaced(Ticks, Fx, Fmt) ->
    {Kept, _} = lists:foldl(fun(X, {Acc, End}) ->
                                    Wd = text_width(Fmt(X)),
                                    Lo = Fx(X) - Wd / 2,
                                    case Lo >= End + 6 of
                                        true -> {[X | Acc], Fx(X) + Wd / 2};
                                        false -> {Acc, End}
                                    end
                            end, {[], -1.0e9}, Ticks),
    lists:reverse(Kept).

y_axis(Frame, YS, {Lo, Hi} = YR, Opts) ->
    {L, T, R, B} = plot_box(Frame),
    Fmt = maps:get(y_format, Opts, fun fmt_num/1),
    Ticks0 = case YS of
                 linear -> ticks(Lo, Hi, max(2, min(4, (B - T) div 40)));
                 log -> log_ticks(Lo, Hi)
             end,
    {_, Fy} = mappers(Frame, linear, {0, 1}, YS, YR),
    %% Keep ticks at least a line apart.
    {Ticks, _} = lists:foldl(fun(Y, {Acc, Last}) ->
                                     case Last - Fy(Y) >= 13 of
                                         true -> {[Y | Acc], Fy(Y)};
                                         false -> {Acc, Last}
                                     end
                             end, {[], 1.0e9}, [Y || Y <- Ticks0, in(YS, YR, Y)]),
    [io_lib:format("<line class=\"lc-axis\" x1=\"~b\" y1=\"~b\" x2=\"~b\" y2=\"~b\"/>\n",
                   [L, T, L, B]),
     [io_lib:format("<line class=\"lc-grid\" x1=\"~b\" y1=\"~.1f\" x2=\"~b\" y2=\"~.1f\"/>"
                    "<text class=\"lc-tick\" x=\"~b\" y=\"~.1f\" text-anchor=\"end\">~ts</text>\n",
                    [L, Fy(Y), R, Fy(Y), L - 6, Fy(Y) + 4, esc(Fmt(Y))])
      || Y <- lists:reverse(Ticks)],
     y_label(Frame, Opts)].

y_label(Frame, Opts) ->
    {_, T, _, B} = plot_box(Frame),
    Text = maps:get(y_label, Opts, ""),
    io_lib:format("<text class=\"lc-label\" transform=\"translate(14 ~b) rotate(-90)\""
                  " text-anchor=\"middle\">~ts<title>~ts</title></text>\n",
                  [(T + B) div 2, esc(short(Text, max(4, trunc((B - T) / ?CHAR)))), esc(Text)]).

%% Vertical markers: a thin dashed line each, the label on hover.
vlines(Frame, Fx, XS, XR, Opts) ->
    {_, T, _, B} = plot_box(Frame),
    [io_lib:format("<g class=\"lc-mark ~ts\" data-value=\"~ts\" data-label=\"~ts\">"
                   "<line x1=\"~.1f\" y1=\"~b\" x2=\"~.1f\" y2=\"~b\"/><title>~ts</title></g>\n",
                   [C, fmt_num(X), esc(L), Fx(X), T, Fx(X), B, esc(L)])
     || {X, L, C} <- maps:get(vlines, Opts, []), in(XS, XR, X)].

hline(Frame, Y, Label, Class, Value) ->
    {L, _, R, _} = plot_box(Frame),
    io_lib:format("<g class=\"lc-mark ~ts\" data-value=\"~ts\" data-label=\"~ts\">"
                  "<line x1=\"~b\" y1=\"~.1f\" x2=\"~b\" y2=\"~.1f\"/><title>~ts</title></g>\n",
                  [Class, fmt_num(Value), esc(Label), L, Y, R, Y, esc(Label)]).

%% @doc `Text' in at most `N' characters, with an ellipsis.
-spec short(iodata(), pos_integer()) -> unicode:chardata().
short(Text, N) ->
    case text(Text) of
        L when length(L) > N -> [lists:sublist(L, N - 1), 16#2026];
        L -> L
    end.

text(Text) ->
    case unicode:characters_to_list(iolist_to_binary_safe(Text)) of
        L when is_list(L) -> L;
        _ -> ""
    end.

%% @doc The estimated width (px) of `Text' at the charts' 11 px.
-spec text_width(iodata()) -> float().
text_width(Text) ->
    ?CHAR * length(text(Text)).

legend_chars(Rm) ->
    max(4, trunc((Rm - 34) / ?CHAR)).

%% The legend in the right margin: `{swatch | dash | frontier, Class,
%% Label}' items, one a line, shortened to the margin (the whole label on
%% hover); at most as many as fit above the x axis.
legend(Frame, Items) ->
    legend_at(Frame, ?MT + 4, Items).

legend_at(_, _, []) ->
    [];
legend_at(Frame = #{width := W, right := Rm}, Y0, Items) ->
    {_, _, _, B} = plot_box(Frame),
    Fit = max(1, (B + 20 - Y0) div 16),
    X = W - Rm + 14,
    N = legend_chars(Rm) - 2,
    Shown = case length(Items) > Fit of
                true -> lists:sublist(Items, Fit - 1) ++ [{none, "", io_lib:format("+~b more",
                                                                                   [length(Items) - Fit + 1])}];
                false -> Items
            end,
    [begin
         Y = Y0 + 16 * I,
         Swatch = case Kind of
                      swatch -> io_lib:format("<rect class=\"~ts\" x=\"~b\" y=\"~b\" width=\"12\""
                                              " height=\"10\"/>", [C, X, Y]);
                      dash -> io_lib:format("<line class=\"~ts\" x1=\"~b\" y1=\"~b\" x2=\"~b\""
                                            " y2=\"~b\"/>", [C, X + 6, Y - 1, X + 6, Y + 11]);
                      frontier -> io_lib:format("<rect class=\"lc-cell ~ts\" x=\"~b\" y=\"~b\""
                                                " width=\"12\" height=\"10\" fill-opacity=\"0.2\"/>",
                                                [C, X, Y]);
                      none -> ""
                  end,
         io_lib:format("<g class=\"lc-legend ~ts\">~ts<text x=\"~b\" y=\"~b\">~ts</text>"
                       "<title>~ts</title></g>\n",
                       [case Kind of dash -> C; _ -> "" end, Swatch, X + 18, Y + 9,
                        esc(short(L, N)), esc(L)])
     end || {I, {Kind, C, L}} <- enumerate(Shown)].

enumerate(L) -> lists:zip(lists:seq(0, length(L) - 1), L).
enumerate1(L) -> lists:zip(lists:seq(1, length(L)), L).

%% ===================================================================
%% Formatting
%% ===================================================================

%% @doc Microseconds with a unit: `850 µs', `12 ms', `1.5 s'.
-spec fmt_us(number()) -> iodata().
fmt_us(U) when U < 1000 -> [fmt_num(U), " µs"];
fmt_us(U) when U < 1000000 -> [fmt_num(U / 1000), " ms"];
fmt_us(U) -> [fmt_num(U / 1000000), " s"].

%% @doc Seconds with a unit.
-spec fmt_s(number()) -> iodata().
fmt_s(S) -> [fmt_num(S), " s"].

%% @doc A number in at most 3 significant digits, without trailing zeros.
-spec fmt_num(number()) -> iodata().
fmt_num(N) when is_integer(N) -> integer_to_list(N);
fmt_num(N) when is_float(N), N == round(N), abs(N) < 1.0e15 -> integer_to_list(round(N));
fmt_num(N) when is_float(N) ->
    A = abs(N),
    Dec = if A >= 100 -> 0; A >= 10 -> 1; A >= 1 -> 2; true -> 3 end,
    S = float_to_list(N, [{decimals, Dec}, compact]),
    case lists:suffix(".0", S) of
        true -> lists:sublist(S, length(S) - 2);
        false -> S
    end.

%% @doc Escape text for HTML and SVG.
-spec esc(iodata() | atom() | number()) -> iodata().
esc(A) when is_atom(A) -> esc(atom_to_list(A));
esc(N) when is_number(N) -> fmt_num(N);
esc(S) ->
    [case C of
         $< -> "&lt;";
         $> -> "&gt;";
         $& -> "&amp;";
         $" -> "&quot;";
         _ -> C
     end || C <- unicode:characters_to_list(iolist_to_binary_safe(S))].

%% @doc `Text' as UTF-8, whatever it is: invalid UTF-8 read as Latin-1, a
%% term that is not text printed.
-spec to_text(term()) -> binary().
to_text(Text) ->
    iolist_to_binary_safe(Text).

%% Text as UTF-8, whatever it is: invalid UTF-8 bytes read as Latin-1, any
%% other term printed.
iolist_to_binary_safe(S) ->
    try unicode:characters_to_binary(S) of
        B when is_binary(B) -> B;
        _ when is_binary(S) -> unicode:characters_to_binary(S, latin1);
        _ -> iolist_to_binary(io_lib:format("~w", [S]))
    catch _:_ -> iolist_to_binary(io_lib:format("~w", [S]))
    end.
