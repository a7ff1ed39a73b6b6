%% @doc When the aggregating node dies: members keep their records, say
%% what happened, and hand them to a new aggregating node.
%%
%% == Journal ==
%%
%% Every member node keeps, per tracked variable, a journal of what it sent
%% the aggregating node: its updates' witnesses and its observations, with
%% their timestamps, the newest `journal_max' (application environment,
%% default 10,000; older entries are dropped and counted), plus the last
%% state it sent (the join of all its observations). The writer (the
%% process calling `lasp_converge:updated/3' or `observed/2') hands the
%% message to its node's member process, a local send, and returns; the
%% member journals it and sends it on to the aggregator. One process per
%% node and variable does both, in arrival order, so a takeover sees every
%% message the member took in before it, and the new aggregator every one
%% after.
%%
%% == Aggregator down ==
%%
%% When the aggregator process or its node dies, the member stays: its
%% updates and observations still return `ok' and go to the journal, and
%% `lasp_converge:stats/1' (and every other query) on that node answers
%% `{error, {aggregator_down, Node}}'. `lasp_converge:untrack/1' there
%% stops the local member.
%%
%% == Taking over ==
%%
%% `lasp_converge:track(Var, #{take_over => true})' on any node (a member
%% or not) makes it the aggregating node of `Var' again, from the records
%% the members kept: it refuses with `{error, {aggregator_alive, Node}}'
%% while an aggregator of `Var' runs on a connected node; otherwise every
%% orphaned member (of `nodes', default every connected node) is adopted,
%% its journal replayed in timestamp order into the new tracker (clocks
%% sampled first, so member timestamps are corrected as usual), then its
%% last state as an observation at its last observation's time (so a
%% dropped journal entry delays a first-seen time, never loses one). This
%% node's own journal, if it was a member, is replayed as its own. The
%% takeover is
%% recorded as a mark `#{at_us, takeover => #{from, replayed, dropped}}'.
%%
%% Lost for good: updates made on the dead node itself (their witnesses
%% were only there) and its own observations. A plain `track/1,2' (without
%% `take_over') on a node also adopts orphaned members, but starts a new
%% measurement: their journals are cleared, nothing is replayed.
%% `lasp_converge:reset/1' clears the members' journals too.
-module(lasp_converge_handover).

-export([prepare/2, send/3, record/3, open/1, clear/1, lost/2, status/1, explain/1,
         untrack_orphan/1, adopt/3, replay/3, repoint/3, repointed/3, dump/1]).

-define(RPC_TIMEOUT, 5000).
-define(DEFAULT_MAX, 10000).

-type status() :: not_tracked | {aggregator, node()} | {member, node()} | {orphan, node()}.
-type dump() :: #{node := node(), entries := [tuple()], last := term(),
                  last_ts := integer() | undefined, dropped := non_neg_integer(),
                  from := node() | undefined, seq => non_neg_integer()}.
-export_type([status/0, dump/0]).

%% ---- on the node calling track/2 ----

%% @doc Before `Var' is tracked here: check `take_over', refuse while an
%% aggregator runs, and stop this node's orphaned member, keeping its
%% journal for the replay when taking over. Returns the options the
%% aggregator starts with.
-spec prepare(term(), map()) -> {ok, map()} | {error, term()}.
prepare(Var, Opts) ->
    case maps:get(take_over, Opts, false) of
        TakeOver when is_boolean(TakeOver) ->
            Others = maps:get(nodes, Opts, nodes()) -- [node()],
            Alive = case TakeOver of
                        true -> [Agg || N <- Others,
                                        Agg <- alive(rpc:call(N, ?MODULE, status, [Var],
                                                              ?RPC_TIMEOUT))];
                        false -> []
                    end,
            case {Alive, status(Var)} of
                {[N | _], _} ->
                    {error, {aggregator_alive, N}};
                {[], {orphan, From}} ->
                    Local = stop_orphan(Var),
                    {ok, handover_opts(Opts, TakeOver, [Local#{from => From} || TakeOver])};
                {[], _} ->
                    {ok, handover_opts(Opts, TakeOver, [])}
            end;
        _ ->
            {error, bad_opts}
    end.

%% The node of a live aggregator, if any.
alive({aggregator, N}) -> [N];
alive({member, N}) -> [N];
alive(_) -> [].

handover_opts(Opts, TakeOver, Local) ->
    (maps:remove(take_over, Opts))#{lc_handover => #{take_over => TakeOver, local => Local}}.

stop_orphan(Var) ->
    Dump = case member(Var) of
               {ok, Pid} -> stop_member(Pid);
               error -> empty_dump()
           end,
    %% This node's updates go on numbering where the member left off.
    ok = lasp_converge_registry:set_seq(Var, maps:get(seq, Dump, 0)),
    maps:remove(seq, Dump).

%% This node's member process of `Var'.
member(Var) ->
    case lasp_converge_registry:tracker(Var) of
        {ok, #{role := member, pid := Pid}} -> {ok, Pid};
        _ -> error
    end.

%% The member's dump, once it has stopped and left the registry.
stop_member(Pid) ->
    Ref = erlang:monitor(process, Pid),
    Dump = try gen_server:call(Pid, lc_dump_and_stop, 30000)
           catch exit:_ -> empty_dump()
           end,
    receive {'DOWN', Ref, process, Pid, _} -> ok end,
    Dump.

empty_dump() ->
    #{node => node(), entries => [], last => undefined, last_ts => undefined, dropped => 0,
      from => undefined}.

%% ---- in the new aggregator ----

%% @doc In the aggregator's start: adopt the orphaned members on `Nodes'
%% (the wanted nodes where no new member could start). Returns the adopted
%% members and, when taking over, the journals to replay.
-spec adopt(term(), [node()], map()) -> {#{node() => pid()}, [dump()]}.
adopt(Var, Nodes, Opts) ->
    #{take_over := TakeOver, local := Local} =
        maps:get(lc_handover, Opts, #{take_over => false, local => []}),
    Got = [{N, rpc:call(N, ?MODULE, repoint, [Var, self(), TakeOver], ?RPC_TIMEOUT)}
           || N <- Nodes],
    Adopted = maps:from_list([{N, Pid} || {N, {ok, Pid, _}} <- Got, is_pid(Pid)]),
    maps:foreach(fun(_, Pid) -> erlang:monitor(process, Pid) end, Adopted),
    Dumps = [D || {_, {ok, _, D}} <- Got, TakeOver, is_map(D)],
    {Adopted, Local ++ Dumps}.

%% @doc Replay the journals into the new tracker `Res' (`Ids' numbers the
%% nodes) and mark the takeover.
-spec replay(reference(), #{node() => non_neg_integer()}, [dump()]) -> ok.
replay(_Res, _Ids, []) ->
    ok;
replay(Res, Ids, Dumps) ->
    Entries = lists:sort(fun(A, B) -> ts(A) =< ts(B) end,
                         lists:append([E || #{entries := E} <- Dumps])),
    Replayed = length([ok || E <- Entries, apply_entry(Res, Ids, E) =:= ok]),
    _ = [ok = apply_entry(Res, Ids, {lc_observed_delta, N, T, L})
         || #{node := N, last := L, last_ts := T} <- Dumps, L =/= undefined, is_integer(T),
            maps:is_key(N, Ids)],
    From = hd([F || #{from := F} <- Dumps, F =/= undefined] ++ [undefined]),
    Mark = #{at_us => lasp_converge_tracker:now_us(),
             takeover => #{from => From, replayed => Replayed,
                           dropped => lists:sum([D || #{dropped := D} <- Dumps])}},
    gen_server:cast(self(), {mark, Mark}),
    ok.

ts({lc_updated, _, _, Ts, _}) -> Ts;
ts({lc_observed_delta, _, Ts, _}) -> Ts.

apply_entry(Res, Ids, {lc_updated, Node, Seq, Ts, W}) ->
    case Ids of
        #{Node := Id} -> ok_or_error(lasp_converge:witness(Res, Id, Seq, Ts, W));
        _ -> error
    end;
apply_entry(Res, Ids, {lc_observed_delta, Node, Ts, D}) ->
    case Ids of
        #{Node := Id} -> ok_or_error(lasp_converge_tracker:observed_delta(Res, Id, Ts, D));
        _ -> error
    end.

ok_or_error({ok, _}) -> ok;
ok_or_error(_) -> error.

%% ---- on a member node ----

%% @doc Called by the new aggregator: make this node's orphaned member of
%% `Var' report to `NewAgg'. `{ok, MemberPid, Dump}' (`Dump' the journal
%% when `Keep', else `none' and the journal is cleared); `{error, _}' when
%% the member's aggregator is alive or there is no member.
-spec repoint(term(), pid(), boolean()) -> {ok, pid(), dump() | none} | {error, term()}.
repoint(Var, NewAgg, Keep) ->
    case status(Var) of
        {orphan, _} ->
            case member(Var) of
                {ok, Pid} ->
                    try gen_server:call(Pid, {lc_repoint, NewAgg, Keep}, 30000)
                    catch exit:_ -> {error, not_tracked}
                    end;
                error ->
                    {error, not_tracked}
            end;
        {member, N} ->
            {error, {aggregator_alive, N}};
        _ ->
            {error, not_tracked}
    end.

%% @doc In the member process, on `{lc_repoint, NewAgg, Keep}'.
-spec repointed(term(), pid(), boolean()) -> {ok, pid(), dump() | none}.
repointed(Var, NewAgg, Keep) ->
    From = case lasp_converge_registry:aggregator_down(Var) of
               {ok, F} -> F;
               error -> undefined
           end,
    ok = lasp_converge_registry:repoint_tracker(Var, NewAgg),
    Dump = case Keep of
               true ->
                   (dump(Var))#{from => From};
               false ->
                   ok = clear(Var),
                   none
           end,
    {ok, self(), Dump}.

%% @doc This node's journal of `Var', its last state sent and its next
%% sequence number's predecessor.
-spec dump(term()) -> dump().
dump(Var) ->
    Entries = case journal(Var) of
                  [T] -> [Msg || {_, Msg} <- ets:tab2list(T)];
                  [] -> []
              end,
    Last = lasp_converge_registry:last_sent(Var),
    Obs = [Ts || {lc_observed_delta, _, Ts, _} <- Entries],
    LastTs = case {Last, Obs} of
                 {undefined, _} -> undefined;
                 {_, []} -> lasp_converge_tracker:now_us();
                 _ -> lists:max(Obs)
             end,
    Dropped = lasp_converge_registry:count({journal_dropped, Var}),
    Seq = lasp_converge_registry:seq(Var),
    #{node => node(), entries => Entries, last => Last, last_ts => LastTs,
      dropped => Dropped, from => undefined, seq => Seq}.

%% @doc In a member's start: open its journal.
-spec open(term()) -> ok.
open(Var) ->
    T = ets:new(lasp_converge_journal, [ordered_set, protected]),
    lasp_converge_registry:register_journal(Var, T).

%% @doc In the member process: empty the journal of `Var' (a new
%% measurement).
-spec clear(term()) -> ok.
clear(Var) ->
    _ = [ets:delete_all_objects(T) || T <- journal(Var)],
    lasp_converge_registry:clear_count({journal_dropped, Var}).

%% @doc From a writer on a member node: hand `Msg' for the aggregator `Agg'
%% of `Var' to this node's member, which journals it and sends it on.
-spec send(term(), pid(), tuple()) -> ok.
send(Var, Agg, Msg) ->
    case lasp_converge_registry:journal(Var) of
        {ok, _, Member} -> Member ! {lc_journal, Msg};
        error -> Agg ! Msg
    end,
    ok.

%% @doc In the member process: journal `Msg' and send it to `Agg'.
-spec record(term(), pid(), tuple()) -> ok.
record(Var, Agg, Msg) ->
    _ = case journal(Var) of
            [T] ->
                true = ets:insert(T, {erlang:unique_integer([monotonic]), Msg}),
                trim(T, Var);
            [] ->
                ok
        end,
    Agg ! Msg,
    ok.

trim(T, Var) ->
    Max = case application:get_env(lasp_converge, journal_max, ?DEFAULT_MAX) of
              M when is_integer(M), M >= 0 -> M;
              _ -> ?DEFAULT_MAX
          end,
    case ets:info(T, size) > Max of
        true ->
            case ets:first(T) of
                '$end_of_table' ->
                    ok;
                K ->
                    _ = ets:delete(T, K),
                    ok = lasp_converge_registry:bump({journal_dropped, Var}),
                    trim(T, Var)
            end;
        false ->
            ok
    end.

journal(Var) ->
    case lasp_converge_registry:journal(Var) of
        {ok, T, _} -> [T];
        error -> []
    end.

%% @doc In a member process: its aggregator `Agg' went down.
-spec lost(term(), pid()) -> ok.
lost(Var, Agg) ->
    lasp_converge_registry:set_aggregator_down(Var, node(Agg), lasp_converge_tracker:now_us()).

%% @doc What this node is for `Var': `{aggregator, node()}', `{member,
%% AggNode}', `{orphan, AggNode}' (a member whose aggregator is down) or
%% `not_tracked'.
-spec status(term()) -> status().
status(Var) ->
    case lasp_converge_tracker:lookup(Var) of
        {ok, {aggregator, _, _, _}} ->
            {aggregator, node()};
        {ok, {member, Agg, _, _}} ->
            Down = lasp_converge_registry:aggregator_down(Var) =/= error
                orelse not lists:member(node(Agg), [node() | nodes()])
                orelse (node(Agg) =:= node() andalso not is_process_alive(Agg)),
            case Down of
                true -> {orphan, node(Agg)};
                false -> {member, node(Agg)}
            end;
        {error, _} ->
            not_tracked
    end.

%% @doc Why a query on `Var' found no aggregator.
-spec explain(term()) -> {error, not_tracked | {aggregator_down, node()}}.
explain(Var) ->
    case {status(Var), lasp_converge_tracker:lookup(Var)} of
        {{orphan, N}, _} ->
            {error, {aggregator_down, N}};
        {{member, N}, {ok, {member, Agg, _, _}}} ->
            %% The member has not heard of it yet: ask its node.
            case rpc:call(N, erlang, is_process_alive, [Agg], ?RPC_TIMEOUT) of
                true -> {error, not_tracked};
                _ -> {error, {aggregator_down, N}}
            end;
        _ ->
            {error, not_tracked}
    end.

%% @doc `untrack/1' on a node whose aggregator is down: stop the local
%% member.
-spec untrack_orphan(term()) -> ok | {error, not_tracked}.
untrack_orphan(Var) ->
    case status(Var) of
        {orphan, _} ->
            _ = [stop_member(Pid) || {ok, Pid} <- [member(Var)]],
            ok;
        _ ->
            {error, not_tracked}
    end.
