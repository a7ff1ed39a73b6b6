defmodule LaspConverge.TunerTest do
  # Not async: the peers are connected to this node while they run.
  use ExUnit.Case, async: false

  alias LaspConverge.{Cluster, Tuner}

  doctest LaspConverge.Tuner

  setup do
    was_alive = Node.alive?()
    on_exit(fn -> unless was_alive, do: :net_kernel.stop() end)
    :ok
  end

  test "rate_proportional: faster updates, shorter interval, within the bounds" do
    policy = {:rate_proportional, updates_per_interval: 5, min: 20, max: 5000}
    s = Tuner.init_state(policy, interval: 1000)
    assert {:keep, s} = Tuner.initial(policy, s)
    assert {100, s} = Tuner.decide(policy, s, %{at_ms: 1000, window_ms: 1000, rate: 50.0})

    assert {20, _} = Tuner.decide(policy, s, %{at_ms: 9000, window_ms: 1000, rate: 1.0e6})
  end

  test "set and get on two peers; a fixed controller sets the interval everywhere" do
    Cluster.with_cluster(2, [prefix: "ex_tun"], fn cluster ->
      [n1, n2] = nodes = Cluster.nodes(cluster)

      assert {:ok, %{^n1 => :replicator, ^n2 => :replicator}} =
               Tuner.set([state_interval: 400, jitter: true, jitter_percent: 5], nodes: nodes)

      assert %{agree: true, settings: %{state_interval: 400, jitter: true, jitter_percent: 5}} =
               Tuner.get(nodes: nodes)

      assert %{state_interval: 400, jitter_percent: 5} =
               Cluster.call(cluster, n2, :lasp_converge_replicator, :settings, [])

      var = {"ex_tuned", :state_gset}
      opts = [nodes: nodes, window: 200]
      assert {:ok, _} = Cluster.call(cluster, n1, Tuner, :start, [var, {:fixed, 75}, opts])

      assert [%{old: 400, new: 75, why: :fixed, result: :ok}] =
               Cluster.call(cluster, n1, Tuner, :log, [var])

      assert %{agree: true, settings: %{state_interval: 75}} = Tuner.get(nodes: nodes)
      assert [^var] = Cluster.call(cluster, n1, Tuner, :running, [])
      assert :ok = Cluster.call(cluster, n1, Tuner, :stop, [var])
      assert {:error, :not_running} = Cluster.call(cluster, n1, Tuner, :log, [var])
    end)
  end
end
