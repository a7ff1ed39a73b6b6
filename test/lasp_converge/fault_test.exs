defmodule LaspConverge.FaultTest do
  # Not async: the peers are connected to this node while they run.
  use ExUnit.Case, async: false

  alias LaspConverge.{Cluster, Fault, Replicator}

  setup do
    was_alive = Node.alive?()
    on_exit(fn -> unless was_alive, do: :net_kernel.stop() end)
    :ok
  end

  test "partition, heal, pause, crash and restart on one cluster value" do
    {:ok, cluster} = Cluster.start(3, prefix: "ex_fault")
    [a, b, c] = nodes = Cluster.nodes(cluster)

    try do
      var = {"fault", :state_awset}

      for n <- nodes do
        {:ok, _} = Cluster.call(cluster, n, Replicator, :set, [[state_interval: 30]])
      end

      {:ok, _} =
        Cluster.call(cluster, a, Replicator, :declare, [var, :state_awset, [nodes: nodes]])

      # c alone: it neither gets a's add nor sends its own.
      assert :ok = Fault.partition(cluster, [[a, b], [c]])

      assert {:error, {:not_a_member, :nope@nowhere}} =
               Fault.partition(cluster, [[:nope@nowhere]])

      add(cluster, a, var, "x")
      add(cluster, c, var, "y")
      assert :ok == wait_value(cluster, [a, b], var, ["x"])
      assert value(cluster, c, var) == ["y"]
      assert :ok = Fault.heal(cluster)
      assert :ok == wait_value(cluster, nodes, var, ["x", "y"])

      # b paused: it takes nothing in until resumed.
      assert :ok = Fault.pause(cluster, b)
      add(cluster, a, var, "z")
      assert :ok == wait_value(cluster, [a, c], var, ["x", "y", "z"])
      assert value(cluster, b, var) == ["x", "y"]
      assert :ok = Fault.resume(cluster, b)
      assert :ok == wait_value(cluster, nodes, var, ["x", "y", "z"])

      # c crashes and comes back with the state of a live peer.
      assert :ok = Fault.crash(cluster, c)
      assert Cluster.live_nodes(cluster) == [a, b]
      assert Cluster.nodes(cluster) == nodes
      add(cluster, b, var, "w")
      assert :ok == wait_value(cluster, [a, b], var, ["w", "x", "y", "z"])
      assert :ok = Fault.restart(cluster, c, recover: true)
      assert value(cluster, c, var) == ["w", "x", "y", "z"]

      # Mistakes are returned, not raised, and change nothing.
      assert {:error, {:not_a_member, :nope@nowhere}} = Fault.crash(cluster, :nope@nowhere)
      assert {:error, {:not_a_member, :nope@nowhere}} = Fault.pause(cluster, :nope@nowhere)
      assert {:error, {:bad_delay, -100}} = Fault.delay(cluster, a, b, -100)
      assert {:error, {:bad_probability, 2}} = Fault.drop(cluster, 2)
      assert {:error, {:unknown_option, :recovr}} = Fault.restart(cluster, c, recovr: true)
      assert {:error, {:bad_opts, :yes}} = Fault.restart(cluster, c, :yes)

      assert_raise LaspConverge.Fault.Error, ~r/not_a_member/, fn ->
        Fault.crash!(cluster, :nope@nowhere)
      end

      assert :ok = Fault.drop(cluster, 0.5)
      assert :ok = Fault.delay(cluster, a, b, 10)
      assert :ok = Fault.clear(cluster)

      events = Fault.events(cluster)

      assert Enum.map(events, & &1.fault) ==
               [:partition, :heal, :pause, :resume, :crash, :restart, :drop, :delay, :clear]

      assert [%{args: [[[^a, ^b], [^c]]]} | _] = events
      times = Enum.map(events, & &1.at_us)
      assert times == Enum.sort(times)
    after
      assert :ok = Cluster.stop(cluster)
    end

    refute Enum.any?(nodes, &(&1 in Node.list()))
    assert Cluster.live_nodes(cluster) == []
    # A stopped cluster: every call says so, none raises; the ! variants do.
    assert {:error, :not_running} = Fault.clear(cluster)
    assert Fault.events(cluster) == []
    assert {:error, :not_running} = Fault.partition(cluster, [nodes])
    assert {:error, :not_running} = Fault.drop(cluster, 0.1)
    assert {:error, :not_running} = Fault.crash(cluster, hd(nodes))
    assert {:error, :not_running} = Fault.restart(cluster, hd(nodes))

    assert_raise LaspConverge.Fault.Error, ~r/not_running/, fn ->
      Fault.drop!(cluster, 0.1)
    end
  end

  defp add(cluster, node, var, e),
    do: {:ok, _} = Cluster.call(cluster, node, Replicator, :update, [var, {:add, e}, node])

  defp value(cluster, node, var) do
    {:ok, v} = Cluster.call(cluster, node, Replicator, :value, [var])
    Enum.sort(:sets.to_list(v))
  end

  # Polls until every node holds `want`, with a deadline.
  defp wait_value(cluster, nodes, var, want, ms \\ 10_000) do
    cond do
      Enum.all?(nodes, &(value(cluster, &1, var) == want)) ->
        :ok

      ms <= 0 ->
        {:timeout, Enum.map(nodes, &{&1, value(cluster, &1, var)})}

      true ->
        Process.sleep(20)
        wait_value(cluster, nodes, var, want, ms - 20)
    end
  end
end
