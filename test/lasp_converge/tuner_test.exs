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

  test "target_p99: push back on at the first slow window after a busy spell" do
    policy = {:target_p99, 1000}
    s = Tuner.init_state(policy, interval: 10_000, nodes: 5)
    {698, s} = Tuner.initial(policy, s)

    window = fn s, at, rate ->
      Tuner.decide(policy, s, %{at_ms: at, window_ms: 1000, updates: rate, rate: rate * 1.0})
    end

    {:keep, s} = window.(s, 1000, 100)
    {:keep, s} = window.(s, 2000, 100)
    # 5/s after 100/s: judged alone, pushing costs 0.71 of the interval's messages.
    assert {%{propagate_on_update: true, interval: 60_000}, %{why: {:quiet, %{drop: true}}} = s} =
             window.(s, 3000, 5)

    # Five updates in 50 ms while pushing: a steep surge, off at once.
    assert {%{propagate_on_update: false, interval: 698}, _} =
             Tuner.decide(policy, s, %{
               at_ms: 3050,
               window_ms: 50,
               partial: true,
               updates: 5,
               rate: 100.0
             })
  end

  test "target_p99: push is judged against the base aim's interval after the aim rose" do
    policy = {:target_p99, 1000}
    s = Tuner.init_state(policy, interval: 10_000, nodes: 5)
    {698, s} = Tuner.initial(policy, s)

    # A burst whose windows agree with the model: the aim rises, 698 -> 848 ms.
    s =
      Enum.reduce(1..6, s, fn k, s ->
        m = %{at_ms: k * 1000, window_ms: 1000, updates: 100, rate: 100.0}
        {_, s} = Tuner.decide(policy, s, Map.put(m, :p99, (s.interval + 2) * 1000))
        s
      end)

    assert %{aim: 0.85, interval: 848} = s

    # 5/s: 0.86 of the 848 ms rounds, 0.71 of the base aim's 698 ms ones.
    assert {%{propagate_on_update: true, interval: 60_000}, %{need: 698, aim: 0.7}} =
             Tuner.decide(policy, s, %{at_ms: 7000, window_ms: 1000, updates: 5, rate: 5.0})
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
