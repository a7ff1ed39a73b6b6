%% @doc Telemetry events and structured logs, with no dependency on the
%% `telemetry' library.
%%
%% == Events ==
%%
%% Where a module named `telemetry' exporting `execute/3' is loaded (the
%% `telemetry' application, or anything that attached a handler), these
%% events are emitted with `telemetry:execute/3'; where it is not, nothing
%% is emitted and nothing fails. Whether it is loaded is asked once with
%% `code:ensure_loaded/1', then with `erlang:function_exported/3' alone (a
%% few nanoseconds), so a `telemetry' loaded later is found too.
%%
%% <table>
%% <tr><th>Event</th><th>Measurements</th><th>Metadata</th><th>Emitted by</th></tr>
%% <tr><td>`[lasp_converge, update, converged]'</td><td>`convergence_us'</td>
%%     <td>`var', `origin' (the writer's node), `seq', `node' (the
%%     aggregating node)</td>
%%     <td>the variable's tracker process on the aggregating node, at each
%%     of its ticks (every `tick' ms, 100 by default), for the updates that
%%     converged since the previous tick</td></tr>
%% <tr><td>`[lasp_converge, tuner, change]'</td><td>`old', `new' (numbers;
%%     `propagate_on_update' as 0 or 1)</td>
%%     <td>`var', `key', `old', `new', `why', `node'</td>
%%     <td>the controller (`lasp_converge_tuner'), once per setting it
%%     changed</td></tr>
%% <tr><td>`[lasp_converge, fault, applied]'</td><td>`system_time' (µs)</td>
%%     <td>`fault', `args', `node'</td>
%%     <td>the cluster's owner (`lasp_converge_fault'), once the fault is in
%%     force</td></tr>
%% <tr><td>`[lasp_converge, replicator, round]'</td><td>`messages', `bytes'</td>
%%     <td>`var', `node'</td>
%%     <td>each node's replicator, per variable, after each timed round</td></tr>
%% </table>
%%
%% Handlers run in the emitting process, as telemetry handlers always do;
%% none of these is a process whose updates or observations are measured
%% except the replicator, which emits once per round, not per update.
%% Updates and observations themselves emit nothing: converged updates are
%% read back from the tracker in its own process.
%%
%% == Logs ==
%%
%% Through OTP `logger', with metadata `#{domain => [lasp_converge]}' plus
%% `var' and `node' where they apply: a tuner change and an applied fault
%% at `notice'; updates that end unconverged (past the horizon, or pushed
%% out by the pending cap) at `warning', once per tracker tick that saw
%% any, with their count and the nodes that had not seen them. Nothing is
%% logged per update.
%%
%% == Counters ==
%%
%% Tuner changes and applied faults are also counted on the node that made
%% them, for `lasp_converge_metrics'.
-module(lasp_converge_telemetry).

-include_lib("kernel/include/logger.hrl").

-export([enabled/0, execute/3]).
-export([tracker_tick/3, tuner_changes/2, fault_applied/1, replicator_round/3, counts/0]).


-define(CHECKED, {?MODULE, checked}).
-define(DOMAIN, [lasp_converge]).

%% @doc Whether events are emitted: a `telemetry' module with `execute/3'
%% is loaded (looked for on the code path the first time only).
-spec enabled() -> boolean().
enabled() ->
    erlang:function_exported(telemetry, execute, 3) orelse first_check().

first_check() ->
    case persistent_term:get(?CHECKED, false) of
        true ->
            false;
        false ->
            persistent_term:put(?CHECKED, true),
            _ = code:ensure_loaded(telemetry),
            erlang:function_exported(telemetry, execute, 3)
    end.

%% @doc Emit `Event' when telemetry is loaded; `ok' in every case (a
%% handler that raises is telemetry's business, and never ours).
-spec execute([atom()], map(), map()) -> ok.
execute(Event, Measurements, Metadata) ->
    case enabled() of
        true ->
            try optional(telemetry, execute, [Event, Measurements, Metadata]) of
                _ -> ok
            catch _:_ -> ok
            end;
        false ->
            ok
    end.

%% @private Called by the tracker of `Var' (aggregator) at each tick: emit
%% the converged updates finished since the previous tick and log the
%% unconverged ones. `Names' maps the tracker's node numbers to nodes. The
%% count already read is kept in the tracker's process dictionary.
-spec tracker_tick(term(), lasp_converge_nif:tracker(), #{non_neg_integer() => node()}) -> ok.
tracker_tick(Var, Res, Names) ->
    safely(fun() -> read_finished(Var, Res, Names) end).

read_finished(Var, Res, Names) ->
    Key = {?MODULE, finished},
    Since = case get(Key) of
                undefined -> 0;
                N -> N
            end,
    Emit = enabled(),
    %% Without telemetry only the unconverged records are read.
    case lasp_converge_nif:tracker_finished_since(Res, Since, Emit) of
        {ok, Since, _} ->
            ok;
        {ok, Finished, Recs} ->
            put(Key, Finished),
            Name = fun(I) -> maps:get(I, Names, I) end,
            _ = Emit andalso
                lists:foreach(
                  fun(#{outcome := converged, convergence_us := C, origin := O, seq := S}) ->
                          execute([lasp_converge, update, converged], #{convergence_us => C},
                                  #{var => Var, origin => Name(O), seq => S, node => node()});
                     (_) ->
                          ok
                  end, Recs),
            unconverged(Var, [R || R = #{outcome := unconverged} <- Recs], Name);
        {error, _} ->
            ok
    end.

unconverged(_Var, [], _Name) ->
    ok;
unconverged(Var, Recs, Name) ->
    Missing = lists:usort([Name(I) || #{missing := Ms} <- Recs, I <- Ms]),
    Reasons = lists:usort([R || #{reason := R} <- Recs]),
    ?LOG_WARNING("~b update(s) of ~0tp unconverged (~0p): not seen by ~0p",
                 [length(Recs), Var, Reasons, Missing],
                 #{domain => ?DOMAIN, var => Var, node => node(), count => length(Recs),
                   missing => Missing, reasons => Reasons}).

%% @private Called by a tuner controller with the changes it applied
%% (`lasp_converge_tuner:log/1' entries).
-spec tuner_changes(term(), [map()]) -> ok.
tuner_changes(Var, Entries) ->
    lists:foreach(fun(E) -> safely(fun() -> tuner_change(Var, E) end) end, Entries).

tuner_change(Var, #{key := K, old := Old, new := New} = E) ->
    bump({tuner_changes, Var, K}),
    Why = maps:get(why, E, undefined),
    ?LOG_NOTICE("tuner changed ~0p of ~0tp from ~0p to ~0p (~0tp)", [K, Var, Old, New, Why],
                #{domain => ?DOMAIN, var => Var, node => node(), key => K,
                  old => Old, new => New, why => Why}),
    execute([lasp_converge, tuner, change], #{old => num(Old), new => num(New)},
            #{var => Var, key => K, old => Old, new => New, why => Why, node => node()}).

%% @private Called by `lasp_converge_fault' with the event of a fault in
%% force (`#{at_us, fault, args}').
-spec fault_applied(map()) -> ok.
fault_applied(Event) ->
    safely(fun() -> fault_event(Event) end).

fault_event(#{fault := F, args := Args} = Event) ->
    bump({faults, F}),
    ?LOG_NOTICE("fault applied: ~0p ~0tp", [F, Args],
                #{domain => ?DOMAIN, node => node(), fault => F, args => Args}),
    execute([lasp_converge, fault, applied],
            #{system_time => maps:get(at_us, Event, erlang:system_time(microsecond))},
            #{fault => F, args => Args, node => node()}).

%% @private Called by the replicator after a timed round of `Var', with the
%% variable's message counters before and after it.
-spec replicator_round(term(), map(), map()) -> ok.
replicator_round(Var, Before, After) ->
    safely(fun() -> round_event(Var, Before, After) end).

round_event(Var, Before, After) ->
    case enabled() of
        true ->
            Diff = fun(K) -> maps:get(K, After, 0) - maps:get(K, Before, 0) end,
            execute([lasp_converge, replicator, round],
                    #{messages => Diff(sent_messages), bytes => Diff(sent_bytes)},
                    #{var => Var, node => node()});
        false ->
            ok
    end.

%% @doc This node's counts of tuner changes (`{tuner_changes, Var, Key}')
%% and applied faults (`{faults, Fault}'), since the application started.
-spec counts() -> [{tuple(), non_neg_integer()}].
counts() ->
    lasp_converge_registry:counts(?MODULE).

%% What is reported never stops what reports it (a tracker, a controller,
%% a replicator, a fault being applied).
safely(F) ->
    try F() of
        _ -> ok
    catch _:_ -> ok
    end.

%% In the registry; nothing when the application does not run here.
bump(K) ->
    lasp_converge_registry:bump({?MODULE, K}).

%% A call to a module this application does not depend on (so that xref
%% does not ask for it).
optional(M, F, A) -> apply(M, F, A).

num(true) -> 1;
num(false) -> 0;
num(N) when is_number(N) -> N;
num(_) -> 0.
