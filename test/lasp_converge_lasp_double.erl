%% Builds the test double of Lasp 0.8 (test_support/lasp_double/) into its
%% own directory, with a `lasp.app', for the nodes that play Lasp in the
%% tests of lasp_converge_lasp. Not itself a double; used by EUnit
%% (lasp_converge_lasp_tests) and ExUnit (test/lasp_converge/lasp_test.exs).
-module(lasp_converge_lasp_double).

-export([build/0, build/1, modules/0]).

-define(SRC, "test_support/lasp_double").
-define(MODULES, [lasp, lasp_config, lasp_peer_service, lasp_double, lasp_double_app]).

%% @doc Build into `_build/lasp_double/ebin' under the current directory
%% (the project's root, where rebar3 and mix run tests).
-spec build() -> {ok, file:filename()} | {error, term()}.
build() ->
    build(filename:absname("_build/lasp_double/ebin")).

%% @doc Compile the double's modules into `Ebin' and write `lasp.app'.
-spec build(file:filename()) -> {ok, file:filename()} | {error, term()}.
build(Ebin) ->
    ok = filelib:ensure_path(Ebin),
    Results = [compile:file(filename:join(?SRC, atom_to_list(M) ++ ".erl"),
                            [debug_info, return_errors, {outdir, Ebin}])
               || M <- ?MODULES],
    case [R || R <- Results, element(1, R) =/= ok] of
        [] ->
            App = {application, lasp,
                   [{description, "TEST DOUBLE of Lasp 0.8 (lasp_converge tests only)"},
                    {vsn, "0.8.0-double"},
                    {modules, ?MODULES},
                    {registered, [lasp_double, lasp_double_sup]},
                    {applications, [kernel, stdlib]},
                    {mod, {lasp_double_app, []}},
                    {env, []}]},
            ok = file:write_file(filename:join(Ebin, "lasp.app"),
                                 io_lib:format("~p.~n", [App])),
            {ok, Ebin};
        Errors ->
            {error, Errors}
    end.

%% @doc The double's modules.
-spec modules() -> [module()].
modules() -> ?MODULES.
