defmodule LaspConverge.Report do
  @moduledoc """
  Convergence as pictures: one self-contained HTML file (inline SVG and
  CSS, nothing fetched, no script) per run, and one per sweep.

  For each tracked variable the report shows, titled `demo · awset`, a
  summary with the clock uncertainty and the nodes' short names next to
  their full ones; on one shared time axis the marks recorded with
  `LaspConverge.mark/1` (faults, setting changes) as short labels in a
  lane of their own, a node × time heatmap of the updates each node has
  not seen, the totals, the update rate and p99 per window (keyed by
  update time), and the settings in force; the convergence-time
  distribution (CDF and histogram, p50/p99/p999 marked), per-node
  visibility latency, and the run on the update speed vs convergence
  speed chart. See `guides/report.md`. The Erlang module is
  `:lasp_converge_report`.

      iex> LaspConverge.Report.write("/tmp/none.html", [{"never", :state_gset}])
      {:error, {:not_tracked, {"never", :state_gset}}}
  """

  @typedoc "A tracked variable."
  @type variable :: term()

  @doc """
  Writes the report on `vars` to `path` and returns `{:ok, path}`.
  Options: `:title`.
  """
  @spec write(Path.t(), [variable()], keyword()) :: {:ok, Path.t()} | {:error, term()}
  def write(path, vars, opts \\ []) when is_list(vars) and is_list(opts) do
    case :lasp_converge_report.write(String.to_charlist(path), vars, Map.new(opts)) do
      {:ok, _} -> {:ok, path}
      {:error, _} = e -> e
    end
  end

  @doc """
  Writes the page of a sweep's `rows` (from `LaspConverge.Scenario.sweep/2`
  or `LaspConverge.Sim.sweep/2`) to `path`: heatmaps of p99 convergence and
  of messages per update over rate × interval, the cheapest interval
  meeting the target per rate, and every run on the update speed vs
  convergence speed chart. Options: `:title`, `:target_p99` (ms; by
  default each rate's time between updates).

      iex> LaspConverge.Report.write_sweep("/tmp/none.html", [%{rate: 1}])
      {:error, :bad_rows}
  """
  @spec write_sweep(Path.t(), [map()], keyword()) :: {:ok, Path.t()} | {:error, term()}
  def write_sweep(path, rows, opts \\ []) when is_list(rows) and is_list(opts) do
    case :lasp_converge_report.write_sweep(String.to_charlist(path), rows, Map.new(opts)) do
      {:ok, _} -> {:ok, path}
      {:error, _} = e -> e
    end
  end
end
