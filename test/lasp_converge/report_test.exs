defmodule LaspConverge.ReportTest do
  use ExUnit.Case, async: true
  doctest LaspConverge.Report

  @moduletag :tmp_dir

  setup do
    {:ok, _} = Application.ensure_all_started(:lasp_converge)
    :ok
  end

  test "writes a page for a tracked variable, and print/1 summarises it", %{tmp_dir: dir} do
    var = {"report-#{System.unique_integer([:positive])}", :state_gset}
    :ok = LaspConverge.track(var, nodes: [], clock: false)
    on_exit(fn -> LaspConverge.untrack(var) end)

    :ok = LaspConverge.updated(var, {:state_gset, []}, {:state_gset, [:a]})

    :ok =
      LaspConverge.mark(%{at_us: System.system_time(:microsecond), fault: :partition, args: []})

    path = Path.join(dir, "r.html")
    assert {:ok, ^path} = LaspConverge.Report.write(path, [var], title: "ExUnit")
    html = File.read!(path)
    assert html =~ "<h1>ExUnit</h1>"
    assert html =~ ~s(data-chart="convergence-cdf")
    assert html =~ ~s(data-key="updates">1<)
    assert [%{outcome: :converged, convergence_us: 0}] = LaspConverge.records(var)

    assert ExUnit.CaptureIO.capture_io(fn -> assert :ok = LaspConverge.print(var) end) =~ "p99"
  end

  test "writes a sweep page from simulated rows", %{tmp_dir: dir} do
    {:ok, rows} =
      LaspConverge.Sim.sweep([nodes: 5, duration: 2_000], rates: [2, 20], intervals: [20, 200])

    path = Path.join(dir, "sweep.html")
    assert {:ok, ^path} = LaspConverge.Report.write_sweep(path, rows, target_p99: 100)
    html = File.read!(path)

    for chart <- ~w(sweep-p99 sweep-msgs sweep-frontier sweep-speed) do
      assert html =~ ~s(data-chart="#{chart}")
    end

    assert html =~ "simulated"
    assert {:error, :bad_target} = LaspConverge.Report.write_sweep(path, rows, target_p99: -1)
  end
end
