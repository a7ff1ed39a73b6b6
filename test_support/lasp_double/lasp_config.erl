%% TEST DOUBLE of Lasp 0.8's `lasp_config', for lasp_converge's tests only
%% (see lasp.erl here). Lasp keeps its settings in the `lasp' application's
%% environment (and a mochiglobal copy); so does the double.
%%   get(Key, Default) -> Value | Default
%%   set(Key, Value)   -> ok
-module(lasp_config).

-export([get/2, set/2]).

get(Key, Default) ->
    application:get_env(lasp, Key, Default).

set(Key, Value) ->
    application:set_env(lasp, Key, Value).
