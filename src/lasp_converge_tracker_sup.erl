%% @doc Supervises this node's trackers (`lasp_converge_tracker'), one per
%% tracked variable, `temporary': a tracker that dies is not restarted, the
%% variable is simply no longer tracked here. Trackers are found through
%% `lasp_converge_registry', never through this supervisor.
-module(lasp_converge_tracker_sup).
-behaviour(supervisor).

-export([start_link/0, start_tracker/2]).
-export([init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @doc Start this node's tracker of `Var' (`Role' as for
%% `lasp_converge_tracker:start_link/2'). `{error, already_tracked}' when
%% `Var' is tracked here; `{error, not_started}' when the application does
%% not run here.
-spec start_tracker(term(), lasp_converge_tracker:role()) -> {ok, pid()} | {error, term()}.
start_tracker(Var, Role) ->
    try supervisor:start_child(?MODULE, [Var, Role]) of
        {ok, Pid} when is_pid(Pid) -> {ok, Pid};
        %% The tracker's init answers `ignore' when the variable is tracked.
        {ok, undefined} -> {error, already_tracked};
        {error, Reason} -> {error, Reason}
    catch exit:{noproc, _} ->
            {error, not_started}
    end.

%% @private
init([]) ->
    Tracker = #{id => lasp_converge_tracker,
                start => {lasp_converge_tracker, start_link, []},
                restart => temporary, shutdown => 5000, type => worker},
    {ok, {#{strategy => simple_one_for_one, intensity => 10, period => 10}, [Tracker]}}.
