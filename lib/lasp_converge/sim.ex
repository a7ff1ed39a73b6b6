defmodule LaspConverge.Sim do
  @moduledoc """
  Predict convergence before deploying: a deterministic discrete-event
  simulator of the anti-entropy `LaspConverge.Replicator` runs, in the
  native core, on an OS thread of its own (it blocks no scheduler and stops
  when the calling process dies or its `:timeout` passes, `run/2`).

  The Elixir face of `:lasp_converge_sim`, whose reference describes the
  model, every key of a spec with its default (the replicator's settings,
  `:nodes`, `:latency`, `:loss`, `:partitions`, `:update_rate` and
  `:duration` or `:updates`, what a real cluster adds such as
  `:service_time`, ...), the caps and the result: `h :lasp_converge_sim`
  in `iex -S mix` after `make docs`; `guides/simulator.md` is the guide.
  Times are in ms, latencies in µs, and one spec with one seed always gives
  the same result.

  A spec is a keyword list or a map. The result has the keys of
  `LaspConverge.stats/1` (`:p50`, `:p99`, ... in µs, `:per_node`),
  `:divergence` samples shaped as `LaspConverge.divergence/1`'s, and
  `:messages`, `:bytes`, `:messages_per_update`, `:bytes_per_update`.
  A refused spec is `{:error, reason}` naming the key (`run!/1` raises
  `LaspConverge.Sim.Error` instead):

      iex> {:ok, r} = LaspConverge.Sim.run(nodes: 50, state_interval: 200, fanout: 3,
      ...>   update_rate: 20, duration: 2_000, seed: 7)
      iex> r.converged == r.updates and r.p99 < 5_000_000
      true
      iex> LaspConverge.Sim.run(nodes: 0)
      {:error, {:bad_spec, :nodes}}
  """

  @typedoc "A simulation spec (see `:lasp_converge_sim`)."
  @type spec :: map() | keyword()

  @doc """
  Runs the simulation `spec` describes; `{:ok, result}` or `{:error,
  reason}` with `reason` one of `{:bad_spec, key}`, `{:too_large, key}`,
  `{:unknown_key, key}`.

      iex> LaspConverge.Sim.run(nodes: 5, state_intervall: 100)
      {:error, {:unknown_key, :state_intervall}}
  """
  @spec run(spec()) :: {:ok, map()} | {:error, term()}
  def run(spec) when is_list(spec) or is_map(spec), do: :lasp_converge_sim.run(to_map(spec))

  @doc """
  `run/1` with options: `:timeout` (`:infinity` or ms of real time), after
  which the run is stopped and `{:error, :timeout}` returned.

      iex> LaspConverge.Sim.run([nodes: 20000, fanout: 3, state_interval: 1000,
      ...>   updates: [], until: 4_999_000], timeout: 50)
      {:error, :timeout}
  """
  @spec run(spec(), keyword() | map()) :: {:ok, map()} | {:error, term()}
  def run(spec, opts) when (is_list(spec) or is_map(spec)) and (is_list(opts) or is_map(opts)),
    do: :lasp_converge_sim.run(to_map(spec), to_map(opts))

  @doc """
  How many runs are computing or waiting for a turn in this VM (at most
  as many compute at once as the machine has cores).
  """
  @spec active() :: non_neg_integer()
  def active, do: :lasp_converge_sim.active()

  @doc "Like `run/1`, raising `LaspConverge.Sim.Error` on a bad spec."
  @spec run!(spec()) :: map()
  def run!(spec) do
    case run(spec) do
      {:ok, r} -> r
      {:error, reason} -> raise LaspConverge.Sim.Error, reason: reason
    end
  end

  @doc """
  The cheapest settings (`:state_interval`, `:fanout`) whose simulated p99
  convergence meets `:target_p99` (ms), searched with the simulator; the
  other keys are a spec (`:nodes`, `:update_rate`, `:latency`, ...) and the
  search options `:cost` (`:bytes` or `:messages`), `:seeds`,
  `:state_intervals`, `:fanouts`. `{:error, {:unreachable, closest}}` gives
  the setting of the lowest p99 when none meets the target. See
  `:lasp_converge_sim.recommend/1` for the defaults and the result's keys.

      iex> {:ok, best} = LaspConverge.Sim.recommend(target_p99: 2_000, nodes: 30,
      ...>   update_rate: 5, duration: 5_000, fanouts: [2, 4])
      iex> best.p99 <= 2_000_000
      true
  """
  @spec recommend(spec()) :: {:ok, map()} | {:error, term()}
  def recommend(opts) when is_list(opts) or is_map(opts),
    do: :lasp_converge_sim.recommend(to_map(opts))

  @doc """
  Simulates `spec` once per cell of a grid of `:rates` (updates a second)
  and `:intervals` (ms), optionally `:min_updates` (default 20), and returns
  one row per cell shaped as `LaspConverge.Scenario.sweep/2`'s, for
  `LaspConverge.Report.write_sweep/2`. See `:lasp_converge_sim.sweep/2`.

      iex> {:ok, rows} = LaspConverge.Sim.sweep([nodes: 5, duration: 2_000],
      ...>   rates: [1, 10], intervals: [50, 500])
      iex> Enum.map(rows, &{&1.rate, &1.state_interval})
      [{1, 50}, {10, 50}, {1, 500}, {10, 500}]
  """
  @spec sweep(spec(), keyword() | map()) :: {:ok, [map()]} | {:error, term()}
  def sweep(spec, grid) when (is_list(spec) or is_map(spec)) and (is_list(grid) or is_map(grid)),
    do: :lasp_converge_sim.sweep(to_map(spec), Map.new(grid))

  defp to_map(spec) when is_map(spec), do: spec
  defp to_map(spec), do: Map.new(spec)
end

defmodule LaspConverge.Sim.Error do
  @moduledoc """
  Raised by `LaspConverge.Sim.run!/1` when the spec is refused; the reason
  (`{:bad_spec, key}`, `{:too_large, key}`, `{:unknown_key, key}`) is in
  the `:reason` field.
  """
  defexception [:reason]

  @impl true
  def message(%__MODULE__{reason: reason}), do: "simulation refused: #{inspect(reason)}"
end
