defmodule LaspConverge.Tuner do
  @moduledoc """
  Propagation control: set how fast state propagates on every node of a
  cluster, and let a controller per variable set it from what it measures.

  The Elixir face of `:lasp_converge_tuner`, whose reference describes how
  `set/2` reaches each node (Lasp's `lasp_config` where Lasp runs,
  `LaspConverge.Replicator.set/1` elsewhere), the policies, the model that
  gives the first interval, the guards against oscillation, when push
  (`:propagate_on_update`) goes on and off, and every option with its
  default: `h :lasp_converge_tuner` and `h :lasp_converge_tuner.start/3` in
  `iex -S mix` after `make docs`; `guides/tuning.md` is the guide.

  The policies of `start/3`: `{:fixed, ms}`, `{:rate_proportional,
  [updates_per_interval: k, min: ms, max: ms]}` (a keyword list or a map),
  `{:target_p99, ms}` and `{:budget, messages_per_second}`. Every change a
  controller makes is logged (`log/1`) and recorded as a tracker mark
  (`LaspConverge.marks/1`). Settings and options are keyword lists or maps.

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
  `{:ok, %{node => :lasp | :replicator}}`, `{:error, {:bad_settings,
  keys}}` (unknown keys or bad values; nothing is applied) or `{:error,
  {:set_failed, [{node, reason}]}}` naming the nodes that did not take them
  (the others did).

      iex> LaspConverge.Tuner.set(state_interval: 0, speed: :fast)
      {:error, {:bad_settings, [:speed, :state_interval]}}
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
  Starts a controller for `var` on this node (`var` must be tracked for
  `:target_p99` and `:rate_proportional`). Options: `:nodes`, `:key`
  (`:state_interval` or `:delta_interval`), `:window` (ms, default 1000),
  `:max_window`, `:min_samples`, `:min`, `:max`, `:dwell`, `:hysteresis`,
  `:aim`, `:aim_high`, `:low`, `:calm`, `:latency_ms`, `:fanout`, `:push`
  (`:auto` or `:never`), `:anti_entropy`, `:mark`; their meanings and
  defaults are in `:lasp_converge_tuner`'s reference. Errors: `{:bad_policy,
  policy}`, `{:unknown_option, key}`, `{:bad_option, key, value}`,
  `:already_started` (one controller per variable), `:not_started`, all
  answered before any process starts.

      iex> LaspConverge.Tuner.start({"t", :state_gset}, {:fixed, 0})
      {:error, {:bad_policy, {:fixed, 0}}}
      iex> LaspConverge.Tuner.start({"t", :state_gset}, {:fixed, 500}, windows: 2)
      {:error, {:unknown_option, :windows}}
      iex> LaspConverge.Tuner.start({"t", :state_gset}, {:fixed, 500}, window: -1)
      {:error, {:bad_option, :window, -1}}
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
