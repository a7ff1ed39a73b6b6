defmodule LaspConverge.HandoverTest do
  # Not async: the peers are connected to this node while they run.
  use ExUnit.Case, async: false

  alias LaspConverge.{Cluster, Fault}

  setup do
    was_alive = Node.alive?()
    on_exit(fn -> unless was_alive, do: :net_kernel.stop() end)
    :ok
  end

  defp wait(f, tries \\ 200) do
    cond do
      f.() -> :ok
      tries == 0 -> :timeout
      true -> Process.sleep(50) && wait(f, tries - 1)
    end
  end

  test "the aggregating node dies: the others say so, keep their records, one takes over" do
    {:ok, cluster} = Cluster.start(3, prefix: "ex_handover")
    [a, b, c] = Cluster.nodes(cluster)
    call = fn n, f, args -> Cluster.call(cluster, n, LaspConverge, f, args) end

    try do
      var = {"handover", :state_gset}
      :ok = call.(a, :track, [var, [nodes: [a, b, c]]])
      :ok = call.(b, :updated, [var, {:state_gset, []}, {:state_gset, ["b"]}])
      :ok = call.(b, :observed, [var, {:state_gset, ["b"]}])
      assert :ok == wait(fn -> match?(%{updates: 1}, call.(a, :stats, [var])) end)

      :ok = Fault.crash(cluster, a)
      assert :ok == wait(fn -> call.(c, :stats, [var]) == {:error, {:aggregator_down, a}} end)
      :ok = call.(c, :observed, [var, {:state_gset, ["b"]}])

      assert :ok = call.(c, :track, [var, [take_over: true, nodes: [b, c]]])
      assert :ok == wait(fn -> match?(%{updates: 1, converged: 1}, call.(c, :stats, [var])) end)

      assert {:error, {:aggregator_alive, ^c}} =
               call.(b, :track, [var, [take_over: true, nodes: [b, c]]])

      assert :ok = call.(c, :untrack, [var])
    after
      Cluster.stop(cluster)
    end
  end

  test "a node holding no replica aggregates without being a member" do
    {:ok, cluster} = Cluster.start(2, prefix: "ex_aggonly")
    [a, b] = Cluster.nodes(cluster)
    var = {"aggregator only", :state_gset}

    try do
      # This node (the test runner) observes nothing: were it a member,
      # nothing would converge.
      :ok = LaspConverge.track(var, nodes: [a, b])
      assert Enum.sort(LaspConverge.stats(var).nodes) == Enum.sort([a, b])
      s1 = {:state_gset, ["a"]}
      :ok = Cluster.call(cluster, a, LaspConverge, :updated, [var, {:state_gset, []}, s1])
      :ok = Cluster.call(cluster, b, LaspConverge, :observed, [var, s1])

      assert :ok ==
               wait(fn ->
                 match?(%{updates: 1, converged: 1, pending: 0}, LaspConverge.stats(var))
               end)
    after
      LaspConverge.untrack(var)
      Cluster.stop(cluster)
    end
  end
end
