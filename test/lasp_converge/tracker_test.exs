defmodule LaspConverge.TrackerTest do
  # Each test tracks its own variable, so they can run concurrently.
  use ExUnit.Case, async: true
  doctest LaspConverge
  doctest LaspConverge.Error

  alias LaspConverge.CRDT

  defp var(tag), do: {"elixir-#{tag}-#{System.unique_integer([:positive])}", :state_orset}

  setup do
    {:ok, _} = Application.ensure_all_started(:lasp_converge)
    :ok
  end

  test "an update converges once the only member has it; stats has the documented keys" do
    v = var(:stats)
    :ok = LaspConverge.track(v, nodes: [], tick: false, clock: false)
    on_exit(fn -> LaspConverge.untrack(v) end)

    s0 = CRDT.new(:state_orset)
    s1 = CRDT.mutate!({:add, :x}, :a, s0)
    assert :ok = LaspConverge.updated(v, s0, s1, ts: 1_000)
    assert :ok = LaspConverge.observed(v, s1, ts: 2_000)

    stats = LaspConverge.stats(v)

    for key <- ~w(updates converged pending unconverged p50 p90 p99 p999 max mean
                  clock_uncertainty_us per_node)a do
      assert Map.has_key?(stats, key), "missing #{key}"
    end

    assert %{updates: 1, converged: 1, pending: 0, max: 0, clock_uncertainty_us: 0} = stats
    assert %{pending: 0} = stats.per_node[node()]
    assert is_list(LaspConverge.divergence(v))
    assert {:ok, "{\"nodes\":" <> _} = LaspConverge.export(v, :json)
    assert :ok = LaspConverge.reset(v)
    assert %{updates: 0} = LaspConverge.stats(v)
  end

  test "updated_delta/3: the delta from delta_mutate is the witness" do
    v = var(:delta)
    :ok = LaspConverge.track(v, nodes: [], tick: false, clock: false)
    on_exit(fn -> LaspConverge.untrack(v) end)

    s0 =
      Enum.reduce(1..500, CRDT.new(:state_orset), fn i, s -> CRDT.mutate!({:add, i}, :w, s) end)

    # The only member is the writer, which holds its own update at once.
    d = CRDT.delta_mutate!({:add, :x}, :w, s0)
    assert :ok = LaspConverge.updated_delta(v, d, ts: 1_000)
    assert %{updates: 1, converged: 1, pending: 0} = LaspConverge.stats(v)
    assert :ok = LaspConverge.updated_delta!(v, CRDT.delta_mutate!({:rmv, 7}, :w, s0))
    assert %{updates: 2, converged: 2} = LaspConverge.stats(v)

    assert {:error, {:badcrdt, {:type_mismatch, :state_orset, :state_gset}}} =
             LaspConverge.updated_delta(v, {:state_gset, []})

    assert_raise LaspConverge.Error, fn -> LaspConverge.updated_delta!(v, :nope) end
  end

  test "bad input gives {:error, reason}" do
    v = var(:bad)
    :ok = LaspConverge.track(v, nodes: [])
    on_exit(fn -> LaspConverge.untrack(v) end)

    assert {:error, {:badcrdt, :not_a_crdt}} = LaspConverge.observed(v, :nope)

    assert {:error, {:badcrdt, _}} =
             LaspConverge.updated(v, {:state_orset, []}, {:state_gset, []})

    assert :ok = LaspConverge.observed(v, {:state_orset, []})

    assert {:error, {:badcrdt, {:type_mismatch, :state_orset, :state_gset}}} =
             LaspConverge.observed(v, {:state_gset, []})

    assert {:error, :bad_ts} = LaspConverge.observed(v, {:state_orset, []}, ts: 1.5)
    assert {:error, :bad_format} = LaspConverge.export(v, :xml)
    assert {:error, :already_tracked} = LaspConverge.track(v)
    assert {:error, :bad_opts} = LaspConverge.track(var(:opts), [:not_a_keyword])
    assert {:error, :not_tracked} = LaspConverge.stats(var(:none))
    assert {:error, :not_tracked} = LaspConverge.reset(var(:none))
  end

  test "the ! variants return the value or raise LaspConverge.Error" do
    v = var(:bang)
    assert :ok = LaspConverge.track!(v, nodes: [])
    on_exit(fn -> LaspConverge.untrack(v) end)

    assert :ok = LaspConverge.updated!(v, {:state_orset, []}, {:state_orset, []})
    assert :ok = LaspConverge.observed!(v, {:state_orset, []})
    assert %{updates: 1} = LaspConverge.stats!(v)
    assert is_list(LaspConverge.divergence!(v))
    assert "{" <> _ = LaspConverge.export!(v, :json)
    assert :ok = LaspConverge.reset!(v)

    assert_raise LaspConverge.Error, ~r/already_tracked/, fn -> LaspConverge.track!(v) end

    e = assert_raise LaspConverge.Error, fn -> LaspConverge.observed!(v, :nope) end
    assert e.reason == {:badcrdt, :not_a_crdt}
    assert_raise LaspConverge.Error, fn -> LaspConverge.export!(v, :xml) end
    assert :ok = LaspConverge.untrack!(v)
    assert_raise LaspConverge.Error, fn -> LaspConverge.untrack!(v) end
  end
end
