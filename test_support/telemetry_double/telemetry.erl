%% A stand-in for the `telemetry' library, for tests only: `execute/3'
%% sends `{telemetry_double, Node, Event, Measurements, Metadata}' to the
%% process stored under `telemetry_double_sink' in persistent_term (nothing
%% when none is). Compiled and loaded by the tests that need it, never on
%% the code path: see README.md.
-module(telemetry).

-export([execute/3]).

execute(Event, Measurements, Metadata) ->
    case persistent_term:get(telemetry_double_sink, undefined) of
        Pid when is_pid(Pid) -> Pid ! {telemetry_double, node(), Event, Measurements, Metadata};
        _ -> ok
    end,
    ok.
