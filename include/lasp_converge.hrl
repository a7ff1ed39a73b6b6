%% Convergence assertions for EUnit (and any test framework that reports
%% `error:{Assertion, Info}'), in the style of eunit's assert macros:
%%
%%   -include_lib("lasp_converge/include/lasp_converge.hrl").
%%
%%   ?assertConverges(Var, TimeoutMs)          % tracker + replicas, polled
%%   ?assertConverges(Var, TimeoutMs, Opts)    % Opts: nodes, cluster, via, tracked, call_timeout
%%   ?assertConvergenceP99(Var, Ms)            % tracker p99 <= Ms, nothing pending
%%   ?assertConvergenceP99(Var, Ms, Opts)
%%   ?assertNoLostUpdates(Var, Expected)       % every node's value holds Expected
%%   ?assertNoLostUpdates(Var, Expected, Opts) % Opts as above, plus timeout (ms to poll)
%%
%% Each evaluates to `ok' or raises `error:{assertConverges |
%% assertConvergenceP99 | assertNoLostUpdates, [{module, M}, {line, L},
%% {expression, E}, ...]}' with the tracker's stats and the lagging nodes
%% (see lasp_converge_assert).
-ifndef(LASP_CONVERGE_HRL).
-define(LASP_CONVERGE_HRL, true).

-define(LASP_CONVERGE_LOCATION(Expr),
        [{module, ?MODULE}, {line, ?LINE}, {expression, Expr}]).

-define(assertConverges(Var, TimeoutMs),
        ?assertConverges(Var, TimeoutMs, #{})).
-define(assertConverges(Var, TimeoutMs, Opts),
        lasp_converge_assert:converges(Var, TimeoutMs, Opts,
                                       ?LASP_CONVERGE_LOCATION((??Var)))).

-define(assertConvergenceP99(Var, Ms),
        ?assertConvergenceP99(Var, Ms, #{})).
-define(assertConvergenceP99(Var, Ms, Opts),
        lasp_converge_assert:convergence_p99(Var, Ms, Opts,
                                             ?LASP_CONVERGE_LOCATION((??Var)))).

-define(assertNoLostUpdates(Var, Expected),
        ?assertNoLostUpdates(Var, Expected, #{})).
-define(assertNoLostUpdates(Var, Expected, Opts),
        lasp_converge_assert:no_lost_updates(Var, Expected, Opts,
                                             ?LASP_CONVERGE_LOCATION((??Var)))).

-endif.
