defmodule LaspConverge.Assertions do
  @moduledoc """
  Convergence assertions for ExUnit: `import LaspConverge.Assertions` in a
  test case.

  A variable has converged when the tracker (`LaspConverge`) counts no
  update of it as pending or unconverged (every update made so far is seen
  by every live member) and the replicas held by the replicators
  (`LaspConverge.Replicator`) of the checked nodes are equal. The checks are
  those of `:lasp_converge_assert` (the Erlang macros of
  `include/lasp_converge.hrl` use the same functions), whose reference
  says how each looks (`h :lasp_converge_assert` in `iex -S mix` after
  `make docs`); `guides/testing.md` is the guide.

  A failed assertion raises `ExUnit.AssertionError` whose message gives the
  reason, the tracker's figures (updates, converged, pending, p50/p99 per
  node) and one line per lagging node: how many updates the tracker still
  counts as unseen there, what its value misses of the join of all the
  replicas, and its value.

  Options (a keyword list or a map), for every assertion:

    * `:nodes` - the nodes whose replicas must agree (default: the nodes of
      `:cluster`, else the tracker's live members)
    * `:cluster` - a `LaspConverge.Cluster`
    * `:via` - the node to ask the tracker on (default: this node, else the
      first connected node where the variable is tracked)
    * `:tracked` - `false` to check the replicas only (default `true`)
    * `:call_timeout` - ms for each remote call (default 2000)

  ExUnit is needed only when an assertion fails.

      import LaspConverge.Assertions

      test "converges", %{cluster: cluster} do
        # ... updates through LaspConverge.Replicator on the peers ...
        assert_converges({"s", :state_awset}, 2_000, cluster: cluster)
        assert_convergence_p99({"s", :state_awset}, 500)
        assert_no_lost_updates({"s", :state_awset}, ["x", "y"], cluster: cluster)
      end
  """

  @typedoc "Options of the assertions, as a keyword list or a map (see the module doc)."
  @type opts :: keyword() | map()

  @doc """
  Polls (every 20 ms) until `var` has converged, for up to `timeout_ms`;
  returns `:ok` or raises `ExUnit.AssertionError` naming the lagging nodes.
  """
  @spec assert_converges(term(), non_neg_integer(), opts()) :: :ok
  def assert_converges(var, timeout_ms, opts \\ []) do
    run("assert_converges(#{inspect(var)}, #{timeout_ms})", fn ->
      :lasp_converge_assert.converges(var, timeout_ms, Map.new(opts), [])
    end)
  end

  @doc """
  Returns `:ok` when the tracker's p99 convergence time of `var` is at most
  `ms` milliseconds and no update is pending or unconverged; else raises
  `ExUnit.AssertionError` with the tracker's figures. It looks once: assert
  convergence first when updates may still be in flight.
  """
  @spec assert_convergence_p99(term(), number(), opts()) :: :ok
  def assert_convergence_p99(var, ms, opts \\ []) do
    run("assert_convergence_p99(#{inspect(var)}, #{ms})", fn ->
      :lasp_converge_assert.convergence_p99(var, ms, Map.new(opts), [])
    end)
  end

  @doc """
  Returns `:ok` when, on every checked node, the value of `var` holds every
  element of `expected` (a list, for set-valued types; a set's value is
  compared as a sorted list) or equals `expected` (any other term, such as a
  counter's total). With `timeout: ms` it polls for up to that long.
  """
  @spec assert_no_lost_updates(term(), term(), opts()) :: :ok
  def assert_no_lost_updates(var, expected, opts \\ []) do
    run("assert_no_lost_updates(#{inspect(var)}, #{inspect(expected, limit: 20)})", fn ->
      :lasp_converge_assert.no_lost_updates(var, expected, Map.new(opts), [])
    end)
  end

  defp run(call, fun) do
    fun.()
  catch
    :error, {assertion, props}
    when assertion in [:assertConverges, :assertConvergenceP99, :assertNoLostUpdates] ->
      raise_assertion(call <> " failed\n" <> describe(props))
  end

  # Looked up when raising, so this module compiles and loads without
  # ExUnit; outside a test run (ExUnit not on the code path) it raises a
  # RuntimeError with the same message.
  defp raise_assertion(message) do
    error = Module.concat(ExUnit, AssertionError)

    if Code.ensure_loaded?(error) do
      raise error, message: message
    else
      raise message
    end
  end

  @doc false
  @spec describe(keyword()) :: String.t()
  def describe(props) do
    [
      line("reason", props[:reason]),
      line("limit", props[:limit_ms] && "#{props[:limit_ms]} ms, p99 #{ms(props[:p99_ms])}"),
      stats(props[:stats]),
      lagging(props[:lagging]),
      lost(props[:lost]),
      line("expected", props[:expected] && inspect(props[:expected], limit: 50)),
      line("checked nodes", props[:nodes] && inspect(props[:nodes]))
    ]
    |> Enum.reject(&(&1 == nil))
    |> Enum.join("\n")
  end

  defp line(_label, nil), do: nil
  defp line(label, value) when is_binary(value), do: "#{label}: #{value}"
  defp line(label, value), do: "#{label}: #{inspect(value)}"

  defp stats(nil), do: nil
  defp stats({:error, reason}), do: "tracker: {:error, #{inspect(reason)}}"

  defp stats(%{} = s) do
    head =
      "tracker: updates #{s[:updates]}, converged #{s[:converged]}, pending #{s[:pending]}, " <>
        "unconverged #{s[:unconverged]}; p50 #{us(s[:p50])}, p99 #{us(s[:p99])}, " <>
        "max #{us(s[:max])} (clock uncertainty #{s[:clock_uncertainty_us]} µs)"

    nodes =
      for {node, m} <- Enum.sort(Map.get(s, :per_node, %{})) do
        "  #{node}: unseen #{m[:pending]}, p99 #{us(m[:p99])}"
      end

    Enum.join([head | nodes], "\n")
  end

  defp lagging(nil), do: nil
  defp lagging([]), do: "lagging nodes: none"

  defp lagging(list) do
    lines =
      for l <- list do
        "  #{l.node}: unseen #{l.pending}, misses #{inspect(l.missing, limit: 20)}, " <>
          "value #{inspect(l.value, limit: 20)}"
      end

    Enum.join(["lagging nodes:" | lines], "\n")
  end

  defp lost(nil), do: nil

  defp lost(list) do
    lines =
      for l <- list do
        "  #{l.node}: misses #{inspect(l.missing, limit: 20)}, value #{inspect(l.value, limit: 20)}"
      end

    Enum.join(["nodes that lost updates:" | lines], "\n")
  end

  defp us(nil), do: "-"
  defp us(:undefined), do: "-"
  defp us(us), do: ms(us / 1000)

  defp ms(nil), do: "-"
  defp ms(:undefined), do: "-"
  defp ms(ms), do: "#{:erlang.float_to_binary(ms / 1, decimals: 1)} ms"
end
