defmodule LaspConverge.Fault do
  @moduledoc """
  Faults on the replication traffic of a local cluster
  (`LaspConverge.Cluster`), undone cleanly: partitions, slow links, message
  loss, paused nodes, crashed and restarted nodes.

  The Elixir face of `:lasp_converge_fault`, whose reference says what each
  fault affects (only the messages `LaspConverge.Replicator` sends: the
  tracker and `LaspConverge.Cluster.call/5` keep working under a
  partition), how a node restarts, and every error:
  `h :lasp_converge_fault` in `iex -S mix` after `make docs`;
  `guides/clusters.md` is the guide. Every fault is an event `%{at_us:,
  fault:, args:}` (`events/1`), also recorded with `LaspConverge.mark/1`.

  Each function returns `:ok` or `{:error, reason}` (`{:not_a_member,
  node}`, `:not_running` once the cluster is stopped, `{:bad_delay, ms}`,
  ...) and raises nothing; each `!` variant raises `LaspConverge.Fault.Error`
  instead.

      LaspConverge.Cluster.with_cluster(5, [], fn cluster ->
        [a, b, c, d, e] = LaspConverge.Cluster.nodes(cluster)
        :ok = LaspConverge.Fault.partition(cluster, [[a, b], [c, d, e]])
        :ok = LaspConverge.Fault.heal(cluster)
        :ok = LaspConverge.Fault.crash(cluster, c)
        :ok = LaspConverge.Fault.restart(cluster, c, recover: true)
        LaspConverge.Fault.events(cluster)
      end)
  """

  alias LaspConverge.Cluster

  @typedoc "A fault event: when it was in force (`:at_us`, this node's clock), which, and its arguments."
  @type event :: %{at_us: integer(), fault: atom(), args: term()}

  @doc """
  Splits the cluster into `groups` (lists of member nodes): replication
  messages between groups are dropped; a member in no group is alone.
  Returns `{:error, {:not_a_member, node}}`, `{:error, {:in_two_groups,
  node}}` or `{:error, :bad_groups}` for groups that are not lists of
  distinct members.
  """
  @spec partition(Cluster.t(), [[node()]]) :: :ok | {:error, term()}
  def partition(cluster, groups), do: :lasp_converge_fault.partition(cluster, groups)

  @doc "Undoes the partition."
  @spec heal(Cluster.t()) :: :ok | {:error, term()}
  def heal(cluster), do: :lasp_converge_fault.heal(cluster)

  @doc """
  Delivers replication messages from `from` to `to` `ms` milliseconds late
  (0 removes the delay); `{:error, {:bad_delay, ms}}` unless a
  non-negative integer.
  """
  @spec delay(Cluster.t(), node(), node(), non_neg_integer()) :: :ok | {:error, term()}
  def delay(cluster, from, to, ms), do: :lasp_converge_fault.delay(cluster, from, to, ms)

  @doc """
  Loses each replication message with `probability` (0.0 removes the
  loss); `{:error, {:bad_probability, p}}` unless a number in [0, 1].
  """
  @spec drop(Cluster.t(), float()) :: :ok | {:error, term()}
  def drop(cluster, probability), do: :lasp_converge_fault.drop(cluster, probability)

  @doc """
  Halts `node`; its state is lost until `restart/3`.

  Crashing the node that aggregates a tracked variable loses the updates
  made there; the other nodes keep their records, `LaspConverge.stats/1`
  there answers `{:error, {:aggregator_down, node}}`, and
  `LaspConverge.track(var, take_over: true)` on one of them takes the
  measurement over (see `guides/tracking.md`).
  """
  @spec crash(Cluster.t(), node()) :: :ok | {:error, term()}
  def crash(cluster, node), do: :lasp_converge_fault.crash(cluster, node)

  @doc """
  Starts a crashed `node` again under its name, with its replicator settings
  and variables. Options: `recover: true` fetches each variable's state
  from a running member first; `false` (the default) starts from bottom.
  Any other key is `{:error, {:unknown_option, key}}`.
  """
  @spec restart(Cluster.t(), node(), keyword() | map()) :: :ok | {:error, term()}
  def restart(cluster, node, opts \\ [])

  def restart(cluster, node, opts) when is_list(opts) or is_map(opts),
    do: :lasp_converge_fault.restart(cluster, node, Map.new(opts))

  def restart(_cluster, _node, opts), do: {:error, {:bad_opts, opts}}

  @doc "Freezes `node`'s replicator until `resume/2`."
  @spec pause(Cluster.t(), node()) :: :ok | {:error, term()}
  def pause(cluster, node), do: :lasp_converge_fault.pause(cluster, node)

  @doc "Unfreezes `node`'s replicator; it processes what arrived meanwhile."
  @spec resume(Cluster.t(), node()) :: :ok | {:error, term()}
  def resume(cluster, node), do: :lasp_converge_fault.resume(cluster, node)

  @doc "Undoes every traffic fault (partition, delays, loss, pauses)."
  @spec clear(Cluster.t()) :: :ok | {:error, term()}
  def clear(cluster), do: :lasp_converge_fault.clear(cluster)

  @doc "The faults applied so far, in time order."
  @spec events(Cluster.t()) :: [event()]
  def events(cluster), do: :lasp_converge_fault.events(cluster)

  @doc "`partition/2`, raising `LaspConverge.Fault.Error` on error."
  @spec partition!(Cluster.t(), [[node()]]) :: :ok
  def partition!(cluster, groups), do: ok!(partition(cluster, groups))

  @doc "`heal/1`, raising `LaspConverge.Fault.Error` on error."
  @spec heal!(Cluster.t()) :: :ok
  def heal!(cluster), do: ok!(heal(cluster))

  @doc "`delay/4`, raising `LaspConverge.Fault.Error` on error."
  @spec delay!(Cluster.t(), node(), node(), non_neg_integer()) :: :ok
  def delay!(cluster, from, to, ms), do: ok!(delay(cluster, from, to, ms))

  @doc "`drop/2`, raising `LaspConverge.Fault.Error` on error."
  @spec drop!(Cluster.t(), float()) :: :ok
  def drop!(cluster, probability), do: ok!(drop(cluster, probability))

  @doc "`crash/2`, raising `LaspConverge.Fault.Error` on error."
  @spec crash!(Cluster.t(), node()) :: :ok
  def crash!(cluster, node), do: ok!(crash(cluster, node))

  @doc "`restart/3`, raising `LaspConverge.Fault.Error` on error."
  @spec restart!(Cluster.t(), node(), keyword() | map()) :: :ok
  def restart!(cluster, node, opts \\ []), do: ok!(restart(cluster, node, opts))

  @doc "`pause/2`, raising `LaspConverge.Fault.Error` on error."
  @spec pause!(Cluster.t(), node()) :: :ok
  def pause!(cluster, node), do: ok!(pause(cluster, node))

  @doc "`resume/2`, raising `LaspConverge.Fault.Error` on error."
  @spec resume!(Cluster.t(), node()) :: :ok
  def resume!(cluster, node), do: ok!(resume(cluster, node))

  @doc "`clear/1`, raising `LaspConverge.Fault.Error` on error."
  @spec clear!(Cluster.t()) :: :ok
  def clear!(cluster), do: ok!(clear(cluster))

  defp ok!(:ok), do: :ok
  defp ok!({:error, reason}), do: raise(LaspConverge.Fault.Error, reason: reason)
end

defmodule LaspConverge.Fault.Error do
  @moduledoc """
  Raised by the `!` functions of `LaspConverge.Fault` when the plain
  function returns `{:error, reason}`; see `:lasp_converge_fault`'s module
  doc for the reasons (`{:not_a_member, node}`, `:not_running`,
  `{:bad_delay, ms}`, ...).
  """
  defexception [:reason]

  @impl true
  def message(%__MODULE__{reason: reason}), do: "fault not applied: #{inspect(reason)}"
end
