defmodule LaspConverge.CRDTTest do
  use ExUnit.Case, async: true

  alias LaspConverge.CRDT
  alias LaspConverge.CRDTError

  doctest LaspConverge.CRDT

  # The conformance vectors, generated from lasp-lang/types 0.1.8, live in
  # test/conformance (see its README for the case format), or where
  # LASP_CONVERGE_CONFORMANCE points. Every case of each file runs: the whole
  # set takes well under a second.
  @conformance_dir System.get_env("LASP_CONVERGE_CONFORMANCE") ||
                     Path.expand("../conformance", __DIR__)

  @types [
    :state_gcounter,
    :state_pncounter,
    :state_gset,
    :state_twopset,
    :state_orset,
    :state_awset,
    :state_lwwregister,
    :state_boolean,
    :state_ivar,
    :state_max_int,
    :state_mvregister,
    :state_ewflag,
    :state_dwflag,
    :state_lexcounter,
    # Composites: their queries nest (README §2), normalised recursively below.
    :state_gmap,
    :state_pair,
    :state_awmap,
    :state_awset_ps,
    :state_bcounter
  ]

  # README §2: set-valued queries are compared as lists sorted in term order,
  # ties between `==` terms broken by their external format.
  @set_types [
    :state_gset,
    :state_twopset,
    :state_orset,
    :state_awset,
    :state_awset_ps,
    :state_mvregister
  ]

  describe "conformance with lasp-lang/types 0.1.8" do
    for type <- @types do
      @tag type: type
      test "#{type} matches the vectors case by case", %{type: type} do
        failures =
          type
          |> load_cases()
          |> Enum.with_index()
          |> Enum.flat_map(fn {c, i} -> check_case(type, c, i) end)

        if failures != [] do
          flunk(
            "#{length(failures)} checks disagree with #{type}.etf:\n" <>
              (failures |> Enum.take(20) |> Enum.join("\n"))
          )
        end
      end
    end
  end

  describe "bad input raises LaspConverge.CRDTError" do
    test "an unknown type" do
      e = assert_raise CRDTError, fn -> CRDT.new(:state_no_such_type) end
      assert e.reason == :unknown_type

      e = assert_raise CRDTError, fn -> CRDT.merge({:state_nope, []}, {:state_nope, []}) end
      assert e.reason == :unknown_type
    end

    test "two states of different types" do
      e = assert_raise CRDTError, fn -> CRDT.merge({:state_gcounter, []}, {:state_gset, []}) end
      assert e.reason == {:type_mismatch, :state_gcounter, :state_gset}
      assert Exception.message(e) =~ "cannot combine"
    end

    test "an improper list in the payload" do
      e = assert_raise CRDTError, fn -> CRDT.merge({:state_gset, [1 | 2]}, {:state_gset, []}) end
      assert e.reason == {:improper_list, :state_gset}
    end

    test "a payload of the wrong shape" do
      e = assert_raise CRDTError, fn -> CRDT.query({:state_gcounter, :not_a_list}) end
      assert {:malformed, :state_gcounter} = e.reason
    end

    test "an unsorted ordset" do
      e = assert_raise CRDTError, fn -> CRDT.merge({:state_gset, [2, 1]}, {:state_gset, []}) end
      assert e.reason == {:unsorted, :state_gset}
    end

    test "garbage that is not a {type, payload} tuple" do
      for garbage <- [:foo, 42, "bin", {}, {:state_gset}, {1, []}, [], self()] do
        e = assert_raise CRDTError, fn -> CRDT.merge(garbage, garbage) end
        assert e.reason == :not_a_crdt, "#{inspect(garbage)}: #{inspect(e.reason)}"
        assert_raise CRDTError, fn -> CRDT.is_bottom(garbage) end
      end
    end

    test "merge_all of an empty list" do
      assert_raise CRDTError, fn -> CRDT.merge_all([]) end
    end

    test "two different ivar values (lasp-lang/types raises too)" do
      e = assert_raise CRDTError, fn -> CRDT.merge({:state_ivar, 1}, {:state_ivar, 2}) end
      assert {:conflict, :state_ivar} = e.reason
    end

    test "mutate on a bad state raises instead of returning {:error, _}" do
      assert_raise CRDTError, fn -> CRDT.mutate(:increment, :a, {:state_gcounter, :bad}) end
      assert_raise CRDTError, fn -> CRDT.delta_mutate(:increment, :a, :garbage) end
    end

    test "an operation the type does not have" do
      e = assert_raise CRDTError, fn -> CRDT.mutate({:add, 1}, :a, CRDT.new(:state_gcounter)) end
      assert {:unknown_op, :state_gcounter} = e.reason
    end
  end

  describe "mutate!/3 and delta_mutate!/3" do
    test "return the state and the delta" do
      s = CRDT.mutate!({:add, 1}, :a, CRDT.new(:state_gset))
      assert s == {:state_gset, [1]}
      assert CRDT.delta_mutate!({:add, 2}, :a, s) == {:state_gset, [2]}
    end

    test "removing an absent element is no error, as in lasp-lang/types" do
      assert CRDT.mutate!({:rmv, 1}, :a, CRDT.new(:state_orset)) == {:state_orset, []}
      assert CRDT.delta_mutate!({:rmv, 1}, :a, CRDT.new(:state_orset)) == {:state_orset, []}
    end

    test "raise CRDTError on bad input" do
      e = assert_raise CRDTError, fn -> CRDT.mutate!(:increment, :a, {:state_gset, :bad}) end
      assert {:malformed, :state_gset} = e.reason

      e = assert_raise CRDTError, fn -> CRDT.delta_mutate!(:nope, :a, CRDT.new(:state_gset)) end
      assert {:unknown_op, :state_gset} = e.reason
    end
  end

  describe "composite types" do
    test "a gmap of gcounters: {:apply, key, :increment} per key, merged per key" do
      bottom = {:state_gmap, {:state_gcounter, []}}
      assert CRDT.is_bottom(bottom)

      a = CRDT.mutate!({:apply, :clicks, :increment}, :alice, bottom)
      a = CRDT.mutate!({:apply, :clicks, :increment}, :alice, a)
      b = CRDT.mutate!({:apply, :clicks, :increment}, :bob, bottom)
      b = CRDT.mutate!({:apply, :views, :increment}, :bob, b)

      assert a == {:state_gmap, {:state_gcounter, [clicks: {:state_gcounter, [alice: 2]}]}}
      assert CRDT.query(a) == [clicks: 2]

      ab = CRDT.merge(a, b)
      assert ab == CRDT.merge(b, a)
      assert CRDT.query(ab) == [clicks: 3, views: 1]
      assert CRDT.is_inflation(a, ab) and CRDT.is_inflation(b, ab)
      assert CRDT.is_strict_inflation(a, ab)
      refute CRDT.is_inflation(ab, a)
      refute CRDT.is_bottom(ab)

      delta = CRDT.delta_mutate!({:apply, :views, :increment}, :alice, ab)
      assert CRDT.merge(delta, ab) == CRDT.mutate!({:apply, :views, :increment}, :alice, ab)
    end

    test "a gmap's values of different types do not merge" do
      a = {:state_gmap, {:state_gcounter, [k: {:state_gcounter, [alice: 1]}]}}
      b = {:state_gmap, {:state_gcounter, [k: {:state_gset, [1]}]}}
      assert_raise CRDTError, fn -> CRDT.merge(a, b) end
    end

    test "a pair of a gcounter and a gset: {:fst, op} / {:snd, op}, queried component-wise" do
      bottom = {:state_pair, {CRDT.new(:state_gcounter), CRDT.new(:state_gset)}}
      assert CRDT.is_bottom(bottom)

      a = CRDT.mutate!({:fst, :increment}, :alice, bottom)
      b = CRDT.mutate!({:snd, {:add, :x}}, :bob, bottom)
      assert a == {:state_pair, {{:state_gcounter, [alice: 1]}, {:state_gset, []}}}

      ab = CRDT.merge(a, b)
      assert ab == {:state_pair, {{:state_gcounter, [alice: 1]}, {:state_gset, [:x]}}}
      {count, set} = CRDT.query(ab)
      assert count == 1
      assert :sets.to_list(set) == [:x]

      # Strict inflation is (strict1 and infl2) or (infl1 and strict2).
      assert CRDT.is_strict_inflation(a, ab)
      refute CRDT.is_strict_inflation(ab, ab)
      assert CRDT.equal(ab, CRDT.merge(b, a))
    end

    test "an awmap of awsets: add under a key, remove the key, concurrent add wins" do
      bottom = CRDT.new(:state_awmap)
      assert bottom == {:state_awmap, {:state_awset, {[], {[], []}}}}

      a = CRDT.mutate!({:apply, :fruit, {:add, :apple}}, :alice, bottom)
      a = CRDT.mutate!({:apply, :veg, {:add, :leek}}, :alice, a)
      query = fn s -> for {k, set} <- CRDT.query(s), do: {k, Enum.sort(:sets.to_list(set))} end
      assert query.(a) == [fruit: [:apple], veg: [:leek]]

      # bob sees alice's map, removes :fruit; alice concurrently adds to it.
      b = CRDT.mutate!({:rmv, :fruit}, :bob, a)
      assert query.(b) == [veg: [:leek]]
      a = CRDT.mutate!({:apply, :fruit, {:add, :pear}}, :alice, a)

      ab = CRDT.merge(a, b)
      assert CRDT.equal(ab, CRDT.merge(b, a))
      assert query.(ab) == [fruit: [:pear], veg: [:leek]]
      assert CRDT.is_inflation(b, ab)
    end

    test "an empty awmap of another value type is not bottom, as in lasp-lang/types" do
      refute CRDT.is_bottom({:state_awmap, {:state_mvregister, {[], {[], []}}}})
    end

    test "awset_ps: add and remove with {object_id, actor} as the actor" do
      actor = {"obj-1", :alice}
      s = CRDT.mutate!({:add, 1}, actor, CRDT.new(:state_awset_ps))
      s = CRDT.mutate!({:add, 2}, actor, s)
      assert CRDT.value(s) == MapSet.new([1, 2])
      s = CRDT.mutate!({:rmv, 1}, actor, s)
      assert CRDT.value(s) == MapSet.new([2])
      # As in lasp-lang/types 0.1.8: removing an absent element changes nothing.
      assert {:ok, ^s} = CRDT.mutate({:rmv, 7}, actor, s)
    end

    test "bcounter: rights, moves, and types' raise once both sides hold the same transfer" do
      a = CRDT.mutate!(:increment, :alice, CRDT.new(:state_bcounter))
      a = CRDT.mutate!(:increment, :alice, a)
      assert CRDT.query(a) == 2
      assert {:error, {:precondition, :non_enough_permissions}} = CRDT.mutate(:decrement, :bob, a)

      moved = CRDT.mutate!({:move, 1, :bob}, :alice, a)
      assert CRDT.query(moved) == 2
      bob = CRDT.mutate!(:decrement, :bob, moved)
      assert CRDT.query(bob) == 1

      # README §5: the transfers map holds raw integers, so types' gmap
      # merge/equal raise as soon as both sides hold the same {from, to}.
      assert_raise CRDTError, fn -> CRDT.merge(moved, bob) end
      assert_raise CRDTError, fn -> CRDT.equal(moved, moved) end
      assert CRDT.query(CRDT.merge(a, bob)) == 1
    end
  end

  describe "value/1" do
    test "gives a MapSet for every set-valued type and the query otherwise" do
      for type <- @set_types do
        assert %MapSet{} = CRDT.value(CRDT.new(type))
      end

      assert CRDT.value(CRDT.new(:state_max_int)) == 0
      assert CRDT.value(CRDT.new(:state_boolean)) == false
    end
  end

  ## Conformance helpers

  defp load_cases(type) do
    path = Path.join(@conformance_dir, "#{type}.etf")

    unless File.dir?(@conformance_dir) do
      flunk(
        "conformance vectors not found: #{@conformance_dir} does not exist " <>
          "(expected test/conformance in the repository, or set LASP_CONVERGE_CONFORMANCE)"
      )
    end

    path |> File.read!() |> :erlang.binary_to_term()
  end

  @pair_keys [
    {:merge, :merge},
    {:merge_ba, :merge},
    {:equal, :equal},
    {:is_inflation_ab, :is_inflation},
    {:is_inflation_ba, :is_inflation},
    {:is_strict_inflation_ab, :is_strict_inflation},
    {:is_strict_inflation_ba, :is_strict_inflation}
  ]

  defp check_case(_type, c, i) do
    where = "##{i} (#{c.label})"

    pair_checks =
      for {key, fun} <- @pair_keys do
        {x, y} =
          if key in [:merge_ba, :is_inflation_ba, :is_strict_inflation_ba],
            do: {c.b, c.a},
            else: {c.a, c.b}

        check(where, key, Map.fetch!(c, key), fn -> apply(CRDT, fun, [x, y]) end, &===/2)
      end

    # Both sides normalised by the queried state's structure (README §2).
    query_check = fn key, want, s ->
      check(
        where,
        key,
        want,
        fn -> normalise(s, CRDT.query(s)) end,
        fn got, want -> got === normalise(s, want) end
      )
    end

    single_checks = [
      check(where, :is_bottom_a, c.is_bottom_a, fn -> CRDT.is_bottom(c.a) end, &===/2),
      check(where, :is_bottom_b, c.is_bottom_b, fn -> CRDT.is_bottom(c.b) end, &===/2),
      query_check.(:query_a, c.query_a, c.a),
      query_check.(:query_b, c.query_b, c.b)
    ]

    merge_checks =
      case c do
        %{query_merge: want, merge: merged} ->
          [query_check.(:query_merge, want, merged)]

        _ ->
          []
      end

    Enum.reject(pair_checks ++ single_checks ++ merge_checks, &is_nil/1)
  end

  # One expectation: either a value compared with `same?`, or
  # `{:"$raises", class, tag}`, where lasp-lang/types crashed and we must raise.
  defp check(where, key, {:"$raises", _class, _tag} = want, call, _same?) do
    try do
      got = call.()
      "#{where} #{key}: expected a raise like #{inspect(want)}, got #{short(got)}"
    rescue
      CRDTError -> nil
    end
  end

  defp check(where, key, want, call, same?) do
    got = call.()

    if same?.(got, want),
      do: nil,
      else: "#{where} #{key}: expected #{short(want)}, got #{short(got)}"
  rescue
    e in CRDTError -> "#{where} #{key}: expected #{short(want)}, raised #{Exception.message(e)}"
  end

  # README §2, driven by the state's structure (never by the value, which may
  # hold any user term, lists included): a set-valued part becomes a sorted
  # list wherever it sits; gmap gives `[{key, q(value)}]` in the state's key
  # order, pair `{q(fst), q(snd)}`, awmap an orddict whose values are
  # normalised by the map's value type (its CType, nested awmaps recursing).
  # Both our query (`:sets` sets) and the vector's (already lists) go through
  # it, so either side may hold a set or a list at a set position.
  defp normalise(state, value)

  defp normalise({type, _}, value) when type in @set_types, do: sort_set(value)

  defp normalise({:state_gmap, {_ctype, entries}}, value)
       when is_list(entries) and is_list(value) and length(entries) == length(value) do
    Enum.zip_with(entries, value, fn
      {_key, sub_state}, {k, q} -> {k, normalise(sub_state, q)}
      _entry, other -> other
    end)
  end

  defp normalise({:state_awmap, {ctype, _}}, value) when is_list(value) do
    Enum.map(value, fn
      {k, q} -> {k, normalise_ctype(ctype, q)}
      other -> other
    end)
  end

  defp normalise({:state_pair, {fst, snd}}, {q1, q2}),
    do: {normalise(fst, q1), normalise(snd, q2)}

  defp normalise(_state, value), do: value

  # An awmap value's query, by the map's CType: `type` or `{:state_awmap, [sub]}`
  # (a bare `:state_awmap` is an awmap of awsets).
  defp normalise_ctype(ctype, q) when ctype in @set_types, do: sort_set(q)
  defp normalise_ctype(:state_awmap, q), do: normalise_ctype({:state_awmap, [:state_awset]}, q)

  defp normalise_ctype({:state_awmap, [sub]}, q) when is_list(q) do
    Enum.map(q, fn
      {k, v} -> {k, normalise_ctype(sub, v)}
      other -> other
    end)
  end

  defp normalise_ctype(_ctype, q), do: q

  defp sort_set(list) when is_list(list), do: normalise_list(list)

  defp sort_set(set) do
    if :sets.is_set(set), do: set |> :sets.to_list() |> normalise_list(), else: set
  end

  # Term order, ties between `==` terms (1 and 1.0) broken by external format.
  defp normalise_list(list), do: Enum.sort_by(list, &{&1, :erlang.term_to_binary(&1)})

  defp short(term), do: inspect(term, limit: 8, printable_limit: 60)
end
