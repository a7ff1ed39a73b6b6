defmodule LaspConverge.HTTP do
  @moduledoc """
  A live dashboard on OTP's inets httpd: the report's charts
  (`LaspConverge.Report`) for every variable this node aggregates, redrawn
  as the measurement goes on, and the figures for Prometheus at `/metrics`
  (`LaspConverge.metrics/0`).

  The Elixir face of `:lasp_converge_http`, whose reference lists the
  endpoints and how the server answers bad requests (it binds to 127.0.0.1
  unless told otherwise, reads no file, and refuses a `Host` it does not
  know, against DNS rebinding): `h :lasp_converge_http` in `iex -S mix`
  after `make docs`; `guides/report.md` is the guide. Here options are a
  keyword list and the URL is a string.

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
  started, nothing logged), `{:listen, port, why}`, `:already_started`.

      iex> LaspConverge.HTTP.start(port: 70_000)
      {:error, {:bad_option, :port, 70000}}
      iex> LaspConverge.HTTP.start(address: "0.0.0.0")
      {:error, {:unknown_option, :address}}
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
