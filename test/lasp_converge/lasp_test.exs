defmodule LaspConverge.LaspTest do
  # Not async: this node plays Lasp (the test double in
  # test_support/lasp_double/) while the test runs.
  use ExUnit.Case, async: false

  alias LaspConverge.Lasp

  doctest LaspConverge.Lasp

  @id {"ex_lasp", :state_awset}

  test "track, timed updates, settings and untrack on a node running the double of Lasp" do
    ebin = load_double()
    n = node()

    assert {:ok, %{members: [^n], instrumented: [^n], not_instrumented: []}} = Lasp.members()
    assert {:ok, %{instrumented: [^n]}} = Lasp.track(@id)

    for k <- 1..5 do
      assert {:ok, {@id, :state_awset, _meta, {:state_awset, _}}} =
               Lasp.update(@id, {:add, k}, "ex")
    end

    assert :ok = wait(fn -> match?(%{updates: 5, converged: 5}, LaspConverge.stats(@id)) end)
    assert {:ok, %{tracked: true, nodes: %{^n => %{stream: :active}}}} = Lasp.status(@id)

    assert {:ok, [^n]} = Lasp.set(state_interval: 200, mode: :delta_based)

    assert {:ok, %{agree: true, settings: %{state_interval: 200, mode: :delta_based}}} =
             Lasp.get()

    assert 200 == double(:lasp_config, :get, [:state_interval, 10_000])
    assert {:error, {:bad_settings, [:mode]}} = Lasp.set(mode: :fast)

    assert :ok = Lasp.untrack(@id)
    assert {:ok, %{tracked: false, nodes: %{^n => %{stream: :inactive}}}} = Lasp.status(@id)
    assert {:ok, _} = Lasp.update(@id, {:add, 6}, :ex)
    assert {:error, :not_tracked} = LaspConverge.stats(@id)
    assert {:ok, value} = double(:lasp, :query, [@id])
    assert Enum.sort(:sets.to_list(value)) == Enum.to_list(1..6)
    assert [] == double(:lasp_double, :stream_exits, [])
    assert is_binary(ebin)
  end

  # Builds the double into _build/lasp_double/ebin, starts its `lasp`
  # application here, and takes it all away when the test ends.
  defp load_double do
    src = ~c"test/lasp_converge_lasp_double.erl"
    {:ok, builder, bin} = :compile.file(src, [:binary, :return_errors])
    {:module, _} = :code.load_binary(builder, src, bin)
    {:ok, ebin} = builder.build()
    true = :code.add_patha(ebin)
    {:ok, _} = Application.ensure_all_started(:lasp)

    on_exit(fn ->
      # Quietly: OTP reports a stopped application at the info level.
      %{level: level} = :logger.get_primary_config()
      :logger.set_primary_config(:level, :warning)
      Application.stop(:lasp)
      :logger.set_primary_config(:level, level)
      Application.unload(:lasp)

      for m <- builder.modules() do
        :code.purge(m)
        :code.delete(m)
      end

      :code.del_path(ebin)
    end)

    List.to_string(ebin)
  end

  # The double's modules exist only while the test runs: called by name.
  defp double(mod, fun, args), do: apply(mod, fun, args)

  defp wait(f, ms \\ 5000)
  defp wait(_f, ms) when ms <= 0, do: :timeout

  defp wait(f, ms) do
    if f.() do
      :ok
    else
      Process.sleep(20)
      wait(f, ms - 20)
    end
  end
end
