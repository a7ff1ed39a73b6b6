%% @doc This node's registry: which process does what for which variable,
%% and the counters kept beside them.
%%
%% A `gen_server' owning one `protected' named ETS table, the first child of
%% `lasp_converge_sup'. Reads are direct ETS reads in the caller (a tracker
%% lookup on every update costs one `ets:lookup'); writes go through the
%% owner, with named functions per kind of row, so that no other module
%% builds or matches the table's tuples. The owner monitors every process
%% that registers itself (trackers, controllers) and removes its rows when
%% it dies, whatever way it dies.
%%
%% Two kinds of writes happen on hot paths, in processes that are not the
%% owner, and are kept off the owner:
%%
%% <ul>
%% <li>Counters (update sequence numbers, observer errors, dropped journal
%%   entries, telemetry counts, a Lasp stream's outcomes) are `atomics' or
%%   `counters' arrays created by the owner and stored in the table; the
%%   caller reads the reference and adds to it directly.</li>
%% <li>The first type given for a variable on a member node is claimed
%%   once, through the owner; later checks only read.</li>
%% </ul>
%%
%% One kind of row is written by callers: the last state a member node
%% sent for a variable (`swap_last_sent/2', on every observation there).
%% It lives in a second table, `lasp_converge_last_sent', also owned by the
%% registry but `public', written only through this module. Through the
%% owner, every observation would copy the state twice more and wait on one
%% process shared by every variable of the node: on a 10,000-element orset
%% the swap takes 2 to 3 times as long that way (1.4-2.3 ms against 0.6-0.7
%% ms, `bench/lasp_converge_registry_bench.erl'), as much again as the delta
%% the observation computes.
%%
%% If the registry dies its table goes with it, and `lasp_converge_sup'
%% (`rest_for_one') restarts everything started after it: the trackers, the
%% replicator and the tuner controllers.
-module(lasp_converge_registry).
-behaviour(gen_server).

-export([start_link/0]).
%% trackers
-export([register_tracker/4, tracker/1, trackers/1, repoint_tracker/2, unregister_tracker/1]).
%% per-variable state of a tracked variable
-export([next_seq/1, set_seq/2, seq/1, swap_last_sent/2, last_sent/1, claim_type/2]).
%% observers, journals, aggregators down
-export([register_observer/2, observer/1, register_journal/2, journal/1,
         set_aggregator_down/3, aggregator_down/1, clear_aggregator_down/1]).
%% tuner controllers
-export([register_controller/1, controller/1, controllers/0]).
%% Lasp streams
-export([register_stream/2, deactivate_stream/1, unregister_stream/1, stream/1, count_stream/3]).
%% counters
-export([bump/1, count/1, clear_count/1, counts/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(TAB, lasp_converge_registry).
-define(LAST, lasp_converge_last_sent).
-define(CALL_TIMEOUT, 30000).

-type role() :: aggregator | member.
-type tracker() :: #{pid := pid(), role := role(), agg := pid(),
                     res := lasp_converge_nif:tracker() | undefined,
                     id := non_neg_integer() | undefined}.
-type stream() :: #{token := reference(), active := boolean(),
                    observed := non_neg_integer(), errors := non_neg_integer()}.
-export_type([role/0, tracker/0, stream/0]).

%% Rows, all built and read in this module only:
%%   {{tracker, Var}, Pid, Role, Agg, Res, Id}
%%   {{seq, Var}, AtomicsRef}
%%   {{last, Var}, State}                         (in ?LAST)
%%   {{type, Var}, Type}
%%   {{observer, Var}, Pid}
%%   {{journal, Var}, Tab, MemberPid}
%%   {{agg_down, Var}, Node, TsUs}
%%   {{controller, Var}, Pid}
%%   {{stream, Id}, Token, Active, CountersRef}   (1 observed, 2 errors)
%%   {{count, Key}, CountersRef}
%%   {{monitor, Ref}, Kind, Key}

%% @doc Start the registry, registered as `lasp_converge_registry'.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% ---- trackers ----

%% @doc Register the calling process as this node's tracker of `Var':
%% `Role', its aggregator `Agg', and on the aggregating node the native
%% tracker `Res' and this node's number `Id'. `{error, already_tracked}'
%% when a live tracker of `Var' is registered here.
-spec register_tracker(term(), role(), pid(), {lasp_converge_nif:tracker(), non_neg_integer()}
                       | undefined) -> ok | {error, already_tracked | not_started}.
register_tracker(Var, Role, Agg, Native) when Role =:= aggregator; Role =:= member ->
    call({register_tracker, Var, self(), Role, Agg, Native}).

%% @doc This node's live tracker of `Var'.
-spec tracker(term()) -> {ok, tracker()} | error.
tracker(Var) ->
    case lookup({tracker, Var}) of
        [{_, Pid, Role, Agg, Res, Id}] ->
            case is_process_alive(Pid) of
                true -> {ok, #{pid => Pid, role => Role, agg => Agg, res => Res, id => Id}};
                false -> error
            end;
        [] ->
            error
    end.

%% @doc The variables with a tracker of `Role' on this node and the
%% trackers' pids, in term order of the variables.
-spec trackers(role()) -> [{term(), pid()}].
trackers(Role) ->
    try ets:match(?TAB, {{tracker, '$1'}, '$2', Role, '_', '_', '_'}) of
        L -> lists:sort([{V, P} || [V, P] <- L])
    catch error:badarg -> []
    end.

%% @doc From a member: its aggregator is now `NewAgg'.
-spec repoint_tracker(term(), pid()) -> ok | {error, not_tracked}.
repoint_tracker(Var, NewAgg) ->
    call({repoint_tracker, Var, self(), NewAgg}).

%% @doc From a tracker that stops: remove every row of `Var' (the
%% tracker's, its observer's, its journal's, its sequence number, last
%% state and type). Done again by the registry when the tracker dies
%% without calling it.
-spec unregister_tracker(term()) -> ok.
unregister_tracker(Var) ->
    _ = call({unregister_tracker, Var, self()}),
    ok.

%% ---- per-variable state ----

%% @doc The next sequence number of this node's updates to `Var'.
-spec next_seq(term()) -> pos_integer().
next_seq(Var) ->
    atomics:add_get(seq_ref(Var), 1, 1).

%% @doc Number this node's next update to `Var' `N + 1'.
-spec set_seq(term(), non_neg_integer()) -> ok.
set_seq(Var, N) when is_integer(N), N >= 0 ->
    atomics:put(seq_ref(Var), 1, N).

%% @doc The last sequence number this node gave an update to `Var'.
-spec seq(term()) -> non_neg_integer().
seq(Var) ->
    case lookup({seq, Var}) of
        [{_, Ref}] -> atomics:get(Ref, 1);
        [] -> 0
    end.

seq_ref(Var) ->
    case lookup({seq, Var}) of
        [{_, Ref}] -> Ref;
        [] -> call({seq_ref, Var})
    end.

%% @doc Remember `State' as the last state this node sent for `Var' and
%% return the one before (`undefined' the first time).
-spec swap_last_sent(term(), term()) -> term().
swap_last_sent(Var, State) ->
    Prev = last_sent(Var),
    try ets:insert(?LAST, {{last, Var}, State}) of
        true -> Prev
    catch error:badarg -> Prev
    end.

%% @doc The last state this node sent for `Var', or `undefined'.
-spec last_sent(term()) -> term().
last_sent(Var) ->
    try ets:lookup(?LAST, {last, Var}) of
        [{_, S}] -> S;
        [] -> undefined
    catch error:badarg -> undefined
    end.

%% @doc The type of `Var' on this node: the first one claimed.
-spec claim_type(term(), atom()) -> atom() | {error, not_started}.
claim_type(Var, Type) ->
    case lookup({type, Var}) of
        [{_, Held}] -> Held;
        [] -> call({claim_type, Var, Type})
    end.

%% ---- observers, journals, aggregators down ----

%% @doc Register `Pid' as this node's observer of `Var'.
-spec register_observer(term(), pid()) -> ok.
register_observer(Var, Pid) ->
    call({insert, {{observer, Var}, Pid}}).

%% @doc This node's observer of `Var'.
-spec observer(term()) -> {ok, pid()} | error.
observer(Var) ->
    case lookup({observer, Var}) of
        [{_, Pid}] -> {ok, Pid};
        [] -> error
    end.

%% @doc Register `Tab' as the journal of `Var' kept by the calling member.
-spec register_journal(term(), ets:tid()) -> ok.
register_journal(Var, Tab) ->
    call({insert, {{journal, Var}, Tab, self()}}).

%% @doc The journal of `Var' on this node and the member keeping it.
-spec journal(term()) -> {ok, ets:tid(), pid()} | error.
journal(Var) ->
    case lookup({journal, Var}) of
        [{_, Tab, Member}] -> {ok, Tab, Member};
        [] -> error
    end.

%% @doc The aggregator of `Var', on `Node', went down at `TsUs'.
-spec set_aggregator_down(term(), node(), integer()) -> ok.
set_aggregator_down(Var, Node, TsUs) ->
    call({insert, {{agg_down, Var}, Node, TsUs}}).

%% @doc The node of `Var''s aggregator, if it went down.
-spec aggregator_down(term()) -> {ok, node()} | error.
aggregator_down(Var) ->
    case lookup({agg_down, Var}) of
        [{_, Node, _}] -> {ok, Node};
        [] -> error
    end.

%% @doc `Var' has an aggregator again.
-spec clear_aggregator_down(term()) -> ok.
clear_aggregator_down(Var) ->
    call({delete, {agg_down, Var}}).

%% ---- tuner controllers ----

%% @doc Register the calling process as this node's controller of `Var'.
-spec register_controller(term()) -> ok | {error, already_started | not_started}.
register_controller(Var) ->
    call({register_controller, Var, self()}).

%% @doc This node's live controller of `Var'.
-spec controller(term()) -> {ok, pid()} | error.
controller(Var) ->
    case lookup({controller, Var}) of
        [{_, Pid}] ->
            case is_process_alive(Pid) of
                true -> {ok, Pid};
                false -> error
            end;
        [] ->
            error
    end.

%% @doc The variables with a controller on this node, in term order.
-spec controllers() -> [term()].
controllers() ->
    try ets:match(?TAB, {{controller, '$1'}, '$2'}) of
        L -> lists:sort([V || [V, P] <- L, is_process_alive(P)])
    catch error:badarg -> []
    end.

%% ---- Lasp streams ----

%% @doc A new stream of the Lasp variable `Id' under `Token': active, its
%% counts at zero. Any earlier stream of `Id' is retired.
-spec register_stream(term(), reference()) -> ok.
register_stream(Id, Token) ->
    call({register_stream, Id, Token}).

%% @doc The stream of `Id' stops doing work.
-spec deactivate_stream(term()) -> ok.
deactivate_stream(Id) ->
    call({deactivate_stream, Id}).

%% @doc Forget the stream of `Id' (it could not start).
-spec unregister_stream(term()) -> ok.
unregister_stream(Id) ->
    call({delete, {stream, Id}}).

%% @doc The stream of `Id' on this node.
-spec stream(term()) -> {ok, stream()} | error.
stream(Id) ->
    case lookup({stream, Id}) of
        [{_, Token, Active, Ref}] ->
            {ok, #{token => Token, active => Active, observed => counters:get(Ref, 1),
                   errors => counters:get(Ref, 2)}};
        [] ->
            error
    end.

%% @doc Count an observation (`observed') or a failure (`errors') of the
%% stream of `Id' under `Token' (nothing when another stream replaced it).
-spec count_stream(term(), reference(), observed | errors) -> ok.
count_stream(Id, Token, What) ->
    case lookup({stream, Id}) of
        [{_, Token, _, Ref}] ->
            counters:add(Ref, case What of observed -> 1; errors -> 2 end, 1);
        _ ->
            ok
    end.

%% ---- counters ----

%% @doc Add one to the counter `Key' (created at zero). Nothing when the
%% application does not run on this node.
-spec bump(term()) -> ok.
bump(Key) ->
    case lookup({count, Key}) of
        [{_, Ref}] ->
            counters:add(Ref, 1, 1);
        [] ->
            case call({counter, Key}) of
                {error, not_started} -> ok;
                Ref -> counters:add(Ref, 1, 1)
            end
    end.

%% @doc The counter `Key' (0 if never bumped).
-spec count(term()) -> non_neg_integer().
count(Key) ->
    case lookup({count, Key}) of
        [{_, Ref}] -> counters:get(Ref, 1);
        [] -> 0
    end.

%% @doc Back to zero.
-spec clear_count(term()) -> ok.
clear_count(Key) ->
    call({delete, {count, Key}}).

%% @doc The counters whose key is a tuple tagged `Tag':
%% `[{Rest, Count}]', `Rest' the key without its tag.
-spec counts(atom()) -> [{term(), non_neg_integer()}].
counts(Tag) ->
    try ets:match(?TAB, {{count, {Tag, '$1'}}, '$2'}) of
        L -> lists:sort([{K, counters:get(Ref, 1)} || [K, Ref] <- L])
    catch error:badarg -> []
    end.

%% ---- internals ----

lookup(Key) ->
    try ets:lookup(?TAB, Key)
    catch error:badarg -> []
    end.

call(Msg) ->
    try gen_server:call(?MODULE, Msg, ?CALL_TIMEOUT)
    catch exit:{noproc, _} -> {error, not_started};
          exit:{normal, _} -> {error, not_started};
          exit:{shutdown, _} -> {error, not_started}
    end.

%% ---- gen_server ----

%% @private
init([]) ->
    _ = ets:new(?TAB, [named_table, protected, set, {read_concurrency, true}]),
    _ = ets:new(?LAST, [named_table, public, set, {write_concurrency, true}]),
    {ok, #{}}.

%% @private
handle_call({register_tracker, Var, Pid, Role, Agg, Native}, _From, St) ->
    {Res, Id} = case Native of
                    {R, I} -> {R, I};
                    undefined -> {undefined, undefined}
                end,
    case ets:lookup(?TAB, {tracker, Var}) of
        [{_, Old, _, _, _, _}] ->
            case is_process_alive(Old) of
                true ->
                    {reply, {error, already_tracked}, St};
                false ->
                    drop_var(Var),
                    {reply, insert_tracker(Var, Pid, Role, Agg, Res, Id), St}
            end;
        [] ->
            {reply, insert_tracker(Var, Pid, Role, Agg, Res, Id), St}
    end;
handle_call({repoint_tracker, Var, Pid, NewAgg}, _From, St) ->
    case ets:lookup(?TAB, {tracker, Var}) of
        [{_, Pid, _, _, _, _}] ->
            true = ets:update_element(?TAB, {tracker, Var}, {4, NewAgg}),
            true = ets:delete(?TAB, {agg_down, Var}),
            {reply, ok, St};
        _ ->
            {reply, {error, not_tracked}, St}
    end;
handle_call({unregister_tracker, Var, Pid}, _From, St) ->
    _ = owned(Var, Pid) andalso drop_var(Var),
    {reply, ok, St};
handle_call({seq_ref, Var}, _From, St) ->
    Ref = case ets:lookup(?TAB, {seq, Var}) of
              [{_, R}] -> R;
              [] ->
                  R = atomics:new(1, [{signed, false}]),
                  true = ets:insert(?TAB, {{seq, Var}, R}),
                  R
          end,
    {reply, Ref, St};
handle_call({claim_type, Var, Type}, _From, St) ->
    _ = ets:insert_new(?TAB, {{type, Var}, Type}),
    {reply, ets:lookup_element(?TAB, {type, Var}, 2), St};
handle_call({register_controller, Var, Pid}, _From, St) ->
    case ets:lookup(?TAB, {controller, Var}) of
        [{_, Old}] when Old =/= Pid ->
            case is_process_alive(Old) of
                true -> {reply, {error, already_started}, St};
                false -> {reply, insert_controller(Var, Pid), St}
            end;
        _ ->
            {reply, insert_controller(Var, Pid), St}
    end;
handle_call({register_stream, Id, Token}, _From, St) ->
    true = ets:insert(?TAB, {{stream, Id}, Token, true, counters:new(2, [write_concurrency])}),
    {reply, ok, St};
handle_call({deactivate_stream, Id}, _From, St) ->
    _ = ets:update_element(?TAB, {stream, Id}, {3, false}),
    {reply, ok, St};
handle_call({counter, Key}, _From, St) ->
    Ref = case ets:lookup(?TAB, {count, Key}) of
              [{_, R}] -> R;
              [] ->
                  R = counters:new(1, [write_concurrency]),
                  true = ets:insert(?TAB, {{count, Key}, R}),
                  R
          end,
    {reply, Ref, St};
handle_call({insert, Row}, _From, St) ->
    true = ets:insert(?TAB, Row),
    {reply, ok, St};
handle_call({delete, Key}, _From, St) ->
    true = ets:delete(?TAB, Key),
    {reply, ok, St};
handle_call(_, _From, St) ->
    {reply, {error, bad_call}, St}.

%% @private
handle_cast(_, St) ->
    {noreply, St}.

%% @private
handle_info({'DOWN', MRef, process, Pid, _}, St) ->
    _ = case ets:take(?TAB, {monitor, MRef}) of
            [{_, tracker, Var}] -> owned(Var, Pid) andalso drop_var(Var);
            [{_, controller, Var}] -> ets:match_delete(?TAB, {{controller, Var}, Pid});
            [] -> ok
        end,
    {noreply, St};
handle_info(_, St) ->
    {noreply, St}.

insert_tracker(Var, Pid, Role, Agg, Res, Id) ->
    true = ets:insert(?TAB, {{tracker, Var}, Pid, Role, Agg, Res, Id}),
    true = ets:insert(?TAB, {{monitor, erlang:monitor(process, Pid)}, tracker, Var}),
    ok.

insert_controller(Var, Pid) ->
    true = ets:insert(?TAB, {{controller, Var}, Pid}),
    true = ets:insert(?TAB, {{monitor, erlang:monitor(process, Pid)}, controller, Var}),
    ok.

owned(Var, Pid) ->
    case ets:lookup(?TAB, {tracker, Var}) of
        [{_, Pid, _, _, _, _}] -> true;
        _ -> false
    end.

%% Every row of a tracked variable. Its sequence number goes too: a member
%% started again is given its first number by its aggregator.
drop_var(Var) ->
    true = ets:delete(?LAST, {last, Var}),
    _ = [ets:delete(?TAB, K)
         || K <- [{tracker, Var}, {seq, Var}, {type, Var}, {observer, Var},
                  {journal, Var}, {agg_down, Var}, {count, {observer_errors, Var}},
                  {count, {observer_skipped, Var}}, {count, {journal_dropped, Var}}]],
    true.
