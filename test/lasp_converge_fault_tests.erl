%% @doc `lasp_converge_fault''s error convention: what a caller can get
%% wrong is returned as `{error, Reason}', never raised, and changes
%% nothing; a stopped cluster answers `{error, not_running}' to every call.
-module(lasp_converge_fault_tests).

-include_lib("eunit/include/eunit.hrl").

-define(CL, lasp_converge_cluster).
-define(F, lasp_converge_fault).

errors_are_returned_test_() ->
    {timeout, 60, fun errors_are_returned/0}.

errors_are_returned() ->
    {ok, C} = ?CL:start(2, #{prefix => lc_faulterr}),
    [A, B] = ?CL:nodes(C),
    Nope = nope@nowhere,
    try
        ?assertEqual({error, {not_a_member, Nope}}, ?F:partition(C, [[A], [Nope]])),
        ?assertEqual({error, {in_two_groups, A}}, ?F:partition(C, [[A], [A, B]])),
        ?assertEqual({error, bad_groups}, ?F:partition(C, [A])),
        ?assertEqual({error, {not_a_member, Nope}}, ?F:crash(C, Nope)),
        ?assertEqual({error, {not_a_member, Nope}}, ?F:restart(C, Nope, #{})),
        ?assertEqual({error, {not_a_member, Nope}}, ?F:pause(C, Nope)),
        ?assertEqual({error, {not_a_member, Nope}}, ?F:resume(C, Nope)),
        ?assertEqual({error, {not_a_member, Nope}}, ?F:delay(C, A, Nope, 10)),
        ?assertEqual({error, {bad_delay, -100}}, ?F:delay(C, A, B, -100)),
        ?assertEqual({error, {bad_delay, 1.5}}, ?F:delay(C, A, B, 1.5)),
        ?assertEqual({error, {bad_probability, 2}}, ?F:drop(C, 2)),
        ?assertEqual({error, {bad_probability, x}}, ?F:drop(C, x)),
        ?assertEqual({error, {bad_opts, [recover]}}, ?F:restart(C, A, [recover])),
        ?assertEqual({error, {unknown_option, recovr}}, ?F:restart(C, A, #{recovr => true})),
        ?assertEqual({error, {bad_option, recover, yes}}, ?F:restart(C, A, #{recover => yes})),
        %% None of them was applied.
        ?assertEqual([], ?F:events(C)),
        ?assertEqual(ok, ?F:crash(C, B)),
        ?assertEqual(ok, ?F:crash(C, B)),           % already down: nothing to do
        ?assertEqual(ok, ?F:restart(C, B, #{})),
        ?assertEqual([crash, restart], [F || #{fault := F} <- ?F:events(C)])
    after
        ok = ?CL:stop(C)
    end,
    [?assertEqual({error, not_running}, Call())
     || Call <- [fun() -> ?F:partition(C, [[A], [B]]) end,
                 fun() -> ?F:heal(C) end,
                 fun() -> ?F:delay(C, A, B, 5) end,
                 fun() -> ?F:drop(C, 0.5) end,
                 fun() -> ?F:crash(C, A) end,
                 fun() -> ?F:restart(C, A, #{}) end,
                 fun() -> ?F:pause(C, A) end,
                 fun() -> ?F:resume(C, A) end,
                 fun() -> ?F:clear(C) end]],
    ?assertEqual([], ?F:events(C)).
