defmodule LaspConverge.Scenario do
  @moduledoc """
  Declarative convergence scenarios on a local cluster: nodes, variables,
  propagation settings, phases of updates at given rates; measured with the
  tracker and the replicators' counters.

  A thin façade over `:lasp_converge_scenario`; see its module doc for every
  key. A spec is a map or keyword list:

    * `:nodes` - peer nodes to start (default 3; stopped at the end), or
      `:cluster` - a running `LaspConverge.Cluster` to use
    * `:vars` - Lasp ids `{name, type}` (declared on every node, tracked)
    * `:propagation` - replicator settings for every node: `:state_interval`,
      `:fanout`, `:propagate_on_update`, `:jitter_percent`, `:mode`
    * `:phases` - `[%{duration: ms, rate: updates_per_second}]`; each
      variable gets `rate` updates a second, spread over the nodes (adds and
      removes for sets, increments and decrements for counters, ...;
      `:remove_ratio`, default 0.25)
    * `:faults` - `[{at_ms, fault} | {at_ms, fault, args}]`, applied with
      `LaspConverge.Fault` at their time, nodes by their 1-based index:
      `{1000, :partition, [[1, 2], [3, 4, 5]]}`, `{3000, :heal}`,
      `{500, :delay, [1, 2, 200]}`, `{0, :drop, [0.3]}`, `{1000, :crash, [3]}`,
      `{2000, :restart, [3, [recover: false]]}`, `:pause`/`:resume` `[i]`,
      `:clear`
    * `:duration`, `:converge_timeout` (ms), `:aggregator` (node index that
      tracks, default 1; it cannot be crashed), `:track` (tracker options),
      `:seed`

  `run/1` returns, per variable, the tracker's stats and divergence, the
  messages and bytes sent (`:msgs_per_update`, `:bytes_per_update`), whether
  it converged and whether every node ended with the same value, and the
  faults applied (`:faults`, each with its time from the start and result).

      {:ok, result} =
        LaspConverge.Scenario.run(
          nodes: 3,
          vars: [{"s", :state_awset}],
          propagation: [state_interval: 50],
          phases: [[duration: 1_000, rate: 20]]
        )

      result.vars[{"s", :state_awset}].stats.p99
  """

  @typedoc "A scenario spec, as a map or keyword list (see the module doc)."
  @type spec :: map() | keyword()

  @typedoc "The grid of `sweep/2`: `:rates`, `:intervals`, optional `:duration`, `:min_updates`."
  @type grid :: map() | keyword()

  @doc """
  Runs the scenario; returns `{:ok, %{nodes: ..., duration_ms: ..., faults:
  ..., vars: %{var => result}}}` or `{:error, reason}`.
  """
  @spec run(spec()) :: {:ok, map()} | {:error, term()}
  def run(spec), do: :lasp_converge_scenario.run(to_spec(spec))

  @doc """
  Runs `base` once per rate and interval and returns `{:ok, rows}`, one row
  per cell and variable with `:rate`, `:state_interval`, `:updates`, `:p50`,
  `:p99`, `:max` (µs), `:msgs_per_update`, `:bytes_per_update`,
  `:converged`.
  """
  @spec sweep(spec(), grid()) :: {:ok, [map()]} | {:error, term()}
  def sweep(base, grid), do: :lasp_converge_scenario.sweep(to_spec(base), Map.new(grid))

  @doc """
  The rows of `sweep/2` as an aligned text table (times in ms).

      iex> row = %{var: {"s", :state_gset}, rate: 10, state_interval: 50, updates: 10,
      ...>         p50: 25_000, p99: 50_000, max: 51_000, msgs_per_update: 3.0,
      ...>         bytes_per_update: 250.0, converged: true, agree: true}
      iex> LaspConverge.Scenario.format_table([row]) |> String.split("\\n") |> Enum.at(2)
      "s    10/s           50       10    25.0    50.0    51.0          3.0           250       true"
  """
  @spec format_table([map()]) :: String.t()
  def format_table(rows), do: IO.iodata_to_binary(:lasp_converge_scenario.format_table(rows))

  defp to_spec(spec) do
    spec
    |> Map.new()
    |> Map.new(fn
      {:phases, ps} -> {:phases, Enum.map(ps, &Map.new/1)}
      {k, v} when k in [:propagation, :track, :cluster_opts] -> {k, Map.new(v)}
      {:vars, vs} -> {:vars, Enum.map(vs, &var/1)}
      kv -> kv
    end)
  end

  defp var({_name, _type} = v), do: v
  defp var(v) when is_list(v) or is_map(v), do: Map.new(v)
end
