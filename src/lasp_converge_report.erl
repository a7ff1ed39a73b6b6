%% @doc Convergence as pictures: a self-contained HTML report, a sweep page
%% and a terminal summary.
%%
%% `write(Path, Vars)' writes one HTML file (inline SVG and CSS, no
%% external assets, no script) with, per tracked variable, titled readably
%% (`demo · awset'):
%%
%% <ul>
%% <li>a summary table (updates, converged, pending, unconverged,
%%     percentiles, clock uncertainty), one row per node, and the nodes'
%%     short names (the common prefix and a shared host removed: `n1' for
%%     `lc_demo_7391_1@vm') next to their full names;</li>
%% <li>one time axis (seconds since the first sample) shared by a column
%%     of charts: the marks (`lasp_converge:mark/1': faults, setting
%%     changes) as short labels in a lane of their own (`partition n1,n2 |
%%     n3,n4,n5', `heal', `interval 278→2000 ms', `push on'), drawn as thin
%%     dashed lines on every chart below, the whole mark on hover and in
%%     the table at the end; a node × time heatmap ("swimlanes") of the
%%     updates each node has not seen; the totals over the nodes (updates
%%     not seen, age of the oldest, fraction of nodes up to date); the
%%     update rate and the p99 convergence time per window, windows keyed
%%     by the time the update was made; and the settings in force (the
%%     propagation interval, `propagate_on_update', the mode) as bands,
%%     from the settings read when the report is made and the recorded
%%     changes before them;</li>
%% <li>the convergence-time distribution, as a CDF and a histogram on a log
%%     time axis, p50/p99/p999 marked; per-node visibility latency as a
%%     heatmap (nodes by log-time bins);</li>
%% <li>update speed against convergence speed: the time between updates
%%     (1/rate) against p99 convergence on log axes with the diagonal, so
%%     "converges faster than it changes" and "changes faster than it
%%     converges" are two regions; the run and each of its windows are
%%     dots.</li>
%% </ul>
%%
%% `write_sweep(Path, Rows)' draws the rows of
%% `lasp_converge_scenario:sweep/2' or `lasp_converge_sim:sweep/2' (rate ×
%% interval): heatmaps of p99 convergence and of messages per update, the
%% cheapest interval meeting the target for each rate (the frontier), and
%% every cell on the update speed vs convergence speed chart.
%%
%% Every axis is labelled with its unit and every colour scale has a
%% legend. `render/1' builds the page from data gathered by `collect/1', so
%% it can be tested without a cluster. `print/1' prints a compact table, a
%% sparkline of divergence and a text histogram to the terminal, in plain
%% ASCII where the output is not UTF-8 (`erl -noshell', CI logs).
-module(lasp_converge_report).

-export([write/2, write/3, render/1, render/2, section/1, css/0, collect/1, print/1,
         format/1, format/2, hist_bins/1, windows/2, sparkline/1, sparkline/2,
         write_sweep/2, write_sweep/3, render_sweep/2, frontier/2,
         short_names/1, var_title/1, mark_label/2]).

-type data() :: #{var := term(), stats := map(), divergence := [map()],
                  records := [map()], marks := [term()], settings => map()}.
-type sweep_row() :: #{rate := number(), state_interval := number(), p99 := number() | undefined,
                       atom() => term()}.
-export_type([data/0, sweep_row/0]).

-define(S, lasp_converge_svg).
-define(SPARK, [16#2581, 16#2582, 16#2583, 16#2584, 16#2585, 16#2586, 16#2587, 16#2588]).
-define(SPARK_ASCII, "_.-:=+*#").
%% The time charts' common frame, so that they share the x axis.
-define(WIDTH, 760).
-define(RIGHT, 160).
%% Marks this far (µs) outside the data's time range are listed, not drawn.
-define(MARK_SLACK, 60000000).

%% ===================================================================
%% API
%% ===================================================================

%% @equiv write(Path, Vars, #{})
-spec write(file:filename_all(), [term()]) -> {ok, file:filename_all()} | {error, term()}.
write(Path, Vars) ->
    write(Path, Vars, #{}).

%% @doc Write the report on `Vars' (tracked variables, aggregated on this
%% node or any member) to `Path'. Options: `title' (text; `{error,
%% {bad_title, T}}' when it is not valid Unicode); any other key is
%% `{error, {unknown_option, K}}'. Returns `{error, {not_tracked, Var}}' if
%% one is not tracked.
-spec write(file:filename_all(), [term()], map()) ->
          {ok, file:filename_all()} | {error, term()}.
write(Path, Vars, Opts) when is_list(Vars), is_map(Opts) ->
    case check_opts(Opts, [title]) of
        ok ->
            case collect_all(Vars, []) of
                {ok, Data} -> write_file(Path, render(Data, Opts));
                {error, _} = E -> E
            end;
        {error, _} = E ->
            E
    end;
write(_, Vars, Opts) when is_list(Vars) ->
    {error, {bad_opts, Opts}};
write(_, _, _) ->
    {error, bad_args}.

%% Unknown keys are refused (`{error, {unknown_option, K}}'), then the
%% title is checked.
check_opts(Opts, Known) ->
    case lasp_converge_opts:check(Opts, fun(K, _) ->
                                                 lists:member(K, Known) orelse unknown
                                         end) of
        ok -> check_title(Opts);
        {error, _} = E -> E
    end.

check_title(#{title := T}) ->
    try unicode:characters_to_binary(T) of
        B when is_binary(B) -> ok;
        _ -> {error, {bad_title, T}}
    catch _:_ -> {error, {bad_title, T}}
    end;
check_title(_) ->
    ok.

write_file(Path, Html) ->
    try
        case filelib:ensure_dir(Path) of
            ok ->
                case file:write_file(Path, unicode:characters_to_binary(Html)) of
                    ok -> {ok, Path};
                    {error, _} = E -> E
                end;
            {error, _} = E -> E
        end
    catch error:badarg ->
            {error, {bad_path, Path}}
    end.

collect_all([], Acc) -> {ok, lists:reverse(Acc)};
collect_all([V | Vs], Acc) ->
    case collect(V) of
        {ok, D} -> collect_all(Vs, [D | Acc]);
        {error, not_tracked} -> {error, {not_tracked, V}};
        {error, _} = E -> E
    end.

%% @doc What the report draws for `Var', from the tracker, with this node's
%% propagation settings now.
-spec collect(term()) -> {ok, data()} | {error, term()}.
collect(Var) ->
    case lasp_converge:stats(Var) of
        S when is_map(S) ->
            Div = ok_list(lasp_converge:divergence(Var)),
            Recs = ok_list(lasp_converge:records(Var)),
            Marks = ok_list(lasp_converge:marks(Var)),
            {ok, #{var => Var, stats => S, divergence => Div, records => Recs,
                   marks => Marks, settings => settings_now()}};
        {error, _} = E ->
            E
    end.

ok_list(L) when is_list(L) -> L;
ok_list(_) -> [].

%% The settings in force on this node: Lasp's where Lasp runs (its
%% `lasp_config'), else the replicator's.
settings_now() ->
    At = erlang:system_time(microsecond),
    try
        R = lasp_converge_replicator:settings(),
        #{settings := T, backends := B} = lasp_converge_tuner:get(#{nodes => [node()]}),
        M = maps:merge(maps:with([state_interval, propagate_on_update, mode], R),
                       maps:with([state_interval, delta_interval, propagate_on_update], T)),
        case maps:get(node(), B, none) of
            lasp ->
                Mode = erpc:call(node(), lasp_config, get, [mode, state_based], 1000),
                M#{at_us => At, mode => Mode};
            %% The replicator keeps every change of its settings.
            _ -> M#{at_us => At, changes => lasp_converge_replicator:setting_changes()}
        end
    catch _:_ ->
            #{at_us => At}
    end.

%% @equiv render(Data, #{})
-spec render([data()]) -> iodata().
render(Data) ->
    render(Data, #{}).

%% @doc The HTML page for the variables' data.
-spec render([data()], map()) -> iodata().
render(Data, Opts) ->
    Title = maps:get(title, Opts, "lasp_converge report"),
    page(Title, ["<p class=\"meta\">Written ",
                 calendar:system_time_to_rfc3339(erlang:system_time(second)), " on ",
                 ?S:esc(atom_to_list(node())), ". Time axes in seconds since the first sample; "
                 "dashed lines are the marks named in the lane above them (hover for the whole "
                 "mark). Latencies as measured, in µs, ms or s.</p>\n",
                 [section(D) || D <- Data]]).

page(Title, Body) ->
    ["<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
     "<meta name=\"viewport\" content=\"width=device-width\">\n<title>",
     ?S:esc(Title), "</title>\n<style>", css(), "</style></head>\n<body>\n<h1>",
     ?S:esc(Title), "</h1>\n", Body, "</body></html>\n"].

%% @doc Print `Var''s summary to the terminal: figures, a divergence
%% sparkline and a histogram of convergence times; plain ASCII when the
%% output's encoding is not Unicode.
-spec print(term()) -> ok | {error, term()}.
print(Var) ->
    case collect(Var) of
        {ok, D} ->
            Enc = case io:getopts() of
                      Os when is_list(Os) ->
                          case lists:keyfind(encoding, 1, Os) of
                              {encoding, unicode} -> unicode;
                              {encoding, utf8} -> unicode;
                              _ -> ascii
                          end;
                      _ -> unicode
                  end,
            io:put_chars(format(D, Enc));
        {error, _} = E ->
            E
    end.

%% ===================================================================
%% Names
%% ===================================================================

%% @doc Names that tell the nodes apart: the common prefix (to a `_', `-'
%% or `.') and a host they all share removed, a bare number written `nN'.
-spec short_names([term()]) -> #{term() => string()}.
short_names(Nodes0) ->
    Nodes = lists:usort(Nodes0),
    Full = [{N, label(N)} || N <- Nodes],
    Split = [{N, split_host(S)} || {N, S} <- Full],
    SameHost = length(lists:usort([H || {_, {_, H}} <- Split])) =< 1,
    Names = [{N, case SameHost of true -> Nm; false -> Nm ++ H end} || {N, {Nm, H}} <- Split],
    Cut = case Names of
              [_, _ | _] -> prefix_cut(lists:foldl(fun({_, S}, P) -> common(S, P) end,
                                                   element(2, hd(Names)), Names));
              _ -> 0
          end,
    Rest = [{N, lists:nthtail(min(Cut, length(S)), S)} || {N, S} <- Names],
    Cut1 = case lists:any(fun({_, R}) -> R =:= "" end, Rest) of
               true -> 0;
               false -> Cut
           end,
    maps:from_list([{N, numbered(lists:nthtail(min(Cut1, length(S)), S))} || {N, S} <- Names]).

split_host(S) ->
    case string:split(S, "@", trailing) of
        [Name, Host] when Name =/= "" -> {Name, "@" ++ Host};
        _ -> {S, ""}
    end.

common([C | A], [C | B]) -> [C | common(A, B)];
common(_, _) -> [].

%% Keep the prefix up to its last separator.
prefix_cut(P) ->
    case [I || {I, C} <- lists:zip(lists:seq(1, length(P)), P), lists:member(C, "_-.")] of
        [] -> 0;
        Is -> lists:max(Is)
    end.

numbered(S) ->
    case S =/= "" andalso lists:all(fun(C) -> C >= $0 andalso C =< $9 end, S) of
        true -> "n" ++ S;
        false -> S
    end.

label(A) when is_atom(A) -> atom_to_list(A);
label(B) when is_binary(B) -> unicode:characters_to_list(?S:to_text(B));
label(I) when is_integer(I) -> integer_to_list(I);
label(X) -> lists:flatten(io_lib:format("~0tp", [X])).

%% @doc A variable's title: `{<<"demo">>, state_awset}' as `demo · awset'.
-spec var_title(term()) -> string().
var_title({Name, Type}) when is_atom(Type) ->
    T = case atom_to_list(Type) of
            "state_" ++ R -> R;
            R -> R
        end,
    label(Name) ++ [$\s, 16#B7, $\s] ++ T;
var_title(V) ->
    label(V).

%% ===================================================================
%% Marks
%% ===================================================================

mark_time(#{at_us := T}) when is_integer(T) -> T;
mark_time(#{at_us := T}) when is_float(T), abs(T) < 1.0e18 -> round(T);
mark_time(_) -> undefined.

%% @doc A mark's `{Short, Full}' labels: the short one drawn in the marks
%% lane (`partition n1,n2 | n3', `interval 250→120 ms', `push on'), the
%% whole one on hover and in the table. `Names' are the nodes' short names
%% (`short_names/1'). Any term gives both.
-spec mark_label(term(), #{term() => string()}) -> {unicode:chardata(), unicode:chardata()}.
mark_label(M, Names) ->
    Short = try short_mark(M, Names)
            catch _:_ -> ?S:short(io_lib:format("~0tp", [M]), 28)
            end,
    Full = try full_mark(M)
           catch _:_ -> io_lib:format("~0tp", [M])
           end,
    {unicode:characters_to_list(?S:short(Short, 40)), unicode:characters_to_list(?S:short(Full, 300))}.

short_mark(#{tuner := _, key := K, old := O, new := N}, _) ->
    setting_change(K, O, N);
short_mark(#{fault := F} = M, Names) ->
    fault_label(F, maps:get(args, M, []), Names);
short_mark(#{} = M, _) ->
    case [V || K <- [kind, event, label, name], (V = maps:get(K, M, undefined)) =/= undefined] of
        [V | _] -> ?S:short(text(V), 28);
        [] -> ?S:short(io_lib:format("~0tp", [maps:remove(at_us, M)]), 28)
    end;
short_mark(M, _) ->
    ?S:short(text(M), 28).

text(A) when is_atom(A) -> atom_to_list(A);
text(X) when is_binary(X) -> ?S:to_text(X);
text(X) -> io_lib:format("~0tp", [X]).

setting_change(state_interval, O, N) when is_number(O), is_number(N) ->
    io_lib:format("interval ~ts→~ts ms", [?S:fmt_num(O), ?S:fmt_num(N)]);
setting_change(delta_interval, O, N) when is_number(O), is_number(N) ->
    io_lib:format("delta interval ~ts→~ts ms", [?S:fmt_num(O), ?S:fmt_num(N)]);
setting_change(propagate_on_update, _, true) -> "push on";
setting_change(propagate_on_update, _, false) -> "push off";
setting_change(mode, _, N) when is_atom(N) -> ["mode ", mode_text(N)];
setting_change(K, O, N) ->
    ?S:short(io_lib:format("~ts ~0tp→~0tp", [text(K), O, N]), 28).

mode_text(state_based) -> "state";
mode_text(delta_based) -> "delta";
mode_text(M) -> text(M).

fault_label(partition, Args, Names) ->
    Groups = case Args of
                 [[G | _] = Gs] when is_list(G) -> Gs;
                 Gs -> Gs
             end,
    ["partition ", lists:join(" | ", [lists:join(",", [node_name(N, Names) || N <- G])
                                      || G <- Groups, is_list(G)])];
fault_label(delay, [A, B, Ms], Names) when is_number(Ms) ->
    io_lib:format("delay ~ts→~ts ~ts ms", [node_name(A, Names), node_name(B, Names),
                                           ?S:fmt_num(Ms)]);
fault_label(drop, [P], _) when is_number(P) ->
    io_lib:format("drop ~ts%", [?S:fmt_num(P * 100)]);
fault_label(F, [], _) ->
    text(F);
fault_label(F, Args, Names) when is_list(Args) ->
    ?S:short([text(F), " ", lists:join(" ", [case is_atom(A) andalso is_map_key(A, Names) of
                                                  true -> node_name(A, Names);
                                                  false -> io_lib:format("~0tp", [A])
                                              end || A <- Args])], 28);
fault_label(F, Args, _) ->
    ?S:short(io_lib:format("~ts ~0tp", [text(F), Args]), 28).

node_name(N, Names) ->
    case maps:find(N, Names) of
        {ok, S} -> S;
        error -> label(N)
    end.

full_mark(#{tuner := _, key := K, old := O, new := N} = M) ->
    io_lib:format("tuner: ~ts ~0tp → ~0tp~ts", [text(K), O, N,
                                                case maps:find(why, M) of
                                                    {ok, W} -> io_lib:format(" (~0tp)", [W]);
                                                    error -> ""
                                                end]);
full_mark(#{fault := F} = M) ->
    io_lib:format("fault: ~ts ~0tp", [text(F), maps:get(args, M, [])]);
full_mark(#{} = M) ->
    io_lib:format("~0tp", [maps:remove(at_us, M)]);
full_mark(M) ->
    io_lib:format("~0tp", [M]).

%% ===================================================================
%% One variable
%% ===================================================================

%% @doc The part of the page about one variable (a `<section>'), as the
%% live dashboard also shows it.
-spec section(data()) -> iodata().
section(D = #{var := Var, stats := S, divergence := Div0, records := Recs0, marks := Marks0}) ->
    Div = [X || X = #{t_us := T, nodes := Ns} <- Div0, is_integer(T), is_map(Ns)],
    Recs = [R || R = #{ts_us := T} <- Recs0, is_integer(T)],
    Nodes = lists:usort(lists:append([maps:keys(Ns) || #{nodes := Ns} <- Div])
                        ++ maps:keys(maps:get(per_node, S, #{}))),
    Names = short_names(Nodes),
    {T0, T1} = span(Div, Recs),
    Timed = [{T, M} || M <- Marks0, (T = mark_time(M)) =/= undefined,
                       T0 =:= undefined orelse (T >= T0 - ?MARK_SLACK andalso T =< T1 + ?MARK_SLACK)],
    {Lo, Hi} = case {T0, [T || {T, _} <- Timed]} of
                   {undefined, []} -> {0, 1000000};
                   {undefined, Ts} -> {lists:min(Ts), lists:max(Ts)};
                   {_, Ts} -> {lists:min([T0 | Ts]), lists:max([T1 | Ts])}
               end,
    X = fun(T) -> (T - Lo) / 1.0e6 end,
    XR = {0, max(X(Hi), 0.001)},
    Labels = [{X(T), mark_label(M, Names)} || {T, M} <- Timed],
    VLines = [{Xm, Full, "lc-fault"} || {Xm, {_, Full}} <- Labels],
    Left = max(78, 34 + round(6.8 * lists:max([4 | [length(N) || N <- maps:values(Names)]]))),
    Common = #{width => ?WIDTH, left => Left, right => ?RIGHT, x_range => XR,
               x_label => "time since the first sample (s)", x_format => fun ?S:fmt_num/1,
               vlines => VLines},
    Conv = lists:sort([C || #{outcome := converged, convergence_us := C} <- Recs, is_integer(C)]),
    Settings = settings_timeline(maps:get(settings, D, #{}), Marks0, X, XR),
    ["<section>\n<h2 data-var=\"", ?S:esc(label(Var)), "\">", ?S:esc(var_title(Var)),
     " <small>", ?S:esc(label(Var)), "</small></h2>\n",
     summary(S, Names),
     "<div class=\"var-body\">\n<div class=\"timeline\">\n",
     case Labels of
         [] -> [];
         _ -> ?S:lane([{Xm, Short, Full} || {Xm, {Short, Full}} <- Labels],
                      Common#{id => "marks", title => "Marks (hover for the whole mark; all in the "
                                                       "table below)"})
     end,
     divergence_charts(Div, Nodes, Names, X, Common),
     rate_charts(Recs, Lo, Common, Settings),
     settings_chart(Settings, Common),
     "</div>\n<div class=\"side\">\n",
     distribution_charts(Conv, S),
     latency_heatmap(Recs, Nodes, Names),
     run_speed_chart(Recs, S, Lo, Settings),
     "</div>\n</div>\n",
     marks_table(Marks0, Lo, Names),
     "</section>\n"].

%% The data's time span: divergence samples and update times.
span([], []) ->
    {undefined, undefined};
span(Div, Recs) ->
    Ts = [T || #{t_us := T} <- Div] ++ [T || #{ts_us := T} <- Recs],
    {lists:min(Ts), lists:max(Ts)}.

summary(S, Names) ->
    Keys = [updates, converged, pending, unconverged, p50, p90, p99, p999, max, mean,
            clock_uncertainty_us],
    PerNode = maps:get(per_node, S, #{}),
    ["<div class=\"figures\">",
     [["<div class=\"fig\"><span class=\"k\">", atom_to_list(K), "</span><span class=\"v\" data-key=\"",
       atom_to_list(K), "\">", cell(K, maps:get(K, S, undefined)), "</span></div>"] || K <- Keys],
     "</div>\n",
     "<table class=\"nodes\"><tr><th>node</th><th>full name</th><th title=\"remote updates seen\">seen"
     "</th><th>p50</th><th>p99</th><th>max</th><th>pending</th><th title=\"clock uncertainty\">"
     "clock ±</th></tr>\n",
     [["<tr><td class=\"short\">", ?S:esc(node_name(N, Names)), "</td><td class=\"full\">",
       ?S:esc(label(N)), "</td><td>", cell(count, maps:get(count, M, undefined)),
       "</td><td>", cell(p50, maps:get(p50, M, undefined)), "</td><td>",
       cell(p99, maps:get(p99, M, undefined)), "</td><td>", cell(max, maps:get(max, M, undefined)),
       "</td><td>", cell(pending, maps:get(pending, M, undefined)), "</td><td>",
       cell(clock_uncertainty_us, maps:get(clock_uncertainty_us, M, undefined)), "</td></tr>\n"]
      || {N, M} <- lists:sort(maps:to_list(PerNode)), is_map(M)],
     "</table>\n"].

cell(_, undefined) -> "–";
cell(K, V) when (K =:= updates orelse K =:= converged orelse K =:= pending
                 orelse K =:= unconverged orelse K =:= count), is_integer(V) ->
    integer_to_list(V);
cell(_, V) when is_number(V) -> ?S:fmt_us(V);
cell(_, V) -> ?S:esc(io_lib:format("~0tp", [V])).

divergence_charts([], _, _, _, _) ->
    note("divergence", "No divergence samples yet.");
divergence_charts(Div, Nodes, Names, X, Common) ->
    Unseen = fun(N, Ns) -> case maps:get(N, Ns, #{}) of
                               #{unseen := U} when is_number(U) -> U;
                               _ -> 0
                           end
             end,
    [swimlanes(Div, Nodes, Names, X, Unseen, Common),
     ?S:line([#{label => "all nodes", points => [{X(T), lists:sum([Unseen(N, Ns) || N <- Nodes])}
                                                 || #{t_us := T, nodes := Ns} <- Div]},
              #{label => "worst node", points => [{X(T), lists:max([0 | [Unseen(N, Ns) || N <- Nodes]])}
                                                  || #{t_us := T, nodes := Ns} <- Div]}],
             Common#{id => "divergence-unseen", step => true, height => 200,
                     title => "Updates not seen, summed over the nodes and on the worst node",
                     y_label => "updates not seen", y_format => fun ?S:fmt_num/1}),
     ?S:line([#{label => "worst node",
                points => [{X(T), lists:max([0 | [age(maps:get(N, Ns, #{})) || N <- Nodes]])}
                           || #{t_us := T, nodes := Ns} <- Div]}],
             Common#{id => "divergence-age", step => true, height => 200,
                     title => "Age of the oldest update a node has not seen",
                     y_label => "age", y_format => fun ?S:fmt_us/1}),
     ?S:line([#{label => "nodes up to date",
                points => [{X(T), U} || #{t_us := T, up_to_date := U} <- Div, is_number(U)]}],
             Common#{id => "up-to-date", title => "Fraction of nodes up to date", step => true,
                     y_label => "fraction", y_range => {0, 1.05}, height => 170,
                     y_format => fun ?S:fmt_num/1})].

%% A node × time heatmap of the updates each node has not seen: the largest
%% count sampled in each time bin, a bin without a sample holding the last.
swimlanes(Div, Nodes, Names, X, Unseen, Common = #{x_range := {_, XMax}}) ->
    NB = max(1, min(120, length(Div))),
    W = XMax / NB,
    Bins = [{I * W, (I + 1) * W} || I <- lists:seq(0, NB - 1)],
    Key = fun(T) -> min(NB - 1, max(0, trunc(X(T) / W))) end,
    Rows = [begin
                ByBin = lists:foldl(fun(#{t_us := T, nodes := Ns}, M) ->
                                            case is_map_key(N, Ns) of
                                                true ->
                                                    U = Unseen(N, Ns),
                                                    maps:update_with(Key(T), fun(V) -> max(V, U) end,
                                                                     U, M);
                                                false -> M
                                            end
                                    end, #{}, Div),
                {Vals, _} = lists:mapfoldl(fun(I, Last) ->
                                                   V = maps:get(I, ByBin, Last),
                                                   {V, V}
                                           end, 0, lists:seq(0, NB - 1)),
                Vals
            end || N <- Nodes],
    ?S:heatmap({[node_name(N, Names) || N <- Nodes], Bins, Rows},
               Common#{id => "swimlanes", x_scale => linear, height => 60 + 22 * length(Nodes),
                       title => "Updates each node has not seen (a row per node)",
                       y_label => "node", scale_label => "updates not seen"}).

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
               x_scale => log, x_label => "convergence time (log scale)", x_format => fun ?S:fmt_us/1,
               y_label => "fraction of updates", y_range => {0, 1.05}, step => true,
               vlines => Marks, y_format => fun ?S:fmt_num/1}),
     ?S:bars(hist_bins(Conv),
             #{id => "convergence-hist", title => "Convergence time, histogram",
               x_scale => log, x_label => "convergence time (log scale)", x_format => fun ?S:fmt_us/1,
               y_label => "updates", series_label => "updates", vlines => Marks})].

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

latency_heatmap(Recs, Nodes0, Names) ->
    Lat = [{N, max(1, T - Ts)} || #{ts_us := Ts, seen := Seen, origin := O} <- Recs, is_map(Seen),
                                 {N, T} <- maps:to_list(Seen), N =/= O, is_integer(T)],
    Nodes = lists:usort(Nodes0 ++ [N || {N, _} <- Lat]),
    case Lat of
        [] ->
            note("visibility", "No remote updates seen in the record window yet.");
        _ ->
            Bins = [{Lo, Hi} || {Lo, Hi, _} <- hist_bins([L || {_, L} <- Lat])],
            Rows = [[length([1 || {N1, L} <- Lat, N1 =:= N, L >= Lo, L < Hi]) || {Lo, Hi} <- Bins]
                    || N <- Nodes],
            ?S:heatmap({[node_name(N, Names) || N <- Nodes], Bins, Rows},
                       #{id => "visibility-heatmap",
                         title => "When each node first held a remote update",
                         x_scale => log, x_label => "visibility latency (log scale)",
                         y_label => "node", scale_label => "updates",
                         x_format => fun ?S:fmt_us/1})
    end.

%% ---- settings over time ----

%% Each setting's segments `{X0, X1, Value}': the value read now, and
%% before each recorded change the old value. The changes are the
%% replicator's own record of its settings where it runs them (every change,
%% whoever made it), else the tuner's marks (a Lasp node's `lasp_config'
%% keeps no record).
settings_timeline(Now, Marks, X, {_, XMax}) ->
    Recorded = case maps:get(changes, Now, []) of
                   [_ | _] = Logged -> Logged;
                   _ -> [M || M = #{tuner := _} <- Marks]
               end,
    Changes = [{K, X(T), O, N} || M = #{key := K, old := O, new := N} <- Recorded,
                                 (T = mark_time(M)) =/= undefined],
    Mode = maps:get(mode, Now, undefined),
    IntervalKey = case Mode of
                      delta_based -> delta_interval;
                      _ -> state_interval
                  end,
    Row = fun(Keys) ->
                  Cs = lists:keysort(2, [C || C = {K, _, _, _} <- Changes, lists:member(K, Keys)]),
                  Current = hd([V || K <- Keys, (V = maps:get(K, Now, undefined)) =/= undefined]
                               ++ [undefined]),
                  %% A change before the chart's start sets the value it
                  %% starts with.
                  {Pre, Post} = lists:splitwith(fun({_, Xc, _, _}) -> Xc =< 0.0 end, Cs),
                  Start = case {Pre, Post} of
                              {[_ | _], _} -> element(4, lists:last(Pre));
                              {[], [{_, _, O, _} | _]} -> O;
                              {[], []} -> Current
                          end,
                  case Start of
                      undefined -> [];
                      _ -> segments(0.0, Start, Post, XMax)
                  end
          end,
    #{interval => Row([IntervalKey]), push => Row([propagate_on_update]), mode => Row([mode])}.

segments(X0, V, [], XMax) -> [{X0, max(X0, XMax), V}];
segments(X0, V, [{_, X, _, N} | Rest], XMax) -> [{X0, X, V} | segments(X, N, Rest, XMax)].

settings_chart(#{interval := [], push := [], mode := []}, _) ->
    note("settings", "No propagation settings known on this node.");
settings_chart(#{interval := I, push := P, mode := M}, Common) ->
    Rows = [{"interval", [{A, B, [?S:fmt_num(V), " ms"]} || {A, B, V} <- I, is_number(V)]}
            || I =/= []]
        ++ [{"push", [{A, B, case V of true -> "on update"; false -> "off"; _ -> text(V) end}
                      || {A, B, V} <- P]} || P =/= []]
        ++ [{"mode", [{A, B, mode_text(V)} || {A, B, V} <- M]} || M =/= []],
    Opts = maps:remove(vlines, Common),
    ?S:bands(Rows, Opts#{id => "settings",
                                                title => "Settings in force (read now, and as "
                                                         "before each recorded change)",
                                                y_label => "setting"}).

%% ---- rates and windows ----

rate_charts([], _, _, _) ->
    [];
rate_charts(Recs, Lo, Common, #{interval := Interval}) ->
    Ws = windows(Recs, Lo),
    IntervalSeries = [#{label => "interval",
                        points => [{A, V * 1000} || {A, _, V} <- Interval, is_number(V)]
                            ++ [{B, V * 1000} || {_, B, V} <- lists:sublist(lists:reverse(Interval), 1),
                                                 is_number(V)],
                        class => "lc-interval"} || Interval =/= []],
    [?S:line([#{label => "updates/s", points => [{T, R} || {T, R, _} <- Ws]}],
             Common#{id => "update-rate", title => "Update rate (windows keyed by update time)",
                     y_label => "updates/s", height => 190, y_format => fun ?S:fmt_num/1}),
     ?S:line([#{label => "p99 convergence", points => [{T, P} || {T, _, P} <- Ws, P > 0], dots => true}
              | IntervalSeries],
             Common#{id => "window-p99", step_series => ["interval"],
                     title => "p99 convergence of the updates made in each window",
                     x_label => "time the update was made, since the first sample (s)",
                     y_label => "p99 (log scale)", y_scale => log,
                     y_format => fun ?S:fmt_us/1, height => 200})].

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
         {(Lo + K * W - T0) / 1.0e6, length(G) / (W / 1.0e6), p99(Cs)}
     end || K <- lists:seq(0, (Hi - Lo) div W)].

p99([]) -> 0;
p99(Cs) -> lists:nth(max(1, ceil(0.99 * length(Cs))), Cs).

%% ---- update speed vs convergence speed ----

%% This run on the speed chart: its mean rate and p99, and each window's.
run_speed_chart(Recs, S, Lo, #{interval := Interval}) ->
    case {Recs, maps:get(p99, S, undefined)} of
        {[_, _ | _], P99} when is_integer(P99), P99 > 0 ->
            Ts = [T || #{ts_us := T} <- Recs],
            SpanS = max(1.0e-3, (lists:max(Ts) - lists:min(Ts)) / 1.0e6),
            Rate = (length(Recs) - 1) / SpanS,
            Ws = [{1000 / R, P / 1000} || {_, R, P} <- windows(Recs, Lo), R > 0, P > 0],
            IntTxt = case [V || {_, _, V} <- Interval, is_number(V)] of
                         [] -> "";
                         Is -> io_lib:format(", interval ~ts ms",
                                             [lists:join("→", [?S:fmt_num(I) || I <- dedup(Is)])])
                     end,
            Tip = io_lib:format("this run: an update every ~ts, p99 ~ts~ts",
                                [?S:fmt_us(1.0e6 / Rate), ?S:fmt_us(P99), IntTxt]),
            speed_chart([#{label => "windows of this run", points => Ws, dots => true,
                           class => "lc-s1"},
                         #{label => "this run", points => [{1000 / Rate, P99 / 1000}], dots => true,
                           class => "lc-s0 lc-run", tip => Tip}],
                        #{id => "speed", title => "Update speed vs convergence speed"});
        _ ->
            note("speed", "Not enough converged updates to place this run on the update speed vs "
                          "convergence speed chart.")
    end.

dedup([A, A | T]) -> dedup([A | T]);
dedup([A | T]) -> [A | dedup(T)];
dedup([]) -> [].

%% Time between updates (ms) against convergence (ms) on equal log axes,
%% with the diagonal.
speed_chart(Series, Opts) ->
    Vs = [V || #{points := Ps} <- Series, {X, Y} <- Ps, V <- [X, Y], is_number(V), V > 0],
    Range = case Vs of
                [] -> {1, 1000};
                _ -> {pow10(floor(math:log10(lists:min(Vs)) - 0.05)),
                      pow10(ceil(math:log10(lists:max(Vs)) + 0.05))}
            end,
    ?S:line(Series, Opts#{x_scale => log, y_scale => log, x_range => Range, y_range => Range,
                          diagonal => true, height => maps:get(height, Opts, 420),
                          x_label => "time between updates, 1/rate (ms, log scale)",
                          y_label => "p99 convergence (ms, log scale)",
                          x_format => fun ms/1, y_format => fun ms/1}).

%% The decades around `Vs', with a little room at both ends.
padded([]) ->
    {1, 10};
padded(Vs) ->
    {pow10(floor(math:log10(lists:min(Vs)) - 0.05)), pow10(ceil(math:log10(lists:max(Vs)) + 0.05))}.

pow10(E) when E >= 0 -> round(math:pow(10, E));
pow10(E) -> math:pow(10, E).

ms(V) -> ?S:fmt_us(V * 1000).

marks_table([], _, _) ->
    [];
marks_table(Marks, T0, Names) ->
    ["<table class=\"marks\"><tr><th>time (s)</th><th>mark</th><th>in full</th></tr>\n",
     [begin
          {Short, Full} = mark_label(M, Names),
          ["<tr><td>", case mark_time(M) of
                           undefined -> "–";
                           T -> ?S:fmt_num((T - T0) / 1.0e6)
                       end, "</td><td class=\"mark\">", ?S:esc(Short), "</td><td class=\"full\">",
           ?S:esc(Full), "</td></tr>\n"]
      end || M <- Marks],
     "</table>\n"].

note(Id, Text) ->
    ["<p class=\"empty\" data-chart=\"", Id, "\">", Text, "</p>\n"].

%% ===================================================================
%% Sweeps
%% ===================================================================

%% @equiv write_sweep(Path, Rows, #{})
-spec write_sweep(file:filename_all(), [sweep_row()]) ->
          {ok, file:filename_all()} | {error, term()}.
write_sweep(Path, Rows) ->
    write_sweep(Path, Rows, #{}).

%% @doc Write the page of a sweep's `Rows' (from
%% `lasp_converge_scenario:sweep/2' or `lasp_converge_sim:sweep/2'): per
%% variable, heatmaps of p99 convergence and of messages per update over
%% rate × interval, the cheapest interval meeting the target for each rate
%% (`frontier/2'), and the update speed vs convergence speed chart. Options:
%% `title', `target_p99' (ms; without it each rate's target is its time
%% between updates: converge before the next change); any other key is
%% `{error, {unknown_option, K}}'. `{error, bad_rows}' when a row lacks
%% `rate', `state_interval' or `p99'.
-spec write_sweep(file:filename_all(), [sweep_row()], map()) ->
          {ok, file:filename_all()} | {error, term()}.
write_sweep(Path, Rows, Opts) when is_list(Rows), is_map(Opts) ->
    case {check_opts(Opts, [title, target_p99]), valid_rows(Rows),
          maps:get(target_p99, Opts, undefined)} of
        {{error, _} = E, _, _} -> E;
        {_, false, _} -> {error, bad_rows};
        {_, _, T} when T =/= undefined, not (is_number(T) andalso T > 0) -> {error, bad_target};
        _ -> write_file(Path, render_sweep(Rows, Opts))
    end;
write_sweep(_, Rows, Opts) when is_list(Rows) ->
    {error, {bad_opts, Opts}};
write_sweep(_, _, _) ->
    {error, bad_args}.

valid_rows(Rows) ->
    lists:all(fun(#{rate := R, state_interval := I} = Row) ->
                      is_number(R) andalso R > 0 andalso is_number(I) andalso I > 0
                          andalso (is_integer(maps:get(p99, Row, undefined))
                                   orelse maps:get(p99, Row, undefined) =:= undefined);
                 (_) -> false
              end, Rows).

%% @doc The sweep page (see `write_sweep/3').
-spec render_sweep([sweep_row()], map()) -> iodata().
render_sweep(Rows, Opts) ->
    Title = maps:get(title, Opts, "lasp_converge sweep: update speed vs convergence speed"),
    Vars = lists:usort([maps:get(var, R, undefined) || R <- Rows]),
    page(Title, ["<p class=\"meta\">", integer_to_list(length(Rows)), " runs. ",
                 case maps:get(target_p99, Opts, undefined) of
                     undefined -> "Target: each rate's p99 convergence within its time between "
                                  "updates (converged before the next change).";
                     T -> ["Target: p99 convergence within ", ?S:fmt_us(T * 1000), "."]
                 end, " Runs that did not converge show –.</p>\n",
                 [sweep_section(V, [R || R <- Rows, maps:get(var, R, undefined) =:= V], Opts)
                  || V <- Vars]]).

sweep_section(Var, Rows, Opts) ->
    Rates = lists:usort([R || #{rate := R} <- Rows]),
    Ints = lists:usort([I || #{state_interval := I} <- Rows]),
    Cell = fun(R, I, K) ->
                   case [Row || Row = #{rate := R1, state_interval := I1} <- Rows, R1 == R, I1 == I] of
                       [Row | _] -> value(Row, K);
                       [] -> undefined
                   end
           end,
    Front = frontier(Rows, Opts),
    Outline = [{index(R, Rates), index(I, Ints)} || #{rate := R, state_interval := I} <- Front],
    RateCats = [rate_text(R) || R <- Rates],
    IntCats = [[?S:fmt_num(I), " ms"] || I <- Ints],
    GridOpts = #{width => ?WIDTH, right => 210, x_label => "update rate (updates/s)",
                 y_label => "propagation interval", x_name => "rate", y_name => "interval",
                 outline => Outline, outline_label => "cheapest meeting target"},
    ["<section>\n<h2 data-var=\"", ?S:esc(label(Var)), "\">", ?S:esc(var_title(Var)), "</h2>\n",
     "<div class=\"charts\">\n",
     ?S:grid({RateCats, IntCats, [[Cell(R, I, p99) || R <- Rates] || I <- Ints]},
             GridOpts#{id => "sweep-p99", title => "p99 convergence over rate × interval",
                       color_scale => log, scale_label => "p99 convergence",
                       cell_format => fun ?S:fmt_us/1}),
     ?S:grid({RateCats, IntCats, [[Cell(R, I, msgs_per_update) || R <- Rates] || I <- Ints]},
             GridOpts#{id => "sweep-msgs", title => "Messages per update over rate × interval",
                       color_scale => log, scale_label => "messages per update",
                       cell_format => fun ?S:fmt_num/1}),
     frontier_chart(Front, Rates, Opts),
     speed_chart([#{label => ["interval ", ?S:fmt_num(I), " ms"], dots => true,
                    points => [{1000 / R, P / 1000} || #{rate := R, state_interval := I1} = Row <- Rows,
                                                      I1 == I, is_number(P = value(Row, p99)), P > 0]}
                  || I <- Ints],
                 #{id => "sweep-speed", title => "Update speed vs convergence speed, every run"}),
     "</div>\n",
     sweep_table(Rows),
     "</section>\n"].

index(X, L) -> length(lists:takewhile(fun(Y) -> Y /= X end, L)) + 1.

%% A converged run's figure; `undefined' for a run that did not converge.
value(Row, K) ->
    case maps:get(converged, Row, true) andalso maps:get(agree, Row, true) of
        true -> maps:get(K, Row, undefined);
        false -> undefined
    end.

%% @doc For each rate in `Rows', the cheapest run (fewest messages per
%% update, then the longest interval) whose p99 convergence meets the target
%% (`target_p99' in ms in `Opts', or else the rate's time between updates);
%% rates where none does are left out.
-spec frontier([sweep_row()], map()) -> [sweep_row()].
frontier(Rows, Opts) ->
    Rates = lists:usort([R || #{rate := R} <- Rows]),
    lists:append(
      [begin
           TargetUs = case maps:get(target_p99, Opts, undefined) of
                          undefined -> 1.0e6 / R;
                          T -> T * 1000
                      end,
           Meet = [Row || Row = #{rate := R1} <- Rows, R1 == R,
                          is_number(P = value(Row, p99)), P =< TargetUs],
           Cost = fun(Row) -> {case maps:get(msgs_per_update, Row, undefined) of
                                   M when is_number(M) -> M;
                                   _ -> 0
                               end, -maps:get(state_interval, Row)}
                  end,
           lists:sublist(lists:sort(fun(A, B) -> Cost(A) =< Cost(B) end, Meet), 1)
       end || R <- Rates]).

frontier_chart(Front, Rates, Opts) ->
    Missing = [R || R <- Rates, not lists:any(fun(#{rate := R1}) -> R1 == R end, Front)],
    Target = case maps:get(target_p99, Opts, undefined) of
                 undefined -> "p99 within the time between updates";
                 T -> ["p99 ≤ ", ?S:fmt_us(T * 1000)]
             end,
    Ps = [{R, I} || #{rate := R, state_interval := I} <- Front],
    [?S:line([#{label => "frontier", points => Ps},
              #{label => "", points => Ps, dots => true, class => "lc-s0"}],
             #{id => "sweep-frontier", width => ?WIDTH, right => ?RIGHT,
               title => ["Cheapest interval meeting the target (", Target, ")"],
               x_scale => log, y_scale => log, x_label => "update rate (updates/s, log scale)",
               x_range => padded([R || {R, _} <- Ps]),
               y_range => padded([I || {_, I} <- Ps]),
               y_label => "interval (ms, log scale)", x_format => fun ?S:fmt_num/1,
               y_format => fun ?S:fmt_num/1}),
     case Missing of
         [] -> [];
         _ -> ["<p class=\"empty\">No interval met the target at ",
               lists:join(", ", [rate_text(R) || R <- Missing]), ".</p>\n"]
     end].

rate_text(R) when R < 1 ->
    case abs(R * 60 - round(R * 60)) < 1.0e-9 of
        true -> [integer_to_list(round(R * 60)), "/min"];
        false -> [?S:fmt_num(R), "/s"]
    end;
rate_text(R) -> [?S:fmt_num(R), "/s"].

sweep_table(Rows) ->
    Keys = [rate, state_interval, updates, p50, p99, max, msgs_per_update, bytes_per_update,
            converged],
    Heads = ["rate", "interval", "updates", "p50", "p99", "max", "msgs/update", "bytes/update",
             "converged"],
    ["<table class=\"sweep\"><tr>", [["<th>", H, "</th>"] || H <- Heads], "</tr>\n",
     [["<tr>", [["<td>", sweep_cell(K, maps:get(K, R, undefined)), "</td>"] || K <- Keys], "</tr>\n"]
      || R <- lists:sort(fun(A, B) -> {maps:get(state_interval, A), maps:get(rate, A)}
                                          =< {maps:get(state_interval, B), maps:get(rate, B)} end,
                         Rows)],
     "</table>\n"].

sweep_cell(_, undefined) -> "–";
sweep_cell(rate, R) -> rate_text(R);
sweep_cell(state_interval, I) -> [?S:fmt_num(I), " ms"];
sweep_cell(K, V) when K =:= p50; K =:= p99; K =:= max -> ?S:fmt_us(V);
sweep_cell(_, V) when is_number(V) -> ?S:fmt_num(V);
sweep_cell(_, V) -> ?S:esc(io_lib:format("~0tp", [V])).

%% ===================================================================
%% Style
%% ===================================================================

%% @doc The page's stylesheet.
-spec css() -> iodata().
css() ->
    ":root{--fg:#1d2330;--bg:#ffffff;--muted:#5b6475;--grid:#e3e6ec;--axis:#8a93a5;"
    "--c0:#2f6fdb;--c1:#d9480f;--c2:#2b8a3e;--c3:#9c36b5;--c4:#e67700;--c5:#0b7285;"
    "--c6:#c2255c;--c7:#5f3dc4;--mark:#c92a2a;--bar:#2f6fdb;--heat:#1c4fb8;--region:#fff1e6;"
    "--band0:#e7eefb;--band1:#d3e0f7}\n"
    "@media (prefers-color-scheme: dark){:root{--fg:#e6e9ef;--bg:#14171c;--muted:#9aa3b5;"
    "--grid:#2a2f38;--axis:#6b7384;--c0:#74a7ff;--c1:#ff8a4c;--c2:#5fd37a;--c3:#d38cf0;"
    "--c4:#ffc14d;--c5:#4fd1e0;--c6:#ff7aa8;--c7:#a98bff;--mark:#ff6b6b;--bar:#74a7ff;"
    "--heat:#8fb8ff;--region:#3a2a1e;--band0:#1e2a3d;--band1:#2a3a55}}\n"
    "@media print{:root{--fg:#000;--bg:#fff;--grid:#ddd}}\n"
    "body{font:14px/1.4 system-ui,sans-serif;color:var(--fg);background:var(--bg);"
    "margin:24px;max-width:1600px}\n"
    "h1{font-size:22px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid var(--grid)}\n"
    "h2 small{font-size:12px;font-weight:400;color:var(--muted);margin-left:8px}\n"
    ".meta,.empty{color:var(--muted)}\n"
    "table{border-collapse:collapse;margin:8px 0 12px}td,th{padding:3px 10px;text-align:right;"
    "border-bottom:1px solid var(--grid)}th{color:var(--muted);font-weight:600}\n"
    ".figures{display:flex;flex-wrap:wrap;gap:4px 18px;margin:8px 0}.fig{display:flex;"
    "flex-direction:column}.fig .k{color:var(--muted);font-size:12px}.fig .v{font-weight:600}\n"
    "table.sweep td,table.sweep th{padding:3px 6px}table.marks th{text-align:left}\n"
    "td{white-space:nowrap}td.full,td.mark,td.short{text-align:left}\n"
    "td.full{white-space:normal;color:var(--muted);font-size:12px;"
    "word-break:break-all}\n"
    ".var-body{display:flex;flex-wrap:wrap;gap:12px 16px;align-items:flex-start}\n"
    ".timeline,.side{display:flex;flex-direction:column;width:760px;max-width:100%}\n"
    ".timeline{gap:2px}.side{gap:12px}\n"
    ".charts{display:flex;flex-wrap:wrap;gap:12px;margin-top:12px}\n"
    ".lc-chart{max-width:100%;height:auto;font-size:11px;font-family:system-ui,sans-serif}\n"
    ".lc-chart text{fill:var(--fg)}.lc-title{font-size:13px;font-weight:600}\n"
    ".lc-tick{fill:var(--muted)!important}.lc-label{fill:var(--muted)!important}\n"
    ".lc-axis{stroke:var(--axis)}.lc-grid{stroke:var(--grid)}\n"
    ".lc-line{fill:none;stroke-width:1.6}\n"
    ".lc-s0{stroke:var(--c0);fill:var(--c0)}.lc-s1{stroke:var(--c1);fill:var(--c1)}"
    ".lc-s2{stroke:var(--c2);fill:var(--c2)}.lc-s3{stroke:var(--c3);fill:var(--c3)}"
    ".lc-s4{stroke:var(--c4);fill:var(--c4)}.lc-s5{stroke:var(--c5);fill:var(--c5)}"
    ".lc-s6{stroke:var(--c6);fill:var(--c6)}.lc-s7{stroke:var(--c7);fill:var(--c7)}\n"
    ".lc-interval{stroke:var(--muted);fill:var(--muted);stroke-dasharray:6 3}\n"
    "path.lc-line{fill:none}.lc-dots circle{stroke:var(--bg);stroke-width:1;fill-opacity:.8}\n"
    ".lc-run circle{stroke:var(--fg);stroke-width:2;fill-opacity:1}\n"
    ".lc-bar{fill:var(--bar);opacity:.8}.lc-cell{fill:var(--heat)}\n"
    ".lc-frontier{stroke:var(--c1);stroke-width:3;fill:var(--heat)}\n"
    ".lc-cell-text{font-size:10px}.lc-chart .lc-on-dark{fill:#fff}\n"
    ".lc-mark line{stroke:var(--mark);stroke-dasharray:4 3;stroke-width:1}\n"
    ".lc-pct line{stroke:var(--c4)}.lc-pct.lc-legend line{stroke-dasharray:4 3;stroke-width:2}\n"
    ".lc-lane-mark line{stroke:var(--mark);stroke-dasharray:2 2}\n"
    ".lc-lane-mark text{fill:var(--mark)!important}\n"
    ".lc-band-0{fill:var(--band0)}.lc-band-1{fill:var(--band1)}\n"
    ".lc-region{fill:var(--region)}.lc-diag{stroke:var(--muted);stroke-dasharray:6 4}\n"
    ".lc-region-label{fill:var(--muted)!important;font-style:italic}\n"
    ".lc-legend text,.lc-scale text{fill:var(--fg)}.lc-legend-title{font-weight:600}\n".

%% ===================================================================
%% Terminal
%% ===================================================================

%% @equiv format(Data, unicode)
-spec format(data()) -> unicode:chardata().
format(D) ->
    format(D, unicode).

%% @doc The terminal summary of one variable's data, in Unicode or in
%% plain ASCII (`us' for `µs', a sparkline of `_.-:=+*#').
-spec format(data(), unicode | ascii) -> unicode:chardata().
format(#{var := Var, stats := S, divergence := Div, records := Recs}, Enc) ->
    Keys = [updates, converged, pending, unconverged, p50, p99, p999, max],
    Cells = [lists:flatten(to_enc(cell(K, maps:get(K, S, undefined)), Enc)) || K <- Keys],
    Widths = [max(string:length(atom_to_list(K)), string:length(C)) + 2
              || {K, C} <- lists:zip(Keys, Cells)],
    Conv = [C || #{outcome := converged, convergence_us := C} <- Recs, is_integer(C)],
    Totals = [lists:sum([maps:get(unseen, L, 0) || L <- maps:values(Ns), is_map(L)])
              || #{nodes := Ns} <- Div, is_map(Ns)],
    Out = [var_title(Var), "\n",
           [string:pad(atom_to_list(K), W, leading) || {K, W} <- lists:zip(Keys, Widths)], "\n",
           [string:pad(C, W, leading) || {C, W} <- lists:zip(Cells, Widths)], "\n",
           io_lib:format("clock uncertainty ~ts~n",
                         [cell(clock_uncertainty_us, maps:get(clock_uncertainty_us, S, undefined))]),
           case Totals of
               [] -> [];
               _ -> io_lib:format("unseen over time  ~ts  (max ~b)~n",
                                  [sparkline(Totals, Enc), lists:max(Totals)])
           end,
           text_histogram(Conv)],
    to_enc(Out, Enc).

%% Plain ASCII: the few non-ASCII characters the summary uses spelled out.
to_enc(Text, unicode) ->
    Text;
to_enc(Text, ascii) ->
    L = case unicode:characters_to_list(Text) of
            Chars when is_list(Chars) -> Chars;
            _ -> lists:flatten(io_lib:format("~w", [Text]))
        end,
    lists:flatmap(fun(C) when C < 128 -> [C];
                     (16#B5) -> "u";
                     (16#2013) -> "-";
                     (16#2192) -> "->";
                     (16#B7) -> "-";
                     (16#2026) -> "...";
                     (_) -> "?"
                  end, L).

%% @equiv sparkline(Values, unicode)
-spec sparkline([number()]) -> unicode:chardata().
sparkline(Vs) ->
    sparkline(Vs, unicode).

%% @doc A sparkline of non-negative numbers (at most 60 characters; longer
%% series are averaged down), in block characters or in ASCII.
-spec sparkline([number()], unicode | ascii) -> unicode:chardata().
sparkline([], _) ->
    "";
sparkline(Vs0, Enc) ->
    Chars = case Enc of
                ascii -> ?SPARK_ASCII;
                _ -> ?SPARK
            end,
    Vs = squeeze(Vs0, 60),
    Max = lists:max(Vs),
    [case Max > 0 of
         false -> hd(Chars);
         true -> lists:nth(1 + min(7, max(0, floor(V / Max * 7.999))), Chars)
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
     [[string:pad(?S:fmt_us(round(Lo)), 10, leading), " ",
       string:pad(lists:duplicate(max(1, round(C / Max * 40)), $#), 40, trailing), " ",
       integer_to_list(C), "\n"]
      || {Lo, _, C} <- Bins, C > 0]].
