defmodule LaspConverge.Report do
  @moduledoc """
  Convergence as pictures: one self-contained HTML file (inline SVG and
  CSS, nothing fetched, no script) per run, and one per sweep.

  The Elixir face of `:lasp_converge_report`, whose reference lists what a
  report draws for each tracked variable (a summary, the marks recorded
  with `LaspConverge.mark/1`, per-node swimlanes of unseen updates and the
  settings in force on one time axis, the convergence-time distribution,
  update speed against convergence speed): `h :lasp_converge_report` in
  `iex -S mix` after `make docs`; `guides/report.md` shows how to read
  them. `LaspConverge.print/1` prints a summary to the terminal. Here paths
  are strings and options keyword lists.

      iex> LaspConverge.Report.write("/tmp/none.html", [{"never", :state_gset}])
      {:error, {:not_tracked, {"never", :state_gset}}}
  """

  @typedoc "A tracked variable."
  @type variable :: term()

  @doc """
  Writes the report on `vars` to `path` and returns `{:ok, path}`, or
  `{:error, reason}`: `{:not_tracked, var}`, `{:bad_title, title}`,
  `{:bad_path, path}`, ... Options: `:title`.
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
