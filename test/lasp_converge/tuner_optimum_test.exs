defmodule LaspConverge.TunerOptimumTest do
  use ExUnit.Case, async: true

  alias LaspConverge.Tuner

  doctest LaspConverge.Tuner, only: [optimum: 2, simulate: 3]

  test "optimum: a dense phase takes an interval under the target, a sparse one pushes" do
    {:ok, o} =
      Tuner.optimum([{:busy, 4_000, 80}, {:sparse, 9_000, 1 / 3}], %{target_p99: 800, nodes: 3})

    assert [%{choice: {:interval, i}, p99: p99}, %{choice: :push, updates: 3}] = o.phases
    assert i > 700 and i <= 800
    assert p99 <= 800_000
    assert %{interval: ^i, meets: true, messages: fixed} = o.best_fixed
    assert fixed > o.messages
  end

  test "optimum: bad options and schedules" do
    assert {:error, {:bad_opts, :target_p99}} = Tuner.optimum([{:a, 1_000, 1}], nodes: 3)
    assert {:error, :bad_schedule} = Tuner.optimum([{:a, -5, 1}], target_p99: 500)
  end

  test "simulate: the tuner's policy meets the target and pushes while updates are sparse" do
    r =
      Tuner.simulate({:target_p99, 500}, [{:busy, 5_000, 30}, {:sparse, 12_000, 0.25}],
        target_p99: 500,
        nodes: 4,
        mode: :delta_based
      )

    assert r.with_updates == 5 + 3
    assert r.met >= r.with_updates - 1
    assert Enum.any?(r.log, & &1.push)
    assert {:error, {:bad_policy, :nope}} = Tuner.simulate(:nope, [{:a, 1_000, 1}], target_p99: 5)
  end
end
