defmodule LaspConverge do
  @moduledoc """
  Convergence tracking: when each update to a replicated variable becomes
  visible on each replica, cluster-wide.

  The Elixir face of `:lasp_converge`, whose reference describes the model
  (witnesses, clock correction, horizon, memory bounds) and every option:
  `h :lasp_converge` and `h :lasp_converge.track/2` in `iex -S mix` after
  `make docs`; `guides/tracking.md` is the guide. In short, `track/2` on the
  aggregating node, `updated/3` (or `updated_delta/3`) on the writer,
  `observed/2` on every replica, then `stats/1`, `divergence/1`,
  `records/1`, `export/2` (times in microseconds).

  Options are keyword lists or maps. Every function returns `{:error,
  reason}` for what a caller can get wrong (an option `{:unknown_option,
  key}` or `{:bad_option, key, value}`, `:not_tracked`, `{:badcrdt, why}`,
  ...) and raises nothing; each `!` variant returns the value alone and
  raises `LaspConverge.Error` instead.

      iex> var = {"doc", :state_gset}
      iex> LaspConverge.track(var, nodes: [])
      :ok
      iex> LaspConverge.updated(var, {:state_gset, []}, {:state_gset, [:a]})
      :ok
      iex> LaspConverge.stats(var).updates
      1
      iex> LaspConverge.untrack(var)
      :ok
  """

  @typedoc "A tracked variable: any term, e.g. a Lasp id `{\"x\", :state_orset}`."
  @type variable :: term()

  @typedoc "A state: `{type, payload}`, as lasp-lang/types builds it."
  @type crdt :: LaspConverge.CRDT.t()

  @typedoc """
  Options of `track/2`, a keyword list or a map: `:nodes`, `:horizon` (ms),
  `:sample_every` (ms), `:tick` (ms or `false`), `:clock` (ms or `false`),
  `:take_over` and the native limits `:max_pending`, `:record_window`,
  `:max_samples`, `:clock_window`, `:max_latency_us`, `:max_nodes`; their
  meanings and defaults are in `:lasp_converge.track/2`.
  """
  @type track_opts :: keyword() | map()

  @typedoc """
  Options of `updated/4`, `updated_delta/3` and `observed/3`: `:ts`, an
  integer of microseconds on this node's clock, at most 60 s ahead of it
  (else `{:error, {:bad_ts, ts}}`; `{:error, :bad_ts}` for a non-integer).
  """
  @type event_opts :: keyword() | map()

  @typedoc "`{:error, reason}`: `:not_tracked`, `{:badcrdt, why}`, `{:bad_ts, ts}`, ... (see `LaspConverge.Error`)"
  @type error :: {:error, term()}

  @doc """
  Starts tracking `var`, aggregated on this node.

  `:nodes` lists the nodes holding a replica of `var`. This node is a
  member when it is listed, when `nodes: []` (this node alone) or when
  `:nodes` is not given (this node and every connected one); when `:nodes`
  names other nodes only, this node aggregates without being a member, so
  a shell or a test runner holding no replica is not waited for.

  With `take_over: true`, this node becomes the aggregating node of a
  variable whose aggregating node died, from the records the other nodes
  kept (`{:error, {:aggregator_alive, node}}` while an aggregator still
  runs); until then `stats/1` on those nodes answers `{:error,
  {:aggregator_down, node}}`. See `guides/tracking.md`.

      iex> LaspConverge.track({"track", :state_gset}, nodes: [], horizon: "30s")
      {:error, {:bad_option, :horizon, "30s"}}
      iex> LaspConverge.track({"track", :state_gset}, nodez: [])
      {:error, {:unknown_option, :nodez}}
      iex> LaspConverge.track({"track", :state_gset}, nodes: [], horizon: 5_000)
      :ok
      iex> LaspConverge.track({"track", :state_gset})
      {:error, :already_tracked}
      iex> LaspConverge.untrack({"track", :state_gset})
      :ok
  """
  @spec track(variable(), track_opts()) :: :ok | error()
  def track(var, opts \\ []), do: :lasp_converge.track(var, to_map(opts))

  @doc """
  Stops tracking `var` on every node.

      iex> LaspConverge.untrack({"never", :state_gset})
      {:error, :not_tracked}
  """
  @spec untrack(variable()) :: :ok | error()
  def untrack(var), do: :lasp_converge.untrack(var)

  @doc """
  Records that this node just updated `var` from `pre` to `post`.
  """
  @spec updated(variable(), crdt(), crdt(), event_opts()) :: :ok | error()
  def updated(var, pre, post, opts \\ []),
    do: :lasp_converge.updated(var, pre, post, to_map(opts))

  @doc """
  Records that this node just made an update to `var` whose delta is
  `delta` (what `LaspConverge.CRDT.delta_mutate/3` returned; the new state
  is the merge of the old one and `delta`). The delta is the update's
  witness, so the call costs what the delta weighs, not what the state
  weighs, unlike `updated/4`, which reads both states.

      iex> LaspConverge.updated_delta({"never", :state_gset}, {:state_gset, [:a]})
      {:error, :not_tracked}
  """
  @spec updated_delta(variable(), crdt(), event_opts()) :: :ok | error()
  def updated_delta(var, delta, opts \\ []),
    do: :lasp_converge.updated_delta(var, delta, to_map(opts))

  @doc """
  Records that this node's replica of `var` now holds `state`.

      iex> LaspConverge.observed({"never", :state_gset}, {:state_gset, []})
      {:error, :not_tracked}
  """
  @spec observed(variable(), crdt(), event_opts()) :: :ok | error()
  def observed(var, state, opts \\ []), do: :lasp_converge.observed(var, state, to_map(opts))

  @doc """
  As `observed/2`, stamped now but applied by this node's observer of `var`:
  returns at once, so a replica's own loop never waits for the tracker.

      iex> LaspConverge.observed_async({"never", :state_gset}, {:state_gset, []})
      {:error, :not_tracked}
  """
  @spec observed_async(variable(), crdt()) :: :ok | {:error, :not_tracked}
  def observed_async(var, state), do: :lasp_converge.observed_async(var, state)

  @doc """
  Counters and convergence-time percentiles in microseconds: a map with
  atom keys `:updates`, `:converged`, `:pending`, `:unconverged`, `:p50`,
  `:p90`, `:p99`, `:p999`, `:max`, `:mean`, `:clock_uncertainty_us` and
  `:per_node` (`%{node => %{p50:, p99:, max:, pending:, ...}}`). Figures
  with no data are `:undefined`.
  """
  @spec stats(variable()) :: map() | error()
  def stats(var), do: :lasp_converge.stats(var)

  @doc """
  Divergence samples, oldest first: `%{t_us:, up_to_date:, nodes: %{node =>
  %{unseen:, oldest_unseen_age_us:}}}`.
  """
  @spec divergence(variable()) :: [map()] | error()
  def divergence(var), do: :lasp_converge.divergence(var)

  @doc """
  Everything the tracker knows as JSON (`format` is `:json`).
  """
  @spec export(variable(), :json) :: {:ok, binary()} | error()
  def export(var, format), do: :lasp_converge.export(var, format)

  @doc """
  Starts a new measurement; members and clock estimates are kept.
  """
  @spec reset(variable()) :: :ok | error()
  def reset(var), do: :lasp_converge.reset(var)

  @doc """
  The raw records of the most recent finished updates, oldest first: per
  update `:origin`, `:seq`, `:ts_us`, `:outcome` (`:converged`,
  `:unconverged` or `:orphaned`), `:convergence_us`, `:missing`, `:reason`
  and `:seen` (`%{node => ts_us}`, when each node first held it).
  """
  @spec records(variable()) :: [map()] | error()
  def records(var), do: :lasp_converge.records(var)

  @doc """
  Prints a summary of `var` to the terminal: its figures, a sparkline of
  divergence over time and a histogram of recent convergence times.
  `LaspConverge.Report.write/2` draws the same as an HTML page.
  """
  @spec print(variable()) :: :ok | error()
  def print(var), do: :lasp_converge.print(var)

  @doc """
  Records `mark` (any term) on every variable aggregated on this node, to
  show in reports when something happened during a measurement;
  `LaspConverge.Fault` marks each fault it injects with
  `%{at_us:, fault:, args:}`. Asynchronous.
  """
  @spec mark(term()) :: :ok
  def mark(mark), do: :lasp_converge.mark(mark)

  @doc """
  The marks recorded on `var` since tracking started or the last `reset/1`,
  oldest first.

      iex> var = {"marks", :state_gset}
      iex> LaspConverge.track(var, nodes: [])
      :ok
      iex> LaspConverge.mark(:hello)
      :ok
      iex> :hello in LaspConverge.marks(var)
      true
      iex> LaspConverge.untrack(var)
      :ok
  """
  @spec marks(variable()) :: [term()] | error()
  def marks(var), do: :lasp_converge.marks(var)

  @doc """
  The figures of the variables aggregated on this node and of the nodes
  involved (settings, replication, tuner changes), in the Prometheus text
  exposition format 0.0.4, as a UTF-8 binary: what the dashboard serves at
  `GET /metrics`, for serving it from your own endpoint with the content
  type `text/plain; version=0.0.4`. The metrics, the telemetry events and
  the logs are listed in `guides/operations.md`; see
  `:lasp_converge_metrics` for the details.

      iex> var = {"metrics-doc", :state_gset}
      iex> :ok = LaspConverge.track(var, nodes: [])
      iex> :ok = LaspConverge.updated(var, {:state_gset, []}, {:state_gset, [:a]})
      iex> text = LaspConverge.metrics()
      iex> text =~ "# TYPE lasp_converge_updates_total counter"
      true
      iex> text =~ ~s(lasp_converge_updates_total{var="{<<\\\\"metrics-doc\\\\">>,state_gset}",type="state_gset"} 1)
      true
      iex> LaspConverge.untrack(var)
      :ok
  """
  @spec metrics() :: binary()
  def metrics, do: :lasp_converge.metrics()

  @doc "`track/2`, raising `LaspConverge.Error` on error."
  @spec track!(variable(), track_opts()) :: :ok
  def track!(var, opts \\ []), do: bang(track(var, opts))

  @doc "`untrack/1`, raising `LaspConverge.Error` on error."
  @spec untrack!(variable()) :: :ok
  def untrack!(var), do: bang(untrack(var))

  @doc "`updated/4`, raising `LaspConverge.Error` on error."
  @spec updated!(variable(), crdt(), crdt(), event_opts()) :: :ok
  def updated!(var, pre, post, opts \\ []), do: bang(updated(var, pre, post, opts))

  @doc "`updated_delta/3`, raising `LaspConverge.Error` on error."
  @spec updated_delta!(variable(), crdt(), event_opts()) :: :ok
  def updated_delta!(var, delta, opts \\ []), do: bang(updated_delta(var, delta, opts))

  @doc "`observed/3`, raising `LaspConverge.Error` on error."
  @spec observed!(variable(), crdt(), event_opts()) :: :ok
  def observed!(var, state, opts \\ []), do: bang(observed(var, state, opts))

  @doc "`stats/1`, raising `LaspConverge.Error` on error."
  @spec stats!(variable()) :: map()
  def stats!(var), do: bang(stats(var))

  @doc "`divergence/1`, raising `LaspConverge.Error` on error."
  @spec divergence!(variable()) :: [map()]
  def divergence!(var), do: bang(divergence(var))

  @doc "`export/2`, returning the JSON binary, raising `LaspConverge.Error` on error."
  @spec export!(variable(), :json) :: binary()
  def export!(var, format) do
    case export(var, format) do
      {:ok, json} -> json
      other -> bang(other)
    end
  end

  @doc "`reset/1`, raising `LaspConverge.Error` on error."
  @spec reset!(variable()) :: :ok
  def reset!(var), do: bang(reset(var))

  defp bang({:error, reason}), do: raise(LaspConverge.Error, reason: reason)
  defp bang(value), do: value

  defp to_map(opts) when is_list(opts) do
    if Keyword.keyword?(opts), do: Map.new(opts), else: opts
  end

  defp to_map(opts), do: opts
end
