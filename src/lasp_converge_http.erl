%% @doc A live dashboard on OTP's inets httpd: the report's charts, redrawn
%% as the measurement goes on.
%%
%% `start(Opts)' serves, on 127.0.0.1 by default:
%%
%% <ul>
%% <li>`GET /': the dashboard page (inline CSS and script, nothing fetched
%%     from elsewhere). Every `refresh_ms' it polls the endpoints below and
%%     redraws each tracked variable's section;</li>
%% <li>`GET /metrics': the figures in Prometheus's text format
%%     (`lasp_converge_metrics');</li>
%% <li>`GET /api/vars': `[{"id": N, "name": "..."}]', the variables this
%%     node aggregates (the page also says, when served, which connected
%%     node aggregates which variable);</li>
%% <li>`GET /api/var?id=N': `{"id", "name", "stats", "samples", "records",
%%     "html"}', the variable's figures and its section of the report
%%     (`lasp_converge_report:section/1') as HTML.</li>
%% </ul>
%%
%% Anything else is 404; a missing or malformed `id' or a query that is
%% not percent-encoded UTF-8, 400; a method other than GET or HEAD, 405; a
%% request URI over 8 KB, 414, headers over 16 KB or any body, 413; a
%% `Host' other than `localhost', an address literal or an `allowed_hosts'
%% name with the server's port, 400 (against DNS rebinding; see
%% `lasp_converge_http_guard'). Every answer is generated: the server
%% reads no file, so it cannot serve one from outside its own. One server
%% per node. Started again and again on port 0, it reuses the ports it had
%% (inets names its processes after the port, with atoms).
-module(lasp_converge_http).

-export([start/0, start/1, stop/0, url/0, do/1]).

-include_lib("inets/include/httpd.hrl").

-define(KEY, {?MODULE, server}).

-type opts() :: #{port => inet:port_number(), ip => inet:ip_address(),
                  refresh_ms => pos_integer(),
                  allowed_hosts => lasp_converge_http_guard:allowed()}.
-export_type([opts/0]).

%% @equiv start(#{})
-spec start() -> {ok, #{port := inet:port_number(), url := string()}} | {error, term()}.
start() ->
    start(#{}).

%% @doc Start the dashboard. Options: `port' (default 0: any free port, the
%% one taken is returned), `ip' (default `{127, 0, 0, 1}'), `refresh_ms'
%% (how often the page polls, default 1000), `allowed_hosts' (`Host' names
%% answered besides `localhost' and address literals, e.g.
%% `["dash.example.org"]' or `["dash.example.org:443"]'; `any' for all;
%% default `[]'). `{error, already_started}' if one runs on this node;
%% `{error, {bad_opts, Opts}}' unless a map, `{error, {unknown_option, Key}}',
%% `{error, {bad_option, Key, Value}}', and `{error, {eaddrinuse, Port}}'
%% when the port is taken (nothing is started then, and nothing logged).
-spec start(opts()) -> {ok, #{port := inet:port_number(), url := string()}} | {error, term()}.
start(Opts) when is_map(Opts) ->
    case persistent_term:get(?KEY, undefined) of
        undefined ->
            case lasp_converge_opts:check(Opts, fun valid/2) of
                ok ->
                    start_httpd(maps:get(port, Opts, 0), maps:get(ip, Opts, {127, 0, 0, 1}),
                                maps:get(refresh_ms, Opts, 1000),
                                maps:get(allowed_hosts, Opts, []));
                {error, _} = E ->
                    E
            end;
        _ ->
            {error, already_started}
    end;
start(Opts) ->
    {error, {bad_opts, Opts}}.

valid(port, P) -> is_integer(P) andalso P >= 0 andalso P < 65536;
valid(ip, Ip) -> is_tuple(Ip) andalso (tuple_size(Ip) =:= 4 orelse tuple_size(Ip) =:= 8)
                     andalso lists:all(fun is_integer/1, tuple_to_list(Ip));
valid(refresh_ms, R) -> is_integer(R) andalso R > 0;
valid(allowed_hosts, H) -> H =:= any orelse is_list(H);
valid(_, _) -> unknown.

start_httpd(0, Ip, Refresh, Hosts) ->
    start_pooled(lasp_converge_http_guard:pooled_ports(Ip), Ip, Refresh, Hosts);
start_httpd(Port, Ip, Refresh, Hosts) ->
    serve(Port, Ip, Refresh, Hosts).

%% Port 0: a port this node had before, if one is free; else any.
start_pooled([P | Ps], Ip, Refresh, Hosts) ->
    case serve(P, Ip, Refresh, Hosts) of
        {ok, _} = Ok -> Ok;
        {error, _} -> start_pooled(Ps, Ip, Refresh, Hosts)
    end;
start_pooled([], Ip, Refresh, Hosts) ->
    case serve(0, Ip, Refresh, Hosts) of
        {ok, #{port := P}} = Ok ->
            _ = lasp_converge_http_guard:remember_port(Ip, P),
            Ok;
        Error ->
            Error
    end.

serve(Port, Ip, Refresh, Hosts) ->
    case port_free(Port, Ip) of
        ok -> serve_httpd(Port, Ip, Refresh, Hosts);
        {error, _} = E -> E
    end.

%% A taken port is found here rather than by httpd, whose supervisor would
%% log the failed child as a crash.
port_free(0, _Ip) ->
    ok;
port_free(Port, Ip) ->
    Family = case tuple_size(Ip) of 4 -> inet; 8 -> inet6 end,
    case gen_tcp:listen(Port, [Family, {ip, Ip}, {reuseaddr, true}]) of
        {ok, S} -> gen_tcp:close(S);
        {error, eaddrinuse} -> {error, {eaddrinuse, Port}};
        {error, Why} -> {error, {listen, Port, Why}}
    end.

serve_httpd(Port, Ip, Refresh, Hosts) ->
    {ok, _} = application:ensure_all_started(inets),
    %% httpd wants a server root and a document root; it reads no file from
    %% them (no module here serves files), so an empty directory will do.
    Root = filename:join(filename:basedir(user_cache, "lasp_converge"), "httpd"),
    ok = filelib:ensure_path(Root),
    Family = case tuple_size(Ip) of 4 -> inet; 8 -> inet6 end,
    Config = [{port, Port}, {bind_address, Ip}, {ipfamily, Family},
              {server_name, "lasp_converge"}, {server_root, Root}, {document_root, Root},
              {modules, [?MODULE]}, {keep_alive, true} | lasp_converge_http_guard:config()],
    case inets:start(httpd, Config) of
        {ok, Pid} ->
            [{port, P}] = httpd:info(Pid, [port]),
            Url = url(Ip, P),
            persistent_term:put(?KEY, #{pid => Pid, port => P, url => Url, refresh => Refresh,
                                        ip => Ip, hosts => Hosts}),
            {ok, #{port => P, url => Url}};
        {error, _} = E ->
            E
    end.

url({A, B, C, D}, P) -> lists:flatten(io_lib:format("http://~b.~b.~b.~b:~b/", [A, B, C, D, P]));
url(Ip, P) -> lists:flatten(io_lib:format("http://[~s]:~b/", [inet:ntoa(Ip), P])).

%% @doc Stop this node's dashboard.
-spec stop() -> ok | {error, not_started}.
stop() ->
    case persistent_term:get(?KEY, undefined) of
        undefined ->
            {error, not_started};
        #{pid := Pid} ->
            persistent_term:erase(?KEY),
            _ = inets:stop(httpd, Pid),
            ok
    end.

%% @doc The running dashboard's address.
-spec url() -> {ok, string()} | {error, not_started}.
url() ->
    case persistent_term:get(?KEY, undefined) of
        undefined -> {error, not_started};
        #{url := U} -> {ok, U}
    end.

%% ===================================================================
%% httpd callback
%% ===================================================================

%% @private
do(#mod{method = Method, request_uri = Uri, parsed_header = Header}) ->
    {Status, Type, Body} =
        case host_allowed(proplists:get_value("host", Header)) of
            false -> {400, "text/plain", <<"host not allowed\n">>};
            true when Method =/= "GET", Method =/= "HEAD" ->
                {405, "text/plain", <<"method not allowed\n">>};
            true -> route(uri_string:parse(Uri))
        end,
    Bin = unicode:characters_to_binary(Body),
    Headers = [{code, Status}, {content_type, Type ++ "; charset=utf-8"},
               {content_length, integer_to_list(byte_size(Bin))},
               {cache_control, "no-store"}, {x_content_type_options, "nosniff"}],
    Out = case Method of
              "HEAD" -> [];
              _ -> [Bin]
          end,
    {proceed, [{response, {response, Headers, Out}}]}.

%% Stopping: nothing is allowed any more.
host_allowed(Host) ->
    case persistent_term:get(?KEY, undefined) of
        #{ip := Ip, port := Port, hosts := Hosts} ->
            lasp_converge_http_guard:host_allowed(Host, Ip, Port, Hosts);
        undefined ->
            false
    end.

route(#{path := "/"} = U) when not is_map_key(query, U) ->
    {200, "text/html", page()};
route(#{path := "/metrics"}) ->
    {200, "text/plain; version=0.0.4", lasp_converge_metrics:text()};
route(#{path := "/api/vars"}) ->
    {200, "application/json",
     lasp_converge_json:encode([#{id => I, name => name(V)} || {I, V} <- vars()])};
route(#{path := "/api/var"} = U) ->
    case lasp_converge_http_guard:query(maps:get(query, U, "")) of
        {ok, Q} -> id(Q);
        error -> {400, "text/plain", <<"the query is not percent-encoded UTF-8\n">>}
    end;
route(#{}) ->
    {404, "text/plain", <<"not found\n">>};
route(_) ->
    {400, "text/plain", <<"bad request\n">>}.

id(Q) ->
    case [X || {"id", X} <- Q] of
        [Id] ->
            case string:to_integer(Id) of
                {I, ""} when I >= 0 -> var(I);
                _ -> {400, "text/plain", <<"id must be a non-negative integer\n">>}
            end;
        _ ->
            {400, "text/plain", <<"one id=N is required\n">>}
    end.

vars() ->
    lists:zip(lists:seq(0, length(lasp_converge:tracked()) - 1), lasp_converge:tracked()).

var(I) ->
    case lists:keyfind(I, 1, vars()) of
        false ->
            {404, "text/plain", <<"no such variable\n">>};
        {I, V} ->
            case lasp_converge_report:collect(V) of
                {ok, D = #{stats := S, divergence := Div, records := Recs}} ->
                    {200, "application/json",
                     lasp_converge_json:encode(#{id => I, name => name(V), stats => S, samples => length(Div),
                            records => length(Recs),
                            html => unicode:characters_to_binary(
                                      lasp_converge_report:section(D))})};
                {error, _} ->
                    {404, "text/plain", <<"no such variable\n">>}
            end
    end.

name(V) -> unicode:characters_to_binary(io_lib:format("~0tp", [V])).

%% Which node aggregates which variable: this one, and the connected nodes
%% (asked when the page is served), with a hint when this one aggregates
%% nothing.
where() ->
    Here = lasp_converge:tracked(),
    Others = [{N, Vs} || {N, {ok, Vs}} <- lists:zip(nodes(), erpc:multicall(nodes(), lasp_converge_tracker,
                                                                               aggregated, [], 1000)),
                         is_list(Vs), Vs =/= []],
    Titles = fun(Vs) -> lists:join(", ", [lasp_converge_report:var_title(V) || V <- Vs]) end,
    Me = lasp_converge_svg:esc(atom_to_list(node())),
    ["<p id=\"where\" class=\"meta\">",
     case Here of
         [] -> ["This node, ", Me, ", aggregates no variable, so there is nothing to draw here: "
                "call <code>lasp_converge:track/2</code> on this node, or open the dashboard "
                "(<code>lasp_converge_http:start/1</code>) on the node that aggregates the "
                "variable."];
         _ -> ["This node, ", Me, ", aggregates ", integer_to_list(length(Here)), " variable",
               [$s || length(Here) > 1], ": ", lasp_converge_svg:esc(Titles(Here)), "."]
     end,
     [[" ", lasp_converge_svg:esc(atom_to_list(N)), " aggregates ", lasp_converge_svg:esc(Titles(Vs)), "."]
      || {N, Vs} <- Others],
     "</p>\n"].

%% ===================================================================
%% The page
%% ===================================================================

page() ->
    #{refresh := R} = persistent_term:get(?KEY, #{refresh => 1000}),
    ["<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
     "<title>lasp_converge live</title>\n<style>", lasp_converge_report:css(),
     "#status{color:var(--muted)}</style></head>\n<body>\n"
     "<h1>lasp_converge live</h1>\n", where(), "<p id=\"status\">connecting…</p>\n"
     "<div id=\"vars\"></div>\n"
     "<script>\n"
     "const REFRESH = ", integer_to_list(R), ";\n"
     "let polls = 0;\n"
     "async function poll() {\n"
     "  try {\n"
     "    const vars = await (await fetch('/api/vars')).json();\n"
     "    const box = document.getElementById('vars');\n"
     "    for (const v of vars) {\n"
     "      let el = document.getElementById('var-' + v.id);\n"
     "      if (!el) { el = document.createElement('div'); el.id = 'var-' + v.id; box.appendChild(el); }\n"
     "      const d = await (await fetch('/api/var?id=' + v.id)).json();\n"
     "      el.dataset.samples = d.samples; el.dataset.records = d.records;\n"
     "      el.innerHTML = d.html;\n"
     "    }\n"
     "    polls += 1;\n"
     "    document.body.dataset.polls = polls;\n"
     "    document.getElementById('status').textContent =\n"
     "      vars.length + ' variable(s), updated ' + new Date().toLocaleTimeString();\n"
     "  } catch (e) {\n"
     "    document.getElementById('status').textContent = 'not reachable: ' + e.message;\n"
     "  }\n"
     "  setTimeout(poll, REFRESH);\n"
     "}\n"
     "poll();\n"
     "</script>\n</body></html>\n"].
