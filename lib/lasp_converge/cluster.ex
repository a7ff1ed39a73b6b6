defmodule LaspConverge.Cluster do
  @moduledoc """
  Local clusters: N connected BEAM nodes on this machine, started with OTP's
  `:peer` module, each with this node's code path (so the project's modules
  and its NIF load there) and the `:lasp_converge` application running.

  A thin façade over `:lasp_converge_cluster`; see its module doc for the
  details. The peers belong to an owner process that watches the process
  that starts them: if it exits, they are halted. The cluster value stays
  valid when `LaspConverge.Fault` crashes and restarts a node. If this node is not distributed yet, `start/2`
  starts `epmd` and makes it distributed under a unique short name (and
  leaves distribution running after `stop/1`).

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
  Options of `start/2`, as a keyword list or a map:

    * `:prefix` - start of every peer's name (default `lasp_converge`);
      names are `<prefix>_<OS pid>_<counter>_<k>`
    * `:code_paths` - more code path directories, before the caller's
    * `:args` - more `erl` command-line arguments
    * `:connect` - connect the peers to each other (default `true`)
    * `:apps` - applications to start on every peer (default `[:lasp_converge]`)
    * `:timeout` - ms for each peer's boot and each remote call (default 30000)
  """
  @type opts :: keyword() | map()

  @doc """
  Starts `n` connected peer nodes. Returns `{:ok, cluster}`, or
  `{:error, {:bad_size, n}}`, `{:error, {:start_failed, k, reason}}` (the
  nodes started before node `k` are stopped again) or
  `{:error, {:distribution, reason}}`.
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

  @doc "`:erpc.call/5` on one of the cluster's nodes, with the cluster's timeout."
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
