%% @doc Options checked by name, one convention for every call that takes
%% them: `{error, {bad_opts, Opts}}' unless a map, `{error, {unknown_option,
%% Key}}' for a key the call does not know, `{error, {bad_option, Key,
%% Value}}' for a value of the wrong kind.
-module(lasp_converge_opts).

-export([check/2]).

%% @doc Check every `{Key, Value}' of `Opts' with `Valid(Key, Value)', which
%% answers `true', `false' (a bad value) or `unknown' (a key not taken).
-spec check(term(), fun((term(), term()) -> boolean() | unknown)) -> ok | {error, term()}.
check(Opts, Valid) when is_map(Opts) ->
    check_each(lists:sort(maps:to_list(Opts)), Valid);
check(Opts, _Valid) ->
    {error, {bad_opts, Opts}}.

check_each([], _Valid) ->
    ok;
check_each([{K, V} | Rest], Valid) ->
    case Valid(K, V) of
        true -> check_each(Rest, Valid);
        false -> {error, {bad_option, K, V}};
        unknown -> {error, {unknown_option, K}}
    end.
