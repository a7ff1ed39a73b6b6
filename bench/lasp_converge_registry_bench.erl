%% @doc What the registry's one public table saves: the last state a member
%% node sent for a variable, swapped on every observation there, written in
%% place (`lasp_converge_registry:swap_last_sent/2') against the same swap
%% done by an owner process answering a message, as a `protected' table
%% would need. States are orsets of mixed elements; medians of 200 swaps.
%%
%% erlc -o _build/bench bench/lasp_converge_registry_bench.erl &&
%% erl -noshell -pa _build/default/lib/lasp_converge/ebin -pa _build/bench \
%%     -eval 'lasp_converge_registry_bench:main(), halt().'
-module(lasp_converge_registry_bench).

-export([main/0]).

-define(RUNS, 200).

main() ->
    {ok, _} = application:ensure_all_started(lasp_converge),
    Owner = spawn_link(fun() -> owner(ets:new(owned, [set, protected])) end),
    lists:foreach(
      fun(N) ->
              Elems = [case I rem 3 of
                           0 -> I;
                           1 -> integer_to_binary(I);
                           2 -> {e, I}
                       end || I <- lists:seq(1, N)],
              {ok, S} = lasp_converge_crdt:mutate({add_all, Elems}, {actor, <<"a">>},
                                                  lasp_converge_crdt:new(state_orset)),
              InPlace = fun() -> lasp_converge_registry:swap_last_sent(bench, S) end,
              Owned = fun() ->
                              Ref = make_ref(),
                              Owner ! {swap, self(), Ref, S},
                              receive {Ref, Prev} -> Prev end
                      end,
              Delta = fun() -> lasp_converge_crdt:delta(S, S) end,
              io:format("orset ~6w elements: swap in place ~7.0f us, through an owner ~7.0f us, "
                        "delta ~7.0f us (medians)~n",
                        [N, median(InPlace), median(Owned), median(Delta)])
      end, [10, 1000, 10000]),
    unlink(Owner),
    exit(Owner, kill),
    ok.

median(F) ->
    _ = F(),
    Ts = lists:sort([element(1, timer:tc(fun() -> _ = F(), ok end)) || _ <- lists:seq(1, ?RUNS)]),
    float(lists:nth(?RUNS div 2, Ts)).

owner(T) ->
    receive
        {swap, From, Ref, S} ->
            Prev = case ets:lookup(T, last) of
                       [{_, P}] -> P;
                       [] -> undefined
                   end,
            true = ets:insert(T, {last, S}),
            From ! {Ref, Prev},
            owner(T)
    end.
