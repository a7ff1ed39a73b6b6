defmodule LaspConverge.Scenario do
  @moduledoc """
  Declarative convergence scenarios on a local cluster: nodes, variables,
  propagation settings, phases of updates at given rates, faults at given
  times; measured with the tracker and the replicators' counters.

  The Elixir face of `:lasp_converge_scenario`, whose reference lists every
  key of a spec with its default and every field of the result:
  `h :lasp_converge_scenario` in `iex -S mix` after `make docs`;
  `guides/clusters.md` is the guide. The keys are `:nodes` (or `:cluster`,
  a running `LaspConverge.Cluster`), `:cluster_opts`, `:vars`,
  `:propagation`, `:phases`, `:faults`, `:duration`, `:converge_timeout`,
  `:aggregator`, `:track` and `:seed`.

  A spec is a keyword list or a map, and so are its nested options
  (`:propagation`, `:track`, `:cluster_opts`, each phase, a variable given
  as `[var: ..., type: ..., op: fun]`, and `:restart`'s options in
  `:faults`, e.g. `{2000, :restart, [3, [recover: true]]}`); nodes are
  named by their 1-based index. `run/1` returns, per variable, the
  tracker's stats and divergence, the messages and bytes sent, whether it
  converged and whether every node ended with the same value.

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
  ..., vars: %{var => result}}}` or `{:error, reason}`. The spec is checked
  before any node starts: `{:bad_spec, keys}` names the keys with a bad
  value (`[:vars]` when there is none), `{:fault_on_aggregator, i}` a crash
  or restart of the aggregating node.

      iex> LaspConverge.Scenario.run(nodes: 3)
      {:error, {:bad_spec, [:vars]}}
      iex> LaspConverge.Scenario.run(vars: [{"s", :state_gset}], nodes: 0, seed: :x)
      {:error, {:bad_spec, [:nodes, :seed]}}
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
