defmodule LaspConverge.Lasp do
  @moduledoc """
  Convergence tracking on a running Lasp 0.8 cluster, with no change to
  Lasp: Lasp's own variables, replicated by Lasp's own backends, timed by
  `LaspConverge`; and Lasp's types made faster in place (`accelerate/1`).

  The Elixir face of `:lasp_converge_lasp`, whose reference describes the
  model (instrumented members, streams that outlive `untrack/1` since Lasp
  has no unsubscribe, why `update/3` may over-estimate a convergence time
  but never under-estimate it, the settings): `h :lasp_converge_lasp` in
  `iex -S mix` after `make docs`; `:lasp_converge_accel` describes the
  acceleration; `guides/lasp.md` is the guide. Options and settings are
  keyword lists or maps.

  Without Lasp on this node, the calls that reach Lasp return
  `{:error, :lasp_not_running}`; arguments are checked first:

      iex> LaspConverge.Lasp.members()
      {:error, :lasp_not_running}
      iex> LaspConverge.Lasp.update({"x", :state_orset}, {:add, 1}, self())
      {:error, {:bad_actor, self()}}

  Where types' modules were never replaced, they are all stock:

      iex> {:ok, %{} = per_node} = LaspConverge.Lasp.accel_status()
      iex> per_node[node()][:state_gcounter]
      :stock
  """

  @typedoc "A Lasp id, such as `{\"x\", :state_orset}` (the type second)."
  @type id :: term()

  @typedoc "A Lasp actor: a binary, a list or an atom."
  @type actor :: binary() | list() | atom()

  @typedoc """
  Lasp settings (a map or keyword list): `:state_interval`,
  `:delta_interval` (ms), `:propagate_on_update`, `:jitter` (booleans),
  `:jitter_percent` (0..100), `:mode` (`:state_based` or `:delta_based`).
  """
  @type settings :: map() | keyword()

  @typedoc "`%{members: [node], instrumented: [node], not_instrumented: [node]}`."
  @type membership :: %{
          members: [node()],
          instrumented: [node()],
          not_instrumented: [node()]
        }

  @doc """
  Starts timing the Lasp variable `id` on every instrumented Lasp member,
  aggregated on this node. Options: those of `LaspConverge.track/2` but
  `:nodes`, and `:type` (the type to declare; default the second element of
  `id`). Returns which members are instrumented and which are not.
  """
  @spec track(id(), keyword() | map()) :: {:ok, membership()} | {:error, term()}
  def track(id, opts \\ []), do: :lasp_converge_lasp.track(id, Map.new(opts))

  @doc "Stops timing `id` (from any member); the streams stay, idle."
  @spec untrack(id()) :: :ok | {:error, term()}
  def untrack(id), do: :lasp_converge_lasp.untrack(id)

  @doc """
  `lasp:update(id, op, actor)` on this node, timed. Returns what Lasp
  returns, `{:ok, {id, type, metadata, state}}`.
  """
  @spec update(id(), term(), actor()) :: {:ok, {id(), term(), term(), term()}} | {:error, term()}
  def update(id, op, actor), do: :lasp_converge_lasp.update(id, op, actor)

  @doc "The Lasp members, instrumented (running `:lasp_converge`) or not."
  @spec members() :: {:ok, membership()} | {:error, term()}
  def members, do: :lasp_converge_lasp.members()

  @doc """
  Where `id` stands: `:tracked` (aggregated on this node), the members,
  and under `:nodes` each instrumented member's stream (`:none`, `:active`
  or `:inactive`), states observed and callback failures.
  """
  @spec status(id()) :: {:ok, map()} | {:error, term()}
  def status(id), do: :lasp_converge_lasp.status(id)

  @doc """
  Applies `settings` with `lasp_config:set/2` on every Lasp member; returns
  `{:ok, members}`, `{:error, {:bad_settings, keys}}` (unknown keys or bad
  values, checked before Lasp is reached) or `{:error, {:set_failed,
  [{node, reason}]}}` naming the members that failed (the others are set).

      iex> LaspConverge.Lasp.set(state_interval: -1, speed: 2)
      {:error, {:bad_settings, [:speed, :state_interval]}}
  """
  @spec set(settings()) :: {:ok, [node()]} | {:error, term()}
  def set(settings), do: :lasp_converge_lasp.set(Map.new(settings))

  @doc """
  Reads the six settings back from every Lasp member: `{:ok, %{settings:
  agreed, per_node: %{node => settings}, agree: boolean(), disagree:
  [key]}}`.
  """
  @spec get() :: {:ok, map()} | {:error, term()}
  def get, do: :lasp_converge_lasp.get()

  @typedoc """
  Per node, each accelerable type: `:accelerated`, `:stock`, or `:binary`
  (accelerated, and the node's gset and gcounter variables hold binary
  payloads).
  """
  @type accel_status :: %{node() => %{module() => :accelerated | :binary | :stock}}

  @doc """
  Accelerates types' `state_*` modules in the running node(s). Options
  (keyword list or map): `:nodes` (`:local`, the default; `:all`, this
  node and every Lasp member; or a list of nodes), `:types` (default
  `:lasp_converge_accel.accelerated_types()`), `:purge_timeout` (ms to wait
  for processes still running old code, default 10000). Idempotent.
  Refuses with `{:error, {:types_version, found, expected}}` unless types
  0.1.8 is loaded.

  `payload: :binary` (opt-in) then makes the `state_gset` and
  `state_gcounter` variables of those nodes hold `{type, binary}` in
  the binary format of `LaspConverge.Replica.to_binary/1`, converting the
  ones already stored, so Lasp's copies move a reference-counted binary
  and merges walk bytes. Every Lasp member must be accelerated first
  (`nodes: :all` does both), else `{:error, {:not_accelerated, nodes}}`.
  `payload: :term` or `decelerate/1` converts them back. Values never
  change, only their representation; `:lasp_converge_payload` has the
  details.

      iex> LaspConverge.Lasp.accelerate(payload: :bin)
      {:error, {:bad_payload, :bin}}
  """
  @spec accelerate(keyword() | map()) :: {:ok, accel_status()} | {:error, term()}
  def accelerate(opts \\ []), do: :lasp_converge_lasp.accelerate(Map.new(opts))

  @doc """
  Puts types' own code back (same options as `accelerate/1`), turning
  binary payloads back into types' terms first; refused with
  `{:error, {:binary_payload, nodes}}` while members outside `nodes:` still
  hold binaries. `grace:` (ms, default 1000) waits for states in flight
  when payloads were binary. Idempotent.
  """
  @spec decelerate(keyword() | map()) :: {:ok, accel_status()} | {:error, term()}
  def decelerate(opts \\ []), do: :lasp_converge_lasp.decelerate(Map.new(opts))

  @doc "Which types are accelerated, per node (`nodes:` as in `accelerate/1`)."
  @spec accel_status(keyword() | map()) :: {:ok, accel_status()} | {:error, term()}
  def accel_status(opts \\ []), do: :lasp_converge_lasp.accel_status(Map.new(opts))
end
