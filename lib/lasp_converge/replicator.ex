defmodule LaspConverge.Replicator do
  @moduledoc """
  Replication of declared variables between the nodes of a cluster,
  modelled on Lasp's state-based and delta-based backends, with Lasp's knobs
  and defaults.

  The Elixir face of `:lasp_converge_replicator`, whose reference describes
  the model (one replicator per node, started with the application, full-state rounds every
  `:state_interval` ms to `:fanout` peers, delta buffers and
  acknowledgements in `:delta_based` mode, when a new setting takes effect)
  and every setting with its default: `h :lasp_converge_replicator` in
  `iex -S mix` after `make docs`; `guides/clusters.md` is the guide.
  Settings are per node, as a keyword list or a map; local updates and state
  changes are reported to `LaspConverge` when the variable is tracked.

      {:ok, _members} = LaspConverge.Replicator.declare({"s", :state_orset}, :state_orset)
      {:ok, value} = LaspConverge.Replicator.update({"s", :state_orset}, {:add, "x"}, node())
  """

  @typedoc "A variable: any term, such as a Lasp id `{name, type}`."
  @type variable :: term()

  @typedoc """
  Per-node propagation settings, a keyword list or a map: `:state_interval`
  (ms, default 10000, Lasp's), `:fanout` (a count or `:all`, the default),
  `:propagate_on_update` (default `false`), `:jitter_percent` (default 0),
  `:mode` (`:state_based`, the default, or `:delta_based`) and
  `:delta_buffer` (default 1000); see `:lasp_converge_replicator.set/1`.
  """
  @type settings :: map() | keyword()

  @doc """
  Declares `var` of CRDT type `type` on this node and on every connected
  node running the `:lasp_converge` application, or only on the nodes given
  as `nodes: [...]` (include `node()` to hold a replica here too). Returns
  `{:ok, members}`, or `{:error, {:unknown_type, type}}` or `{:error,
  {:declare_failed, [{node, reason}]}}`.

      iex> LaspConverge.Replicator.declare({"r", :state_gset}, :state_nothing)
      {:error, {:unknown_type, :state_nothing}}
  """
  @spec declare(variable(), atom(), keyword() | map()) :: {:ok, [node()]} | {:error, term()}
  def declare(var, type, opts \\ [])
  def declare(var, type, []), do: :lasp_converge_replicator.declare(var, type)
  def declare(var, type, opts), do: :lasp_converge_replicator.declare(var, type, Map.new(opts))

  @doc "Applies `op` as `actor` to this node's replica; returns `{:ok, value}` or `{:error, reason}`."
  @spec update(variable(), term(), term()) :: {:ok, term()} | {:error, term()}
  def update(var, op, actor), do: :lasp_converge_replicator.update(var, op, actor)

  @doc "The value of this node's replica (`LaspConverge.CRDT.query/1` of its state)."
  @spec value(variable()) :: {:ok, term()} | {:error, :not_declared}
  def value(var), do: :lasp_converge_replicator.value(var)

  @doc "The state of this node's replica, a plain lasp-lang/types term."
  @spec state(variable()) :: {:ok, term()} | {:error, :not_declared}
  def state(var), do: :lasp_converge_replicator.state(var)

  @doc """
  Changes this node's propagation settings; returns `{:ok, settings}`, the
  settings in force, or `{:error, {:bad_settings, keys}}` naming the keys that
  are unknown or have a bad value. A longer interval takes effect when the
  round already armed goes out (as in Lasp); a shorter one at once.

      iex> LaspConverge.Replicator.set(state_interval: 0, fanout: 2, speed: 1)
      {:error, {:bad_settings, [:speed, :state_interval]}}
  """
  @spec set(settings()) :: {:ok, map()} | {:error, term()}
  def set(settings), do: :lasp_converge_replicator.set(Map.new(settings))

  @doc "Sends one round of `var` from this node now; the timer keeps its time."
  @spec flush(variable()) :: :ok | {:error, :not_declared}
  def flush(var), do: :lasp_converge_replicator.flush(var)

  @doc """
  Messages and bytes sent (`:sent_messages`, `:sent_bytes`; of which
  `:full_states`, `:deltas`, `:acks`, and `:dropped` by injected faults),
  messages received, per node and per variable.
  """
  @spec stats() :: map()
  def stats, do: :lasp_converge_replicator.stats()
end
