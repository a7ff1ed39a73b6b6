%% @doc The application's top supervisor (`rest_for_one'): each child
%% depends on the ones started before it.
%%
%% ```
%% lasp_converge_sup            rest_for_one
%% ├── lasp_converge_registry   worker: owns the registry table
%% ├── lasp_converge_tracker_sup    simple_one_for_one: trackers (temporary)
%% ├── lasp_converge_replicator     worker: this node's replicas
%% └── lasp_converge_tuner_sup      simple_one_for_one: tuner controllers (temporary)
%% '''
%%
%% The registry holds what the others register (trackers, observers,
%% journals, controllers): when it restarts, everything after it restarts
%% too, and nothing holds a stale entry. A tracker or a controller that
%% dies is not restarted (the variable is simply no longer tracked or
%% controlled here) and touches nothing else. See guides/internals.md.
-module(lasp_converge_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @private
init([]) ->
    Children = [#{id => lasp_converge_registry,
                  start => {lasp_converge_registry, start_link, []},
                  type => worker, shutdown => 5000},
                #{id => lasp_converge_tracker_sup,
                  start => {lasp_converge_tracker_sup, start_link, []},
                  type => supervisor, shutdown => infinity},
                #{id => lasp_converge_replicator,
                  start => {lasp_converge_replicator, start_link, []},
                  type => worker, shutdown => 5000},
                #{id => lasp_converge_tuner_sup,
                  start => {lasp_converge_tuner_sup, start_link, []},
                  type => supervisor, shutdown => infinity}],
    {ok, {#{strategy => rest_for_one, intensity => 10, period => 10}, Children}}.
