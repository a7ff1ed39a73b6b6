%% @doc JSON text for the Erlang terms the project exports (the dashboard's
%% endpoints, the tracker's node names): maps, lists, strings, binaries,
%% numbers, booleans and `undefined'. OTP 25 has no JSON module.
-module(lasp_converge_json).

-export([encode/1]).

%% @doc JSON for maps (atom, binary or string keys), lists, binaries (as
%% strings), numbers, booleans and `undefined' (null); any other term as
%% its printed form.
-spec encode(term()) -> iodata().
encode(undefined) -> "null";
encode(null) -> "null";
encode(true) -> "true";
encode(false) -> "false";
encode(N) when is_integer(N) -> integer_to_list(N);
encode(F) when is_float(F) -> float_to_list(F, [short]);
encode(A) when is_atom(A) -> string(atom_to_list(A));
encode(B) when is_binary(B) -> string(B);
encode(M) when is_map(M) ->
    ["{", lists:join($,, [[string(key(K)), $:, encode(V)] || {K, V} <- lists:sort(maps:to_list(M))]),
     "}"];
encode(L) when is_list(L) ->
    case io_lib:printable_unicode_list(L) andalso L =/= [] of
        true -> string(L);
        false -> ["[", lists:join($,, [encode(X) || X <- L]), "]"]
    end;
encode(T) ->
    string(io_lib:format("~0tp", [T])).

key(K) when is_atom(K) -> atom_to_list(K);
key(K) when is_binary(K) -> K;
key(K) when is_integer(K) -> integer_to_list(K);
key(K) -> io_lib:format("~0tp", [K]).

string(S) ->
    L = case unicode:characters_to_list(S) of
            L0 when is_list(L0) -> L0;
            _ -> io_lib:format("~0tp", [S])
        end,
    [$", [esc(C) || C <- L], $"].

esc($") -> "\\\"";
esc($\\) -> "\\\\";
esc($\n) -> "\\n";
esc($<) -> "\\u003c";
esc(C) when C < 16#20 -> io_lib:format("\\u~4.16.0b", [C]);
esc(C) -> C.
