defmodule LaspConverge.SimTest do
  use ExUnit.Case, async: true
  doctest LaspConverge.Sim

  alias LaspConverge.Sim

  @spec_kw [
    nodes: 20,
    state_interval: 100,
    fanout: 3,
    update_rate: 20,
    duration: 2_000,
    latency: {:lognormal, 7.0, 0.5},
    seed: 3
  ]

  test "a keyword list and a map give the same result, with the tracker's keys" do
    assert {:ok, r} = Sim.run(@spec_kw)
    assert {:ok, ^r} = Sim.run(Map.new(@spec_kw))

    for k <- [:updates, :converged, :pending, :unconverged, :p50, :p90, :p99, :p999, :max, :mean] do
      assert Map.has_key?(r, k), "missing #{k}"
    end

    assert r.updates == r.converged + r.unconverged + r.pending
    assert r.updates == r.converged
    assert Enum.sort(Map.keys(r.per_node)) == Enum.to_list(1..20)
    assert r.messages_per_update == r.messages / r.updates
    assert [%{t_us: 0, nodes: %{1 => %{unseen: 0}}} | _] = r.divergence
  end

  test "one seed, one result; another seed, another" do
    spec = Keyword.merge(@spec_kw, mode: :delta_based, loss: 0.05)
    assert Sim.run(spec) == Sim.run(spec)
    refute Sim.run(spec) == Sim.run(Keyword.put(spec, :seed, 4))
  end

  test "a partition holds an update back until it heals" do
    {:ok, r} =
      Sim.run(
        nodes: 4,
        state_interval: 20,
        latency: {:constant, 100},
        updates: [{100, 1}],
        partitions: [{0, 500, [[1, 2], [3, 4]]}]
      )

    assert r.per_node[2].max < 100_000
    assert r.per_node[4].max >= 400_000
  end

  test "timer offsets, round costs and service times shape the run" do
    # Node 1's update at 0 goes out at its first tick, 400 ms.
    assert {:ok, %{max: 400_100}} =
             Sim.run(
               nodes: 2,
               state_interval: 1_000,
               timer_offsets: [400, 250],
               latency: {:constant, 100},
               updates: [{0, 1}]
             )

    # Two updates pushed to node 3 at once, served there one after the other.
    pushed = [
      nodes: 3,
      propagate_on_update: true,
      latency: {:constant, 100},
      updates: [{0, 1}, {0, 2}]
    ]

    assert {:ok, %{max: 3_100}} = Sim.run([service_time: {:constant, 1_000}] ++ pushed)
    assert {:ok, %{max: 100}} = Sim.run(pushed)

    assert {:ok, %{max: 150_090}} =
             Sim.run(
               nodes: 2,
               state_interval: 100,
               timer_offsets: [0, 0],
               round_cost: {:constant, 50_000},
               ack_latency: {:constant, 10},
               latency: {:constant, 100},
               updates: [{0.01, 1}]
             )

    assert {:error, {:bad_spec, :timer_offsets}} = Sim.run(nodes: 3, timer_offsets: [0, 1])
    assert {:error, {:bad_spec, :service_time}} = Sim.run(service_time: {:empirical, []})
    assert {:error, {:bad_spec, :round_cost}} = Sim.run(round_cost: -1)
    assert {:error, {:bad_spec, :ack_latency}} = Sim.run(ack_latency: {:uniform, 3, 2})
  end

  test "bad specs give {:error, reason}, run! raises" do
    assert {:error, {:bad_spec, :loss}} = Sim.run(loss: 2)
    assert {:error, {:bad_spec, :latency}} = Sim.run(latency: {:weibull, 1, 2})
    assert {:error, {:unknown_key, :interval}} = Sim.run(interval: 100)
    assert {:error, {:too_large, :nodes}} = Sim.run(nodes: 1_000_000)

    assert_raise LaspConverge.Sim.Error, ~r/bad_spec/, fn -> Sim.run!(nodes: -1) end
    assert %{converged: _} = Sim.run!(@spec_kw)
  end

  @long [nodes: 20000, fanout: 3, state_interval: 1000, updates: [], until: 4_999_000]

  defp wait_active(n, tries \\ 3000) do
    cond do
      Sim.active() == n -> :ok
      tries == 0 -> {:still_active, Sim.active()}
      true -> Process.sleep(10) && wait_active(n, tries - 1)
    end
  end

  test "a run stops when its caller dies or its timeout passes" do
    assert :ok = wait_active(0)
    caller = spawn(fn -> Sim.run(@long) end)
    assert :ok = wait_active(1)
    Process.exit(caller, :kill)
    assert :ok = wait_active(0)

    assert {:error, :timeout} = Sim.run(@long, timeout: 100)
    assert :ok = wait_active(0)
    assert Sim.run(@spec_kw, timeout: 60_000) == Sim.run(@spec_kw)
    assert {:error, {:bad_opts, :timeout}} = Sim.run(@spec_kw, timeout: :soon)
  end

  test "recommend proposes settings meeting the target, cheapest first" do
    assert {:ok, best} =
             Sim.recommend(target_p99: 1_000, nodes: 40, update_rate: 10, duration: 5_000)

    assert best.p99 <= 1_000_000
    costs = Enum.map(best.candidates, & &1.bytes_per_update)
    assert costs == Enum.sort(costs)
    assert {:error, {:bad_spec, :target_p99}} = Sim.recommend(nodes: 3)
  end
end
