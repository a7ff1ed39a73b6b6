defmodule LaspConverge.ScenarioTest do
  # Not async: the peers are connected to this node while they run.
  use ExUnit.Case, async: false

  alias LaspConverge.Scenario

  doctest LaspConverge.Scenario

  setup do
    was_alive = Node.alive?()
    on_exit(fn -> unless was_alive, do: :net_kernel.stop() end)
    :ok
  end

  test "a keyword spec runs on two nodes, through a partition, converges and counts its messages" do
    var = {"ex_scn", :state_awset}

    assert {:ok, %{vars: %{^var => r}, nodes: [_, _], faults: faults}} =
             Scenario.run(
               nodes: 2,
               vars: [var],
               propagation: [state_interval: 20],
               phases: [[duration: 500, rate: 20]],
               faults: [{100, :partition, [[1], [2]]}, {300, :heal}],
               seed: 3
             )

    assert [%{fault: :partition, result: :ok}, %{fault: :heal, result: :ok}] = faults
    # An update made at 125 ms waited for the heal at 300 ms.
    assert r.stats.max > 150_000

    assert %{converged: true, agree: true, acknowledged: 10, failed: 0, lost: lost} = r
    assert lost == %{}
    assert r.stats.updates == 10 and r.stats.pending == 0
    assert r.msgs_per_update > 0
    assert Enum.all?(Map.values(r.values), &(&1 == r.expected))
  end

  test "bad specs are refused" do
    assert {:error, {:bad_spec, [:vars]}} == Scenario.run(nodes: 2)

    assert {:error, {:bad_spec, [:phases]}} ==
             Scenario.run(vars: [{"x", :state_gset}], phases: [[rate: 1]])
  end
end
