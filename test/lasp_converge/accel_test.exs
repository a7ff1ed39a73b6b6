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
  else
    IO.puts(
      "LaspConverge.AccelTest skipped: no Lasp build at #{@lib} (set LASP_CONVERGE_LASP_LIB)"
    )
  end
end
