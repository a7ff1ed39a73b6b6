defmodule LaspConverge.CRDTTest do
  use ExUnit.Case, async: true

  alias LaspConverge.CRDT
  alias LaspConverge.CRDTError

  doctest LaspConverge.CRDT

  # The conformance vectors, generated from lasp-lang/types 0.1.8, live in the
  # shared folder beside the repository (see its README for the case format).
  # Every case of each file runs: the whole set takes well under a second.
  @conformance_dir Path.expand("../../../shared/conformance", __DIR__)

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
    :state_lexcounter
  ]

  # README §2: set-valued queries are compared as lists sorted in term order,
  # ties between `==` terms broken by their external format.
  @set_types [:state_gset, :state_twopset, :state_orset, :state_awset, :state_mvregister]

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
          "(the shared folder must sit beside the repository, as ../shared/conformance)"
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

  defp check_case(type, c, i) do
    where = "##{i} (#{c.label})"

    pair_checks =
      for {key, fun} <- @pair_keys do
        {x, y} =
          if key in [:merge_ba, :is_inflation_ba, :is_strict_inflation_ba],
            do: {c.b, c.a},
            else: {c.a, c.b}

        check(where, key, Map.fetch!(c, key), fn -> apply(CRDT, fun, [x, y]) end, &===/2)
      end

    query = fn s -> fn -> normalise_query(type, CRDT.query(s)) end end
    same_query = fn got, want -> got === normalise_vector(type, want) end

    single_checks = [
      check(where, :is_bottom_a, c.is_bottom_a, fn -> CRDT.is_bottom(c.a) end, &===/2),
      check(where, :is_bottom_b, c.is_bottom_b, fn -> CRDT.is_bottom(c.b) end, &===/2),
      check(where, :query_a, c.query_a, query.(c.a), same_query),
      check(where, :query_b, c.query_b, query.(c.b), same_query)
    ]

    merge_checks =
      case c do
        %{query_merge: want, merge: merged} ->
          [check(where, :query_merge, want, query.(merged), same_query)]

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

  defp normalise_query(type, value) when type in @set_types,
    do: value |> :sets.to_list() |> normalise_list()

  defp normalise_query(_type, value), do: value

  defp normalise_vector(type, value) when type in @set_types, do: normalise_list(value)
  defp normalise_vector(_type, value), do: value

  # Term order, ties between `==` terms (1 and 1.0) broken by external format.
  defp normalise_list(list), do: Enum.sort_by(list, &{&1, :erlang.term_to_binary(&1)})

  defp short(term), do: inspect(term, limit: 8, printable_limit: 60)
end
