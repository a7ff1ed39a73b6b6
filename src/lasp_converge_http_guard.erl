%% @doc What `lasp_converge_http' checks before it answers, apart from the
%% server itself: the `Host' header, the query string, the caps on request
%% size, and the port pool that keeps a server started again and again on
%% port 0 from creating atoms.
%%
%% == Host ==
%%
%% A page on another site can have the browser resolve its own name to
%% 127.0.0.1 (DNS rebinding) and then read the dashboard as if it were the
%% same site; the browser still sends that name as `Host'. So a request is
%% answered only when its `Host' is, with the server's port (or without a
%% port when it is 80): `localhost', an IP address literal (`127.0.0.1',
%% `[::1]', the bound address or any other: a literal is never rebound), or
%% one of the names given in the `allowed_hosts' option (a name alone
%% takes the server's port; `"name:port"' is taken as is). `allowed_hosts
%% => any' turns the check off, e.g. behind a proxy that checks it. A
%% request without `Host' (HTTP/1.0; httpd refuses one in HTTP/1.1) is not
%% from a browser and is answered.
%%
%% == Sizes ==
%%
%% `config/0' caps the request URI at `?MAX_URI' bytes (414), the headers
%% at `?MAX_HEADERS' (413) and the body at 1 byte (413: the dashboard takes
%% none), so a huge request is refused while it is read.
%%
%% == Port pool ==
%%
%% inets names the processes of a server after its address and port, with
%% atoms: a new free port each time would leave about seven atoms behind
%% per start. Ports taken for `port => 0' are remembered (up to
%% `?POOL' per address) and tried first on the next start with port 0.
-module(lasp_converge_http_guard).

-export([config/0, host_allowed/4, query/1, pooled_ports/1, remember_port/2]).

-define(MAX_URI, 8192).
-define(MAX_HEADERS, 16384).
-define(POOL, 8).
-define(POOL_KEY, {?MODULE, ports}).

-type allowed() :: any | [string() | binary()].
-export_type([allowed/0]).

%% @doc The httpd options that cap a request's size.
-spec config() -> [{atom(), pos_integer()}].
config() ->
    [{max_uri_size, ?MAX_URI}, {max_header_size, ?MAX_HEADERS}, {max_body_size, 1},
     {max_content_length, 1}].

%% @doc Whether a request with this `Host' header value (`undefined' when
%% absent) may be answered by a server bound to `Ip' and `Port' (see the
%% module doc).
-spec host_allowed(string() | undefined, inet:ip_address(), inet:port_number(), allowed()) ->
          boolean().
host_allowed(_, _Ip, _Port, any) ->
    true;
host_allowed(undefined, _Ip, _Port, _Allowed) ->
    true;
host_allowed(Host, _Ip, Port, Allowed) when is_list(Host), is_list(Allowed) ->
    case split_host(string:lowercase(string:trim(Host))) of
        {Name, P} ->
            At = port_or(P, 80),
            (At =:= Port andalso (Name =:= "localhost" orelse literal(Name)))
                orelse lists:member({Name, At}, configured(Allowed, Port));
        bad ->
            false
    end;
host_allowed(_, _, _, _) ->
    false.

port_or(default, D) -> D;
port_or(P, _) -> P.

%% The configured names as {Name, Port}; a name alone takes the server's.
configured(Allowed, Port) ->
    [{N, port_or(P, Port)}
     || A <- Allowed, is_list(A) orelse is_binary(A),
        S <- [unicode:characters_to_list(A)], is_list(S),
        {N, P} <- [split_host(string:lowercase(S))]].

%% "name", "name:port", "[v6]", "[v6]:port" -> {Name, Port | default}.
split_host("[" ++ Rest) ->
    case string:split(Rest, "]") of
        [V6, ""] -> {"[" ++ V6 ++ "]", default};
        [V6, ":" ++ P] -> with_port("[" ++ V6 ++ "]", P);
        _ -> bad
    end;
split_host(Host) ->
    case string:split(Host, ":") of
        [Name] -> {Name, default};
        [Name, P] -> with_port(Name, P);
        _ -> bad
    end.

with_port(Name, P) ->
    case string:to_integer(P) of
        {N, ""} when N >= 0, N < 65536 -> {Name, N};
        _ -> bad
    end.

literal("[" ++ Rest) ->
    case lists:reverse(Rest) of
        "]" ++ R -> ok(inet:parse_ipv6strict_address(lists:reverse(R)));
        _ -> false
    end;
literal(Name) ->
    ok(inet:parse_ipv4strict_address(Name)).

ok({ok, _}) -> true;
ok({error, _}) -> false.

%% @doc The query string's pairs, or `error' when it is not valid
%% percent-encoded UTF-8.
-spec query(string()) -> {ok, [{string(), string() | true}]} | error.
query(Q) ->
    try uri_string:dissect_query(Q) of
        L when is_list(L) -> {ok, L};
        _ -> error
    catch
        _:_ -> error
    end.

%% @doc Ports remembered for `Ip', oldest first.
-spec pooled_ports(inet:ip_address()) -> [inet:port_number()].
pooled_ports(Ip) ->
    maps:get(Ip, persistent_term:get(?POOL_KEY, #{}), []).

%% @doc Remember `Port' for `Ip' (no more than `?POOL' per address; a port
%% already there stays where it is). Returns whether it is in the pool.
-spec remember_port(inet:ip_address(), inet:port_number()) -> boolean().
remember_port(Ip, Port) ->
    Pool = persistent_term:get(?POOL_KEY, #{}),
    Ports = maps:get(Ip, Pool, []),
    case lists:member(Port, Ports) of
        true ->
            true;
        false when length(Ports) < ?POOL ->
            persistent_term:put(?POOL_KEY, Pool#{Ip => Ports ++ [Port]}),
            true;
        false ->
            false
    end.
