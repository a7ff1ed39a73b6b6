%% @doc Drop-in acceleration of lasp-lang/types 0.1.8 in a running node.
%%
%% Lasp calls its CRDT types by module name (`state_gcounter:merge(A, B)',
%% `Type:is_strict_inflation(Prev, Merged)' in `lasp_type'). `accelerate/1'
%% replaces those modules, in memory only, with a pair:
%%
%% <ul>
%% <li>types' own code of `state_X' compiled again from the abstract code
%% its beam carries (debug_info) under the name `state_X$types'. Nothing in
%% it changes but the module name: calls it makes to `state_X' by name
%% (types writes the module atom out) come back to the new `state_X'.</li>
%% <li>a generated module named `state_X' whose every export calls the same
%% function of `state_X$types', except a few hot functions which call this
%% module. These answer from a faster implementation when the input allows
%% it and otherwise call `state_X$types', so each answer is the one types
%% gives, term for term, raised errors included.</li>
%% </ul>
%%
%% What is faster, per type (measured with `bench/lasp_converge_accel_bench.erl'):
%% <ul>
%% <li>`is_inflation/2' and `equal/2' of gcounter, pncounter, lexcounter and
%% gmap, and `is_inflation/2' of orset: types looks every entry of the first
%% state up in the second with `orddict:find/2', quadratic in the number of
%% entries (gcounter 10k: about 2 s). Here both lists are walked in
%% lockstep, linear. The walk answers exactly as types' loop does whatever
%% the second list holds, as long as the keys of the first are strictly
%% ascending up to the point where the answer is known: it checks that as
%% it goes and hands anything else (unsorted keys, a value of another
%% shape, a raised error) to types' code.</li>
%% <li>`merge/2', `is_inflation/2' and `is_strict_inflation/2' of awset with
%% at least 64 elements on both sides (a replica and a received state,
%% not an update's one-element delta): the NIF
%% (`lasp_converge_crdt'), which raises `{badcrdt, _}' on input it does not
%% take; that input goes to types' code. Smaller awsets, gset, twopset
%% (already linear in types) and every other function stay types' own.</li>
%% <li>`state_gset' and `state_gcounter': every export goes through
%% `lasp_converge_payload', which hands term payloads on (to the walks
%% above, or types) and answers binary payloads itself.</li>
%% </ul>
%%
%% == Binary payloads ==
%%
%% `accelerate(#{payload => binary})' (opt-in) then makes the gset and
%% gcounter variables of the nodes named hold the binary format of
%% `lasp_converge_replica' (see `lasp_converge_payload'), converting those
%% already stored. It refuses with `{error, {not_accelerated, Nodes}}'
%% while a Lasp member of those nodes does not run the accelerated gset
%% and gcounter. `accelerate(#{payload => term})' and `decelerate/1'
%% convert back; `decelerate/1' refuses with `{error, {binary_payload,
%% Nodes}}' while a member it does not cover still holds binaries, and
%% waits `grace' ms (default 1000) for binary states in flight before
%% loading types' code. `status/1' says `binary' for gset and gcounter
%% on a node in this mode.
%%
%% == Loading ==
%%
%% Code is replaced with `code:load_binary/3' only: no file of Lasp or
%% types changes. Loading a module whose previous version is still run by
%% some process would fail (`not_purged'); before each load this module
%% calls `code:soft_purge/1', which never kills a process, and waits and
%% tries again (up to `purge_timeout' ms, default 10000) while processes
%% still run old code. Processes in the middle of a call of the replaced
%% code finish it there. `decelerate/0' loads types' beam again from its
%% file (checked against the MD5 recorded at `accelerate/1') and drops
%% `state_X$types' once no process runs it. Both are idempotent.
%%
%% `accelerate/1' refuses (`{error, {types_version, Found, "0.1.8"}}')
%% unless the loaded types application is 0.1.8, and a module whose beam
%% has no debug_info (`{error, {no_debug_info, Mod}}') or whose loaded code
%% is not its beam's (`{error, {modified, Mod}}').
-module(lasp_converge_accel).

-export([accelerate/0, accelerate/1, decelerate/0, decelerate/1, status/0, status/1,
         accelerated_types/0, types_version/0]).
%% Called by the generated modules.
-export([merge/4, equal/4, is_inflation/4, is_strict_inflation/4]).
%% Called on each node through erpc.
-export([local_accelerate/1, local_decelerate/1, local_status/0, local_payload/1,
         local_members/0]).

-export_type([opts/0, node_status/0]).

-type opts() :: #{nodes => local | all | [node()],
                  types => [module()],
                  purge_timeout => non_neg_integer(),
                  payload => lasp_converge_payload:mode(),
                  grace => non_neg_integer()}.
%% `binary': accelerated, and the node's variables hold binary payloads.
-type node_status() :: #{module() => accelerated | binary | stock}.

-define(TYPES_VSN, "0.1.8").
-define(SUFFIX, "$types").
-define(ATTR, lasp_converge_accel).
-define(TIMEOUT, 60000).
%% The smallest awset (elements on both sides) sent to the NIF; below it,
%% or with a small delta on one side, types' merge costs less than the
%% NIF's decode of both inputs.
-define(AWSET_NIF_MIN, 64).

%% The functions each accelerated module answers here; all its other
%% exports call types' code.
hot(state_gset) -> [];
hot(state_gcounter) -> [{equal, 2}, {is_inflation, 2}];
hot(state_pncounter) -> [{equal, 2}, {is_inflation, 2}];
hot(state_lexcounter) -> [{equal, 2}, {is_inflation, 2}];
hot(state_gmap) -> [{equal, 2}, {is_inflation, 2}];
hot(state_orset) -> [{is_inflation, 2}];
hot(state_awset) -> [{merge, 2}, {is_inflation, 2}, {is_strict_inflation, 2}].

%% @doc The types `accelerate/0' replaces.
-spec accelerated_types() -> [module()].
accelerated_types() ->
    [state_awset, state_gcounter, state_gmap, state_gset, state_lexcounter, state_orset,
     state_pncounter].

%% @doc The types version this module is checked against.
-spec types_version() -> string().
types_version() -> ?TYPES_VSN.

%% @doc `accelerate(#{})': this node, every type of `accelerated_types/0'.
-spec accelerate() -> {ok, #{node() => node_status()}} | {error, term()}.
accelerate() -> accelerate(#{}).

%% @doc Accelerate the types on `nodes' (`local', the default; `all', this
%% node and every Lasp member; or a list). Returns each node's status, or
%% the first node's error (`{error, {Node, Reason}}' for a remote node).
%% Nodes that succeeded stay accelerated.
-spec accelerate(opts()) -> {ok, #{node() => node_status()}} | {error, term()}.
accelerate(#{payload := P}) when P =/= binary, P =/= term ->
    {error, {bad_payload, P}};
accelerate(Opts) when is_map(Opts) ->
    case on_nodes(Opts, local_accelerate, [Opts]) of
        {ok, _} = Ok ->
            case maps:find(payload, Opts) of
                error -> Ok;
                {ok, Mode} -> payload(Mode, Opts)
            end;
        Error ->
            Error
    end;
accelerate(_) ->
    {error, badarg}.

%% @doc Put types' own code back on this node.
-spec decelerate() -> {ok, #{node() => node_status()}} | {error, term()}.
decelerate() -> decelerate(#{}).

%% @doc Put types' own code back on `nodes' (as in `accelerate/1').
-spec decelerate(opts()) -> {ok, #{node() => node_status()}} | {error, term()}.
decelerate(Opts) when is_map(Opts) ->
    case payload_off(Opts) of
        ok -> on_nodes(Opts, local_decelerate, [Opts]);
        Error -> Error
    end;
decelerate(_) ->
    {error, badarg}.

%% @doc Which types are accelerated on this node.
-spec status() -> {ok, #{node() => node_status()}} | {error, term()}.
status() -> status(#{}).

%% @doc Which types are accelerated on `nodes'.
-spec status(opts()) -> {ok, #{node() => node_status()}} | {error, term()}.
status(Opts) when is_map(Opts) ->
    on_nodes(Opts, local_status, []);
status(_) ->
    {error, badarg}.

%% Binary payloads on (every member must take them: all accelerated) or
%% off on the nodes of `Opts', converting their stores.
payload(binary, Opts) ->
    case nodes_of(maps:get(nodes, Opts, local)) of
        {ok, Nodes} ->
            Members = members(Nodes),
            Rs = erpc:multicall(Members, ?MODULE, local_status, [], ?TIMEOUT),
            case [N || {N, R} <- lists:zip(Members, Rs), not takes_binaries(R)] of
                [] -> on_nodes(Opts, local_payload, [binary]);
                Bad -> {error, {not_accelerated, Bad}}
            end;
        Error ->
            Error
    end;
payload(term, Opts) ->
    on_nodes(Opts, local_payload, [term]).

takes_binaries({ok, {ok, S}}) ->
    lists:all(fun(M) -> maps:get(M, S, stock) =/= stock end, lasp_converge_payload:types());
takes_binaries(_) ->
    false.

%% Before types' own code comes back: terms again on these nodes, refused
%% while another member still holds binaries (it would send them here),
%% and `grace' ms (default 1000) for states already in flight.
payload_off(Opts) ->
    case nodes_of(maps:get(nodes, Opts, local)) of
        {ok, Nodes} ->
            Others = members(Nodes) -- Nodes,
            Modes = erpc:multicall(Others, lasp_converge_payload, mode, [], ?TIMEOUT),
            case [N || {N, {ok, binary}} <- lists:zip(Others, Modes)] of
                [] ->
                    Was = erpc:multicall(Nodes, lasp_converge_payload, mode, [], ?TIMEOUT),
                    case on_nodes(Opts, local_payload, [term]) of
                        {ok, _} ->
                            case lists:member({ok, binary}, Was) of
                                true -> timer:sleep(maps:get(grace, Opts, 1000));
                                false -> ok
                            end;
                        Error ->
                            Error
                    end;
                Bad ->
                    {error, {binary_payload, Bad}}
            end;
        Error ->
            Error
    end.

%% `Nodes' and every Lasp member any of them knows.
members(Nodes) ->
    Rs = erpc:multicall(Nodes, ?MODULE, local_members, [], ?TIMEOUT),
    lists:usort(Nodes ++ lists:append([Ms || {ok, Ms} <- Rs])).

%% @private
-spec local_members() -> [node()].
local_members() ->
    try lasp(lasp_peer_service, members, []) of
        {ok, Ms} when is_list(Ms) -> Ms;
        _ -> []
    catch
        _:_ -> []
    end.

%% @private
%% This node's payload mode, and its Lasp store converted to it.
-spec local_payload(lasp_converge_payload:mode()) -> {ok, node_status()} | {error, term()}.
local_payload(Mode) ->
    locked(fun() ->
                   ok = lasp_converge_payload:set_mode(Mode),
                   case lasp_converge_payload:convert_store(Mode) of
                       {ok, _} -> local_status();
                       {error, lasp_not_running} -> local_status();
                       Error -> Error
                   end
           end).

on_nodes(Opts, F, Args) ->
    case nodes_of(maps:get(nodes, Opts, local)) of
        {ok, Nodes} ->
            Rs = erpc:multicall(Nodes, ?MODULE, F, Args, ?TIMEOUT),
            collect(lists:zip(Nodes, Rs), #{});
        Error ->
            Error
    end.

collect([], Acc) -> {ok, Acc};
collect([{N, {ok, {ok, S}}} | T], Acc) -> collect(T, Acc#{N => S});
collect([{N, {ok, {error, Why}}} | _], _) when N =:= node() -> {error, Why};
collect([{N, {ok, {error, Why}}} | _], _) -> {error, {N, Why}};
collect([{N, {Class, Why}} | _], _) -> {error, {N, {Class, Why}}}.

nodes_of(local) ->
    {ok, [node()]};
nodes_of(all) ->
    try lasp(lasp_peer_service, members, []) of
        {ok, Ms} when is_list(Ms) -> {ok, lists:usort([node() | Ms])};
        Other -> {error, {lasp_peer_service, Other}}
    catch
        _:_ -> {error, lasp_not_running}
    end;
nodes_of(Nodes) when is_list(Nodes) ->
    case lists:all(fun is_atom/1, Nodes) of
        true -> {ok, lists:usort(Nodes)};
        false -> {error, {bad_nodes, Nodes}}
    end;
nodes_of(Other) ->
    {error, {bad_nodes, Other}}.

%% Lasp's modules, named at run time: this module needs no Lasp to
%% compile, and xref sees no call to a missing module.
lasp(Module, Function, Args) ->
    erlang:apply(Module, Function, Args).

%%====================================================================
%% One node
%%====================================================================

%% @private
-spec local_accelerate(opts()) -> {ok, node_status()} | {error, term()}.
local_accelerate(Opts) ->
    locked(fun() -> do_accelerate(Opts) end).

do_accelerate(Opts) ->
    Types = maps:get(types, Opts, accelerated_types()),
    Timeout = maps:get(purge_timeout, Opts, 10000),
    case check_version() of
        ok ->
            case [T || T <- Types, not lists:member(T, accelerated_types())] of
                [] -> accelerate_all(Types, Timeout, []);
                Unknown -> {error, {not_accelerable, Unknown}}
            end;
        Error ->
            Error
    end.

accelerate_all([], _Timeout, _Done) ->
    local_status();
accelerate_all([Mod | Mods], Timeout, Done) ->
    case accelerate_mod(Mod, Timeout) of
        ok ->
            accelerate_all(Mods, Timeout, [Mod | Done]);
        already ->
            accelerate_all(Mods, Timeout, Done);
        {error, _} = Error ->
            %% Leave the node as it was before this call.
            _ = [decelerate_mod(M, Timeout) || M <- Done],
            Error
    end.

%% @private
-spec local_decelerate(opts()) -> {ok, node_status()} | {error, term()}.
local_decelerate(Opts) ->
    locked(fun() -> do_decelerate(Opts) end).

do_decelerate(Opts) ->
    Timeout = maps:get(purge_timeout, Opts, 10000),
    Types = maps:get(types, Opts, accelerated_types()),
    case lists:foldl(fun(M, ok) -> decelerate_mod(M, Timeout);
                        (_, Error) -> Error
                     end, ok, Types) of
        ok -> local_status();
        Error -> Error
    end.

%% One accelerate or decelerate at a time on a node.
locked(Fun) ->
    global:trans({{?MODULE, node()}, self()}, Fun, [node()], infinity).

%% @private
-spec local_status() -> {ok, node_status()}.
local_status() ->
    Binary = lasp_converge_payload:mode() =:= binary,
    Payload = lasp_converge_payload:types(),
    {ok, maps:from_list([{M, case accel_info(M) of
                                 none -> stock;
                                 _ when Binary -> case lists:member(M, Payload) of
                                                      true -> binary;
                                                      false -> accelerated
                                                  end;
                                 _ -> accelerated
                             end} || M <- accelerated_types()])}.

check_version() ->
    _ = application:load(types),
    case application:get_key(types, vsn) of
        {ok, ?TYPES_VSN} -> ok;
        {ok, Other} -> {error, {types_version, Other, ?TYPES_VSN}};
        undefined -> {error, {types_version, not_found, ?TYPES_VSN}}
    end.

%% The attribute a generated module carries, or `none' for any other code.
accel_info(Mod) ->
    case erlang:module_loaded(Mod) of
        false ->
            none;
        true ->
            case lists:keyfind(?ATTR, 1, Mod:module_info(attributes)) of
                {?ATTR, [Info]} when is_map(Info) -> Info;
                _ -> none
            end
    end.

orig_name(Mod) ->
    list_to_atom(atom_to_list(Mod) ++ ?SUFFIX).

accelerate_mod(Mod, Timeout) ->
    case accel_info(Mod) of
        none ->
            case code:ensure_loaded(Mod) of
                {module, Mod} -> accelerate_loaded(Mod, Timeout);
                {error, Why} -> {error, {not_loaded, Mod, Why}}
            end;
        _ ->
            already
    end.

accelerate_loaded(Mod, Timeout) ->
    Orig = orig_name(Mod),
    File = code:which(Mod),
    steps([fun(_) when is_list(File) -> beam_lib:md5(File);
              (_) -> {error, {no_beam, Mod}}
           end,
           fun({_, Md5}) ->
                   case Mod:module_info(md5) of
                       Md5 -> {ok, Md5};
                       _ -> {error, {modified, Mod}}
                   end
           end,
           fun(Md5) ->
                   case abstract_code(Mod, File) of
                       {ok, Forms} -> {ok, {Md5, Forms}};
                       Error -> Error
                   end
           end,
           fun({Md5, Forms}) ->
                   case compile_forms(Mod, rename(Forms, Orig)) of
                       {ok, OrigBin} -> {ok, {Md5, OrigBin}};
                       Error -> Error
                   end
           end,
           fun({Md5, OrigBin}) ->
                   case load(Orig, File, OrigBin, Timeout) of
                       ok -> {ok, Md5};
                       Error -> Error
                   end
           end,
           fun(Md5) ->
                   Exports = [FA || {F, _} = FA <- Orig:module_info(exports),
                                    F =/= module_info],
                   Info = #{original => Orig, file => File, md5 => Md5},
                   compile_forms(Mod, delegate(Mod, Orig, Exports, Info))
           end,
           fun(Bin) -> load(Mod, File, Bin, Timeout) end]).

%% Run each step on the previous one's `{ok, Value}'; stop at an error.
steps(Steps) ->
    case lists:foldl(fun(Step, {ok, V}) -> Step(V);
                        (Step, ok) -> Step(ok);
                        (_, Error) -> Error
                     end, {ok, start}, Steps) of
        ok -> ok;
        {ok, _} -> ok;
        {error, _} = Error -> Error;
        Other -> {error, Other}
    end.

abstract_code(Mod, File) ->
    case beam_lib:chunks(File, [debug_info]) of
        {ok, {Mod, [{debug_info, {debug_info_v1, Backend, Data}}]}} ->
            case Backend:debug_info(erlang_v1, Mod, Data, []) of
                {ok, Forms} -> {ok, Forms};
                _ -> {error, {no_debug_info, Mod}}
            end;
        _ ->
            {error, {no_debug_info, Mod}}
    end.

rename(Forms, Name) ->
    [case F of
         {attribute, L, module, _} -> {attribute, L, module, Name};
         _ -> F
     end || F <- Forms].

compile_forms(Mod, Forms) ->
    case compile:forms(Forms, [binary, return_errors]) of
        {ok, _, Bin} -> {ok, Bin};
        {ok, _, Bin, _Warnings} -> {ok, Bin};
        Error -> {error, {compile, Mod, Error}}
    end.

%% The module of the original name: every export of `Orig', the hot ones
%% sent here with the module names in front.
delegate(Mod, Orig, Exports, Info) ->
    L = erl_anno:new(1),
    Hot = hot(Mod),
    Payload = lists:member(Mod, lasp_converge_payload:types()),
    Funs = [begin
                Vars = [{var, L, list_to_atom("A" ++ integer_to_list(I))} || I <- lists:seq(1, A)],
                Call = case Payload of
                           true -> payload_call(L, Mod, Orig, FA, Vars);
                           false -> plain_call(L, Mod, Orig, FA, Hot, Vars)
                       end,
                {function, L, F, A, [{clause, L, Vars, [], [Call]}]}
            end || {F, A} = FA <- Exports],
    [{attribute, L, module, Mod},
     {attribute, L, export, Exports},
     {attribute, L, ?ATTR, [Info]}
     | Funs].

%% gset and gcounter: every call through `lasp_converge_payload', which
%% takes binary payloads and sends term ones back here or to types.
payload_call(L, Mod, Orig, {F, _} = FA, Vars) ->
    Direct = [{new, 0}, {merge, 2}, {equal, 2}, {is_inflation, 2}, {is_strict_inflation, 2},
              {mutate, 3}, {delta_mutate, 3}],
    Front = [{atom, L, Mod}, {atom, L, Orig}],
    P = {atom, L, lasp_converge_payload},
    case lists:member(FA, Direct) of
        true ->
            {call, L, {remote, L, P, {atom, L, F}}, Front ++ Vars};
        false ->
            Args = lists:foldr(fun(V, Acc) -> {cons, L, V, Acc} end, {nil, L}, Vars),
            {call, L, {remote, L, P, {atom, L, call}}, Front ++ [{atom, L, F}, Args]}
    end.

plain_call(L, Mod, Orig, {F, _} = FA, Hot, Vars) ->
    case lists:member(FA, Hot) of
        true ->
            {call, L, {remote, L, {atom, L, ?MODULE}, {atom, L, F}},
             [{atom, L, Mod}, {atom, L, Orig} | Vars]};
        false ->
            {call, L, {remote, L, {atom, L, Orig}, {atom, L, F}}, Vars}
    end.

%% Load `Bin' as `Mod' once no process runs `Mod''s old code. `File' (the
%% types beam's) is what `code:which/1' reports for it.
load(Mod, File, Bin, Timeout) ->
    case wait_purged(Mod, Timeout) of
        ok ->
            case code:load_binary(Mod, File, Bin) of
                {module, Mod} -> ok;
                {error, Why} -> {error, {load, Mod, Why}}
            end;
        Error ->
            Error
    end.

wait_purged(Mod, Timeout) ->
    case code:soft_purge(Mod) of
        true -> ok;
        false when Timeout =< 0 -> {error, {not_purged, Mod}};
        false ->
            timer:sleep(50),
            wait_purged(Mod, Timeout - 50)
    end.

decelerate_mod(Mod, Timeout) ->
    case accel_info(Mod) of
        none ->
            ok;
        #{original := Orig, file := File, md5 := Md5} ->
            steps([fun(_) -> file:read_file(File) end,
                   fun(Bin) ->
                           case beam_lib:md5(Bin) of
                               {ok, {Mod, Md5}} -> load(Mod, File, Bin, Timeout);
                               _ -> {error, {modified_beam, Mod, File}}
                           end
                   end,
                   %% The generated module is old code now; once nothing
                   %% runs it, `Orig' is not called any more and goes too.
                   fun(_) ->
                           _ = wait_purged(Mod, Timeout),
                           drop(Orig, Timeout)
                   end])
    end.

drop(Orig, Timeout) ->
    case wait_purged(Orig, Timeout) of
        ok ->
            _ = code:delete(Orig),
            %% Leave it as old code if a process still runs it: harmless,
            %% and purged by the next load or decelerate.
            _ = code:soft_purge(Orig),
            ok;
        Error ->
            Error
    end.

%%====================================================================
%% The hot functions
%%====================================================================

%% Each answers as `Orig:F(...)' does. The fast path raises on anything it
%% does not take (a clause that does not match); then types' code answers.

%% @private
-spec merge(module(), module(), term(), term()) -> term().
merge(state_awset = Mod, Orig, A, B) ->
    case big_awset(A, B) of
        true -> nif(merge, Mod, Orig, A, B);
        false -> orig(Mod, Orig, merge, A, B)
    end;
merge(Mod, Orig, A, B) ->
    orig(Mod, Orig, merge, A, B).

%% @private
-spec is_inflation(module(), module(), term(), term()) -> term().
is_inflation(state_awset = Mod, Orig, A, B) ->
    case big_awset(A, B) of
        true -> nif(is_inflation, Mod, Orig, A, B);
        false -> orig(Mod, Orig, is_inflation, A, B)
    end;
is_inflation(Mod, Orig, {Mod, P1} = A, {Mod, P2} = B) ->
    try inflation(Mod, P1, P2)
    catch _:_ -> orig(Mod, Orig, is_inflation, A, B)
    end;
is_inflation(Mod, Orig, A, B) ->
    orig(Mod, Orig, is_inflation, A, B).

%% @private
-spec is_strict_inflation(module(), module(), term(), term()) -> term().
is_strict_inflation(state_awset = Mod, Orig, A, B) ->
    case big_awset(A, B) of
        true -> nif(is_strict_inflation, Mod, Orig, A, B);
        false -> orig(Mod, Orig, is_strict_inflation, A, B)
    end;
is_strict_inflation(Mod, Orig, A, B) ->
    orig(Mod, Orig, is_strict_inflation, A, B).

%% @private
-spec equal(module(), module(), term(), term()) -> term().
equal(Mod, Orig, {Mod, P1} = A, {Mod, P2} = B) ->
    try equal_payload(Mod, P1, P2)
    catch _:_ -> orig(Mod, Orig, equal, A, B)
    end;
equal(Mod, Orig, A, B) ->
    orig(Mod, Orig, equal, A, B).

nif(F, Mod, Orig, A, B) ->
    try lasp_converge_crdt:F(A, B)
    catch error:_ -> orig(Mod, Orig, F, A, B)
    end.

%% `Orig:F(A, B)'. A process that entered a hot function just before
%% `decelerate/0' dropped `Orig' finds `Mod' holding types' own code
%% again: it calls that instead.
orig(Mod, Orig, F, A, B) ->
    try Orig:F(A, B)
    catch
        error:undef:St ->
            case erlang:module_loaded(Orig) of
                false -> Mod:F(A, B);
                true -> erlang:raise(error, undef, St)
            end
    end.

big_awset({state_awset, {S1, _}}, {state_awset, {S2, _}}) when is_list(S1), is_list(S2) ->
    longer_than(S1, ?AWSET_NIF_MIN) andalso longer_than(S2, ?AWSET_NIF_MIN);
big_awset(_, _) ->
    false.

longer_than(_, 0) -> true;
longer_than([_ | T], N) -> longer_than(T, N - 1);
longer_than(_, _) -> false.

inflation(state_gcounter, L1, L2) ->
    counter_walk(L1, L2, none);
inflation(state_pncounter, L1, L2) ->
    %% types' loop matches each entry of the first as `{Key, {Inc, Dec}}'
    %% before it looks the key up.
    walk_pairs(fun pn_le/2, L1, L2, none);
inflation(state_lexcounter, L1, L2) ->
    walk(fun lex_le/2, L1, L2, none);
inflation(state_orset, L1, L2) ->
    walk(fun tokens_le/2, L1, L2, none);
inflation(state_gmap, {CType, L1}, {CType, L2}) ->
    %% Likewise `{Key, {Type, _} = CRDT1}'.
    walk_pairs(fun gmap_le/2, L1, L2, none).

%% orddict_ext:equal/3: same size, then every entry of the first found
%% in the second with an equal value.
equal_payload(state_gcounter, L1, L2) ->
    length(L1) == length(L2) andalso walk(fun(V1, V2) -> V1 == V2 end, L1, L2, none);
equal_payload(state_pncounter, L1, L2) ->
    length(L1) == length(L2) andalso walk(fun pn_eq/2, L1, L2, none);
equal_payload(state_lexcounter, L1, L2) ->
    length(L1) == length(L2) andalso walk(fun pn_eq/2, L1, L2, none);
equal_payload(state_gmap, {CType, L1}, {CType, L2}) ->
    length(L1) == length(L2) andalso walk(fun gmap_eq/2, L1, L2, none).

pn_le({I1, D1}, {I2, D2}) -> I1 =< I2 andalso D1 =< D2.

pn_eq({I1, D1}, {I2, D2}) -> I1 == I2 andalso D1 == D2.

lex_le({L1, R1}, {L2, R2}) -> L2 > L1 orelse L1 == L2 andalso R2 >= R1.

tokens_le(T1, T2) ->
    walk(fun(A1, A2) -> A1 == A2 orelse A1 andalso not A2 end, T1, T2, none).

gmap_le({Type, _} = C1, C2) -> Type:is_inflation(C1, C2).

gmap_eq({Type, _} = C1, {Type, _} = C2) -> Type:equal(C1, C2).

%% `lists_ext:iterate_until' over the first orddict, each key looked up in
%% the second with `orddict:find/2', in one pass over both. The part of
%% the second list skipped for a key (entries whose key is below it) is,
%% when the keys of the first ascend strictly, exactly what
%% `orddict:find/2' skips for every later key too, so the walk resumes
%% where the previous lookup stopped. `Prev' is the previous key of the
%% first list, `none' at its start.
walk(_Fun, [], _L2, _Prev) ->
    true;
walk(Fun, [{K1, V1} | T1], L2, Prev) ->
    ascending(Prev, K1),
    case skip(K1, L2) of
        {found, V2, T2} ->
            case Fun(V1, V2) of
                true -> walk(Fun, T1, T2, {K1});
                false -> false
            end;
        missing ->
            false
    end.

%% `walk/4' where the value of each entry of the first list must be a pair
%% before its key is looked up.
walk_pairs(_Fun, [], _L2, _Prev) ->
    true;
walk_pairs(Fun, [{K1, {_, _} = V1} | T1], L2, Prev) ->
    ascending(Prev, K1),
    case skip(K1, L2) of
        {found, V2, T2} ->
            case Fun(V1, V2) of
                true -> walk_pairs(Fun, T1, T2, {K1});
                false -> false
            end;
        missing ->
            false
    end.

%% The gcounter case, the one Lasp meets most, without the fun call.
counter_walk([], _L2, _Prev) ->
    true;
counter_walk([{K1, V1} | T1], L2, Prev) ->
    ascending(Prev, K1),
    case skip(K1, L2) of
        {found, V2, T2} when V1 =< V2 -> counter_walk(T1, T2, {K1});
        _ -> false
    end.

ascending(none, _) -> ok;
ascending({P}, K) when P < K -> ok.

%% `orddict:find(K, L)': pass the entries below `K'. Entries that are not
%% pairs (which `orddict:find/2' steps over) are left to types' code.
skip(K, [{K2, _} | T]) when K2 < K -> skip(K, T);
skip(K, [{K2, V} | T]) when K2 == K -> {found, V, T};
skip(_K, [{_, _} | _]) -> missing;
skip(_K, []) -> missing.
