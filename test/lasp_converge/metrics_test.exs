defmodule LaspConverge.MetricsTest do
  # One dashboard per node: not async.
  use ExUnit.Case, async: false

  alias LaspConverge.CRDT

  setup do
    {:ok, _} = Application.ensure_all_started(:lasp_converge)
    :ok
  end

  # `{name, labels, value}` of every sample line; every sample's family has a
  # TYPE line before it.
  defp samples(text) do
    lines = String.split(text, "\n", trim: true)

    {types, samples} =
      Enum.reduce(lines, {%{}, []}, fn
        "# TYPE " <> rest, {types, acc} ->
          [name, type] = String.split(rest, " ")
          {Map.put(types, name, type), acc}

        "#" <> _, acc ->
          acc

        line, {types, acc} ->
          [_, name, labels, value] =
            Regex.run(~r/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/, line)

          family = String.replace(name, ~r/_(bucket|sum|count)$/, "")
          assert Map.has_key?(types, name) or types[family] == "histogram", line
          {types, [{name, labels, value} | acc]}
      end)

    {types, Enum.reverse(samples)}
  end

  test "metrics/0 gives the tracker's counters and histograms, escaped, with a TYPE each" do
    var = {"metrics \"q\" \\ #{System.unique_integer([:positive])}", :state_orset}
    :ok = LaspConverge.track(var, nodes: [], tick: false, clock: false)
    on_exit(fn -> LaspConverge.untrack(var) end)

    s0 = CRDT.new(:state_orset)
    s1 = CRDT.mutate!({:add, :x}, :a, s0)
    :ok = LaspConverge.updated(var, s0, s1, ts: 1_000)
    :ok = LaspConverge.observed(var, s1, ts: 3_000)

    text = LaspConverge.metrics()
    assert is_binary(text)
    {types, samples} = samples(text)
    assert types["lasp_converge_convergence_seconds"] == "histogram"
    assert types["lasp_converge_updates_total"] == "counter"

    label =
      :io_lib.format(~c"~0tp", [var])
      |> to_string()
      |> String.replace("\\", "\\\\")
      |> String.replace("\"", "\\\"")

    mine = fn name ->
      for {^name, labels, value} <- samples,
          String.contains?(labels || "", ~s(var="#{label}")),
          do: {labels, value}
    end

    assert [{_, "1"}] = mine.("lasp_converge_updates_total")
    assert [{_, "1"}] = mine.("lasp_converge_converged_total")
    assert [{_, "1"}] = mine.("lasp_converge_convergence_seconds_count")
    buckets = mine.("lasp_converge_convergence_seconds_bucket")
    assert length(buckets) == length(:lasp_converge_metrics.bounds_us()) + 1
    assert {last, "1"} = List.last(buckets)
    assert last =~ ~s(le="+Inf")
    assert [{_, sum}] = mine.("lasp_converge_convergence_seconds_sum")
    assert_in_delta String.to_float(sum), 0.0, 1.0e-9
  end

  test "the dashboard serves the same text at /metrics" do
    var = {"metrics-http-#{System.unique_integer([:positive])}", :state_gset}
    :ok = LaspConverge.track(var, nodes: [])
    :ok = LaspConverge.updated(var, {:state_gset, []}, {:state_gset, [:a]})
    {:ok, %{url: url}} = LaspConverge.HTTP.start()

    on_exit(fn ->
      LaspConverge.HTTP.stop()
      LaspConverge.untrack(var)
    end)

    {:ok, {{_, 200, _}, headers, body}} =
      :httpc.request(:get, {String.to_charlist(url <> "metrics"), []}, [], body_format: :binary)

    assert to_string(:proplists.get_value(~c"content-type", headers)) ==
             "text/plain; version=0.0.4; charset=utf-8"

    {types, _} = samples(body)
    {types_direct, _} = samples(LaspConverge.metrics())
    assert types == types_direct
    assert body =~ ~s(lasp_converge_updates_total{var="{<<\\"#{elem(var, 0)}\\">>,state_gset}")
  end

  test "with no telemetry module, events are a no-op" do
    refute :lasp_converge_telemetry.enabled()
    assert :ok = :lasp_converge_telemetry.execute([:lasp_converge, :test], %{n: 1}, %{})
  end
end
