%% @doc Native lattice operations on Lasp's state-based CRDTs.
%%
%% States are the exact terms of lasp-lang/types 0.1.8, the library a Lasp
%% 0.8 node runs: `{state_orset, Payload}', `{state_gcounter, Payload}', ...
%% Every function here returns, term for term, what the type's own module
%% returns: `lasp_converge_crdt:merge(A, B)' can stand wherever
%% `state_orset:merge(A, B)' stood. Which of two `==' terms a result keeps,
%% and the argument order of `merge/2', follow types exactly.
%%
%% Bad input never crashes the VM and never gives a silently wrong answer:
%% it raises `error:{badcrdt, Why}' with `Why' one of
%% `not_a_crdt', `unknown_type', `{type_mismatch, T1, T2}',
%% `{malformed, T}', `{unsorted, T}', `{improper_list, T}', `too_deep',
%% `too_large', `{conflict, T}' (types itself raises, e.g. two different
%% ivar values), `{not_identical, T}' (dot-map keys `==' but not `=:='),
%% or `{unknown_op, T}'. No atom is ever created from the input.
%%
%% Scheduling: a call first weighs its inputs (one unit per list cell,
%% tuple element or immediate, one per 64 bytes of a binary; maps and
%% odd-sized bitstrings count as heavy). Inputs up to 4,000 units run on the
%% calling scheduler, a few microseconds to about a hundred; heavier ones
%% run on a dirty CPU scheduler, so no call holds a normal scheduler long,
%% whether its weight comes from many entries or from a few huge elements.
%%
%% @reference Paulo Sérgio Almeida, Ali Shoker, Carlos Baquero (2016):
%% Delta State Replicated Data Types. [https://arxiv.org/abs/1603.01529]
-module(lasp_converge_crdt).

-export([new/1, types/0,
         merge/2, merge_all/1,
         equal/2, is_inflation/2, is_strict_inflation/2, is_bottom/1,
         query/1, delta/2,
         mutate/3, delta_mutate/3,
         to_binary/1, from_binary/1]).
%% Internal: for the replicator (lasp_converge_replicator).
-export([merge_added/2, mutate_delta/3]).

-export_type([crdt/0, type/0, why/0]).

-type type() :: atom().
-type crdt() :: {type(), term()}.
-type why() :: atom() | tuple().

-define(SET_TYPES, [state_gset, state_twopset, state_orset, state_awset,
                    state_mvregister, state_awset_ps]).

%% @doc The bottom state of `Type', as `Type:new()' returns it.
-spec new(type()) -> crdt().
new(Type) ->
    lasp_converge_nif:crdt_new(Type).

%% @doc The types this library implements natively.
-spec types() -> [type()].
types() ->
    lasp_converge_nif:crdt_types().

%% @doc `Type:merge(A, B)'. When the merge adds nothing to `A' (or `B'),
%% that argument itself is returned.
-spec merge(crdt(), crdt()) -> crdt().
merge(A, B) ->
    try lasp_converge_nif:crdt_merge(A, B)
    catch error:lasp_converge_dirty -> lasp_converge_nif:crdt_merge_dirty(A, B)
    end.

%% @doc Merge many states in one native call:
%% `merge(...merge(merge(S1, S2), S3)..., Sn)'. The list must not be empty
%% (`[]' raises `{badcrdt, not_a_crdt}': there is no type to return).
-spec merge_all([crdt(), ...]) -> crdt().
merge_all(States) ->
    try lasp_converge_nif:crdt_merge_all(States)
    catch error:lasp_converge_dirty -> lasp_converge_nif:crdt_merge_all_dirty(States)
    end.

%% @doc `Type:equal(A, B)'.
-spec equal(crdt(), crdt()) -> boolean().
equal(A, B) ->
    try lasp_converge_nif:crdt_equal(A, B)
    catch error:lasp_converge_dirty -> lasp_converge_nif:crdt_equal_dirty(A, B)
    end.

%% @doc `Type:is_inflation(A, B)': whether `B' is at least `A'.
-spec is_inflation(crdt(), crdt()) -> boolean().
is_inflation(A, B) ->
    try lasp_converge_nif:crdt_is_inflation(A, B)
    catch error:lasp_converge_dirty -> lasp_converge_nif:crdt_is_inflation_dirty(A, B)
    end.

%% @doc `Type:is_strict_inflation(A, B)'.
-spec is_strict_inflation(crdt(), crdt()) -> boolean().
is_strict_inflation(A, B) ->
    try lasp_converge_nif:crdt_is_strict_inflation(A, B)
    catch error:lasp_converge_dirty -> lasp_converge_nif:crdt_is_strict_inflation_dirty(A, B)
    end.

%% @doc `Type:is_bottom(S)'.
-spec is_bottom(crdt()) -> boolean().
is_bottom(S) ->
    try lasp_converge_nif:crdt_is_bottom(S)
    catch error:lasp_converge_dirty -> lasp_converge_nif:crdt_is_bottom_dirty(S)
    end.

%% @doc `Type:query(S)': an OTP `sets' set for the set-valued types (gset,
%% twopset, orset, awset, mvregister, awset_ps), an integer for counters, a
%% boolean for flags, the stored value for registers. Composites nest:
%% gmap gives `[{Key, Q}]', awmap an orddict `Key -> Q' and pair `{Q1, Q2}',
%% each `Q' with its own type's shape (sets included).
-spec query(crdt()) -> term().
query(S) ->
    Value = try lasp_converge_nif:crdt_query(S)
            catch error:lasp_converge_dirty -> lasp_converge_nif:crdt_query_dirty(S)
            end,
    to_sets(S, Value).

%% The NIF gives every set-valued part of a query as a list. Turn each one
%% into a `sets' set, at every nesting level, as types' own query does. The
%% state's structure says where the sets are; the value itself is never
%% inspected, since it may hold any user term (lists included).
to_sets({Type, _} = S, Value) ->
    case lists:member(Type, ?SET_TYPES) of
        true -> sets:from_list(Value);
        false -> composite_to_sets(S, Value)
    end.

composite_to_sets({state_gmap, {_CType, Entries}}, Value) ->
    %% One `{Key, Q}' per entry, in the state's key order.
    lists:zipwith(fun({_, V}, {K, Q}) -> {K, to_sets(V, Q)} end, Entries, Value);
composite_to_sets({state_pair, {Fst, Snd}}, {Q1, Q2}) ->
    {to_sets(Fst, Q1), to_sets(Snd, Q2)};
composite_to_sets({state_awmap, {CType, _}}, Value) ->
    awmap_to_sets(CType, Value);
composite_to_sets(_, Value) ->
    Value.

%% An awmap's query is an orddict `Key -> query of the value type', the
%% value type named by the CType (`Type' or `{state_awmap, [Sub]}').
awmap_to_sets(CType, Value) ->
    [{K, ctype_to_sets(CType, Q)} || {K, Q} <- Value].

ctype_to_sets(CType, Q) when CType =:= state_awset; CType =:= state_mvregister ->
    sets:from_list(Q);
ctype_to_sets({state_awmap, [Sub]}, Q) ->
    awmap_to_sets(Sub, Q);
ctype_to_sets(_, Q) ->
    Q.

%% @doc What `A' holds that `B' lacks, in the spirit of types'
%% `delta(A, {state, B})': `merge(delta(A, B), B)' equals `merge(A, B)',
%% and it is usually much smaller to send. Unlike the other functions here
%% it is not always term for term types' answer, nor as small: `delta(A, A)'
%% of a causal type (awset, mvregister, awset_ps, ...), or of a gmap or pair
%% holding one, is `A' itself where types gives bottom; and an lwwregister
%% whose `B' has a negative timestamp gives `A' where types gives bottom
%% (which merged into `B' is not `merge(A, B)').
-spec delta(crdt(), crdt()) -> crdt().
delta(A, B) ->
    try lasp_converge_nif:crdt_delta(A, B)
    catch error:lasp_converge_dirty -> lasp_converge_nif:crdt_delta_dirty(A, B)
    end.

%% @doc `Type:mutate(Op, Actor, S)': the state after one local operation,
%% `{ok, S1}', or `{error, Reason}' where types answers so. Operations are
%% the type's own: `increment', `decrement', `{add, E}', `{add_all, Es}',
%% `{rmv, E}', `{rmv_all, Es}', `{set, Ts, V}', `true', `enable', ...
%% Unique tokens are 20 random bytes, as types draws them.
-spec mutate(term(), term(), crdt()) -> {ok, crdt()} | {error, term()}.
mutate(Op, Actor, S) ->
    try lasp_converge_nif:crdt_mutate(Op, Actor, S)
    catch error:lasp_converge_dirty -> lasp_converge_nif:crdt_mutate_dirty(Op, Actor, S)
    end.

%% @doc `Type:delta_mutate(Op, Actor, S)': only the delta of the operation,
%% what Lasp's delta-based mode sends.
-spec delta_mutate(term(), term(), crdt()) -> {ok, crdt()} | {error, term()}.
delta_mutate(Op, Actor, S) ->
    try lasp_converge_nif:crdt_delta_mutate(Op, Actor, S)
    catch error:lasp_converge_dirty -> lasp_converge_nif:crdt_delta_mutate_dirty(Op, Actor, S)
    end.

%% @private `{merge(L, R), delta(R, L)}': the merged state and what `R'
%% added to `L', each input decoded once. When the merge adds nothing (its
%% result is `equal/2' to `L'), `{L, Bottom}' with `L' the argument itself,
%% so `{L, _}' matches it. (On an lwwregister timestamp tie `R' wins the
%% merge but adds a bottom, as `delta/2' says.)
-spec merge_added(crdt(), crdt()) -> {crdt(), crdt()}.
merge_added(L, R) ->
    try lasp_converge_nif:crdt_merge_added(L, R)
    catch error:lasp_converge_dirty -> lasp_converge_nif:crdt_merge_added_dirty(L, R)
    end.

%% @private `mutate/3' and `delta_mutate/3' of one operation from one
%% decode of `S': `{ok, S1, Delta}', `S1' term for term what `mutate/3'
%% gives (`merge(Delta, S)'), or `{error, Reason}'.
-spec mutate_delta(term(), term(), crdt()) -> {ok, crdt(), crdt()} | {error, term()}.
mutate_delta(Op, Actor, S) ->
    try lasp_converge_nif:crdt_mutate_delta(Op, Actor, S)
    catch error:lasp_converge_dirty -> lasp_converge_nif:crdt_mutate_delta_dirty(Op, Actor, S)
    end.

%% @doc The state in `lasp_converge_replica''s binary format: compact,
%% versioned, keys ordered for `memcmp' (see `lasp_converge_replica').
-spec to_binary(crdt()) -> binary().
to_binary(Crdt) ->
    lasp_converge_replica:to_binary(lasp_converge_replica:from_term(Crdt)).

%% @doc The state term of a binary from `to_binary/1' or
%% `lasp_converge_replica:to_binary/1', validated; bad bytes raise
%% `error:{badcrdt, {bad_binary, Why}}'.
-spec from_binary(binary()) -> crdt().
from_binary(Bin) ->
    lasp_converge_replica:to_term(lasp_converge_replica:from_binary(Bin)).
