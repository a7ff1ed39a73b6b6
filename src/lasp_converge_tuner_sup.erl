%% @doc Supervises this node's tuner controllers
%% (`lasp_converge_tuner_controller'), one per controlled variable,
%% `temporary'. Controllers register themselves in `lasp_converge_registry',
%% where `lasp_converge_tuner' finds them.
-module(lasp_converge_tuner_sup).
-behaviour(supervisor).

-export([start_link/0, start_controller/3, stop_controller/1]).
-export([init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @doc Start a controller of `Var' (arguments as for
%% `lasp_converge_tuner_controller:start_link/3').
-spec start_controller(term(), term(), map()) -> {ok, pid()} | {error, term()}.
start_controller(Var, Policy, Opts) ->
    try supervisor:start_child(?MODULE, [Var, Policy, Opts]) of
        {ok, Pid} when is_pid(Pid) -> {ok, Pid};
        %% The controller's init answers `ignore' when `Var' has one.
        {ok, undefined} -> {error, already_started};
        {error, {error, Reason}} -> {error, Reason};
        {error, Reason} -> {error, Reason}
    catch exit:{noproc, _} ->
            {error, not_started}
    end.

%% @doc Stop the controller `Pid'.
-spec stop_controller(pid()) -> ok | {error, not_found}.
stop_controller(Pid) ->
    try supervisor:terminate_child(?MODULE, Pid)
    catch exit:{noproc, _} -> {error, not_found}
    end.

%% @private
init([]) ->
    Controller = #{id => lasp_converge_tuner_controller,
                   start => {lasp_converge_tuner_controller, start_link, []},
                   restart => temporary, shutdown => 5000, type => worker},
    {ok, {#{strategy => simple_one_for_one, intensity => 10, period => 10}, [Controller]}}.
