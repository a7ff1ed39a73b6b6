%% @doc Operations: `GET /metrics' scraped over HTTP from the dashboard of
%% one node of a three-node cluster while it replicates, parsed by a strict
%% parser of the Prometheus text format 0.0.4 written here, and its figures
%% checked against the tracker's and the replicator's; telemetry events
%% through a stand-in `telemetry' module (test_support/telemetry_double),
%% after checking that nothing fails without one; logger notices and
%% warnings through a logger handler added here.
-module(lasp_converge_metrics_tests).

-include_lib("eunit/include/eunit.hrl").

-export([log/2]).

-define(CL, lasp_converge_cluster).
-define(R, lasp_converge_replicator).
-define(DOUBLE, "test_support/telemetry_double/telemetry.erl").

%% ---- the parser, on its own ----

parser_accepts_the_format_test() ->
    Text = <<"# HELP a_total A counter.\n# TYPE a_total counter\n"
             "a_total{x=\"q\\\"b\\\\s\\nl\",y=\"\"} 3\n\n# a comment\n"
             "# TYPE h histogram\n"
             "h_bucket{le=\"0.5\"} 1\nh_bucket{le=\"1.0\"} 2\nh_bucket{le=\"+Inf\"} 2\n"
             "h_sum 0.7\nh_count 2\n# TYPE g gauge\ng 1.5e-5\n">>,
    #{samples := S} = parse(Text),
    ?assertEqual({"a_total", [{"x", "q\"b\\s\nl"}, {"y", ""}], 3.0}, hd(S)),
    ?assertEqual(7, length(S)).

parser_rejects_what_the_format_forbids_test_() ->
    Bad = [{no_type, <<"a_total 1\n">>},
           {bad_escape, <<"# TYPE a gauge\na{x=\"\\t\"} 1\n">>},
           {unquoted, <<"# TYPE a gauge\na{x=1} 1\n">>},
           {bad_value, <<"# TYPE a gauge\na one\n">>},
           {bad_name, <<"# TYPE 1a gauge\n1a 1\n">>},
           {duplicate, <<"# TYPE a gauge\na 1\na 2\n">>},
           {split_family, <<"# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"y\"} 1\n">>},
           {counter_name, <<"# TYPE a counter\na 1\n">>},
           {not_cumulative, <<"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n"
                              "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n">>},
           {le_order, <<"# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
                        "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n">>},
           {no_inf, <<"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n">>},
           {inf_not_count, <<"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 2\n">>},
           {no_sum, <<"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n">>}],
    [{atom_to_list(Why), ?_assertThrow({bad_exposition, _, _}, parse(T))} || {Why, T} <- Bad].

escape_test() ->
    ?assertEqual(<<"a\\\\b\\\"c\\nd">>,
                 unicode:characters_to_binary(lasp_converge_metrics:escape("a\\b\"c\nd"))),
    ?assertEqual(<<"\x{e9}t\x{e9}"/utf8>>,
                 unicode:characters_to_binary(lasp_converge_metrics:escape([233, $t, 233]))).

%% The two native reads behind the metrics and the events, on a tracker of
%% two nodes fed exact timestamps: update 1 is seen by node 1 2 ms later,
%% update 2 never (unconverged past the 1 s horizon).
native_reads_test() ->
    N = lasp_converge_nif,
    {ok, R} = N:tracker_new(#{horizon_us => 1000000, exact => [0, 1]}),
    ok = N:tracker_set_members(R, 0, [0, 1]),
    B = {state_gset, []},
    S1 = {state_gset, [a]},
    S2 = {state_gset, [a, b]},
    {ok, _} = N:tracker_updated(R, 0, 1, 1000, B, S1),
    {ok, _} = N:tracker_observed(R, 1, 3000, S1),
    {ok, _} = N:tracker_updated(R, 0, 2, 4000, S1, S2),
    ?assertMatch({ok, 1, [#{outcome := converged, convergence_us := 2000, origin := 0}]},
                 N:tracker_finished_since(R, 0, true)),
    ?assertEqual({ok, 1, []}, N:tracker_finished_since(R, 0, false)),
    ok = N:tracker_tick(R, 2000000),
    ?assertMatch({ok, 2, [#{outcome := unconverged, missing := [1], seq := 2}]},
                 N:tracker_finished_since(R, 1, false)),
    ?assertMatch({ok, 2, [#{outcome := converged}, #{outcome := unconverged}]},
                 N:tracker_finished_since(R, 0, true)),
    %% After a reset every record kept is new (none).
    ok = N:tracker_reset(R),
    ?assertEqual({ok, 0, []}, N:tracker_finished_since(R, 2, true)),
    {ok, R2} = N:tracker_new(#{exact => [0, 1]}),
    ok = N:tracker_set_members(R2, 0, [0, 1]),
    {ok, _} = N:tracker_updated(R2, 0, 1, 1000, B, S1),
    {ok, _} = N:tracker_observed(R2, 1, 3000, S1),
    ?assertEqual({ok, #{type => state_gset, convergence => {[0, 1, 1], 1, 2000},
                        per_node => #{0 => {[0, 0, 0], 0, 0}, 1 => {[0, 1, 1], 1, 2000}}}},
                 N:tracker_buckets(R2, [1000, 5000, 60000000])),
    ?assertMatch({ok, #{convergence := {[], 1, 2000}}}, N:tracker_buckets(R2, [])),
    [?assertEqual({error, bad_opts}, N:tracker_buckets(R2, Bad))
     || Bad <- [[5, 1], [1, 1], [-1], [a], [1 | 2], nope, lists:seq(1, 65)]],
    ?assertEqual({error, not_a_tracker}, N:tracker_buckets(nope, [1])),
    ?assertEqual({error, not_a_tracker}, N:tracker_finished_since(nope, 0, true)),
    ?assertEqual({error, bad_seq}, N:tracker_finished_since(R2, -1, true)),
    ?assertEqual({error, bad_opts}, N:tracker_finished_since(R2, 0, 1)).

%% With no `telemetry' module anywhere, emitting is a no-op.
no_telemetry_test() ->
    ?assertEqual(non_existing, code:which(telemetry)),
    ?assertNot(lasp_converge_telemetry:enabled()),
    ?assertEqual(ok, lasp_converge_telemetry:execute([lasp_converge, x], #{n => 1}, #{})),
    ?assertEqual(ok, lasp_converge_telemetry:replicator_round(v, #{}, #{sent_messages => 1})).

%% ---- the cluster ----

cluster_test_() ->
    {timeout, 120, fun cluster/0}.

cluster() ->
    WasAlive = is_alive(),
    {ok, _} = application:ensure_all_started(inets),
    try
        ?CL:with_cluster(3, #{prefix => lc_metrics}, fun run/1)
    after
        WasAlive orelse net_kernel:stop()
    end.

run(C) ->
    Ns = [N1, _, N3] = ?CL:nodes(C),
    %% A name that needs every escape.
    Var = {<<"met\"r\\ics\nx">>, state_orset},
    [{ok, _} = ?CL:call(C, N, ?R, set, [#{state_interval => 50}]) || N <- Ns],
    {ok, _} = ?CL:call(C, N1, ?R, declare, [Var, state_orset, #{nodes => Ns}]),
    ok = ?CL:call(C, N1, lasp_converge, track, [Var, #{nodes => Ns, horizon => 400, tick => 20}]),
    %% No telemetry module on any node: the tracker's ticks and the
    %% replicator's rounds run with nothing to emit to.
    [?assertNot(?CL:call(C, N, lasp_converge_telemetry, enabled, [])) || N <- Ns],
    Adds = [{N, I} || I <- [1, 2, 3], N <- Ns],
    [{ok, _} = ?CL:call(C, N, ?R, update, [Var, {add, I}, N]) || {N, I} <- Adds],
    wait_until(fun() -> maps:get(converged, stats(C, N1, Var)) =:= length(Adds) end, 10000),
    {ok, #{url := Url}} = ?CL:call(C, N1, lasp_converge_http, start, []),
    try
        scrape(C, Ns, Var, Url ++ "metrics"),
        telemetry_and_logs(C, Ns, Var)
    after
        ?CL:call(C, N1, lasp_converge_http, stop, [])
    end,
    %% Still replicating: N3 keeps up.
    {ok, _} = ?CL:call(C, N3, ?R, update, [Var, {add, last}, N3]),
    wait_until(fun() -> maps:get(pending, stats(C, N1, Var)) =:= 0 end, 10000).

scrape(C, Ns = [N1 | _], Var, Url) ->
    S = stats(C, N1, Var),
    {200, Type, Body} = http_get(Url),
    ?assertEqual("text/plain; version=0.0.4; charset=utf-8", Type),
    #{types := Types, samples := Samples} = parse(Body),
    VarL = lists:flatten(io_lib:format("~0tp", [Var])),
    Of = fun(Name, Labels) ->
                 [V || {Nm, Ls, V} <- Samples, Nm =:= Name,
                       lists:all(fun(L) -> lists:member(L, Ls) end, Labels)]
         end,
    Mine = [{"var", VarL}, {"type", "state_orset"}],
    %% No update since the wait: the counters are the tracker's.
    ?assertEqual([9.0], Of("lasp_converge_updates_total", Mine)),
    ?assertEqual([9.0], Of("lasp_converge_converged_total", Mine)),
    ?assertEqual([0.0], Of("lasp_converge_unconverged_total", Mine)),
    ?assertEqual([0.0], Of("lasp_converge_pending", Mine)),
    ?assertEqual([float(maps:get(converged, S))],
                 Of("lasp_converge_convergence_seconds_count", Mine)),
    ?assertEqual([9.0], Of("lasp_converge_convergence_seconds_bucket", Mine ++ [{"le", "+Inf"}])),
    %% The sum lies between count × min and count × max of what stats saw.
    [Sum] = Of("lasp_converge_convergence_seconds_sum", Mine),
    ?assert(Sum =< 9 * maps:get(max, S) / 1.0e6 + 1.0e-6),
    ?assert(Sum >= maps:get(max, S) / 1.0e6 - 1.0e-6),
    ?assertEqual(histogram, maps:get("lasp_converge_visibility_seconds", Types)),
    [begin
         NL = Mine ++ [{"node", atom_to_list(N)}],
         ?assertEqual([0.0], Of("lasp_converge_node_pending", NL)),
         ?assertEqual([1.0], Of("lasp_converge_node_live", NL)),
         %% Each node saw the six updates made elsewhere.
         ?assertEqual([6.0], Of("lasp_converge_visibility_seconds_count", NL)),
         ?assertEqual([0.05], Of("lasp_converge_state_interval_seconds",
                                 [{"node", atom_to_list(N)}])),
         ?assertEqual([0.0], Of("lasp_converge_propagate_on_update", [{"node", atom_to_list(N)}])),
         ?assertEqual([1.0], Of("lasp_converge_mode", [{"node", atom_to_list(N)},
                                                       {"mode", "state_based"}])),
         [Full] = Of("lasp_converge_replication_messages_total", NL ++ [{"kind", "full_state"}]),
         [Bytes] = Of("lasp_converge_replication_bytes_total", NL),
         ?assert(Full >= 2),
         ?assert(Bytes > 10 * Full)
     end || N <- Ns],
    %% Scraped again while updates go on: still well formed, and counters
    %% only grow.
    Writer = spawn_link(fun() -> keep_updating(C, Ns, Var, 0) end),
    Again = [begin
                 timer:sleep(60),
                 {200, _, B} = http_get(Url),
                 parse(B)
             end || _ <- [1, 2, 3]],
    unlink(Writer),
    exit(Writer, kill),
    Counts = [V || #{samples := Ss} <- Again,
                   {"lasp_converge_updates_total", Ls, V} <- Ss, lists:member({"var", VarL}, Ls)],
    ?assertEqual(Counts, lists:sort(Counts)),
    ?assert(lists:last(Counts) > 9),
    %% HEAD: the headers alone; lasp_converge:metrics/0 is the same text.
    {ok, {{_, 200, _}, _, ""}} = httpc:request(head, {Url, []}, [], []),
    #{types := Types2} = parse(?CL:call(C, N1, lasp_converge, metrics, [])),
    ?assertEqual(Types, Types2).

keep_updating(C, [N | Ns], Var, I) ->
    _ = ?CL:call(C, N, ?R, update, [Var, {add, {more, I}}, N]),
    timer:sleep(10),
    keep_updating(C, Ns ++ [N], Var, I + 1).

%% ---- telemetry and logs ----

telemetry_and_logs(C, Ns = [N1, N2, N3], Var) ->
    %% The stand-in, loaded here (the fault events) and on N1 (tracker,
    %% replicator, tuner), sending its events to this process.
    {ok, telemetry, Bin} = compile:file(?DOUBLE, [binary, return_errors]),
    Load = fun(N) ->
                   {module, telemetry} = erpc:call(N, code, load_binary,
                                                   [telemetry, ?DOUBLE, Bin]),
                   ok = erpc:call(N, persistent_term, put, [telemetry_double_sink, self()])
           end,
    Load(node()),
    Load(N1),
    ok = logger:add_handler(lc_metrics_log, ?MODULE, #{config => #{sink => self()}}),
    ok = erpc:call(N1, logger, add_handler, [lc_metrics_log, ?MODULE,
                                             #{config => #{sink => self()}}]),
    try
        ?assert(lasp_converge_telemetry:enabled()),
        flush(),
        %% A converged update: an event from N1's tracker.
        {ok, _} = ?CL:call(C, N2, ?R, update, [Var, {add, seen}, N2]),
        {N1, #{convergence_us := Us}, #{var := Var, origin := N2, node := N1}} =
            event([lasp_converge, update, converged], fun(_, M) -> maps:get(origin, M) =:= N2 end),
        ?assert(is_integer(Us) andalso Us >= 0),
        %% N1's rounds: a full state to each of the two peers.
        {N1, #{messages := 2, bytes := Bytes}, #{var := Var, node := N1}} =
            event([lasp_converge, replicator, round], fun(_, _) -> true end),
        ?assert(Bytes > 0),
        %% Every earlier update (the scrape's writer included) seen
        %% everywhere first, so that the one cut off below is the only
        %% update the partition can keep from N3.
        wait_until(fun() -> maps:get(pending, stats(C, N1, Var)) =:= 0 end, 10000),
        flush_logs(),
        %% A fault: an event and a notice here, where the cluster's owner runs.
        ok = lasp_converge_fault:partition(C, [[N1, N2], [N3]]),
        {_, #{system_time := _}, #{fault := partition, args := [[[N1, N2], [N3]]]}} =
            event([lasp_converge, fault, applied], fun(_, _) -> true end),
        {notice, #{domain := [lasp_converge], fault := partition}} =
            log_event(notice, fun(M) -> maps:get(fault, M, none) =:= partition end),
        %% An update N3 cannot see: unconverged past the 400 ms horizon, one
        %% warning from N1 naming N3.
        {ok, _} = ?CL:call(C, N1, ?R, update, [Var, {add, cut_off}, N1]),
        {warning, #{domain := [lasp_converge], var := Var, node := N1, missing := [N3],
                    count := 1}} = log_event(warning, fun(_) -> true end),
        ok = lasp_converge_fault:heal(C),
        %% A tuner change on N1: an event, a notice, and the counter.
        {ok, _} = ?CL:call(C, N1, lasp_converge_tuner, start, [Var, {fixed, 80}, #{nodes => Ns}]),
        {N1, #{old := 50, new := 80}, #{var := Var, key := state_interval}} =
            event([lasp_converge, tuner, change], fun(_, _) -> true end),
        {notice, #{domain := [lasp_converge], var := Var, node := N1, key := state_interval}} =
            log_event(notice, fun(M) -> maps:is_key(key, M) end),
        ok = ?CL:call(C, N1, lasp_converge_tuner, stop, [Var]),
        #{samples := Ss} = parse(?CL:call(C, N1, lasp_converge, metrics, [])),
        ?assertEqual([1.0], [V || {"lasp_converge_tuner_changes_total", Ls, V} <- Ss,
                                  lists:member({"key", "state_interval"}, Ls),
                                  lists:member({"node", atom_to_list(N1)}, Ls)]),
        %% Nothing is logged per update.
        flush_logs(),
        [{ok, _} = ?CL:call(C, N1, ?R, update, [Var, {add, {quiet, I}}, N1]) || I <- [1, 2, 3]],
        timer:sleep(300),
        ?assertEqual(none, receive {log, _, #{domain := [lasp_converge]}} = L -> L after 0 -> none end)
    after
        _ = logger:remove_handler(lc_metrics_log),
        _ = erpc:call(N1, logger, remove_handler, [lc_metrics_log]),
        unload(node()),
        unload(N1),
        %% What was sent before the sink went: later tests may run in this
        %% process.
        flush(),
        flush_logs()
    end.

unload(N) ->
    _ = erpc:call(N, persistent_term, erase, [telemetry_double_sink]),
    _ = erpc:call(N, code, purge, [telemetry]),
    _ = erpc:call(N, code, delete, [telemetry]),
    _ = erpc:call(N, code, purge, [telemetry]),
    ok.

%% The first event named `Name' for which `Pred(Measurements, Metadata)'
%% holds (others are dropped).
event(Name, Pred) ->
    receive
        {telemetry_double, Node, Name, M, Meta} ->
            case Pred(M, Meta) of
                true -> {Node, M, Meta};
                false -> event(Name, Pred)
            end
    after 10000 ->
            erlang:error({no_event, Name})
    end.

%% The first lasp_converge log event at `Level' whose metadata satisfies
%% `Pred' (others at that level are dropped).
log_event(Level, Pred) ->
    receive
        {log, Level, #{domain := [lasp_converge]} = Meta} ->
            case Pred(Meta) of
                true -> {Level, Meta};
                false -> log_event(Level, Pred)
            end
    after 10000 ->
            erlang:error({no_log, Level})
    end.

flush() ->
    receive {telemetry_double, _, _, _, _} -> flush() after 0 -> ok end.

flush_logs() ->
    receive {log, _, _} -> flush_logs() after 0 -> ok end.

%% @private logger handler callback: forward our domain's events.
log(#{level := Level, meta := #{domain := [lasp_converge]} = Meta}, #{config := #{sink := Pid}}) ->
    Pid ! {log, Level, Meta},
    ok;
log(_, _) ->
    ok.

%% ---- helpers ----

stats(C, N, Var) ->
    ?CL:call(C, N, lasp_converge, stats, [Var]).

http_get(Url) ->
    {ok, {{_, Code, _}, Headers, Body}} =
        httpc:request(get, {Url, []}, [], [{body_format, binary}]),
    {Code, proplists:get_value("content-type", Headers), Body}.

wait_until(F, Ms) when Ms =< 0 ->
    ?assert(F());
wait_until(F, Ms) ->
    case F() of
        true -> ok;
        false -> timer:sleep(20), wait_until(F, Ms - 20)
    end.

%% ===================================================================
%% A strict parser of the text format 0.0.4
%% ===================================================================
%%
%% Every line is blank, a comment (`# HELP name text', `# TYPE name type',
%% or any other `#' line), or a sample `name{label="value",...} value'.
%% Label values may escape only `\\', `\"' and `\n'. Every sample's metric
%% family has a TYPE line before it; a family's lines are contiguous; no
%% series appears twice; counters end in `_total'. Histograms: per series,
%% `le' bounds strictly increasing and ending in `+Inf', bucket counts
%% cumulative, `+Inf' equal to `_count', `_sum' and `_count' present.
%% Returns `#{types => #{Family => Type}, samples => [{Name, Labels,
%% Value}]}' or throws `{bad_exposition, LineNo, Why}'.

parse(Text) ->
    Lines = string:split(unicode:characters_to_list(Text), "\n", all),
    {Types, Samples, _, _} =
        lists:foldl(fun({No, L}, Acc) -> line(No, L, Acc) end, {#{}, [], undefined, []},
                    lists:zip(lists:seq(1, length(Lines)), Lines)),
    S = lists:reverse(Samples),
    check_histograms(Types, S),
    #{types => Types, samples => [{N, Ls, V} || {_, N, Ls, V} <- S]}.

bad(No, Why) -> throw({bad_exposition, No, Why}).

line(_No, "", Acc) ->
    Acc;
line(No, "# TYPE " ++ Rest, {Types, S, Cur, Done}) ->
    case string:split(Rest, " ") of
        [Name, T] ->
            name(No, Name),
            Type = case T of
                       "counter" -> counter;
                       "gauge" -> gauge;
                       "histogram" -> histogram;
                       "summary" -> summary;
                       "untyped" -> untyped;
                       _ -> bad(No, {bad_type, T})
                   end,
            is_map_key(Name, Types) andalso bad(No, {second_type, Name}),
            Type =:= counter andalso not lists:suffix("_total", Name)
                andalso bad(No, {counter_name, Name}),
            {Types#{Name => Type}, S, Cur, Done};
        _ ->
            bad(No, bad_type_line)
    end;
line(No, "# HELP " ++ Rest, Acc) ->
    [Name | _] = string:split(Rest, " "),
    name(No, Name),
    Acc;
line(_No, "#" ++ _, Acc) ->
    Acc;
line(No, L, {Types, S, Cur, Done}) ->
    {Name, Rest} = lists:splitwith(fun(Ch) -> Ch =/= ${ andalso Ch =/= $\s end, L),
    name(No, Name),
    {Labels, Rest1} = case Rest of
                          "{" ++ R -> labels(No, R, []);
                          _ -> {[], Rest}
                      end,
    Value = case Rest1 of
                " " ++ V -> value(No, hd(string:split(V, " ")));
                _ -> bad(No, no_value)
            end,
    Family = family(No, Name, Types),
    Done1 = case Family of
                Cur -> Done;
                _ -> lists:member(Family, Done) andalso bad(No, {split_family, Family}),
                     [Family | Done]
            end,
    lists:any(fun({_, N, Ls, _}) -> N =:= Name andalso Ls =:= Labels end, S)
        andalso bad(No, {duplicate, Name, Labels}),
    {Types, [{No, Name, Labels, Value} | S], Family, Done1}.

family(No, Name, Types) ->
    Hist = [F || Suffix <- ["_bucket", "_sum", "_count"], lists:suffix(Suffix, Name),
                 F <- [lists:sublist(Name, length(Name) - length(Suffix))],
                 maps:get(F, Types, none) =:= histogram],
    case {Hist, maps:find(Name, Types)} of
        {[F | _], _} -> F;
        {[], {ok, histogram}} -> bad(No, {bare_histogram_sample, Name});
        {[], {ok, _}} -> Name;
        {[], error} -> bad(No, {no_type, Name})
    end.

name(No, [C | Cs] = N) ->
    First = (C >= $a andalso C =< $z) orelse (C >= $A andalso C =< $Z) orelse C =:= $_
        orelse C =:= $:,
    Rest = lists:all(fun(X) -> (X >= $a andalso X =< $z) orelse (X >= $A andalso X =< $Z)
                                   orelse (X >= $0 andalso X =< $9) orelse X =:= $_
                                   orelse X =:= $:
                     end, Cs),
    (First andalso Rest) orelse bad(No, {bad_name, N});
name(No, N) ->
    bad(No, {bad_name, N}).

labels(_No, "}" ++ Rest, Acc) ->
    {lists:reverse(Acc), Rest};
labels(No, L, Acc) ->
    {K, Rest} = lists:splitwith(fun(Ch) -> Ch =/= $= end, L),
    name(No, K),
    case Rest of
        "=\"" ++ R ->
            {V, R1} = label_value(No, R, []),
            case R1 of
                "," ++ R2 -> labels(No, R2, [{K, V} | Acc]);
                "}" ++ _ -> labels(No, R1, [{K, V} | Acc]);
                _ -> bad(No, label_separator)
            end;
        _ ->
            bad(No, {unquoted, K})
    end.

label_value(_No, "\"" ++ Rest, Acc) -> {lists:reverse(Acc), Rest};
label_value(No, "\\\\" ++ R, Acc) -> label_value(No, R, [$\\ | Acc]);
label_value(No, "\\\"" ++ R, Acc) -> label_value(No, R, [$" | Acc]);
label_value(No, "\\n" ++ R, Acc) -> label_value(No, R, [$\n | Acc]);
label_value(No, "\\" ++ _, _) -> bad(No, bad_escape);
label_value(No, [C | R], Acc) -> label_value(No, R, [C | Acc]);
label_value(No, [], _) -> bad(No, unterminated_label).

value(_No, "+Inf") -> infinity;
value(_No, "-Inf") -> neg_infinity;
value(_No, "NaN") -> nan;
value(No, V) ->
    case {string:to_float(V), string:to_integer(V)} of
        {{F, ""}, _} -> F;
        {_, {I, ""}} -> float(I);
        _ -> bad(No, {bad_value, V})
    end.

%% Per histogram series (labels without `le').
check_histograms(Types, Samples) ->
    Hists = [F || {F, histogram} <- maps:to_list(Types)],
    lists:foreach(fun(F) -> check_histogram(F, Samples) end, Hists).

check_histogram(F, Samples) ->
    Of = fun(Suffix) -> [{No, Ls, V} || {No, N, Ls, V} <- Samples, N =:= F ++ Suffix] end,
    Buckets = Of("_bucket"),
    Series = lists:usort([lists:keydelete("le", 1, Ls) || {_, Ls, _} <- Buckets]
                         ++ [Ls || {_, Ls, _} <- Of("_count") ++ Of("_sum")]),
    lists:foreach(
      fun(Ls) ->
              Bs = [{No, le(No, proplists:get_value("le", BLs)), V}
                    || {No, BLs, V} <- Buckets, lists:keydelete("le", 1, BLs) =:= Ls],
              No0 = case Bs of [{N0, _, _} | _] -> N0; [] -> 0 end,
              Bs =:= [] andalso bad(No0, {no_buckets, F, Ls}),
              Les = [Le || {_, Le, _} <- Bs],
              cmp_sorted(Les) orelse bad(No0, {le_order, F, Ls}),
              Counts = [V || {_, _, V} <- Bs],
              Counts =:= lists:sort(Counts) orelse bad(No0, {not_cumulative, F, Ls}),
              lists:last(Les) =:= infinity orelse bad(No0, {no_inf, F, Ls}),
              case {[V || {_, L, V} <- Of("_count"), L =:= Ls], [V || {_, L, V} <- Of("_sum"), L =:= Ls]} of
                  {[Count], [_Sum]} ->
                      lists:last(Counts) == Count orelse bad(No0, {inf_not_count, F, Ls});
                  _ ->
                      bad(No0, {sum_and_count, F, Ls})
              end
      end, Series).

le(No, undefined) -> bad(No, no_le);
le(No, S) ->
    case value(No, S) of
        infinity -> infinity;
        V when is_float(V) -> V;
        _ -> bad(No, {bad_le, S})
    end.

%% Strictly increasing, `infinity' above every float.
cmp_sorted([A, B | T]) -> lt(A, B) andalso cmp_sorted([B | T]);
cmp_sorted(_) -> true.

lt(infinity, _) -> false;
lt(_, infinity) -> true;
lt(A, B) -> A < B.
