%% @doc Supervises the trackers of this node (one `lasp_converge_tracker'
%% per tracked variable, `temporary': a tracker that dies is not restarted,
%% the variable is simply no longer tracked here) and owns the registry, a
%% public ETS table from variable to its local tracker.
-module(lasp_converge_sup).
-behaviour(supervisor).

-export([start_link/0, start_tracker/2, registry/0]).
-export([init/1]).

-define(REGISTRY, lasp_converge_vars).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @doc The registry table's name.
-spec registry() -> atom().
registry() -> ?REGISTRY.

%% @doc Start this node's tracker of `Var' (`Role' as for
%% `lasp_converge_tracker:start_link/2').
-spec start_tracker(term(), term()) -> {ok, pid()} | {error, term()}.
start_tracker(Var, Role) ->
    Spec = #{id => {lasp_converge_tracker, Var},
             start => {lasp_converge_tracker, start_link, [Var, Role]},
             restart => temporary,
             shutdown => 5000,
             type => worker,
             modules => [lasp_converge_tracker]},
    case supervisor:start_child(?MODULE, Spec) of
        {ok, Pid} when is_pid(Pid) -> {ok, Pid};
        %% The tracker's init answers `ignore' when the variable is tracked.
        {ok, undefined} -> {error, already_tracked};
        {error, {already_started, _}} -> {error, already_tracked};
        {error, already_present} -> {error, already_tracked};
        {error, Reason} -> {error, Reason}
    end.

%% @private
init([]) ->
    _ = ets:new(?REGISTRY, [named_table, public, set, {read_concurrency, true}]),
    {ok, {#{strategy => one_for_one, intensity => 10, period => 10}, []}}.
