defmodule LaspConverge.AccelTest do
  # Not async: replaces modules of the whole VM while it runs.
  use ExUnit.Case, async: false

  @lib System.get_env("LASP_CONVERGE_LASP_LIB", "../shared/lasp-0.8/lib")
  @types_ebin Path.join([Path.expand(@lib), "types", "ebin"])

  if File.exists?(Path.join(@types_ebin, "types.app")) do
    alias LaspConverge.Lasp

    test "accelerate, the same answers as types, decelerate" do
      true = :code.add_pathz(String.to_charlist(@types_ebin))
      n = node()

      a = {:state_gcounter, for(k <- 1..2000, do: {"actor#{k}", 2}) |> :orddict.from_list()}
      b = {:state_gcounter, :orddict.update_counter("actor7", 1, elem(a, 1))}

      stock =
        for f <- [:merge, :is_inflation, :is_strict_inflation, :equal],
            do: apply(:state_gcounter, f, [a, b])

      assert {:ok, %{^n => %{state_gcounter: :accelerated, state_orset: :accelerated}}} =
               Lasp.accelerate()

      assert {:ok, %{^n => %{state_gcounter: :accelerated}}} = Lasp.accelerate(nodes: :local)
      assert {:ok, %{^n => %{state_awset: :accelerated}}} = Lasp.accel_status()

      assert stock ==
               for(
                 f <- [:merge, :is_inflation, :is_strict_inflation, :equal],
                 do: apply(:state_gcounter, f, [a, b])
               )

      assert :erlang.module_loaded(:"state_gcounter$types")

      assert {:ok, %{^n => %{state_gcounter: :stock}}} = Lasp.decelerate()
      refute :erlang.module_loaded(:"state_gcounter$types")
      {:ok, {:state_gcounter, md5}} = :beam_lib.md5(:code.which(:state_gcounter))
      assert md5 == :state_gcounter.module_info(:md5)
      assert {:error, {:bad_nodes, 3}} = Lasp.accelerate(nodes: 3)
    end

    test "binary payloads: refused until gset and gcounter are accelerated, types' answers" do
      true = :code.add_pathz(String.to_charlist(@types_ebin))
      n = node()

      # Only awset accelerated here: this node does not take binaries yet.
      assert {:error, {:not_accelerated, [^n]}} =
               Lasp.accelerate(payload: :binary, types: [:state_awset])

      assert {:state_gset, []} = apply(:state_gset, :new, [])

      assert {:ok,
              %{^n => %{state_gset: :binary, state_gcounter: :binary, state_orset: :accelerated}}} =
               Lasp.accelerate(payload: :binary)

      try do
        assert {:state_gset, b0} = apply(:state_gset, :new, [])
        assert is_binary(b0)
        {:ok, g1} = apply(:state_gset, :mutate, [{:add, {:k, 1}}, "a", {:state_gset, b0}])
        {:ok, g2} = apply(:state_gset, :mutate, [{:add, "x"}, "a", g1])
        # A term beside a binary: merged as types would, kept binary.
        t = {:state_gset, [1.0, {:k, 1}]}
        merged = apply(:state_gset, :merge, [g2, t])
        assert {:state_gset, bin} = merged
        assert is_binary(bin)

        assert {:state_gset, [1.0, {:k, 1}, "x"]} ==
                 apply(:"state_gset$types", :merge, [{:state_gset, [{:k, 1}, "x"]}, t])

        assert {:state_gset, [1.0, {:k, 1}, "x"]} == :lasp_converge_payload.to_term(merged)
        assert apply(:state_gset, :is_strict_inflation, [g2, merged])
        refute apply(:state_gset, :equal, [g2, merged])

        assert Enum.sort(:sets.to_list(apply(:state_gset, :query, [merged]))) == [
                 1.0,
                 {:k, 1},
                 "x"
               ]

        {:ok, c} =
          apply(:state_gcounter, :mutate, [:increment, "a", apply(:state_gcounter, :new, [])])

        {:ok, c} = apply(:state_gcounter, :mutate, [:increment, "a", c])
        assert 2 == apply(:state_gcounter, :query, [c])
      after
        assert {:ok, %{^n => %{state_gset: :stock}}} = Lasp.decelerate(grace: 0)
      end

      assert {:state_gset, []} = apply(:state_gset, :new, [])
    end
  else
    IO.puts(
      "LaspConverge.AccelTest skipped: no Lasp build at #{@lib} (set LASP_CONVERGE_LASP_LIB)"
    )
  end
end
