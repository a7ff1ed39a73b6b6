%% TEST DOUBLE of Lasp 0.8's `lasp' module, for lasp_converge's tests only
%% (test_support/lasp_double/README.md). It is never part of the
%% lasp_converge application: the tests compile it into its own directory
%% and put that on the code path of the nodes that play Lasp.
%%
%% The API lasp_converge_lasp uses, with Lasp 0.8's return shapes and
%% caveats:
%%   declare(Id, Type)      -> {ok, {Id, Type, Metadata, State}}; an id
%%                             already declared keeps its state
%%   update(Id, Op, Actor)  -> {ok, {Id, Type, Metadata, State}}; Actor must
%%                             be a binary, a list or an atom (else error
%%                             badarg, raised in the caller); an undeclared
%%                             id is declared with the type in the id
%%   query(Id)              -> {ok, Value}
%%   read(Id, undefined)    -> {ok, {Id, Type, Metadata, State}} at once
%%                             ({error, not_found} when undeclared; other
%%                             thresholds are not implemented)
%%   stream(Id, Fun)        -> ok; Fun(Value) on every local change, merges
%%                             included, with the queried value; on an id
%%                             not declared here the stream process exits
%%                             with not_found; a Fun that raises kills it
%%   propagate(Id)          -> ok; push Id's state to every member now
-module(lasp).

-export([declare/2, update/3, query/1, read/2, stream/2, propagate/1]).

declare(Id, Type) ->
    lasp_double:call({declare, Id, Type}).

update(Id, Op, Actor) when is_binary(Actor); is_list(Actor); is_atom(Actor) ->
    lasp_double:call({update, Id, Op, Actor});
update(_Id, _Op, Actor) ->
    erlang:error({badarg, Actor}).

query(Id) ->
    lasp_double:call({query, Id}).

read(Id, undefined) ->
    lasp_double:read(Id);
read(_Id, Threshold) ->
    erlang:error({not_in_double, {threshold, Threshold}}).

stream(Id, Fun) when is_function(Fun, 1) ->
    lasp_double:call({stream, Id, Fun}).

propagate(Id) ->
    lasp_double:call({propagate, Id}).
