defmodule LaspConverge.Replica do
  @moduledoc """
  Resident replicas: a CRDT state held decoded in the native library, merged
  into and mutated in place, and moved between processes and nodes as a
  compact binary.

  **A replica is a mutable handle, like an ETS table, not a value.**
  `merge/2` and `mutate/3` change the replica they are given (`merge/2`
  returns `:ok`, `mutate/3` the delta); any process holding the reference
  may read or write it, each call atomically; `copy/1` takes a snapshot.
  It is freed by garbage collection and means nothing on another node:
  send `to_binary/1`.

  The Elixir face of `:lasp_converge_replica`, whose reference says how
  each type is kept and what a merge costs (`keyed?/1` tells which
  replicas merge in O(m log n)), the binary format, and how calls are
  scheduled: `h :lasp_converge_replica` in `iex -S mix` after `make docs`;
  `guides/replicas.md` is the guide. Every answer is term for term
  lasp-lang/types': after `merge(r, x)`, `to_term(r)` is
  `LaspConverge.CRDT.merge(before, x)` (the replica is the first argument).
  Bad input raises `LaspConverge.CRDTError` (`{:bad_binary, why}` for bytes
  `to_binary/1` did not write), a reference that is not a replica
  `ArgumentError`.

  ## Examples

      iex> r = LaspConverge.Replica.new(:state_gset)
      iex> LaspConverge.Replica.merge(r, {:state_gset, [1, 2]})
      :ok
      iex> LaspConverge.Replica.mutate({:add, 3}, :alice, r)
      {:ok, {:state_gset, [3]}}
      iex> LaspConverge.Replica.to_term(r)
      {:state_gset, [1, 2, 3]}
      iex> other = LaspConverge.Replica.from_binary(LaspConverge.Replica.to_binary(r))
      iex> LaspConverge.Replica.equal(r, other)
      true
  """

  alias LaspConverge.CRDTError

  @typedoc "A replica handle (a NIF resource reference)."
  @opaque t :: reference()

  @typedoc "What `merge/2`, `equal/2` and the inflation checks accept."
  @type input :: t() | LaspConverge.CRDT.t() | binary()

  @doc """
  A replica holding the bottom state of `type`.

      iex> LaspConverge.Replica.new(:state_gcounter) |> LaspConverge.Replica.to_term()
      {:state_gcounter, []}
  """
  @spec new(LaspConverge.CRDT.type()) :: t()
  def new(type), do: call(fn -> :lasp_converge_replica.new(type) end)

  @doc """
  A replica holding a state term (validated).

      iex> r = LaspConverge.Replica.from_term({:state_gcounter, [alice: 2]})
      iex> LaspConverge.Replica.query(r)
      2
  """
  @spec from_term(LaspConverge.CRDT.t()) :: t()
  def from_term(state), do: call(fn -> :lasp_converge_replica.from_term(state) end)

  @doc "The state term, exactly as lasp-lang/types would hold it."
  @spec to_term(t()) :: LaspConverge.CRDT.t()
  def to_term(r), do: call(fn -> :lasp_converge_replica.to_term(r) end)

  @doc """
  A replica read from `to_binary/1`'s output. Raises
  `LaspConverge.CRDTError` on bytes it did not write.

      iex> LaspConverge.Replica.from_binary("LCR")
      ** (LaspConverge.CRDTError) not a replica binary (truncated) (reason: {:bad_binary, :truncated})
  """
  @spec from_binary(binary()) :: t()
  def from_binary(bin), do: call(fn -> :lasp_converge_replica.from_binary(bin) end)

  @doc "The state in the binary format."
  @spec to_binary(t()) :: binary()
  def to_binary(r), do: call(fn -> :lasp_converge_replica.to_binary(r) end)

  @doc """
  Merges `incoming` (a state or delta term, a binary, or another replica)
  into `r`, in place.

      iex> r = LaspConverge.Replica.from_term({:state_gcounter, [alice: 2]})
      iex> LaspConverge.Replica.merge(r, {:state_gcounter, [alice: 1, bob: 3]})
      :ok
      iex> LaspConverge.Replica.to_term(r)
      {:state_gcounter, [alice: 2, bob: 3]}
  """
  @spec merge(t(), input()) :: :ok
  def merge(r, incoming), do: call(fn -> :lasp_converge_replica.merge(r, incoming) end)

  @doc """
  Applies `op` by `actor` to `r` in place; returns `{:ok, delta}` (the delta
  to ship to other replicas) or lasp-lang/types' `{:error, reason}`.

      iex> r = LaspConverge.Replica.new(:state_gcounter)
      iex> LaspConverge.Replica.mutate(:increment, :alice, r)
      {:ok, {:state_gcounter, [alice: 1]}}
  """
  @spec mutate(LaspConverge.CRDT.op(), LaspConverge.CRDT.actor(), t()) ::
          {:ok, LaspConverge.CRDT.t()} | {:error, term()}
  def mutate(op, actor, r), do: call(fn -> :lasp_converge_replica.mutate(op, actor, r) end)

  @doc "Like `mutate/3`, returning the delta or raising `LaspConverge.CRDTError`."
  @spec mutate!(LaspConverge.CRDT.op(), LaspConverge.CRDT.actor(), t()) :: LaspConverge.CRDT.t()
  def mutate!(op, actor, r) do
    case mutate(op, actor, r) do
      {:ok, delta} -> delta
      {:error, why} -> raise CRDTError, reason: why
    end
  end

  @doc "`type.query(state)`, shaped as `LaspConverge.CRDT.query/1` shapes it."
  @spec query(t()) :: term()
  def query(r), do: call(fn -> :lasp_converge_replica.query(r) end)

  @doc "Entries held: elements of a set, actors of a counter, keys of a map."
  @spec size(t()) :: non_neg_integer()
  def size(r), do: call(fn -> :lasp_converge_replica.size(r) end)

  @doc "The type atom."
  @spec type(t()) :: LaspConverge.CRDT.type()
  def type(r), do: :lasp_converge_replica.type(r)

  @doc "`type.equal(a, b)`; each side a replica, a state term or a binary."
  @spec equal(input(), input()) :: boolean()
  def equal(a, b), do: call(fn -> :lasp_converge_replica.equal(a, b) end)

  @doc """
  `type.is_inflation(a, b)`: is `b` at least `a`?

      iex> r = LaspConverge.Replica.from_term({:state_gset, [1]})
      iex> LaspConverge.Replica.is_inflation({:state_gset, []}, r)
      true
  """
  @spec is_inflation(input(), input()) :: boolean()
  def is_inflation(a, b), do: call(fn -> :lasp_converge_replica.is_inflation(a, b) end)

  @doc "`type.is_strict_inflation(a, b)`."
  @spec is_strict_inflation(input(), input()) :: boolean()
  def is_strict_inflation(a, b),
    do: call(fn -> :lasp_converge_replica.is_strict_inflation(a, b) end)

  @doc "A new replica holding `r`'s current state; later writes touch one only."
  @spec copy(t()) :: t()
  def copy(r), do: call(fn -> :lasp_converge_replica.copy(r) end)

  @doc "Whether merges into `r` cost O(m log n) (a keyed gset, gcounter, twopset, orset or awset)."
  @spec keyed?(t()) :: boolean()
  def keyed?(r), do: :lasp_converge_replica.is_keyed(r)

  @doc "Whether `x` is a replica of this VM."
  @spec replica?(term()) :: boolean()
  def replica?(x), do: :lasp_converge_replica.is_replica(x)

  # `error:{badcrdt, Why}` becomes a CRDTError; `badarg` (not a replica) and
  # anything else are re-raised as they came.
  defp call(fun) do
    fun.()
  rescue
    e in ErlangError ->
      case e do
        %ErlangError{original: {:badcrdt, why}} ->
          reraise CRDTError, [reason: why], __STACKTRACE__

        _ ->
          reraise e, __STACKTRACE__
      end
  end
end
