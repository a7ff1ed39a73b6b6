defmodule LaspConverge.HTTPTest do
  # One dashboard per node: not async.
  use ExUnit.Case, async: false
  doctest LaspConverge.HTTP

  setup do
    {:ok, _} = Application.ensure_all_started(:lasp_converge)
    :ok
  end

  defp get(url) do
    {:ok, {{_, code, _}, headers, body}} =
      :httpc.request(:get, {String.to_charlist(url), []}, [], body_format: :binary)

    {code, to_string(:proplists.get_value(~c"content-type", headers)), body}
  end

  test "serves the variables, one variable's figures, and rejects the rest" do
    var = {"http-#{System.unique_integer([:positive])}", :state_gset}
    :ok = LaspConverge.track(var, nodes: [])
    :ok = LaspConverge.updated(var, {:state_gset, []}, {:state_gset, [:a]})
    {:ok, %{url: url}} = LaspConverge.HTTP.start()

    on_exit(fn ->
      LaspConverge.HTTP.stop()
      LaspConverge.untrack(var)
    end)

    assert {:error, :already_started} = LaspConverge.HTTP.start()
    assert {200, "text/html" <> _, page} = get(url)
    assert page =~ "lasp_converge live"
    assert {200, "application/json" <> _, vars} = get(url <> "api/vars")
    assert vars =~ ~s("name":)
    [_, id] = Regex.run(~r/"id":(\d+),"name":"[^}]*#{elem(var, 0)}/, vars)
    assert {200, _, one} = get(url <> "api/var?id=" <> id)
    assert one =~ ~s("updates":1)
    assert one =~ "convergence-cdf"
    assert {404, _, _} = get(url <> "api/var?id=99")
    assert {400, _, _} = get(url <> "api/var?id=-1")
    assert {400, _, _} = get(url <> "api/var")
    assert {404, _, _} = get(url <> "nothing/here")
    assert {404, _, _} = get(url <> "..%2F..%2Fetc%2Fpasswd")
    assert :ok = LaspConverge.HTTP.stop()
    assert {:error, :not_started} = LaspConverge.HTTP.url()
  end

  defp raw(port, host) do
    {:ok, s} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false], 5000)
    :ok = :gen_tcp.send(s, "GET /api/vars HTTP/1.1\r\nHost: #{host}\r\nConnection: close\r\n\r\n")
    {:ok, <<"HTTP/1.1 ", code::binary-size(3), _::binary>>} = :gen_tcp.recv(s, 0, 5000)
    :gen_tcp.close(s)
    String.to_integer(code)
  end

  test "answers only its own hosts and the allowed ones; refuses bad queries and long URIs" do
    {:ok, %{port: port, url: url}} = LaspConverge.HTTP.start(allowed_hosts: ["dash.example"])
    on_exit(fn -> LaspConverge.HTTP.stop() end)
    assert raw(port, "localhost:#{port}") == 200
    assert raw(port, "dash.example:#{port}") == 200
    assert raw(port, "rebound.example:#{port}") == 400
    assert {400, _, _} = get(url <> "api/var?id=%FF")
    # Over the cap: 414 as soon as the request line is read. The server
    # closes while a client may still be sending, so this one writes the
    # request itself and reads what comes back.
    long =
      "GET /api/var?x=#{String.duplicate("a", 100_000)} HTTP/1.1\r\n" <>
        "Host: 127.0.0.1:#{port}\r\nConnection: close\r\n\r\n"

    assert status(port, long) == 414
  end

  defp status(port, request) do
    {:ok, s} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false], 5000)
    _ = :gen_tcp.send(s, request)
    {:ok, <<"HTTP/1.", _, " ", code::binary-size(3), _::binary>>} = :gen_tcp.recv(s, 0, 10_000)
    :gen_tcp.close(s)
    String.to_integer(code)
  end
end
