%% @doc Where the test data lives, for every test module that needs it.
%%
%% The conformance vectors (generated from lasp-lang/types 0.1.8, see
%% `test/conformance/README.md') are part of the repository, so a clone
%% anywhere runs them. `$LASP_CONVERGE_CONFORMANCE' points the tests at
%% another copy.
-module(lasp_converge_test_paths).

-export([root/0, conformance_dir/0]).

%% @doc The repository root: the first ancestor of this module's beam, of
%% its source or of the working directory that holds `rebar.config' and
%% `src/lasp_converge_crdt.erl'.
-spec root() -> {ok, file:filename()} | {error, term()}.
root() ->
    {ok, Cwd} = file:get_cwd(),
    Starts = [filename:dirname(filename:absname(?FILE)),
              filename:dirname(filename:absname(code:which(?MODULE))),
              Cwd],
    case [D || Start <- Starts, D <- ancestors(filename:split(Start)), is_root(D)] of
        [Root | _] -> {ok, Root};
        [] -> {error, {no_repository_root, Starts}}
    end.

-spec conformance_dir() -> {ok, file:filename()} | {error, term()}.
conformance_dir() ->
    case os:getenv("LASP_CONVERGE_CONFORMANCE") of
        Dir when is_list(Dir), Dir =/= "" ->
            case filelib:is_dir(Dir) of
                true -> {ok, Dir};
                false -> {error, {not_a_directory, Dir}}
            end;
        _ ->
            case root() of
                {ok, Root} ->
                    Dir = filename:join([Root, "test", "conformance"]),
                    case filelib:is_regular(filename:join(Dir, "README.md")) of
                        true -> {ok, Dir};
                        false -> {error, {missing, Dir}}
                    end;
                Error ->
                    Error
            end
    end.

is_root(D) ->
    filelib:is_regular(filename:join(D, "rebar.config"))
        andalso filelib:is_regular(filename:join([D, "src", "lasp_converge_crdt.erl"])).

ancestors(Parts) ->
    [filename:join(lists:sublist(Parts, N)) || N <- lists:seq(length(Parts), 1, -1)].
