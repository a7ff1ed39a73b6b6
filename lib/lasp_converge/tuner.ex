defmodule LaspConverge.Tuner do
  @moduledoc """
  Propagation control: set how fast state propagates on every node of a
  cluster, and let a controller per variable set it from what it measures.

  A thin façade over `:lasp_converge_tuner`; see its module doc for the
  details.

  `set/2` applies `:state_interval`, `:delta_interval` (ms),
  `:propagate_on_update`, `:jitter` and `:jitter_percent` on every member
  node: through Lasp's `lasp_config:set/2` where Lasp runs, otherwise
  through `LaspConverge.Replicator.set/1` (in `:delta_based` mode
  `:delta_interval` drives the replicator's timer, in `:state_based` mode
  `:state_interval`). `get/1` reads them back from every node and reports
  disagreement.

  `start/3` runs a controller for one variable with a policy:

    * `{:fixed, ms}`
    * `{:rate_proportional, %{updates_per_interval: k, min: ms, max: ms}}` -
      the interval in which `k` updates arrive at the measured rate
    * `{:target_p99, ms}` - the slowest propagation whose measured p99
      convergence time stays under `ms`; with `push: :auto` (the default)
      it also turns `:propagate_on_update` on while pushing each update
      costs fewer messages than the interval (the interval then goes to
      `:anti_entropy`, default `:max`), and off when the rate rises
    * `{:budget, messages_per_second}` - the fastest propagation whose
      replication messages stay within the budget

  Bounds (`:min`, `:max`), hysteresis, a dwell time between changes and
  step limits keep it from oscillating. Every change is logged with its
  time, old and new value, reason and the measurement that caused it
  (`log/1`), and recorded as a tracker mark (`LaspConverge.marks/1`).

  The decisions are pure functions of a state and a measurement:

      iex> policy = {:target_p99, 200}
      iex> s = LaspConverge.Tuner.init_state(policy, %{interval: 10_000, nodes: 3})
      iex> {first, s} = LaspConverge.Tuner.initial(policy, s)
      iex> first
      138
      iex> {shorter, _} = LaspConverge.Tuner.decide(policy, s, %{at_ms: 5000, window_ms: 1000, p99: 400_000})
      iex> shorter < first
      true
  """

  @typedoc "A variable: any term, such as a Lasp id `{name, type}`."
  @type variable :: term()

  @typedoc """
  Settings (a map or keyword list): `:state_interval`, `:delta_interval`
  (ms), `:propagate_on_update`, `:jitter` (booleans), `:jitter_percent`
  (0..100).
  """
  @type settings :: map() | keyword()

  @typedoc "A controller policy (see the module doc)."
  @type policy ::
          {:fixed, pos_integer()}
          | {:rate_proportional, map() | keyword()}
          | {:target_p99, pos_integer()}
          | {:budget, number()}

  @doc """
  Applies `settings` on every member (`nodes: [...]`, default this node and
  every connected node where Lasp or `:lasp_converge` runs). Returns
  `{:ok, %{node => :lasp | :replicator}}`.
  """
  @spec set(settings(), keyword() | map()) :: {:ok, map()} | {:error, term()}
  def set(settings, opts \\ []),
    do: :lasp_converge_tuner.set(Map.new(settings), Map.new(opts))

  @doc """
  Reads the settings back from every member: `%{settings: agreed,
  per_node: %{node => settings}, backends: ..., agree: boolean(),
  disagree: [key]}`.
  """
  @spec get(keyword() | map()) :: map()
  def get(opts \\ []), do: :lasp_converge_tuner.get(Map.new(opts))

  @doc """
  Starts a controller for `var` on this node. Options: `:nodes`, `:key`
  (`:state_interval` or `:delta_interval`), `:window` (ms, default 1000),
  `:max_window`, `:min_samples`, `:min`, `:max`, `:dwell`, `:hysteresis`,
  `:aim`, `:aim_high`, `:low`, `:calm`, `:latency_ms`, `:fanout`, `:push` (`:auto` or
  `:never`), `:anti_entropy`, `:mark`.
  """
  @spec start(variable(), policy(), keyword() | map()) :: {:ok, pid()} | {:error, term()}
  def start(var, policy, opts \\ []),
    do: :lasp_converge_tuner.start(var, policy(policy), Map.new(opts))

  @doc "Stops the controller of `var` on this node; the settings stay."
  @spec stop(variable()) :: :ok | {:error, :not_running}
  def stop(var), do: :lasp_converge_tuner.stop(var)

  @doc """
  The changes the controller of `var` made, oldest first: maps with
  `:at_ms`, `:at_us`, `:key`, `:old`, `:new`, `:why`, `:measurement`,
  `:result`.
  """
  @spec log(variable()) :: [map()] | {:error, :not_running}
  def log(var), do: :lasp_converge_tuner.log(var)

  @doc "The controller's policy, key, nodes, decision state and last measurement."
  @spec status(variable()) :: map() | {:error, :not_running}
  def status(var), do: :lasp_converge_tuner.status(var)

  @doc "The variables with a controller on this node."
  @spec running() :: [variable()]
  def running, do: :lasp_converge_tuner.running()

  @doc """
  Settings to start from, predicted by the simulator: the cheapest
  `:state_interval` and `:fanout` whose simulated p99 meets `:target_p99`
  (ms) for `:nodes` nodes at `:update_rate` updates a second. Same options
  as `LaspConverge.Sim.recommend/1`.

      iex> {:ok, best} = LaspConverge.Tuner.recommend(target_p99: 2_000, nodes: 20,
      ...>   update_rate: 5, duration: 5_000, fanouts: [2])
      iex> best.p99 <= 2_000_000 and best.fanout == 2
      true
  """
  @spec recommend(keyword() | map()) :: {:ok, map()} | {:error, term()}
  def recommend(opts) when is_list(opts) or is_map(opts),
    do: :lasp_converge_tuner.recommend(Map.new(opts))

  @doc """
  The offline optimum of a schedule of update rates for a p99 target:
  per phase the cheaper in messages of `:propagate_on_update` and the
  longest interval whose simulated p99 meets `:target_p99` (ms), with the
  total `:messages` and the `:best_fixed` interval. `phases` is a list of
  `{name, duration_ms, updates_per_second}`; options as
  `:lasp_converge_tuner_optimum` documents them (`:nodes`, `:mode`,
  `:seeds`, ...).

      iex> {:ok, o} = LaspConverge.Tuner.optimum([{:busy, 3_000, 100}, {:quiet, 9_000, 0.3}],
      ...>   target_p99: 600, nodes: 4)
      iex> [busy, quiet] = o.phases
      iex> {busy.choice, quiet.choice}
      {{:interval, 593}, :push}
      iex> o.messages == busy.messages + quiet.messages
      true
  """
  @spec optimum([{term(), pos_integer(), number()}], keyword() | map()) ::
          {:ok, map()} | {:error, term()}
  def optimum(phases, opts) when is_list(opts) or is_map(opts),
    do: :lasp_converge_tuner.optimum(phases, Map.new(opts))

  @doc """
  Runs `policy` against the simulator over a schedule (phases as for
  `optimum/2`), window by window, as a controller would on a cluster:
  the windows, the messages, how many windows with updates met
  `:target_p99` (`:met` of `:with_updates`) and the policy's log.

      iex> r = LaspConverge.Tuner.simulate({:target_p99, 600}, [{:busy, 5_000, 50}],
      ...>   target_p99: 600, nodes: 3)
      iex> {r.met, r.with_updates}
      {5, 5}
  """
  @spec simulate(policy(), [{term(), pos_integer(), number()}], keyword() | map()) ::
          map() | {:error, term()}
  def simulate(policy, phases, opts) when is_list(opts) or is_map(opts),
    do: :lasp_converge_tuner.simulate(policy(policy), phases, Map.new(opts))

  @doc "The initial decision state for `policy` (see `:lasp_converge_tuner_policy.init_state/2`)."
  @spec init_state(policy(), map() | keyword()) :: map()
  def init_state(policy, ctx),
    do: :lasp_converge_tuner_policy.init_state(policy(policy), Map.new(ctx))

  @doc """
  The model's first interval, or `:keep`, and the next state
  (`%{propagate_on_update: false, interval: ms}` when `{:target_p99, ms}`
  finds push on).
  """
  @spec initial(policy(), map()) :: {pos_integer() | :keep | map(), map()}
  def initial(policy, state), do: :lasp_converge_tuner_policy.initial(policy(policy), state)

  @doc """
  One decision from a window's measurement: `{interval | :keep, state}`, or
  for `{:target_p99, ms}` `{%{propagate_on_update: bool, interval: ms}, state}`
  when push goes on or off.

      iex> policy = {:target_p99, 1000}
      iex> s = LaspConverge.Tuner.init_state(policy, %{interval: 10_000, nodes: 5})
      iex> {698, s} = LaspConverge.Tuner.initial(policy, s)
      iex> quiet = fn s, at -> LaspConverge.Tuner.decide(policy, s, %{at_ms: at, window_ms: 1000, updates: 0, rate: 0.0}) end
      iex> {change, s} = quiet.(s, 1000)
      iex> change
      %{propagate_on_update: true, interval: 60_000}
      iex> {%{propagate_on_update: false, interval: 698}, _} =
      ...>   LaspConverge.Tuner.decide(policy, s, %{at_ms: 1500, window_ms: 500, updates: 50, rate: 100.0})
  """
  @spec decide(policy(), map(), map()) :: {pos_integer() | :keep | map(), map()}
  def decide(policy, state, measurement),
    do: :lasp_converge_tuner_policy.decide(policy(policy), state, measurement)

  defp policy({:rate_proportional, params}), do: {:rate_proportional, Map.new(params)}
  defp policy(policy), do: policy
end
