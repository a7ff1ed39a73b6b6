defmodule LaspConverge.ReplicatorTest do
  # Not async: the peers are connected to this node while they run.
  use ExUnit.Case, async: false

  doctest LaspConverge.Replicator

  alias LaspConverge.{Cluster, Replicator}

  setup do
    was_alive = Node.alive?()
    on_exit(fn -> unless was_alive, do: :net_kernel.stop() end)
    :ok
  end

  test "an add on one peer reaches the other" do
    Cluster.with_cluster(2, [prefix: "ex_rep"], fn cluster ->
      [n1, n2] = nodes = Cluster.nodes(cluster)
      var = {"ex", :state_awset}

      for n <- nodes do
        assert {:ok, %{state_interval: 50}} =
                 Cluster.call(cluster, n, Replicator, :set, [[state_interval: 50]])
      end

      assert {:ok, Enum.sort(nodes)} ==
               Cluster.call(cluster, n1, Replicator, :declare, [var, :state_awset, [nodes: nodes]])

      assert {:ok, _} = Cluster.call(cluster, n1, Replicator, :update, [var, {:add, "x"}, n1])
      assert :ok == wait(fn -> Cluster.call(cluster, n2, Replicator, :value, [var]) end, 5000)
      assert %{sent_messages: m} = Cluster.call(cluster, n1, Replicator, :stats, [])
      assert m > 0
    end)
  end

  # Polls until the value is {"x"}, with a deadline.
  defp wait(f, ms) when ms > 0 do
    with {:ok, v} <- f.(), true <- :sets.to_list(v) == ["x"] do
      :ok
    else
      _ ->
        Process.sleep(20)
        wait(f, ms - 20)
    end
  end

  defp wait(_f, _ms), do: :timeout
end
