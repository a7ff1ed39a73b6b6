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
    assert html =~ ~s(<td data-key="updates">1</td>)
    assert [%{outcome: :converged, convergence_us: 0}] = LaspConverge.records(var)

    assert ExUnit.CaptureIO.capture_io(fn -> assert :ok = LaspConverge.print(var) end) =~ "p99"
  end
end
