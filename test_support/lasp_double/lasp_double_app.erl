%% TEST DOUBLE of Lasp 0.8, for lasp_converge's tests only (see lasp.erl
%% here): the `lasp' application's callback module and its supervisor,
%% under which `lasp_double' runs.
-module(lasp_double_app).
-behaviour(application).
-behaviour(supervisor).

-export([start/2, stop/1, init/1]).

start(_Type, _Args) ->
    supervisor:start_link({local, lasp_double_sup}, ?MODULE, []).

stop(_State) ->
    ok.

init([]) ->
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10},
          [#{id => lasp_double, start => {lasp_double, start_link, []}}]}}.
