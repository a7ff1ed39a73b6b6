%% @doc Charts as inline SVG, for the HTML report and the dashboard.
%%
%% Three kinds: `line/2' (series of points, straight or as steps, on linear
%% or logarithmic axes), `bars/2' (a histogram of bins) and `heatmap/2' (a
%% grid of counts). Every chart is one `<svg>' element that draws itself
%% with the page's CSS classes (`lc-axis', `lc-grid', `lc-s0'..`lc-s7',
%% ...), so one stylesheet gives it a light and a dark look; it carries
%% `data-' attributes with what it drew (`data-chart', per series
%% `data-label' and `data-n', marked values such as `data-value'), so a
%% test can check the drawing against the data.
%%
%% Long series are thinned before drawing: `downsample/2' keeps, per
%% column of pixels, the first, lowest, highest and last point, so peaks
%% survive and a million points draw as a few thousand.
%%
%% Axes: `ticks/3' picks 1-2-5 steps on a linear axis; `log_ticks/2' powers
%% of ten on a log axis. Formatters for microseconds (`fmt_us/1') and
%% seconds (`fmt_s/1') label them.
-module(lasp_converge_svg).

-export([line/2, bars/2, heatmap/2, downsample/2, ticks/3, log_ticks/2,
         fmt_us/1, fmt_s/1, fmt_num/1, esc/1]).

-type point() :: {number(), number()}.
-type series() :: #{label := iodata(), points := [point()], class => iodata()}.
-type scale() :: linear | log.
-type opts() :: #{id => iodata(), title => iodata(),
                  x_label => iodata(), y_label => iodata(),
                  x_scale => scale(), y_scale => scale(),
                  x_format => fun((number()) -> iodata()),
                  y_format => fun((number()) -> iodata()),
                  x_range => {number(), number()}, y_range => {number(), number()},
                  width => pos_integer(), height => pos_integer(),
                  step => boolean(), step_series => [iodata()],
                  max_points => pos_integer(),
                  vlines => [{number(), iodata(), iodata()}],
                  hlines => [{number(), iodata(), iodata()}]}.
-export_type([point/0, series/0, opts/0]).

-define(W, 760).
-define(H, 260).
-define(ML, 70).
-define(MR, 20).
-define(MT, 34).
-define(MB, 46).

%% ===================================================================
%% Line charts
%% ===================================================================

%% @doc A line chart of `Series'. With `step => true' each series holds its
%% value until the next point (counts over time); `step_series' names the
%% series drawn so when the others are not. `vlines' are vertical
%% markers `{X, Label, Class}' (faults, interval changes), `hlines'
%% horizontal ones. Points outside a log axis's positive range are left out.
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
    svg(Opts, Frame, "line",
        [axes(Frame, XS, XR, YS, YR, Opts),
         Paths,
         vlines(Frame, Fx, XS, XR, Opts),
         [hline(Frame, Fy(Y), L, C, Y) || {Y, L, C} <- maps:get(hlines, Opts, []), in(YS, YR, Y)],
         legend(Frame, Series)]).

drawable(XS, YS, Ps) ->
    [{X, Y} || {X, Y} <- Ps, is_number(X), is_number(Y),
               XS =:= linear orelse X > 0, YS =:= linear orelse Y > 0].

series_path(I, #{label := Label, points := Ps, n := N} = S, Fx, Fy, Step, {_, X1}, XS) ->
    Class = maps:get(class, S, ["lc-s", integer_to_list(I rem 8)]),
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
     "\" data-n=\"", integer_to_list(N), "\" d=\"", D, "\"/>\n"].

%% Hold each value until the next point; the last one to the right edge.
steps([], _, _) -> [];
steps([{X, Y}], X1, _) -> [{X, Y}, {max(X, X1), Y}];
steps([{X, Y}, {X2, _} = Next | Rest], X1, XS) ->
    [{X, Y}, {X2, Y} | steps([Next | Rest], X1, XS)].

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
    svg(Opts#{y_label => maps:get(y_label, Opts, "updates")}, Frame, "bars",
        [axes(Frame, XS, XR, linear, YR, Opts#{y_format => fun fmt_num/1}),
         ["<g data-bins=\"", integer_to_list(length(Bins)), "\">", Rects, "</g>"],
         vlines(Frame, Fx, XS, XR, Opts)]).

%% @doc A heatmap: one row per label, one column per `{Lo, Hi}' bin of the
%% x axis (log when `x_scale => log'); `Counts' is a list (one per row) of
%% lists (one per column). Darker is more.
-spec heatmap({[iodata()], [{number(), number()}], [[non_neg_integer()]]}, opts()) -> iodata().
heatmap({Rows, Cols, Counts}, Opts) ->
    XS = maps:get(x_scale, Opts, linear),
    NR = max(1, length(Rows)),
    Frame0 = frame(Opts),
    %% Room on the left for the longest row label (about 6.5 px a character).
    Left = min(300, max(80, 12 + round(6.5 * lists:max([0 | [string:length(R) || R <- Rows]])))),
    Frame = Frame0#{height => max(maps:get(height, Frame0), ?MT + ?MB + 22 * NR),
                    left => Left},
    XR = range(XS, undefined, lists:append([[Lo, Hi] || {Lo, Hi} <- Cols])),
    {Fx, _} = mappers(Frame, XS, XR, linear, {0, 1}),
    {_, Top, _, Bottom} = plot_box(Frame),
    RowH = (Bottom - Top) / NR,
    Peak = lists:max([1 | lists:append(Counts)]),
    Cells = [[io_lib:format("<rect class=\"lc-cell\" data-row=\"~ts\" data-count=\"~b\" x=\"~.1f\""
                            " y=\"~.1f\" width=\"~.1f\" height=\"~.1f\" fill-opacity=\"~.3f\">"
                            "<title>~ts: ~b</title></rect>\n",
                            [esc(R), C, Fx(Lo), Top + (I - 1) * RowH,
                             max(0.5, Fx(Hi) - Fx(Lo) - 0.5), RowH - 2,
                             case C of 0 -> 0.0; _ -> 0.12 + 0.88 * C / Peak end,
                             esc(R), C])
              || {{Lo, Hi}, C} <- lists:zip(Cols, Cs)]
             || {I, R, Cs} <- lists:zip3(lists:seq(1, length(Rows)), Rows, Counts)],
    Labels = [io_lib:format("<text class=\"lc-tick\" x=\"~.1f\" y=\"~.1f\" text-anchor=\"end\">~ts</text>\n",
                            [Left - 6.0, Top + (I - 0.5) * RowH + 4, esc(R)])
              || {I, R} <- enumerate1(Rows)],
    svg(Opts, Frame, "heatmap",
        [x_axis(Frame, XS, XR, Opts), Cells, Labels]).

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
%% Frame, axes, markers
%% ===================================================================

frame(Opts) ->
    #{width => maps:get(width, Opts, ?W), height => maps:get(height, Opts, ?H), left => ?ML}.

plot_box(#{width := W, height := H, left := L}) ->
    {L, ?MT, W - ?MR, H - ?MB}.

svg(Opts, Frame = #{width := W, height := H}, Kind, Body) ->
    Id = maps:get(id, Opts, Kind),
    ["<svg class=\"lc-chart\" xmlns=\"http://www.w3.org/2000/svg\" data-chart=\"", esc(Id),
     "\" data-kind=\"", Kind, "\" viewBox=\"0 0 ", integer_to_list(W), " ", integer_to_list(H),
     "\" width=\"", integer_to_list(W), "\" height=\"", integer_to_list(H), "\" role=\"img\">\n",
     "<title>", esc(maps:get(title, Opts, Id)), "</title>\n",
     "<text class=\"lc-title\" x=\"", integer_to_list(maps:get(left, Frame)), "\" y=\"20\">",
     esc(maps:get(title, Opts, "")), "</text>\n",
     Body, "</svg>\n"].

axes(Frame, XS, XR, YS, YR, Opts) ->
    [x_axis(Frame, XS, XR, Opts), y_axis(Frame, YS, YR, Opts)].

x_axis(Frame, XS, {Lo, Hi} = XR, Opts) ->
    {L, T, R, B} = plot_box(Frame),
    Fmt = maps:get(x_format, Opts, fun fmt_num/1),
    Ticks = case XS of
                linear -> ticks(Lo, Hi, 6);
                log -> log_ticks(Lo, Hi)
            end,
    {Fx, _} = mappers(Frame, XS, XR, linear, {0, 1}),
    [io_lib:format("<line class=\"lc-axis\" x1=\"~b\" y1=\"~b\" x2=\"~b\" y2=\"~b\"/>\n",
                   [L, B, R, B]),
     [io_lib:format("<line class=\"lc-grid\" x1=\"~.1f\" y1=\"~b\" x2=\"~.1f\" y2=\"~b\"/>"
                    "<text class=\"lc-tick\" x=\"~.1f\" y=\"~b\" text-anchor=\"middle\">~ts</text>\n",
                    [Fx(X), T, Fx(X), B, Fx(X), B + 16, esc(Fmt(X))])
      || X <- Ticks, in(XS, XR, X)],
     io_lib:format("<text class=\"lc-label\" x=\"~b\" y=\"~b\" text-anchor=\"middle\">~ts</text>\n",
                   [(L + R) div 2, B + 36, esc(maps:get(x_label, Opts, ""))])].

y_axis(Frame, YS, {Lo, Hi} = YR, Opts) ->
    {L, T, R, B} = plot_box(Frame),
    Fmt = maps:get(y_format, Opts, fun fmt_num/1),
    Ticks = case YS of
                linear -> ticks(Lo, Hi, 4);
                log -> log_ticks(Lo, Hi)
            end,
    {_, Fy} = mappers(Frame, linear, {0, 1}, YS, YR),
    [io_lib:format("<line class=\"lc-axis\" x1=\"~b\" y1=\"~b\" x2=\"~b\" y2=\"~b\"/>\n",
                   [L, T, L, B]),
     [io_lib:format("<line class=\"lc-grid\" x1=\"~b\" y1=\"~.1f\" x2=\"~b\" y2=\"~.1f\"/>"
                    "<text class=\"lc-tick\" x=\"~b\" y=\"~.1f\" text-anchor=\"end\">~ts</text>\n",
                    [L, Fy(Y), R, Fy(Y), L - 6, Fy(Y) + 4, esc(Fmt(Y))])
      || Y <- Ticks, in(YS, YR, Y)],
     io_lib:format("<text class=\"lc-label\" transform=\"translate(14 ~b) rotate(-90)\""
                   " text-anchor=\"middle\">~ts</text>\n",
                   [(T + B) div 2, esc(maps:get(y_label, Opts, ""))])].

%% Vertical markers, their labels staggered over three lines so that
%% close ones stay readable.
vlines(Frame, Fx, XS, XR, Opts) ->
    Vs = [V || {X, _, _} = V <- maps:get(vlines, Opts, []), in(XS, XR, X)],
    [vline(Frame, Fx(X), L, C, X, I rem 3) || {I, {X, L, C}} <- enumerate(Vs)].

vline(Frame, X, Label0, Class, Value, Row) ->
    {_, T0, _, B} = plot_box(Frame),
    T = T0 + 12 * Row,
    Label = short(Label0, 48),
    io_lib:format("<g class=\"lc-mark ~ts\" data-value=\"~ts\" data-label=\"~ts\">"
                  "<line x1=\"~.1f\" y1=\"~b\" x2=\"~.1f\" y2=\"~b\"/>"
                  "<text x=\"~.1f\" y=\"~b\">~ts</text></g>\n",
                  [Class, fmt_num(Value), esc(Label0), X, T0, X, B, X + 3, T + 10, esc(Label)]).

hline(Frame, Y, Label, Class, Value) ->
    {L, _, R, _} = plot_box(Frame),
    io_lib:format("<g class=\"lc-mark ~ts\" data-value=\"~ts\" data-label=\"~ts\">"
                  "<line x1=\"~b\" y1=\"~.1f\" x2=\"~b\" y2=\"~.1f\"/>"
                  "<text x=\"~b\" y=\"~.1f\" text-anchor=\"end\">~ts</text></g>\n",
                  [Class, fmt_num(Value), esc(Label), L, Y, R, Y, R - 4, Y - 4, esc(Label)]).

%% At most `N' characters, with an ellipsis.
short(Text, N) ->
    case unicode:characters_to_list(Text) of
        L when is_list(L), length(L) > N -> [lists:sublist(L, N - 1), 16#2026];
        L when is_list(L) -> L;
        _ -> Text
    end.

legend(_Frame, []) ->
    [];
legend(#{width := W}, Series) ->
    Items = [{I, maps:get(class, S, ["lc-s", integer_to_list(I rem 8)]), L}
             || {I, #{label := L} = S} <- enumerate(Series)],
    [io_lib:format("<g class=\"lc-legend\"><rect class=\"~ts\" x=\"~b\" y=\"~b\" width=\"10\""
                   " height=\"10\"/><text x=\"~b\" y=\"~b\">~ts</text></g>\n",
                   [C, W - ?MR - 170, 6 + 13 * I, W - ?MR - 155, 15 + 13 * I, esc(L)])
     || {I, C, L} <- lists:sublist(Items, 8)].

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

iolist_to_binary_safe(S) ->
    try unicode:characters_to_binary(S) of
        B when is_binary(B) -> B;
        _ -> iolist_to_binary(io_lib:format("~tp", [S]))
    catch _:_ -> iolist_to_binary(io_lib:format("~tp", [S]))
    end.
