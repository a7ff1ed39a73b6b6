%% @doc Resident replicas: a CRDT state held decoded in the native library,
%% merged into and mutated in place, and moved between processes and nodes
%% as a compact binary.
%%
%% <b>A replica is a MUTABLE handle, like an ETS table.</b> `merge/2' and
%% `mutate/3' change the replica they are given and return `ok' (`mutate/3'
%% returns the delta); they do not return a new value. Any process holding
%% the reference may read or write it. Every call is atomic (a read-write
%% lock inside the library): a reader sees the state before or after each
%% write, never half of one, and sees every write that returned before the
%% read started. Use `copy/1' for a snapshot that later writes do not
%% touch. The replica is freed when no process refers to it any more
%% (garbage collection); it has no owner process and survives its creator.
%% A reference is only meaningful in the VM that created it: send
%% `to_binary/1' to other nodes.
%%
%% What is kept, and what a merge costs:
%% <ul>
%% <li>`state_gset' and `state_gcounter' are held in ordered maps keyed by
%%   an order-preserving encoding of their elements (actors): merging `m'
%%   entries into a replica of `n' costs O(m log n), not a copy of the
%%   state; `mutate/3' costs O(log n).</li>
%% <li>`state_twopset' is held as two such maps (added, removed): a merge
%%   touches only the incoming elements, O(m log n).</li>
%% <li>`state_orset' is held as an ordered map from element to its token
%%   list: a merge touches only the incoming elements, O(m log n).</li>
%% <li>`state_awset' is held as an ordered map from element to dot set,
%%   an index from each dot to its element, and the causal context: a merge
%%   touches only the incoming elements and those holding a dot the
%%   incoming context covers, O((m + k) log n + context).</li>
%% <li>Every other type of `lasp_converge_crdt:types()' (pncounter,
%%   gmap, awmap, ...) and a keyed type holding
%%   terms with no key (pids, ports, references, funs, maps, bignums,
%%   bitstrings) is held as the library's decoded state: every call works
%%   and answers as types does, and a merge costs the library's term merge,
%%   O(n + m), without re-reading the resident state from Erlang terms.
%%   `is_keyed/1' tells which.</li>
%% </ul>
%% `to_term/1', `query/1', `equal/2' and the inflation checks read the
%% whole state: O(n).
%%
%% Every answer is term for term what lasp-lang/types 0.1.8 gives:
%% `to_term(R)' after `merge(R, X)' is `lasp_converge_crdt:merge(T, X)' of
%% the previous `to_term(R)' `T' (the replica is the first argument, so on
%% `==' entries its terms are kept and `ordsets:union/2''s role swap is
%% followed), and `mutate(Op, Actor, R)' returns `Type:delta_mutate/3''s
%% delta and leaves `to_term(R)' equal to `Type:mutate/3''s result.
%%
%% <b>Binary format</b> (`to_binary/1'): `<<"LCR", 1, Layout, Body>>'. A
%% gset is its element count and each element's key; a gcounter its actor
%% count and each actor's key followed by its count as a 64-bit integer;
%% any other type `term_to_binary({Type, Payload})' without its leading
%% version byte. A key encodes a term so that comparing keys with `memcmp'
%% orders them as Erlang's term order (numbers by value, then atoms,
%% tuples by size then elements, `[]', lists, binaries); a last part, one
%% byte per number, tells integers from floats, so `1' and `1.0' share a
%% position in the order but round-trip exactly. Keys are strictly
%% ascending in a binary. `from_binary/1' and `merge/2' validate
%% everything (magic, version, lengths, order, canonical keys, no bytes
%% left over, no atom this VM does not have) and raise
%% `error:{badcrdt, {bad_binary, Why}}' with `Why' one of `bad_magic',
%% `bad_version', `truncated', `unsorted', `malformed' or `unsupported'
%% (an unknown atom). A binary is a reference-counted binary past 64 bytes,
%% so sending it to another process copies nothing. A gset or gcounter
%% keeps its binary until its state changes (a merge of a binary or a
%% mutation updates it in place of writing it again): `to_binary/1' then
%% returns it without a copy, and a merge of a binary of the same layout
%% compares the two bytes first, decoding only the entries that differ.
%%
%% Bad state terms raise `error:{badcrdt, Why}' as `lasp_converge_crdt'
%% does; a reference that is not a replica raises `badarg'.
%%
%% Scheduling: calls over more than about 2,000 entries (or 64 KiB of
%% binary) run on a dirty CPU scheduler; smaller ones on the caller's.
-module(lasp_converge_replica).

-export([new/1, from_term/1, to_term/1, from_binary/1, to_binary/1,
         merge/2, mutate/3, query/1, size/1, type/1,
         equal/2, is_inflation/2, is_strict_inflation/2,
         copy/1, is_keyed/1, is_replica/1]).
-export([merge_added/3]).

-export_type([replica/0, input/0]).

-opaque replica() :: reference().
%% What `merge/2', `equal/2' and the inflation checks accept.
-type input() :: replica() | lasp_converge_crdt:crdt() | binary().

-define(SET_TYPES, [state_gset, state_twopset, state_orset, state_awset,
                    state_mvregister, state_awset_ps]).
-define(TWIN(Call, Dirty), try Call catch error:lasp_converge_dirty -> Dirty end).

%% @doc A replica holding the bottom state of `Type'.
-spec new(lasp_converge_crdt:type()) -> replica().
new(Type) ->
    lasp_converge_nif:replica_new(Type).

%% @doc A replica holding the state term `Crdt' (validated as
%% `lasp_converge_crdt' validates its inputs).
-spec from_term(lasp_converge_crdt:crdt()) -> replica().
from_term(Crdt) ->
    ?TWIN(lasp_converge_nif:replica_from_term(Crdt),
          lasp_converge_nif:replica_from_term_dirty(Crdt)).

%% @doc The state term, exactly as types would hold it.
-spec to_term(replica()) -> lasp_converge_crdt:crdt().
to_term(R) ->
    ?TWIN(lasp_converge_nif:replica_to_term(R),
          lasp_converge_nif:replica_to_term_dirty(R)).

%% @doc A replica read from `to_binary/1''s output (validated).
-spec from_binary(binary()) -> replica().
from_binary(B) ->
    ?TWIN(lasp_converge_nif:replica_from_binary(B),
          lasp_converge_nif:replica_from_binary_dirty(B)).

%% @doc The state in the binary format (see the module doc).
-spec to_binary(replica()) -> binary().
to_binary(R) ->
    ?TWIN(lasp_converge_nif:replica_to_binary(R),
          lasp_converge_nif:replica_to_binary_dirty(R)).

%% @doc Merge `Incoming' (a state or delta term, a binary, or another
%% replica) into `R', in place: afterwards `to_term(R)' is
%% `Type:merge(to_term(R) before, Incoming)'.
-spec merge(replica(), input()) -> ok.
merge(R, Incoming) ->
    ?TWIN(lasp_converge_nif:replica_merge(R, Incoming),
          lasp_converge_nif:replica_merge_dirty(R, Incoming)).

%% @private `merge/2' telling what `Incoming' added, for a replicator
%% that reports it: `unchanged' when the merge
%% adds nothing (`R' is then left untouched, as
%% `lasp_converge_crdt:merge_added/2' returns its left argument itself),
%% else `changed', or with `WantAdded' `{changed, Added}', `Added' term for
%% term the second element of `lasp_converge_crdt:merge_added/2' of the
%% state before and `Incoming'. A keyed gset or gcounter given a binary of
%% its layout walks it against its own binary, decoding only the entries
%% it adds, and validates all of it before writing; otherwise the decoded
%% states are compared whole, O(n + m).
-spec merge_added(replica(), input(), boolean()) ->
          unchanged | changed | {changed, lasp_converge_crdt:crdt()}.
merge_added(R, Incoming, WantAdded) ->
    ?TWIN(lasp_converge_nif:replica_merge_added(R, Incoming, WantAdded),
          lasp_converge_nif:replica_merge_added_dirty(R, Incoming, WantAdded)).

%% @doc `Type:delta_mutate(Op, Actor, State)', applied to `R' in place as
%% `Type:mutate/3' would; returns `{ok, Delta}' (ship `Delta' to other
%% replicas) or types' `{error, Reason}', leaving `R' unchanged.
-spec mutate(term(), term(), replica()) -> {ok, lasp_converge_crdt:crdt()} | {error, term()}.
mutate(Op, Actor, R) ->
    ?TWIN(lasp_converge_nif:replica_mutate(Op, Actor, R),
          lasp_converge_nif:replica_mutate_dirty(Op, Actor, R)).

%% @doc `Type:query(State)', shaped as types shapes it (an OTP `sets'
%% set for the set-valued types; see `lasp_converge_crdt:query/1').
-spec query(replica()) -> term().
query(R) ->
    case type(R) of
        T when T =:= state_gmap; T =:= state_awmap; T =:= state_pair ->
            %% Sets nest inside composites where the state term says.
            lasp_converge_crdt:query(to_term(R));
        T ->
            V = ?TWIN(lasp_converge_nif:replica_query(R),
                      lasp_converge_nif:replica_query_dirty(R)),
            case lists:member(T, ?SET_TYPES) of
                true -> sets:from_list(V);
                false -> V
            end
    end.

%% @doc Entries held: elements of a set, actors of a counter, keys of a
%% map or dot map; for other types the length of the payload's list, or 1.
-spec size(replica()) -> non_neg_integer().
size(R) ->
    ?TWIN(lasp_converge_nif:replica_size(R),
          lasp_converge_nif:replica_size_dirty(R)).

%% @doc The type atom, e.g. `state_gset'.
-spec type(replica()) -> lasp_converge_crdt:type().
type(R) ->
    lasp_converge_nif:replica_type(R).

%% @doc `Type:equal(A, B)'; each side a replica, a state term or a binary.
-spec equal(input(), input()) -> boolean().
equal(A, B) ->
    ?TWIN(lasp_converge_nif:replica_equal(A, B),
          lasp_converge_nif:replica_equal_dirty(A, B)).

%% @doc `Type:is_inflation(A, B)': is `B' at least `A'?
-spec is_inflation(input(), input()) -> boolean().
is_inflation(A, B) ->
    ?TWIN(lasp_converge_nif:replica_is_inflation(A, B),
          lasp_converge_nif:replica_is_inflation_dirty(A, B)).

%% @doc `Type:is_strict_inflation(A, B)'.
-spec is_strict_inflation(input(), input()) -> boolean().
is_strict_inflation(A, B) ->
    ?TWIN(lasp_converge_nif:replica_is_strict_inflation(A, B),
          lasp_converge_nif:replica_is_strict_inflation_dirty(A, B)).

%% @doc A new replica holding the current state of `R': later writes to
%% either do not affect the other.
-spec copy(replica()) -> replica().
copy(R) ->
    from_binary(to_binary(R)).

%% @doc Whether merges into `R' cost O(m log n) (a keyed gset, gcounter,
%% twopset, orset or awset)
%% rather than the library's term merge.
-spec is_keyed(replica()) -> boolean().
is_keyed(R) ->
    lasp_converge_nif:replica_is_keyed(R).

%% @doc Whether `X' is a replica of this VM.
-spec is_replica(term()) -> boolean().
is_replica(X) when is_reference(X) ->
    try lasp_converge_nif:replica_type(X) of
        _ -> true
    catch
        error:badarg -> false
    end;
is_replica(_) ->
    false.
