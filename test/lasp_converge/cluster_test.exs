defmodule LaspConverge.ClusterTest do
  # Not async: while the peers run they are connected to this node, and the
  # tracker tests (async) track every connected node by default.
  use ExUnit.Case, async: false

  alias LaspConverge.Cluster

  setup do
    was_alive = Node.alive?()
    on_exit(fn -> unless was_alive, do: :net_kernel.stop() end)
    :ok
  end

  doctest LaspConverge.Cluster

  test "start, the NIF and the app on each peer, stop" do
    assert {:ok, cluster} = Cluster.start(2, prefix: "ex_cluster")
    nodes = Cluster.nodes(cluster)
    assert length(nodes) == 2
    assert Enum.all?(nodes, &(&1 in Node.list()))

    a = {:state_gset, [:a]}
    b = {:state_gset, [:b]}
    local = LaspConverge.CRDT.merge(a, b)

    for node <- nodes do
      assert Cluster.call(cluster, node, LaspConverge.CRDT, :merge, [a, b]) == local
      apps = Cluster.call(cluster, node, Application, :started_applications, [])
      assert List.keymember?(apps, :lasp_converge, 0)

      assert Enum.sort(Cluster.call(cluster, node, Node, :list, [])) ==
               Enum.sort([node() | nodes -- [node]])
    end

    assert :ok = Cluster.stop(cluster)
    refute Enum.any?(nodes, &(&1 in Node.list()))
    assert {:error, {:bad_size, 0}} = Cluster.start(0)
  end
end
