defmodule LaspConverge.AssertionsTest do
  # Not async: the peers are connected to this node while they run.
  use ExUnit.Case, async: false

  import LaspConverge.Assertions
  alias LaspConverge.{Cluster, Replicator}

  setup do
    was_alive = Node.alive?()
    on_exit(fn -> unless was_alive, do: :net_kernel.stop() end)
    :ok
  end

  # Node 1 propagates every 30 ms; node 2 every 60 s and not on update, so
  # what node 2 writes stays there.
  test "passes when every node holds every update, names the lagging node otherwise" do
    Cluster.with_cluster(2, [prefix: "ex_assert"], fn cluster ->
      [n1, n2] = nodes = Cluster.nodes(cluster)
      {:ok, _} = Cluster.call(cluster, n1, Replicator, :set, [[state_interval: 30]])

      {:ok, _} =
        Cluster.call(cluster, n2, Replicator, :set, [
          [state_interval: 60_000, propagate_on_update: false]
        ])

      good = {"good", :state_awset}
      stuck = {"stuck", :state_awset}

      for var <- [good, stuck] do
        :ok = Cluster.call(cluster, n1, LaspConverge, :track, [var, [nodes: nodes]])

        {:ok, _} =
          Cluster.call(cluster, n1, Replicator, :declare, [var, :state_awset, [nodes: nodes]])
      end

      {:ok, _} = Cluster.call(cluster, n1, Replicator, :update, [good, {:add, "x"}, n1])
      assert :ok == assert_converges(good, 5_000, cluster: cluster)
      assert :ok == assert_convergence_p99(good, 2_000)
      assert :ok == assert_no_lost_updates(good, ["x"], cluster: cluster)

      {:ok, _} = Cluster.call(cluster, n2, Replicator, :update, [stuck, {:add, "only_on_2"}, n2])

      error =
        assert_raise ExUnit.AssertionError, fn ->
          assert_converges(stuck, 200, cluster: cluster)
        end

      assert error.message =~ "assert_converges({\"stuck\", :state_awset}, 200) failed"
      assert error.message =~ "reason: {:unseen_updates, 1, 0}"
      assert error.message =~ "tracker: updates 1, converged 0, pending 1"
      assert error.message =~ ~s(#{n1}: unseen 1, misses ["only_on_2"], value [])
      refute error.message =~ "#{n2}: unseen 1, misses"

      error = assert_raise ExUnit.AssertionError, fn -> assert_convergence_p99(stuck, 1_000) end
      assert error.message =~ "pending 1"

      error =
        assert_raise ExUnit.AssertionError, fn ->
          assert_no_lost_updates(stuck, ["only_on_2"], cluster: cluster)
        end

      assert error.message =~ ~s(#{n1}: misses ["only_on_2"])
    end)
  end
end
