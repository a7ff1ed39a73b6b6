%% @doc One node's tracker of one variable (see `lasp_converge').
%%
%% Two roles:
%%
%% <ul>
%% <li>`aggregator': on the node that called `lasp_converge:track/2'. It
%%   owns the native tracker (`lasp_converge_nif:tracker_new/1'), starts a
%%   `member' on every other node, numbers the nodes (itself 0, the others
%%   1, 2, ... in the order given; itself a member unless `nodes' names
%%   other nodes only), estimates their clock offsets by ping
%%   round trips (a burst of `?SYNC_ROUNDS' when tracking starts, then one
%%   per member every `clock' ms; the core keeps the tightest), advances
%%   the tracker's clock every `tick' ms, and drops a node from the
%%   members when it goes down (`net_kernel:monitor_nodes/1') or its member
%%   stops. A node that comes up (any node when `track/2' had no `nodes'
%%   option, else one of the `nodes') joins: its member starts (retried
%%   while the application starts there), its clock is sampled, and it must
%%   see the updates made from then on.</li>
%% <li>`member': on every other node. It answers pings with its clock and
%%   keeps a journal of what its node sent; when the aggregator dies it
%%   stays, so that another node can take over (`lasp_converge_handover').</li>
%% </ul>
%%
%% Updates and observations do not go through either process on the
%% aggregating node: `lasp_converge' reads the native tracker from the
%% registry and calls it in the caller's process. On a member node it
%% computes the witness (`delta(Post, Pre)') locally and hands only that,
%% with the node's own timestamp, to the node's member, which journals it
%% (`lasp_converge_handover') and sends it to the aggregator; an observation sends
%% only what the state gained since the last state this node sent
%% (`delta(State, Last)', the whole state the first time), and the
%% aggregator joins it into the node's state
%% (`observed_delta/4'). Observations made
%% concurrently by several processes of one member may reach the aggregator
%% in another order than their timestamps; joins keep the node's state
%% right, and a first-seen time is then at worst the later of the two.
-module(lasp_converge_tracker).
-behaviour(gen_server).

-export([start_link/2, now_us/0, lookup/1, aggregator_node/1, next_seq/1, swap_last_sent/2,
         check_type/2,
         observed_delta/4,
         mark_all/1, aggregated/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

%% How long reset/1 waits for the members to clear their journals.
-define(JOURNAL_RESET_MS, 5000).
-define(SYNC_ROUNDS, 8).
-define(SYNC_TIMEOUT, 1000).
-define(RPC_TIMEOUT, 5000).
-define(DEFAULT_TICK_MS, 100).
-define(DEFAULT_CLOCK_MS, 1000).
%% A node that comes up may start the application a little later: try to
%% start its member this many times, ?JOIN_RETRY_MS apart.
-define(JOIN_ATTEMPTS, 25).
-define(JOIN_RETRY_MS, 200).
%% Marks kept per variable (the newest).
-define(MAX_MARKS, 1000).

%% A member may be given the first sequence number for its updates: a node
%% that comes back after a crash must not reuse the numbers of its earlier
%% incarnation.
-type role() :: {aggregator, map()} | {member, pid()} | {member, pid(), non_neg_integer()}.
-type entry() :: {aggregator, pid(), lasp_converge_nif:tracker(), non_neg_integer()}
               | {member, pid(), undefined, undefined}.
-export_type([role/0, entry/0]).

-record(st, {var :: term(),
             role :: aggregator | member,
             agg :: pid(),
             res :: lasp_converge_nif:tracker() | undefined,
             %% aggregator only:
             ids = #{} :: #{node() => non_neg_integer()},
             names = #{} :: #{non_neg_integer() => node()},
             members = #{} :: #{node() => pid()},
             live = [] :: [node()],
             %% Nodes that may join when they come up: `any' (no `nodes'
             %% option) or the `nodes' given.
             joinable = [] :: any | [node()],
             tick :: pos_integer() | false,
             clock :: pos_integer() | false,
             %% Marks (lasp_converge:mark/1), newest first.
             marks = [] :: [term()]}).

%% @doc Start the tracker of `Var' on this node (through
%% `lasp_converge_tracker_sup'). `ignore' when the variable is already
%% tracked here. The aggregator's native tracker is made before the process
%% starts, so that options the native tracker refuses are an `{error, _}'
%% answer and not a failed process.
-spec start_link(term(), role()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Var, {aggregator, Opts}) ->
    case lasp_converge_nif:tracker_new(nif_opts(Opts)) of
        {ok, Res} -> gen_server:start_link(?MODULE, {Var, {aggregator, Opts, Res}}, []);
        {error, _} = E -> E
    end;
start_link(Var, Role) ->
    gen_server:start_link(?MODULE, {Var, Role}, []).

%% @doc This node's clock, in microseconds: `os:system_time(microsecond)' plus
%% the application environment's `clock_offset_us' (0 by default; tests set
%% it to give a node a skewed clock).
-spec now_us() -> integer().
now_us() ->
    os:system_time(microsecond) + application:get_env(lasp_converge, clock_offset_us, 0).

%% @doc This node's tracker of `Var'.
-spec lookup(term()) -> {ok, entry()} | {error, not_tracked}.
lookup(Var) ->
    case lasp_converge_registry:tracker(Var) of
        {ok, #{role := aggregator, agg := Agg, res := Res, id := Id}} ->
            {ok, {aggregator, Agg, Res, Id}};
        {ok, #{role := member, agg := Agg}} ->
            {ok, {member, Agg, undefined, undefined}};
        error ->
            {error, not_tracked}
    end.

%% @doc The node aggregating `Var', as this node's tracker of it knows.
-spec aggregator_node(term()) -> {ok, node()} | {error, not_tracked}.
aggregator_node(Var) ->
    case lasp_converge_registry:tracker(Var) of
        {ok, #{agg := Agg}} -> {ok, node(Agg)};
        error -> {error, not_tracked}
    end.

%% @doc The next sequence number of this node's updates to `Var'.
-spec next_seq(term()) -> pos_integer().
next_seq(Var) ->
    lasp_converge_registry:next_seq(Var).

%% @doc Remember `State' as the last state this node sent for `Var' and
%% return the one before (`undefined' the first time).
-spec swap_last_sent(term(), term()) -> term().
swap_last_sent(Var, State) ->
    lasp_converge_registry:swap_last_sent(Var, State).

%% @doc Node `Id' of the native tracker `Res' gained `Delta' at `Ts' (its
%% clock): `lasp_converge_nif:tracker_observed_delta/4', on the calling
%% scheduler when the delta is small and the node's state is held keyed
%% (the join costs what the delta weighs) or is small, else on a dirty one.
-spec observed_delta(reference(), non_neg_integer(), integer(), term()) ->
          {ok, map()} | {error, term()}.
observed_delta(Res, Id, Ts, Delta) ->
    try lasp_converge_nif:tracker_observed_delta_normal(Res, Id, Ts, Delta)
    catch error:lasp_converge_dirty -> lasp_converge_nif:tracker_observed_delta(Res, Id, Ts, Delta)
    end.

%% @doc On a member node: the first type given for `Var' is its type; a
%% state of another type is refused here, as the aggregator would refuse it.
-spec check_type(term(), atom()) -> ok | {error, {badcrdt, {type_mismatch, atom(), atom()}}}.
check_type(Var, Type) ->
    case lasp_converge_registry:claim_type(Var, Type) of
        Type -> ok;
        {error, not_started} -> ok;
        Tracked -> {error, {badcrdt, {type_mismatch, Tracked, Type}}}
    end.

%% @doc Hand `Mark' to the aggregator of every variable aggregated on this
%% node (none when the application does not run here).
-spec mark_all(term()) -> ok.
mark_all(Mark) ->
    lists:foreach(fun({_, Pid}) -> gen_server:cast(Pid, {mark, Mark}) end,
                  lasp_converge_registry:trackers(aggregator)).

%% @doc The variables aggregated on this node, in term order.
-spec aggregated() -> [term()].
aggregated() ->
    [V || {V, _} <- lasp_converge_registry:trackers(aggregator)].

%% ---- gen_server ----

%% @private
init({Var, {aggregator, Opts, Res}}) ->
    process_flag(trap_exit, true),
    case lasp_converge_registry:register_tracker(Var, aggregator, self(), {Res, 0}) of
        ok ->
            _ = lasp_converge_observer:start_link(Var),
            {ok, start_aggregator(Var, Res, Opts)};
        {error, _} ->
            ignore
    end;
init({Var, {member, Agg}}) ->
    init({Var, {member, Agg, 0}});
init({Var, {member, Agg, SeqBase}}) ->
    process_flag(trap_exit, true),
    case lasp_converge_registry:register_tracker(Var, member, Agg, undefined) of
        {error, _} ->
            ignore;
        ok ->
            _ = SeqBase > 0 andalso lasp_converge_registry:set_seq(Var, SeqBase),
            ok = lasp_converge_handover:open(Var),
            _ = lasp_converge_observer:start_link(Var),
            _ = erlang:monitor(process, Agg),
            {ok, #st{var = Var, role = member, agg = Agg, tick = false, clock = false}}
    end.

start_aggregator(Var, Res, Opts) ->
    Wanted = lists:usort(maps:get(nodes, Opts, nodes())) -- [node()],
    Started = start_members(Var, Wanted, 0),
    %% Orphaned members (their aggregator died) are adopted.
    {Adopted, Journals} = lasp_converge_handover:adopt(Var, Wanted -- maps:keys(Started), Opts),
    Members = maps:merge(Started, Adopted),
    Order = [node() | [N || N <- maps:get(nodes, Opts, nodes()), N =/= node()]],
    Ids = maps:from_list(lists:zip(Order, lists:seq(0, length(Order) - 1))),
    Names = maps:from_list([{I, N} || {N, I} <- maps:to_list(Ids)]),
    ok = net_kernel:monitor_nodes(true),
    maps:foreach(fun(N, Pid) -> sync_clock(Res, maps:get(N, Ids), N, Pid, ?SYNC_ROUNDS) end,
                 Members),
    Live = [node() || self_member(Opts)] ++ maps:keys(Members),
    ok = lasp_converge_nif:tracker_set_members(Res, now_us(), [maps:get(N, Ids) || N <- Live]),
    ok = lasp_converge_handover:replay(Res, Ids, Journals),
    St = #st{var = Var, role = aggregator, agg = self(), res = Res,
             ids = Ids, names = Names, members = Members, live = Live,
             joinable = case Opts of
                            #{nodes := Ns} when is_list(Ns) -> Ns;
                            _ -> any
                        end,
             tick = maps:get(tick, Opts, ?DEFAULT_TICK_MS),
             clock = maps:get(clock, Opts, ?DEFAULT_CLOCK_MS)},
    schedule(tick, St#st.tick),
    schedule(clock, St#st.clock),
    St.

%% This node is a member unless `nodes' names other nodes and not this one:
%% a node that only aggregates (a shell, a test runner) holds no replica
%% and would never see an update.
self_member(#{nodes := Ns}) when Ns =/= [] -> lists:member(node(), Ns);
self_member(_) -> true.

%% Start a member on each node; a node that cannot run one (not reachable,
%% application not running, variable already tracked there) is left out.
start_members(Var, Nodes, SeqBase) ->
    Started = [{N, rpc:call(N, lasp_converge_tracker_sup, start_tracker,
                            [Var, {member, self(), SeqBase}], ?RPC_TIMEOUT)}
               || N <- Nodes],
    Members = maps:from_list([{N, Pid} || {N, {ok, Pid}} <- Started, is_pid(Pid)]),
    maps:foreach(fun(_, Pid) -> erlang:monitor(process, Pid) end, Members),
    Members.

sync_clock(_Res, _Id, _Node, _Pid, 0) ->
    ok;
sync_clock(Res, Id, Node, Pid, N) ->
    T0 = now_us(),
    Pid ! {lc_ping, self(), T0},
    receive
        {lc_pong, Node, T0, T1} ->
            _ = lasp_converge_nif:tracker_clock_sample(Res, Id, T0, T1, now_us()),
            sync_clock(Res, Id, Node, Pid, N - 1)
    after ?SYNC_TIMEOUT ->
            ok
    end.

nif_opts(Opts) ->
    Ms = [{horizon, horizon_us}, {sample_every, sample_every_us}],
    Plain = [max_pending, record_window, max_samples, clock_window, max_latency_us, max_nodes],
    M0 = #{exact => [0]},
    M1 = lists:foldl(fun({K, NK}, Acc) ->
                             case Opts of
                                 #{K := V} when is_integer(V) -> Acc#{NK => V * 1000};
                                 #{K := V} -> Acc#{NK => V};
                                 _ -> Acc
                             end
                     end, M0, Ms),
    lists:foldl(fun(K, Acc) ->
                        case Opts of
                            #{K := V} -> Acc#{K => V};
                            _ -> Acc
                        end
                end, M1, Plain).

%% Wait for the members' acknowledgements of a journal reset, up to a
%% deadline (a member on a node that does not answer is not waited for).
journals_reset(_Ref, 0, _Deadline) ->
    ok;
journals_reset(Ref, N, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive {lc_journal_reset_done, Ref} -> journals_reset(Ref, N - 1, Deadline)
    after Left -> ok
    end.

schedule(_, false) -> ok;
schedule(Msg, Ms) when is_integer(Ms), Ms > 0 ->
    _ = erlang:send_after(Ms, self(), Msg),
    ok;
schedule(_, _) -> ok.

%% @private
handle_call(untrack, _From, St = #st{role = aggregator, members = Members}) ->
    maps:foreach(fun(_, Pid) -> gen_server:cast(Pid, stop) end, Members),
    {stop, normal, ok, St};
handle_call({query, marks}, _From, St = #st{role = aggregator, marks = Marks}) ->
    {reply, lists:reverse(Marks), St};
handle_call({query, reset}, _From, St = #st{role = aggregator, members = Members}) ->
    %% A new measurement: the members' journals start again too, before
    %% reset/1 returns, so that nothing recorded after it is cleared.
    Ref = make_ref(),
    maps:foreach(fun(_, Pid) -> Pid ! {lc_journal_reset, self(), Ref} end, Members),
    ok = journals_reset(Ref, maps:size(Members),
                        erlang:monotonic_time(millisecond) + ?JOURNAL_RESET_MS),
    {reply, query(reset, St), St#st{marks = []}};
handle_call({query, Q}, _From, St = #st{role = aggregator}) ->
    {reply, query(Q, St), St};
handle_call({lc_repoint, NewAgg, Keep}, _From, St = #st{role = member, var = Var}) ->
    _ = erlang:monitor(process, NewAgg),
    {reply, lasp_converge_handover:repointed(Var, NewAgg, Keep), St#st{agg = NewAgg}};
handle_call(lc_dump_and_stop, _From, St = #st{role = member, var = Var}) ->
    {stop, normal, lasp_converge_handover:dump(Var), St};
handle_call(_, _From, St) ->
    {reply, {error, not_aggregator}, St}.

%% @private
handle_cast(stop, St) ->
    {stop, normal, St};
handle_cast({mark, Mark}, St = #st{role = aggregator, marks = Marks}) ->
    {noreply, St#st{marks = lists:sublist([Mark | Marks], ?MAX_MARKS)}};
handle_cast(_, St) ->
    {noreply, St}.

%% @private
handle_info({lc_ping, From, T0}, St) ->
    From ! {lc_pong, node(), T0, now_us()},
    {noreply, St};
handle_info({lc_updated, Node, Seq, Ts, W}, St = #st{role = aggregator, res = Res}) ->
    _ = with_id(Node, St, fun(Id) -> lasp_converge:witness(Res, Id, Seq, Ts, W) end),
    {noreply, St};
handle_info({lc_observed_delta, Node, Ts, D}, St = #st{role = aggregator, res = Res}) ->
    _ = with_id(Node, St, fun(Id) -> observed_delta(Res, Id, Ts, D) end),
    {noreply, St};
handle_info({lc_pong, Node, T0, T1}, St = #st{role = aggregator, res = Res}) ->
    T2 = now_us(),
    _ = with_id(Node, St, fun(Id) -> lasp_converge_nif:tracker_clock_sample(Res, Id, T0, T1, T2) end),
    {noreply, St};
handle_info(tick, St = #st{res = Res}) ->
    _ = lasp_converge_nif:tracker_tick(Res, now_us()),
    ok = lasp_converge_telemetry:tracker_tick(St#st.var, Res, St#st.names),
    schedule(tick, St#st.tick),
    {noreply, St};
handle_info(clock, St = #st{members = Members}) ->
    maps:foreach(fun(_, Pid) -> Pid ! {lc_ping, self(), now_us()} end, Members),
    schedule(clock, St#st.clock),
    {noreply, St};
handle_info({nodedown, Node}, St = #st{role = aggregator}) ->
    {noreply, drop(Node, St)};
handle_info({nodeup, Node}, St = #st{role = aggregator, joinable = J}) ->
    _ = case J =:= any orelse lists:member(Node, J) of
            true -> self() ! {join, Node, ?JOIN_ATTEMPTS};
            false -> ok
        end,
    {noreply, St};
handle_info({join, Node, N}, St = #st{role = aggregator}) ->
    {noreply, join(Node, N, St)};
handle_info({'DOWN', _, process, Agg, _}, St = #st{role = member, agg = Agg, var = Var}) ->
    ok = lasp_converge_handover:lost(Var, Agg),
    {noreply, St};
handle_info({lc_journal_reset, From, Ref}, St = #st{role = member, var = Var}) ->
    ok = lasp_converge_handover:clear(Var),
    From ! {lc_journal_reset_done, Ref},
    {noreply, St};
handle_info({lc_journal, Msg}, St = #st{role = member, var = Var, agg = Agg}) ->
    ok = lasp_converge_handover:record(Var, Agg, Msg),
    {noreply, St};
handle_info({'DOWN', _, process, Pid, _}, St = #st{role = aggregator, members = Members}) ->
    case [N || {N, P} <- maps:to_list(Members), P =:= Pid] of
        [Node] -> {noreply, drop(Node, St)};
        [] -> {noreply, St}
    end;
handle_info(_, St) ->
    {noreply, St}.

%% @private
terminate(_Reason, #st{var = Var}) ->
    %% Every row of `Var' (observer, journal, counters) goes with it.
    lasp_converge_registry:unregister_tracker(Var).

%% ---- internals ----

with_id(Node, #st{ids = Ids, live = Live}, F) ->
    case lists:member(Node, Live) of
        true -> F(maps:get(Node, Ids));
        false -> {error, not_a_member}
    end.

drop(Node, St = #st{live = Live, members = Members, res = Res, ids = Ids}) ->
    case lists:member(Node, Live) andalso Node =/= node() of
        false ->
            St;
        true ->
            Live1 = Live -- [Node],
            ok = lasp_converge_nif:tracker_set_members(Res, now_us(),
                                                       [maps:get(N, Ids) || N <- Live1]),
            St#st{live = Live1, members = maps:remove(Node, Members)}
    end.

%% A node that came up joins: its member starts, its clock is sampled, and it
%% is required to see the updates made from now on (the core excludes it
%% from older ones: catching up is state transfer, not propagation).
join(Node, N, St = #st{var = Var, res = Res, live = Live, ids = Ids, names = Names,
                       members = Members}) ->
    case lists:member(Node, Live) orelse lists:member(Node, nodes()) =:= false of
        true ->
            St;
        false ->
            %% A node seen before is back from a crash: its sequence numbers
            %% start past any it can have used (fewer than one a microsecond).
            SeqBase = case maps:is_key(Node, Ids) of
                          true -> max(0, now_us());
                          false -> 0
                      end,
            case start_or_adopt(Var, Node, SeqBase) of
                #{Node := Pid} ->
                    Id = maps:get(Node, Ids, maps:size(Ids)),
                    sync_clock(Res, Id, Node, Pid, ?SYNC_ROUNDS),
                    Live1 = Live ++ [Node],
                    Ids1 = Ids#{Node => Id},
                    ok = lasp_converge_nif:tracker_set_members(
                           Res, now_us(), [maps:get(M, Ids1) || M <- Live1]),
                    St#st{live = Live1, ids = Ids1, names = Names#{Id => Node},
                          members = Members#{Node => Pid}};
                _ when N > 1 ->
                    _ = erlang:send_after(?JOIN_RETRY_MS, self(), {join, Node, N - 1}),
                    St;
                _ ->
                    St
            end
    end.

%% A member left orphaned there (this aggregator was cut off from it) is
%% adopted again.
start_or_adopt(Var, Node, SeqBase) ->
    case start_members(Var, [Node], SeqBase) of
        #{Node := _} = Started -> Started;
        _ -> element(1, lasp_converge_handover:adopt(Var, [Node], #{}))
    end.

query(stats, #st{res = Res, names = Names, live = Live}) ->
    case lasp_converge_nif:tracker_stats(Res) of
        {ok, S = #{per_node := PerNode, unsynced_nodes := Unsynced}} ->
            S#{per_node := maps:from_list([{maps:get(I, Names, I), M}
                                           || {I, M} <- maps:to_list(PerNode)]),
               unsynced_nodes := [maps:get(I, Names, I) || I <- Unsynced],
               nodes => Live};
        {error, _} = E ->
            E
    end;
query(divergence, #st{res = Res, names = Names}) ->
    case lasp_converge_nif:tracker_divergence(Res) of
        {ok, Samples} ->
            [S#{nodes := maps:from_list([{maps:get(I, Names, I), L}
                                         || {I, L} <- maps:to_list(Ns)])}
             || S = #{nodes := Ns} <- Samples];
        {error, _} = E ->
            E
    end;
query(records, #st{res = Res, names = Names}) ->
    Name = fun(I) -> maps:get(I, Names, I) end,
    case lasp_converge_nif:tracker_records(Res) of
        {ok, Recs} ->
            [R#{origin := Name(O), missing := [Name(I) || I <- Missing],
                seen := maps:from_list([{Name(I), T} || {I, T} <- maps:to_list(Seen)])}
             || R = #{origin := O, missing := Missing, seen := Seen} <- Recs];
        {error, _} = E ->
            E
    end;
query(json, #st{res = Res, names = Names}) ->
    case lasp_converge_nif:tracker_json(Res) of
        {ok, Report} ->
            NodeNames = [[$", integer_to_list(I), "\":", lasp_converge_json:encode(N)]
                         || {I, N} <- lists:sort(maps:to_list(Names))],
            {ok, unicode:characters_to_binary(["{\"nodes\":{", lists:join($,, NodeNames),
                                               "},\"report\":", Report, "}"])};
        {error, _} = E ->
            E
    end;
query(names, #st{names = Names}) -> {ok, Names};
query(reset, #st{res = Res}) ->
    lasp_converge_nif:tracker_reset(Res);
query(_, _) ->
    {error, bad_query}.
