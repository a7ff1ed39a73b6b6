defmodule LaspConverge.ReplicaTest do
  use ExUnit.Case, async: true

  alias LaspConverge.{CRDT, CRDTError, Replica}

  doctest LaspConverge.Replica

  test "a merge into a replica is the term merge, for several types" do
    cases = [
      {{:state_gset, [1, {:item, 2}, "a"]}, {:state_gset, [1.0, {:item, 1}, "b"]}},
      {{:state_gcounter, [a: 2, b: 1]}, {:state_gcounter, [{:a, 1}, {{:lasp, 1}, 4}]}},
      {{:state_orset, [{:x, [{"t1", true}]}]},
       {:state_orset, [{:x, [{"t1", false}]}, {:y, [{"t2", true}]}]}}
    ]

    for {a, b} <- cases do
      want = CRDT.merge(a, b)
      r = Replica.from_term(a)
      assert :ok = Replica.merge(r, b)
      assert Replica.to_term(r) === want
      r2 = Replica.from_term(a)
      assert :ok = Replica.merge(r2, b |> Replica.from_term() |> Replica.to_binary())
      assert Replica.to_term(r2) === want
    end
  end

  test "mutate returns types' delta and applies it" do
    r = Replica.from_term({:state_gset, [1]})
    assert Replica.mutate!({:add, 2}, :a, r) == {:state_gset, [2]}
    assert Replica.mutate!({:add, 1.0}, :a, r) == {:state_gset, []}
    assert Replica.to_term(r) == {:state_gset, [1, 2]}
    assert MapSet.new(:sets.to_list(Replica.query(r))) == MapSet.new([1, 2])
    assert Replica.size(r) == 2
    assert Replica.keyed?(r)
    assert_raise CRDTError, fn -> Replica.mutate!(:increment, :a, r) end
  end

  test "bad binaries raise CRDTError, not-a-replica raises ArgumentError" do
    bin = Replica.to_binary(Replica.from_term({:state_gset, [1, "x"]}))

    for n <- 0..(byte_size(bin) - 1) do
      assert_raise CRDTError, fn -> Replica.from_binary(binary_part(bin, 0, n)) end
    end

    assert %CRDTError{reason: {:bad_binary, :bad_magic}} =
             catch_error(Replica.from_binary("nope!"))

    assert_raise ArgumentError, fn -> Replica.to_term(make_ref()) end
    refute Replica.replica?(make_ref())
  end

  test "a replica is shared between processes and a binary moves between them" do
    r = Replica.new(:state_gcounter)

    1..4
    |> Enum.map(fn w ->
      Task.async(fn -> for _ <- 1..100, do: Replica.mutate(:increment, w, r) end)
    end)
    |> Enum.each(&Task.await/1)

    assert Replica.query(r) == 400
    bin = Replica.to_binary(r)
    task = Task.async(fn -> bin |> Replica.from_binary() |> Replica.to_term() end)
    assert Task.await(task) == Replica.to_term(r)
  end
end
