defmodule LaspConverge.Report do
  @moduledoc """
  Convergence as pictures: one self-contained HTML file (inline SVG and
  CSS, nothing fetched, no script) per run.

  For each tracked variable the page shows a summary table with the
  clock uncertainty, divergence over time per node (updates missing and
  the age of the oldest), the convergence-time distribution (CDF and
  histogram on a log time axis, p50/p99/p999 marked), per-node visibility
  latency as a heatmap, update rate and p99 per window, and the marks
  recorded with `LaspConverge.mark/1` (faults, interval changes) on every
  time axis. The Erlang module is `:lasp_converge_report`.

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
end
