defmodule LaspConverge.HTTP do
  @moduledoc """
  A live dashboard on OTP's inets httpd: the report's charts
  (`LaspConverge.Report`) for every variable this node aggregates,
  redrawn as the measurement goes on.

  The page at `/` polls `/api/vars` (the variables, as JSON) and
  `/api/var?id=N` (one variable's figures and its charts) every
  `:refresh_ms`. `/metrics` serves the figures in Prometheus's text
  format (`LaspConverge.metrics/0`; see `guides/operations.md`). It binds
  to 127.0.0.1 unless told otherwise; port 0 (the default) takes any free
  port and returns it. Unknown paths answer 404, a bad `id` or a query
  that is not UTF-8 400, other methods than GET and HEAD 405, a URI over
  8 KB 414, a body 413; the server reads no file. Against DNS rebinding, a
  request whose `Host` is not `localhost`, an address literal or one of
  `:allowed_hosts` (with the server's port) answers 400. The Erlang module
  is `:lasp_converge_http`.

      iex> {:ok, %{port: port, url: url}} = LaspConverge.HTTP.start(refresh_ms: 500)
      iex> port > 0 and String.starts_with?(url, "http://127.0.0.1:")
      true
      iex> LaspConverge.HTTP.stop()
      :ok
  """

  @doc """
  Starts the dashboard. Options: `:port` (default 0, any free one),
  `:ip` (default `{127, 0, 0, 1}`), `:refresh_ms` (default 1000),
  `:allowed_hosts` (`Host` names answered besides `localhost` and address
  literals, e.g. `["dash.example.org"]` or `["dash.example.org:443"]`;
  `:any` turns the check off; default `[]`). Errors: `{:unknown_option,
  key}`, `{:bad_option, key, value}`, `{:eaddrinuse, port}` (nothing is
  started), `:already_started`.
  """
  @spec start(keyword()) ::
          {:ok, %{port: :inet.port_number(), url: String.t()}} | {:error, term()}
  def start(opts \\ []) when is_list(opts) do
    case :lasp_converge_http.start(Map.new(opts)) do
      {:ok, %{url: url} = m} -> {:ok, %{m | url: List.to_string(url)}}
      {:error, _} = e -> e
    end
  end

  @doc "Stops this node's dashboard."
  @spec stop() :: :ok | {:error, :not_started}
  def stop, do: :lasp_converge_http.stop()

  @doc "The running dashboard's address."
  @spec url() :: {:ok, String.t()} | {:error, :not_started}
  def url do
    case :lasp_converge_http.url() do
      {:ok, u} -> {:ok, List.to_string(u)}
      e -> e
    end
  end
end
