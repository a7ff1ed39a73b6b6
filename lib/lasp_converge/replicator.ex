defmodule LaspConverge.Replicator do
  @moduledoc """
  Replication of declared variables between the nodes of a cluster,
  modelled on Lasp's state-based and delta-based backends, with Lasp's knobs
  and defaults.

  A thin façade over `:lasp_converge_replicator`; see its module doc for the
  details. One replicator runs per node (started with the application under its
  supervisor), holding a replica of each declared variable.
  Every `:state_interval` ms (default 10000, Lasp's default) it sends the
  full state of each variable to `:fanout` random other members (default
  `:all`), and with `:propagate_on_update` also right after each local
  update; receivers merge natively. With `mode: :delta_based` each peer
  gets only the deltas it has not acknowledged (the full state when it is
  too far behind). Local updates and state changes are
  reported to the convergence tracker (`LaspConverge`) when the variable is
  tracked. Settings are per node.

      {:ok, _members} = LaspConverge.Replicator.declare({"s", :state_orset}, :state_orset)
      {:ok, value} = LaspConverge.Replicator.update({"s", :state_orset}, {:add, "x"}, node())
  """

  @typedoc "A variable: any term, such as a Lasp id `{name, type}`."
  @type variable :: term()

  @typedoc """
  Per-node propagation settings (a map or keyword list):

    * `:state_interval` - ms between full-state rounds (default 10000)
    * `:fanout` - peers per round, a count or `:all` (default `:all`)
    * `:propagate_on_update` - send right after each local update (default `false`)
    * `:jitter_percent` - stretch or shorten each interval randomly by up to this % (default 0)
    * `:mode` - `:state_based` (default) or `:delta_based`
    * `:delta_buffer` - most deltas kept per variable in delta-based mode (default 1000)
  """
  @type settings :: map() | keyword()

  @doc """
  Declares `var` of CRDT type `type` on this node and on every connected
  node running the `:lasp_converge` application, or on the nodes given as
  `nodes: [...]`. Returns `{:ok, members}`.
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
  Changes this node's propagation settings; returns the settings in force.
  A longer interval takes effect when the round already armed goes out (as
  in Lasp); a shorter one at once.
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
