%% @doc A tuner controller: the process `lasp_converge_tuner:start/3' runs
%% for one variable. Every window it measures (the tracker's counters and
%% records, the members' message counters), asks
%% `lasp_converge_tuner_policy:decide/3' and applies what it decides with
%% `lasp_converge_tuner_settings:set/2', logging and marking each change.
%% `lasp_converge_tuner''s module doc describes the measurements.
-module(lasp_converge_tuner_controller).
-behaviour(gen_server).

-export([start_link/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-type var() :: lasp_converge_tuner:var().
-type key() :: lasp_converge_tuner:key().
-type policy() :: lasp_converge_tuner:policy().
-type opts() :: lasp_converge_tuner:opts().
-type state() :: lasp_converge_tuner:state().
-type measurement() :: lasp_converge_tuner:measurement().
-type log_entry() :: lasp_converge_tuner:log_entry().

-define(TIMEOUT, 15000).
-define(P, lasp_converge_tuner_policy).
-define(S, lasp_converge_tuner_settings).

%% @private
-spec start_link(var(), policy(), opts()) -> {ok, pid()} | {error, term()}.
start_link(Var, Policy, Opts) ->
    gen_server:start_link(?MODULE, {Var, Policy, Opts}, []).

-record(c, {var :: var(),
            policy :: policy(),
            nodes :: [node()],
            key :: key(),
            window :: pos_integer(),
            max_window :: pos_integer(),
            min_samples :: non_neg_integer(),
            records :: boolean(),
            mark :: boolean(),
            dstate :: state(),
            %% The previous tick's snapshot, and the one that starts the
            %% window of samples (target_p99 extends it).
            prev :: map() | undefined,
            sprev :: map() | undefined,
            last = none :: measurement() | none,
            %% While pushing, the update counts of the surge checks of the
            %% last window, newest first: `{AtMs, Updates}'.
            checks = [] :: [{integer(), non_neg_integer()}],
            %% When the interval in force was set (the aggregating node's
            %% clock): updates made earlier are not measured.
            since_us = 0 :: integer(),
            log = [] :: [log_entry()]}).

%% @private
init({Var, Policy, Opts}) ->
    Nodes = ?S:members(Opts),
    Needs = element(1, Policy) =:= target_p99 orelse element(1, Policy) =:= rate_proportional,
    case Needs andalso not is_map(lasp_converge:stats(Var)) of
        true ->
            {stop, {error, not_tracked}};
        false ->
            case lasp_converge_registry:register_controller(Var) of
                ok -> start(Var, Policy, Opts, Nodes);
                {error, _} -> ignore
            end
    end.

start(Var, Policy, Opts, Nodes) ->
    Local = local_settings(),
    Mode = maps:get(mode, Local, state_based),
    Key = maps:get(key, Opts, ?S:interval_key(Mode)),
    Report = ?S:get(#{nodes => Nodes}),
    InForce = fun(K) ->
                      case Report of
                          #{settings := #{K := V}} -> V;
                          #{per_node := Per} ->
                              hd([maps:get(K, S) || S <- maps:values(Per), is_map(S)]
                                 ++ [maps:get(K, ?S:lasp_defaults())])
                      end
              end,
    Cur = InForce(Key),
    Window = maps:get(window, Opts, 1000),
    Ctx = maps:merge(#{dwell => 2 * Window}, Opts),
    S0 = ?P:init_state(Policy, maps:merge(#{fanout => maps:get(fanout, Local, all),
                                         mode => Mode},
                                       Ctx#{interval => Cur, nodes => length(Nodes),
                                            propagate_on_update =>
                                                InForce(propagate_on_update)})),
    C0 = #c{var = Var, policy = Policy, nodes = Nodes, key = Key, window = Window,
            max_window = maps:get(max_window, Opts, 10 * Window),
            min_samples = case Policy of
                              {target_p99, _} -> maps:get(min_samples, Opts, 10);
                              _ -> 0
                          end,
            records = element(1, Policy) =:= target_p99,
            mark = maps:get(mark, Opts, true),
            dstate = S0#{interval := Cur}},
    {D, S1} = ?P:initial(Policy, C0#c.dstate),
    C1 = act(D, S1, none, C0),
    erlang:send_after(Window, self(), tick),
    erlang:send_after(surge_every(Window), self(), surge_check),
    Snap = snapshot(C1),
    {ok, C1#c{prev = Snap, sprev = Snap}}.

%% @private
handle_call(log, _From, C) ->
    {reply, lists:reverse(C#c.log), C};
handle_call(status, _From, C) ->
    {reply, #{policy => C#c.policy, key => C#c.key, nodes => C#c.nodes,
              state => C#c.dstate, last => C#c.last}, C};
handle_call(_, _From, C) ->
    {reply, {error, bad_call}, C}.

%% @private
handle_cast(_, C) ->
    {noreply, C}.

%% @private
handle_info(tick, #c{prev = Prev, sprev = SPrev, window = W} = C) ->
    erlang:send_after(W, self(), tick),
    Now = snapshot(C),
    case measure(Prev, SPrev, Now, C) of
        restart ->
            {noreply, C#c{prev = Now, sprev = Now}};
        {M, Closed} ->
            {D, S} = ?P:decide(C#c.policy, C#c.dstate, M),
            SNext = case Closed of
                        true -> Now;
                        false -> SPrev
                    end,
            {noreply, (act(D, S, M, C))#c{prev = Now, sprev = SNext, last = M}}
    end;
handle_info(surge_check, #c{window = W, prev = Prev, dstate = #{push := Push}} = C) ->
    %% Pushing, each update costs messages: look at the updates since the
    %% last window twenty times as often, and at those since each of the
    %% last window's checks (the shortest such span with half `lasp_converge_tuner_policy:surge_min()'
    %% updates), so that a steep surge shows within a few updates.
    erlang:send_after(surge_every(W), self(), surge_check),
    Counts = case Push of
                 true -> tracker_counts(C#c.var);
                 false -> #{}
             end,
    case {Push, Prev, Counts} of
        {true, #{updates := U0, at_ms := T0}, #{updates := U1}} when U1 >= U0 ->
            Now = erlang:monotonic_time(millisecond),
            Part = fun(T, U) ->
                           Ms = max(1, Now - T),
                           #{at_ms => Now, window_ms => Ms, partial => true,
                             updates => U1 - U, rate => (U1 - U) * 1000 / Ms}
                   end,
            Checks = [{T, U} || {T, U} <- C#c.checks, T >= Now - W, U =< U1],
            Recent = [Part(T, U) || {T, U} <- Checks, U1 - U >= ?P:surge_min() div 2],
            C1 = C#c{checks = [{Now, U1} | Checks]},
            {D, S, M} = surge_decide(C1, [Part(T0, U0) | lists:sublist(Recent, 1)]),
            {noreply, act(D, S, M, C1)};
        _ ->
            {noreply, C#c{checks = []}}
    end;
handle_info(_, C) ->
    {noreply, C}.

surge_every(Window) ->
    max(25, Window div 20).

%% The first of the parts of a window that turns push off, else the last.
surge_decide(#c{policy = P, dstate = S0}, [M]) ->
    {D, S} = ?P:decide(P, S0, M),
    {D, S, M};
surge_decide(#c{policy = P, dstate = S0} = C, [M | Ms]) ->
    case ?P:decide(P, S0, M) of
        {keep, _} -> surge_decide(C, Ms);
        {D, S} -> {D, S, M}
    end.

%% Apply and log a decision: one call to set/2 for what changes, one log
%% entry and mark per key (propagate_on_update first).
act(keep, S, _M, C) ->
    C#c{dstate = S};
act(New, S, M, C) when is_integer(New) ->
    act(#{interval => New}, S, M, C);
act(Changes, #{why := Why} = S, M,
    #c{dstate = #{interval := OldI} = S0, key = Key, nodes = Ns} = C) ->
    OldP = maps:get(push, S0, false),
    Diff = [{K, Old, New}
            || {K, Old} <- [{propagate_on_update, OldP}, {Key, OldI}],
               {ok, New} <- [maps:find(case K of
                                            propagate_on_update -> K;
                                            _ -> interval
                                        end, Changes)],
               New =/= Old],
    case Diff of
        [] ->
            C#c{dstate = S};
        _ ->
            Settings = maps:from_list([{K, New} || {K, _, New} <- Diff]),
            {Result, Applied} = case ?S:set(Settings, #{nodes => Ns}) of
                                    {ok, _} -> {ok, true};
                                    %% Taken where the node answered.
                                    {error, {set_failed, Bad}} = E ->
                                        {E, length(Bad) < length(Ns)};
                                    {error, _} = E -> {E, false}
                                end,
            AtMs = erlang:system_time(millisecond),
            AtUs = agg_now(C#c.var),
            Entries = [#{at_ms => AtMs, at_us => AtUs, key => K, old => Old, new => New,
                         why => Why, measurement => M, result => Result}
                       || {K, Old, New} <- Diff],
            _ = C#c.mark andalso Applied andalso [mark(C#c.var, E) || E <- Entries],
            _ = Applied andalso lasp_converge_telemetry:tuner_changes(C#c.var, Entries),
            Log = lists:reverse(Entries) ++ C#c.log,
            case Applied of
                true -> C#c{dstate = S, log = Log, since_us = AtUs};
                false -> C#c{dstate = S#{interval := OldI, push := OldP}, log = Log}
            end
    end.

%% Now on the clock of the variable's aggregating node, which timestamps
%% the tracker's records and marks.
agg_now(Var) ->
    try lasp_converge_tracker:aggregator_node(Var) of
        {ok, Agg} when Agg =/= node() ->
            erpc:call(Agg, lasp_converge_tracker, now_us, [], ?TIMEOUT);
        _ ->
            lasp_converge_tracker:now_us()
    catch _:_ ->
            lasp_converge_tracker:now_us()
    end.

mark(Var, #{at_us := T, key := K, old := O, new := N, why := Why}) ->
    Mark = #{at_us => T, tuner => Var, key => K, old => O, new => N, why => Why},
    case lasp_converge_tracker:aggregator_node(Var) of
        {ok, Agg} -> erpc:cast(Agg, lasp_converge, mark, [Mark]);
        {error, not_tracked} -> ok
    end.

local_settings() ->
    try lasp_converge_replicator:settings()
    catch _:_ -> #{}
    end.

%% Counters now: the tracker's (with its records for target_p99) and the
%% members' messages for the variable.
snapshot(#c{var = Var, nodes = Ns, records = Records}) ->
    Counts = tracker_counts(Var),
    Tracker = case Records of
                  true -> Counts#{records => tracker_records(Var)};
                  false -> Counts
              end,
    Msgs = lists:sum([node_messages(N, Var) || N <- Ns]),
    Tracker#{at_ms => erlang:monotonic_time(millisecond), messages => Msgs}.

tracker_counts(Var) ->
    case lasp_converge:stats(Var) of
        #{updates := U, converged := Cv, unconverged := Un} = St ->
            #{updates => U, finished => Cv + Un + maps:get(orphaned, St, 0)};
        _ ->
            #{}
    end.

%% Oldest first: `{Id, TsUs, Outcome}', the update, its time (the
%% aggregating node's clock) and its convergence time (µs), `unconverged'
%% or `orphaned'.
tracker_records(Var) ->
    case lasp_converge:records(Var) of
        Rs when is_list(Rs) ->
            [{{O, Sq}, Ts, case R of
                               #{outcome := converged, convergence_us := Us} -> Us;
                               #{outcome := unconverged} -> unconverged;
                               _ -> orphaned
                           end}
             || #{origin := O, seq := Sq, ts_us := Ts} = R <- Rs];
        _ ->
            []
    end.

%% The records in `New' that follow the last one in `Old' (all of them
%% when it is gone: the window is longer than the tracker keeps).
after_last([], New) ->
    New;
after_last(Old, New) ->
    {Last, _, _} = lists:last(Old),
    case lists:splitwith(fun({Id, _, _}) -> Id =/= Last end, New) of
        {_, [_ | After]} -> After;
        {All, []} -> All
    end.

node_messages(N, Var) ->
    try erpc:call(N, lasp_converge_replicator, stats, [], ?TIMEOUT) of
        #{vars := #{Var := #{sent_messages := M}}} -> M;
        _ -> 0
    catch _:_ -> 0
    end.

%% The window from `A' to `B', and for target_p99 the figures of the
%% samples window from `SA' to `B' when it closes (`{M, true}'; it stays
%% open, `{M, false}', while it has too few finished updates); `restart'
%% when the tracker's counters went back (reset).
measure(A, SA, B, #c{min_samples = MinS, max_window = MaxW, since_us = Since}) ->
    W = maps:get(at_ms, B) - maps:get(at_ms, A),
    Base = #{at_ms => maps:get(at_ms, B), window_ms => W},
    M1 = case {A, B} of
             {#{updates := U0, finished := F0}, #{updates := U1, finished := F1}}
               when U1 >= U0, F1 >= F0 ->
                 Base#{updates => U1 - U0, rate => (U1 - U0) * 1000 / max(1, W),
                       finished => F1 - F0};
             {#{updates := _}, #{updates := _}} ->
                 restart;
             _ ->
                 Base
         end,
    case M1 of
        restart ->
            restart;
        _ ->
            Msgs = max(0, maps:get(messages, B) - maps:get(messages, A)),
            M2 = M1#{messages => Msgs, message_rate => Msgs * 1000 / max(1, W)},
            case maps:find(records, B) of
                {ok, Rs} ->
                    %% The updates that finished in the window and were
                    %% made under the interval in force.
                    SW = maps:get(at_ms, B) - maps:get(at_ms, SA),
                    Recent = after_last(maps:get(records, SA, []), Rs),
                    New = [V || {_, Ts, V} <- Recent, Ts >= Since, V =/= orphaned],
                    case length(New) < MinS andalso SW < MaxW of
                        true ->
                            {M2, false};
                        false ->
                            {maps:merge(M2#{samples => length(New), samples_ms => SW,
                                            unconverged => length([u || unconverged <- New])},
                                        ?P:window_figures(New)),
                             true}
                    end;
                error ->
                    {M2, true}
            end
    end.
