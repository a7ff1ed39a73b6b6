%% @doc What a full state costs the replicator on the wire: term against
%% binary (`lasp_converge_replicator''s `wire' setting), for 10k gset and
%% gcounter states.
%%
%%   rebar3 compile && mkdir -p _build/bench &&
%%   erlc -o _build/bench bench/lasp_converge_replicator_bench.erl &&
%%   erl -noshell -sname lc_rbench_$$ -pa _build/default/lib/*/ebin -pa _build/bench \
%%       -eval 'lasp_converge_replicator_bench:main(), halt().'
%%
%% One peer node (OTP's `peer', through `lasp_converge_cluster') holds a
%% replica of the 10k state. This node sends it `lc_rep_state' messages as
%% another member would (from this node), each carrying the state as a term or as its binary, and
%% reads the peer's CPU time (`statistics(runtime)': every thread of its
%% VM, so the distribution's decoding of the message, the replicator's
%% merge and any dirty scheduler; the peer runs without busy-waiting
%% schedulers, `+sbwt none', so that idle spinning is not counted) before and after the batch; the figure is
%% that difference per message, the median of the batches. Two cases: the
%% replica already holds the state (what a converged member receives every
%% interval), and each state bringing 10 entries the replica lacks. The
%% sender's side is the replicator reading its replica into a payload
%% (`to_term/1' or `to_binary/1', medians in this VM), and the bytes are
%% `erlang:external_size/1' of the message, as the `sent_bytes' counter
%% counts them; `send' is this node's CPU per message sent (the
%% distribution's encoding of it). The last rows are a local `update/3' of
%% the 10k state, which replies with the new value. For reference, `lasp_converge_crdt:merge_added/2' of the
%% terms: what a replica held as a plain term paid per received state for
%% the merge alone. `LASP_CONVERGE_BENCH_PEER_EBIN=Dir' runs the
%% replicator beam found in `Dir' on the peer instead, to measure another
%% build (the previous release's, say).
-module(lasp_converge_replicator_bench).

-export([main/0]).

-define(CL, lasp_converge_cluster).
-define(R, lasp_converge_replicator).
-define(BATCH, 40).
-define(BATCHES, 5).
-define(N, 10000).

-spec main() -> ok.
main() ->
    {ok, _} = application:ensure_all_started(lasp_converge),
    %% No busy-waiting schedulers on the peer: its CPU time is its work.
    Args = ["+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none"],
    ?CL:with_cluster(1, #{prefix => lc_rbench, args => Args},
                     fun(C) -> other_build(C), run(C) end).

%% To measure another build of the replicator on the peer (a previous
%% release's beam, which reads terms only: its binary column then counts
%% refusals), loaded there and restarted under the supervisor.
other_build(C) ->
    case os:getenv("LASP_CONVERGE_BENCH_PEER_EBIN") of
        false ->
            ok;
        Dir ->
            [Peer] = ?CL:nodes(C),
            Beam = filename:join(Dir, "lasp_converge_replicator"),
            ok = ?CL:call(C, Peer, supervisor, terminate_child,
                          [lasp_converge_sup, ?R]),
            _ = ?CL:call(C, Peer, code, purge, [?R]),
            {module, ?R} = ?CL:call(C, Peer, code, load_abs, [Beam]),
            {ok, _} = ?CL:call(C, Peer, supervisor, restart_child, [lasp_converge_sup, ?R]),
            io:format("peer replicator: ~s~n", [?CL:call(C, Peer, code, which, [?R])])
    end.

run(C) ->
    [Peer] = ?CL:nodes(C),
    {ok, _} = ?CL:call(C, Peer, ?R, set, [#{state_interval => 3600000,
                                            propagate_on_update => false}]),
    io:format("~nreplicator, a received 10k state (peer CPU ms per message, median of ~b "
              "batches of ~b)~n", [?BATCHES, ?BATCH]),
    io:format("~-10s ~-9s ~10s ~10s ~12s ~12s ~12s ~10s ~10s~n",
              ["type", "case", "term ms", "binary ms", "term bytes", "binary bytes",
               "merge_added", "send term", "send bin"]),
    [row(C, Peer, Type) || Type <- [state_gset, state_gcounter]],
    io:format("~nsender: the replica read into a payload (us, median of 30)~n"),
    [sender_row(Type) || Type <- [state_gset, state_gcounter]],
    io:format("~nlocal update/3 of a 10k state (peer CPU ms per update, 200 updates)~n"),
    [update_row(C, Peer, Type) || Type <- [state_gset, state_gcounter]],
    ok.

update_row(C, Peer, Type) ->
    Var = {<<"bench">>, Type},
    Ops = case Type of
              state_gset -> [{add, {new, I}} || I <- lists:seq(1, 200)];
              state_gcounter -> lists:duplicate(200, increment)
          end,
    {T0, _} = ?CL:call(C, Peer, erlang, statistics, [runtime]),
    ok = ?CL:call(C, Peer, lists, foreach,
                  [fun(Op) -> {ok, _} = ?R:update(Var, Op, <<"node-1">>) end, Ops]),
    {T1, _} = ?CL:call(C, Peer, erlang, statistics, [runtime]),
    io:format("~-10s ~8.2f~n", [short(Type), (T1 - T0) / length(Ops)]).

row(C, Peer, Type) ->
    Var = {<<"bench">>, Type},
    {ok, _} = ?CL:call(C, Peer, ?R, declare, [Var, Type, #{nodes => [Peer]}]),
    S = state(Type, ?N, 0),
    {ok, _} = ?CL:call(C, Peer, ?R, absorb, [Var, S]),
    Held = fun(_) -> S end,
    %% Every message brings 10 entries no earlier one brought: new elements
    %% of a gset, higher counts of 10 actors of a gcounter.
    Fresh = fun(K) -> lasp_converge_crdt:merge(S, fresh(Type, K)) end,
    lists:foreach(
      fun({Case, Make}) ->
              Batches = [[Make(B * ?BATCH + I) || I <- lists:seq(1, ?BATCH)]
                         || B <- lists:seq(0, 2 * ?BATCHES - 1)],
              %% Term and binary batches alternate, each of its own states.
              Ms = [{cpu_per_msg(C, Peer, Var, Tb),
                     cpu_per_msg(C, Peer, Var, [lasp_converge_crdt:to_binary(X) || X <- Bb])}
                    || {Tb, Bb} <- pairs(Batches)],
              TermMs = [R || {{R, _}, _} <- Ms],
              BinMs = [R || {_, {R, _}} <- Ms],
              TermSend = [Sd || {{_, Sd}, _} <- Ms],
              BinSend = [Sd || {_, {_, Sd}} <- Ms],
              X = hd(hd(Batches)),
              Bytes = fun(P) -> erlang:external_size({lc_rep_state, Var, node(), P}) end,
              Merge = median_us(fun() -> lasp_converge_crdt:merge_added(S, X) end, 10) / 1000,
              io:format("~-10s ~-9s ~10.2f ~10.2f ~12b ~12b ~12.2f ~10.2f ~10.2f~n",
                        [short(Type), Case, median(TermMs), median(BinMs), Bytes(X),
                         Bytes(lasp_converge_crdt:to_binary(X)), Merge, median(TermSend),
                         median(BinSend)])
      end, [{held, Held}, {"10 new", Fresh}]).

pairs([A, B | T]) -> [{A, B} | pairs(T)];
pairs(_) -> [].

%% Peer CPU per message while its replicator takes `Payloads', and this
%% node's CPU per message sending them (the distribution's encoding).
cpu_per_msg(C, Peer, Var, Payloads) ->
    Before = received(C, Peer, Var),
    {T0, _} = ?CL:call(C, Peer, erlang, statistics, [runtime]),
    {S0, _} = statistics(runtime),
    [erlang:send({?R, Peer}, {lc_rep_state, Var, node(), P}) || P <- Payloads],
    {S1, _} = statistics(runtime),
    wait(C, Peer, Var, Before + length(Payloads)),
    {T1, _} = ?CL:call(C, Peer, erlang, statistics, [runtime]),
    {(T1 - T0) / length(Payloads), (S1 - S0) / length(Payloads)}.

received(C, Peer, Var) ->
    #{vars := #{Var := #{received_messages := N}}} = ?CL:call(C, Peer, ?R, stats, []),
    N.

wait(C, Peer, Var, Want) ->
    case received(C, Peer, Var) >= Want of
        true -> ok;
        false -> timer:sleep(2), wait(C, Peer, Var, Want)
    end.

sender_row(Type) ->
    R = lasp_converge_replica:from_term(state(Type, ?N, 0)),
    io:format("~-10s to_term ~8b   to_binary ~8b~n",
              [short(Type), median_us(fun() -> lasp_converge_replica:to_term(R) end, 30),
               median_us(fun() -> lasp_converge_replica:to_binary(R) end, 30)]).

%% Lasp-like: elements mixing integers, binaries and tuples; actors mixing
%% atoms, binaries and tuples.
state(state_gset, N, From) ->
    {state_gset, lists:usort([elem(I) || I <- lists:seq(From + 1, From + N)])};
state(state_gcounter, N, From) ->
    {state_gcounter, lists:ukeysort(1, [{actor(I), I rem 97 + 1}
                                        || I <- lists:seq(From + 1, From + N)])}.

elem(I) ->
    case I rem 3 of
        0 -> I;
        1 -> <<"user-", (integer_to_binary(I))/binary>>;
        2 -> {item, I}
    end.

actor(I) ->
    case I rem 3 of
        0 -> list_to_atom("lc_bench_node_" ++ integer_to_list(I) ++ "@host");
        1 -> <<"node-", (integer_to_binary(I))/binary>>;
        2 -> {lasp, I}
    end.

fresh(state_gset, K) ->
    state(state_gset, 10, ?N + 10 * K);
fresh(state_gcounter, K) ->
    {state_gcounter, Es} = state(state_gcounter, ?N, 0),
    {state_gcounter, [{A, C + K + 100} || {A, C} <- lists:sublist(Es, 1 + K rem 500, 10)]}.

short(state_gset) -> gset;
short(state_gcounter) -> gcounter.

median_us(F, Runs) ->
    _ = F(),
    median([element(1, timer:tc(fun() -> _ = F(), ok end)) || _ <- lists:seq(1, Runs)]).

median(L) ->
    lists:nth((length(L) + 1) div 2, lists:sort(L)).
