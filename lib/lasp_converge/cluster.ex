defmodule LaspConverge.Cluster do
  @moduledoc """
  Local clusters: N connected BEAM nodes on this machine, started with OTP's
  `:peer` module, each with this node's code path (so the project's modules
  and its NIF load there) and the `:lasp_converge` application running.

  The Elixir face of `:lasp_converge_cluster`, whose reference describes
  the model (the owner process that halts the peers when their starter
  exits, names, distribution, long names) and every option:
  `h :lasp_converge_cluster` and `h :lasp_converge_cluster.start/2` in
  `iex -S mix` after `make docs`; `guides/clusters.md` is the guide.
  Options are keyword lists or maps; the cluster value is opaque and stays
  valid when `LaspConverge.Fault` crashes and restarts a node.

      iex> LaspConverge.Cluster.with_cluster(2, [prefix: "doc"], fn cluster ->
      ...>   for node <- LaspConverge.Cluster.nodes(cluster) do
      ...>     :erpc.call(node, LaspConverge.CRDT, :merge, [{:state_gset, [1]}, {:state_gset, [2]}])
      ...>   end
      ...> end)
      [{:state_gset, [1, 2]}, {:state_gset, [1, 2]}]
  """

  @typedoc "A running cluster (opaque)."
  @opaque t :: :lasp_converge_cluster.cluster()

  @typedoc """
  Options of `start/2`, a keyword list or a map: `:prefix`, `:code_paths`,
  `:args`, `:connect`, `:apps`, `:timeout` (see
  `:lasp_converge_cluster.start/2` for their meanings and defaults).
  """
  @type opts :: keyword() | map()

  @doc """
  Starts `n` connected peer nodes. Returns `{:ok, cluster}` or `{:error,
  reason}`: `{:bad_size, n}`, `{:unknown_option, key}`, `{:bad_option, key,
  value}` (a `:prefix` must be letters, digits, `_` and `-`, starting with a
  letter), `{:start_failed, k, reason}` (the nodes started before node `k`
  are stopped again) or `{:distribution, reason}`.

      iex> LaspConverge.Cluster.start(2, prefix: "a@b")
      {:error, {:bad_option, :prefix, "a@b"}}
      iex> LaspConverge.Cluster.start(2, size: 3)
      {:error, {:unknown_option, :size}}
  """
  @spec start(pos_integer(), opts()) :: {:ok, t()} | {:error, term()}
  def start(n, opts \\ []), do: :lasp_converge_cluster.start(n, to_map(opts))

  @doc "Stops every peer and waits until it is disconnected; `:ok` even if some had already stopped."
  @spec stop(t()) :: :ok
  def stop(cluster), do: :lasp_converge_cluster.stop(cluster)

  @doc "The members' node names, in start order (a crashed member too: it keeps its name when restarted)."
  @spec nodes(t()) :: [node()]
  def nodes(cluster), do: :lasp_converge_cluster.nodes(cluster)

  @doc "The members running now (not crashed by `LaspConverge.Fault.crash/2`), in start order."
  @spec live_nodes(t()) :: [node()]
  def live_nodes(cluster), do: :lasp_converge_cluster.live_nodes(cluster)

  @doc """
  `:erpc.call/5` on one of the cluster's nodes, with the cluster's timeout.
  Raises `ErlangError` with `{:not_a_member, node}` for a node that is not
  one of the cluster's.
  """
  @spec call(t(), node(), module(), atom(), [term()]) :: term()
  def call(cluster, node, m, f, a), do: :lasp_converge_cluster.call(cluster, node, m, f, a)

  @doc """
  Starts a cluster, runs `fun.(cluster)` and always stops the cluster, also
  when `fun` raises. Raises `ErlangError` with
  `{:cluster_start_failed, reason}` when the cluster cannot be started.
  """
  @spec with_cluster(pos_integer(), opts(), (t() -> result)) :: result when result: var
  def with_cluster(n, opts, fun), do: :lasp_converge_cluster.with_cluster(n, to_map(opts), fun)

  defp to_map(opts) when is_list(opts), do: Map.new(opts)
  defp to_map(opts) when is_map(opts), do: opts
end
