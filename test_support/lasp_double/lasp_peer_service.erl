%% TEST DOUBLE of Lasp 0.8's `lasp_peer_service', for lasp_converge's tests
%% only (see lasp.erl here).
%%   members()  -> {ok, [Node]}, this node included
%%   join(Node) -> ok | {error, Reason}; both sides learn every member
-module(lasp_peer_service).

-export([members/0, join/1]).

members() ->
    lasp_double:call(members).

join(Node) when is_atom(Node) ->
    lasp_double:join(Node).
