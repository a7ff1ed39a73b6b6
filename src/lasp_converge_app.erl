%% @doc The `lasp_converge' application: starts `lasp_converge_sup' (the
%% registry, the tracker supervisor, the replicator and the tuner
%% supervisor; see guides/internals.md).
-module(lasp_converge_app).
-behaviour(application).

-export([start/2, stop/1]).

-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_Type, _Args) ->
    lasp_converge_sup:start_link().

-spec stop(term()) -> ok.
stop(_State) ->
    ok.
