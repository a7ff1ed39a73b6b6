%% @doc Binary payloads: Lasp variables of `state_gset' and `state_gcounter'
%% holding `{Type, Bin}', `Bin' the binary format of
%% `lasp_converge_replica:to_binary/1', instead of types' lists.
%%
%% Switched on by `lasp_converge_accel:accelerate(#{payload => binary})'
%% and off by `decelerate' (or `accelerate(#{payload => term})'). While
%% it is on, the accelerated `state_gset' and `state_gcounter' of a node
%% answer every call Lasp makes with either payload:
%% <ul>
%% <li>`new/0' returns the binary bottom, so variables declared from then
%%   on hold binaries;</li>
%% <li>`merge/2' of two binaries is a new binary, made by walking both
%%   sorted key lists and copying entries as bytes
%%   (`lasp_converge_nif:payload_merge/2'); `is_inflation/2',
%%   `is_strict_inflation/2' and `equal/2' of two binaries walk them
%%   likewise, except right after a merge in the same process:
%%   `is_strict_inflation(A, Merged)' of that merge's first input and
%%   result (what Lasp's bind asks next) is known from the merge's walk,
%%   kept in one process dictionary entry until the next comparison;
%%   `mutate/3' and `delta_mutate/3' of an add or an increment work on the
%%   bytes and return binaries;</li>
%% <li>every other call (`query/1', `join_decomposition/1', `encode/2',
%%   thresholds such as `{cardinality, N}' ...), and any input the bytes
%%   path does not take, reads the binaries back as types' terms, calls
%%   types' own code and turns states in the answer into binaries;</li>
%% <li>a term payload beside a binary one (a variable not converted yet, a
%%   state sent by a node still on terms) is converted to a binary, or when
%%   it cannot be (a pid, a map, a bignum in it: not in the keyed format,
%%   or not a valid state) the binary is read back as a term and types'
%%   code answers.</li>
%% </ul>
%% Every answer is the one types gives for the equivalent terms: a binary
%% decodes to exactly the state term types' function returns, booleans and
%% query values are equal. While the mode is off, binaries still given
%% to these types (a state still in flight from another node) are read as
%% terms and answered in terms.
%%
%% Which input is trusted: `merge(A, B)' of two binaries decodes in full
%% (and checks the atoms of) every entry the result takes from `B', the
%% state received; `A', the state the variable holds, was written by this
%% library and its entries are copied once their structure is checked.
%% Garbage on either side raises `error:{badcrdt, {bad_binary, Why}}'.
%%
%% The mode is per node (a `persistent_term'); `convert_store/1' rewrites
%% the variables of the node's Lasp store through Lasp's own storage
%% server (`lasp_storage_backend:update_all/2'), one atomic pass.
-module(lasp_converge_payload).

-export([mode/0, set_mode/1, types/0, convert_store/1,
         to_binary/1, to_term/1]).
%% Called by the generated `state_gset' and `state_gcounter'.
-export([new/2, merge/4, equal/4, is_inflation/4, is_strict_inflation/4,
         mutate/5, delta_mutate/5, call/4]).

-export_type([mode/0]).

-type mode() :: binary | term.

-define(KEY, {?MODULE, mode}).
%% lasp_converge_nif's NORMAL_BYTES: larger inputs go to a dirty scheduler.
-define(NORMAL_BYTES, 65536).
-define(TYPES, [state_gset, state_gcounter]).
%% The last binary merge of this process: `{A, Merged, Grew}'.
-define(LAST, {?MODULE, last_merge}).

%% @doc The types whose variables can hold binaries.
-spec types() -> [module()].
types() -> ?TYPES.

%% @doc This node's payload mode (`term' unless switched on).
-spec mode() -> mode().
mode() -> persistent_term:get(?KEY, term).

%% @doc Set this node's payload mode. Only `lasp_converge_accel' calls it,
%% after checking that every member accepts binaries.
-spec set_mode(mode()) -> ok.
set_mode(Mode) when Mode =:= binary; Mode =:= term ->
    case mode() of
        Mode -> ok;
        _ -> persistent_term:put(?KEY, Mode)
    end.

%% @doc The state with a binary payload, when the state is a gset or
%% gcounter the binary format holds keyed; `error' otherwise (another
%% type, a term with no key, not a valid state).
-spec to_binary(term()) -> {ok, {module(), binary()}} | error.
to_binary({Mod, P} = S) when is_list(P) ->
    case lists:member(Mod, ?TYPES) of
        true ->
            try lasp_converge_replica:from_term(S) of
                R ->
                    case lasp_converge_replica:is_keyed(R) of
                        true -> {ok, {Mod, lasp_converge_replica:to_binary(R)}};
                        false -> error
                    end
            catch
                error:_ -> error
            end;
        false ->
            error
    end;
to_binary({Mod, P} = S) when is_binary(P) ->
    case lists:member(Mod, ?TYPES) of
        true -> {ok, S};
        false -> error
    end;
to_binary(_) ->
    error.

%% @doc The state with types' payload; a state with a binary payload is
%% read back (validated: `error:{badcrdt, _}' on garbage), any other term
%% is returned as it is.
-spec to_term(term()) -> term().
to_term({Mod, P}) when is_binary(P), (Mod =:= state_gset orelse Mod =:= state_gcounter) ->
    case lasp_converge_replica:to_term(lasp_converge_replica:from_binary(P)) of
        {Mod, _} = T -> T;
        {Other, _} -> erlang:error({badcrdt, {type_mismatch, Mod, Other}})
    end;
to_term(X) ->
    X.

%%====================================================================
%% The generated modules' calls
%%====================================================================

%% @private
-spec new(module(), module()) -> term().
new(Mod, Orig) ->
    case mode() of
        binary -> {Mod, bottom(Mod)};
        term -> orig(Mod, Orig, new, [])
    end.

bottom(state_gset) -> <<"LCR", 1, 1, 0:32>>;
bottom(state_gcounter) -> <<"LCR", 1, 2, 0:32>>.

%% @private
-spec merge(module(), module(), term(), term()) -> term().
merge(Mod, Orig, A, B) ->
    case pair(Mod, A, B) of
        {binary, P1, P2} ->
            {M, Grew} = twin(payload_merge, P1, P2),
            put(?LAST, {P1, M, Grew}),
            {Mod, M};
        terms -> lasp_converge_accel:merge(Mod, Orig, A, B);
        mixed -> call(Mod, Orig, merge, [A, B])
    end.

%% @private
-spec equal(module(), module(), term(), term()) -> boolean().
equal(Mod, Orig, A, B) ->
    case pair(Mod, A, B) of
        {binary, P1, P2} -> element(2, compare(P1, P2));
        terms -> lasp_converge_accel:equal(Mod, Orig, A, B);
        mixed -> call(Mod, Orig, equal, [A, B])
    end.

%% @private
-spec is_inflation(module(), module(), term(), term()) -> boolean().
is_inflation(Mod, Orig, A, B) ->
    case pair(Mod, A, B) of
        {binary, P1, P2} -> element(1, compare(P1, P2));
        terms -> lasp_converge_accel:is_inflation(Mod, Orig, A, B);
        mixed -> call(Mod, Orig, is_inflation, [A, B])
    end.

%% @private
-spec is_strict_inflation(module(), module(), term(), term()) -> boolean().
is_strict_inflation(Mod, Orig, A, B) ->
    case pair(Mod, A, B) of
        {binary, P1, P2} ->
            {Inflation, Equal} = compare(P1, P2),
            Inflation andalso not Equal;
        terms ->
            lasp_converge_accel:is_strict_inflation(Mod, Orig, A, B);
        mixed ->
            call(Mod, Orig, is_strict_inflation, [A, B])
    end.

%% @private
-spec mutate(module(), module(), term(), term(), term()) -> term().
mutate(Mod, Orig, Op, Actor, S) ->
    mutate(false, mutate, Mod, Orig, Op, Actor, S).

%% @private
-spec delta_mutate(module(), module(), term(), term(), term()) -> term().
delta_mutate(Mod, Orig, Op, Actor, S) ->
    mutate(true, delta_mutate, Mod, Orig, Op, Actor, S).

mutate(Delta, F, Mod, Orig, Op, Actor, {Mod, P} = S) when is_binary(P) ->
    Fast = case mode() of
               binary -> nif_mutate(Delta, Op, Actor, P);
               term -> undefined
           end,
    case Fast of
        undefined -> call(Mod, Orig, F, [Op, Actor, S]);
        Bin -> {ok, {Mod, Bin}}
    end;
mutate(_Delta, F, Mod, Orig, Op, Actor, S) ->
    orig(Mod, Orig, F, [Op, Actor, S]).

nif_mutate(Delta, Op, Actor, P) when byte_size(P) =< ?NORMAL_BYTES ->
    try lasp_converge_nif:payload_mutate(Delta, Op, Actor, P)
    catch error:lasp_converge_dirty -> lasp_converge_nif:payload_mutate_dirty(Delta, Op, Actor, P)
    end;
nif_mutate(Delta, Op, Actor, P) ->
    lasp_converge_nif:payload_mutate_dirty(Delta, Op, Actor, P).

%% @private
%% Any call: binary payloads in the arguments read back as terms, types'
%% code, and (in binary mode) the states of the answer as binaries.
-spec call(module(), module(), atom(), [term()]) -> term().
call(Mod, Orig, F, Args) ->
    R = orig(Mod, Orig, F, [arg_term(Mod, A) || A <- Args]),
    case mode() of
        binary -> out(Mod, R);
        term -> R
    end.

arg_term(Mod, {Mod, P} = S) when is_binary(P) -> to_term(S);
arg_term(Mod, {state, {Mod, P} = S}) when is_binary(P) -> {state, to_term(S)};
arg_term(_Mod, A) -> A.

out(Mod, {Mod, P} = S) when is_list(P) -> bin_or_term(S);
out(Mod, {ok, {Mod, P} = S}) when is_list(P) -> {ok, bin_or_term(S)};
out(Mod, {state, {Mod, P} = S}) when is_list(P) -> {state, bin_or_term(S)};
out(Mod, [{Mod, _} | _] = L) -> [out(Mod, X) || X <- L];
out(_Mod, R) -> R.

bin_or_term(S) ->
    case to_binary(S) of
        {ok, B} -> B;
        error -> S
    end.

%% Both binary (and the mode on), both terms, or anything else.
pair(Mod, {Mod, P1}, {Mod, P2}) when is_binary(P1), is_binary(P2) ->
    case mode() of
        binary -> {binary, P1, P2};
        term -> mixed
    end;
pair(Mod, {Mod, P1} = A, {Mod, P2} = B) when is_binary(P1); is_binary(P2) ->
    case mode() of
        binary ->
            %% A term beside a binary: as a binary when it can be.
            case {to_binary(A), to_binary(B)} of
                {{ok, {_, Q1}}, {ok, {_, Q2}}} -> {binary, Q1, Q2};
                _ -> mixed
            end;
        term ->
            mixed
    end;
pair(_Mod, {_, P1}, {_, P2}) when is_binary(P1); is_binary(P2) ->
    mixed;
pair(_Mod, _, _) ->
    terms.

%% `{is_inflation(A, B), equal(A, B)}'. Lasp's bind checks
%% `is_strict_inflation(Stored, Merged)' right after `merge(Stored,
%% Received)' in the same process: when `A' and `B' are exactly that
%% merge's first input and result, the merge's walk has the answer
%% (`Merged' is at least `A'; equal unless it grew). The memory is one
%% entry of the process dictionary, taken by the next comparison.
compare(P1, P2) ->
    case erase(?LAST) of
        {Q1, M, Grew} when Q1 =:= P1, M =:= P2 -> {true, not Grew};
        _ -> twin(payload_compare, P1, P2)
    end.

twin(F, P1, P2) when byte_size(P1) + byte_size(P2) =< ?NORMAL_BYTES ->
    try lasp_converge_nif:F(P1, P2)
    catch error:lasp_converge_dirty -> dirty(F, P1, P2)
    end;
twin(F, P1, P2) ->
    dirty(F, P1, P2).

dirty(payload_merge, P1, P2) -> lasp_converge_nif:payload_merge_dirty(P1, P2);
dirty(payload_compare, P1, P2) -> lasp_converge_nif:payload_compare_dirty(P1, P2).

%% `Orig:F(Args)'; after `decelerate' dropped `Orig', types' own `Mod'.
orig(Mod, Orig, F, Args) ->
    try erlang:apply(Orig, F, Args)
    catch
        error:undef:St ->
            case erlang:module_loaded(Orig) of
                false -> erlang:apply(Mod, F, Args);
                true -> erlang:raise(error, undef, St)
            end
    end.

%%====================================================================
%% The store
%%====================================================================

%% @doc Rewrite every gset and gcounter variable of this node's Lasp store
%% with binary payloads (`binary') or types' terms (`term'), deltas kept
%% for delta-based propagation included. Values do not change, only their
%% representation; a value the binary format cannot hold stays a term.
%% Runs in Lasp's storage server, atomically per variable. Returns how
%% many variables changed, or `{error, lasp_not_running}'.
-spec convert_store(mode()) -> {ok, non_neg_integer()} | {error, term()}.
convert_store(Dir) when Dir =:= binary; Dir =:= term ->
    case whereis(lasp_storage_backend) of
        undefined ->
            {error, lasp_not_running};
        Store ->
            %% Runs in Lasp's storage server: never raises.
            Fun = fun({_Id, Dv}) ->
                          New = try convert_dv(Dir, Dv)
                                catch _:_ -> Dv
                                end,
                          {New, New =/= Dv}
                  end,
            try lasp(lasp_storage_backend, update_all, [Store, Fun]) of
                {ok, Changed} -> {ok, length([C || C <- Changed, C])};
                Other -> {error, {lasp_storage_backend, Other}}
            catch
                Class:Why -> {error, {lasp_storage_backend, {Class, Why}}}
            end
    end.

%% Lasp's modules, named at run time: no call to a missing module for
%% xref, and this module compiles without Lasp.
lasp(Module, Function, Args) ->
    erlang:apply(Module, Function, Args).

%% Lasp's `#dv{}': value second, delta_map ninth.
convert_dv(Dir, Dv) when is_tuple(Dv), tuple_size(Dv) =:= 10, element(1, Dv) =:= dv ->
    Dv1 = setelement(2, Dv, convert(Dir, element(2, Dv))),
    case Dir of
        term -> setelement(9, Dv1, deep_term(element(9, Dv1), 8));
        binary -> Dv1
    end;
convert_dv(_Dir, Other) ->
    Other.

convert(binary, {_, P} = S) when is_list(P) -> bin_or_term(S);
convert(term, {Mod, P} = S) when is_binary(P) ->
    try to_term(S)
    catch error:_ -> {Mod, P}
    end;
convert(_, S) ->
    S.

%% Binary states anywhere in Lasp's delta map (bounded depth).
deep_term(X, 0) ->
    X;
deep_term({Mod, P} = S, _) when is_binary(P), (Mod =:= state_gset orelse Mod =:= state_gcounter) ->
    convert(term, S);
deep_term(T, D) when is_tuple(T) ->
    list_to_tuple([deep_term(X, D - 1) || X <- tuple_to_list(T)]);
deep_term(L, D) when is_list(L) ->
    deep_list(L, D);
deep_term(X, _) ->
    X.

deep_list([H | T], D) -> [deep_term(H, D - 1) | deep_list(T, D)];
deep_list(Tail, _) -> Tail.
