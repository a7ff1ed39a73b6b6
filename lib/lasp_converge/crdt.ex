defmodule LaspConverge.CRDT do
  @moduledoc """
  Native lattice operations on Lasp's state-based CRDTs.

  A thin façade over the Erlang module `:lasp_converge_crdt`, which runs each
  operation in a Rust NIF.

  ## Payload model

  States are plain terms, exactly the ones lasp-lang/types 0.1.8 (the library
  a Lasp 0.8 node runs) builds: a `{type, payload}` tuple such as
  `{:state_gcounter, [{:alice, 2}]}` or
  `{:state_orset, [{element, [{token, true}]}]}`. Nothing is wrapped or
  converted, so a state can come from a Lasp node, go back to one, or be
  stored and sent as is, and every function returns term for term what the
  type's own module returns (`merge(a, b)` is `:state_orset.merge(a, b)`,
  including which of two `==` terms it keeps and its argument order).

  The 19 supported types are those `types/0` lists, every lasp-lang/types
  0.1.8 state type (maps and pairs included):

      iex> length(LaspConverge.CRDT.types())
      19
      iex> :state_awset_ps in LaspConverge.CRDT.types()
      true

  The Erlang module's reference (`h :lasp_converge_crdt` in `iex`, or
  `h(lasp_converge_crdt)` in `erl`) describes each type's operations and how
  calls are scheduled; `guides/crdt.md` is the guide. This module adds the
  Elixir shapes: exceptions instead of `{badcrdt, why}` raises, and `!`
  variants.

  ## Errors

  The lattice calls (`merge/2`, `equal/2`, `query/1`, ...) answer with a
  plain value, so bad input raises `LaspConverge.CRDTError`, whose `:reason`
  says what was wrong (`{:type_mismatch, :state_gset, :state_orset}`,
  `{:malformed, :state_gcounter}`, ...). `mutate/3` and `delta_mutate/3`
  return `{:ok, state}` or, where lasp-lang/types does, `{:error, reason}`;
  their `!` variants return the state or raise.

      iex> LaspConverge.CRDT.merge({:state_gset, [1]}, {:state_gcounter, []})
      ** (LaspConverge.CRDTError) cannot combine a :state_gset with a :state_gcounter (reason: {:type_mismatch, :state_gset, :state_gcounter})
  """

  alias LaspConverge.CRDTError

  @typedoc "A CRDT type, the name of its lasp-lang/types module."
  @type type :: atom()

  @typedoc "A state: `{type, payload}`, exactly as lasp-lang/types builds it."
  @type t :: {type(), term()}

  @typedoc "An operation of the state's type: `:increment`, `{:add, e}`, `{:rmv, e}`, ..."
  @type op :: term()

  @typedoc "The replica performing an operation (any term, usually a node name)."
  @type actor :: term()

  @set_types [
    :state_gset,
    :state_twopset,
    :state_orset,
    :state_awset,
    :state_awset_ps,
    :state_mvregister
  ]

  @doc """
  The bottom state of `type`, as `type.new()` returns it.

  ## Examples

      iex> LaspConverge.CRDT.new(:state_gcounter)
      {:state_gcounter, []}

      iex> LaspConverge.CRDT.new(:state_awset)
      {:state_awset, {[], {[], []}}}
  """
  @spec new(type()) :: t()
  def new(type) do
    :lasp_converge_crdt.new(type)
  rescue
    e in ErlangError -> reraise_badcrdt(e, __STACKTRACE__)
  end

  @doc """
  The types this library implements natively.

  ## Examples

      iex> :state_orset in LaspConverge.CRDT.types()
      true
  """
  @spec types() :: [type()]
  def types, do: :lasp_converge_crdt.types()

  @doc """
  The join of two states of the same type, `type.merge(a, b)`.

  When the merge adds nothing to `a` (or to `b`), that argument itself is
  returned.

  ## Examples

      iex> LaspConverge.CRDT.merge({:state_gcounter, [alice: 2]}, {:state_gcounter, [alice: 1, bob: 3]})
      {:state_gcounter, [alice: 2, bob: 3]}

      iex> LaspConverge.CRDT.merge({:state_gset, [1, 3]}, {:state_gset, [2]})
      {:state_gset, [1, 2, 3]}
  """
  @spec merge(t(), t()) :: t()
  def merge(a, b) do
    :lasp_converge_crdt.merge(a, b)
  rescue
    e in ErlangError -> reraise_badcrdt(e, __STACKTRACE__)
  end

  @doc """
  Merges a non-empty list of states of one type in one native call:
  `merge(...merge(merge(s1, s2), s3)..., sn)`.

  ## Examples

      iex> LaspConverge.CRDT.merge_all([{:state_max_int, 3}, {:state_max_int, 7}, {:state_max_int, 5}])
      {:state_max_int, 7}
  """
  @spec merge_all([t(), ...]) :: t()
  def merge_all(states) do
    :lasp_converge_crdt.merge_all(states)
  rescue
    e in ErlangError -> reraise_badcrdt(e, __STACKTRACE__)
  end

  @doc """
  Whether two states are equal, `type.equal(a, b)`.

  Equality is the type's, on compare-equal (`==`) terms, so `1` and `1.0`
  count as the same element.

  ## Examples

      iex> LaspConverge.CRDT.equal({:state_gset, [1]}, {:state_gset, [1.0]})
      true

      iex> LaspConverge.CRDT.equal({:state_gset, [1]}, {:state_gset, [1, 2]})
      false
  """
  @spec equal(t(), t()) :: boolean()
  def equal(a, b) do
    :lasp_converge_crdt.equal(a, b)
  rescue
    e in ErlangError -> reraise_badcrdt(e, __STACKTRACE__)
  end

  @doc """
  Whether `b` is an inflation of `a` (`b` is at least `a` in the lattice),
  `type.is_inflation(a, b)`.

  ## Examples

      iex> LaspConverge.CRDT.is_inflation({:state_gset, [1]}, {:state_gset, [1, 2]})
      true

      iex> LaspConverge.CRDT.is_inflation({:state_gset, [1, 2]}, {:state_gset, [1]})
      false
  """
  @spec is_inflation(t(), t()) :: boolean()
  def is_inflation(a, b) do
    :lasp_converge_crdt.is_inflation(a, b)
  rescue
    e in ErlangError -> reraise_badcrdt(e, __STACKTRACE__)
  end

  @doc """
  Whether `b` is a strict inflation of `a`: an inflation that is not equal,
  `type.is_strict_inflation(a, b)`.

  ## Examples

      iex> LaspConverge.CRDT.is_strict_inflation({:state_max_int, 1}, {:state_max_int, 2})
      true

      iex> LaspConverge.CRDT.is_strict_inflation({:state_max_int, 2}, {:state_max_int, 2})
      false
  """
  @spec is_strict_inflation(t(), t()) :: boolean()
  def is_strict_inflation(a, b) do
    :lasp_converge_crdt.is_strict_inflation(a, b)
  rescue
    e in ErlangError -> reraise_badcrdt(e, __STACKTRACE__)
  end

  @doc """
  Whether `state` is the bottom of its type, `type.is_bottom(state)`.

  ## Examples

      iex> LaspConverge.CRDT.is_bottom(LaspConverge.CRDT.new(:state_orset))
      true

      iex> LaspConverge.CRDT.is_bottom({:state_gcounter, [alice: 1]})
      false
  """
  @spec is_bottom(t()) :: boolean()
  def is_bottom(state) do
    :lasp_converge_crdt.is_bottom(state)
  rescue
    e in ErlangError -> reraise_badcrdt(e, __STACKTRACE__)
  end

  @doc """
  The value of a state, `type.query(state)`, exactly as lasp-lang/types
  returns it: an OTP `:sets` set for the set-valued types (`:state_gset`,
  `:state_twopset`, `:state_orset`, `:state_awset`, `:state_awset_ps`,
  `:state_mvregister`), an integer for counters and `:state_max_int`, a
  boolean for `:state_boolean` and the flags, the stored value for the
  registers, a list of `{key, value}` for the maps and a pair of values for
  `:state_pair`. See `value/1` for a `MapSet` instead of a `:sets` set.

  ## Examples

      iex> LaspConverge.CRDT.query({:state_pncounter, [alice: {5, 2}, bob: {1, 0}]})
      4

      iex> LaspConverge.CRDT.query({:state_twopset, {[1, 2, 3], [2]}}) |> :sets.to_list() |> Enum.sort()
      [1, 3]
  """
  @spec query(t()) :: term()
  def query(state) do
    :lasp_converge_crdt.query(state)
  rescue
    e in ErlangError -> reraise_badcrdt(e, __STACKTRACE__)
  end

  @doc """
  Like `query/1`, but a set-valued type's value comes back as a `MapSet`,
  which Elixir code can compare, enumerate and pattern-match on directly.
  Every other type's value is the same as `query/1`.

  ## Examples

      iex> LaspConverge.CRDT.value({:state_gset, [1, 2]})
      MapSet.new([1, 2])

      iex> LaspConverge.CRDT.value({:state_gcounter, [alice: 2, bob: 3]})
      5
  """
  @spec value(t()) :: term()
  def value({type, _} = state) when type in @set_types do
    state |> query() |> :sets.to_list() |> MapSet.new()
  end

  def value(state), do: query(state)

  @doc """
  The part of `a` that `b` lacks: the join of the join-irreducible parts of
  `a` that strictly inflate `b` (lasp-lang/types'
  `delta(a, {:state, b})`). `merge(delta(a, b), b)` equals `merge(a, b)`,
  and the delta is usually much smaller to send.

  ## Examples

      iex> LaspConverge.CRDT.delta({:state_gset, [1, 2, 3]}, {:state_gset, [2]})
      {:state_gset, [1, 3]}
  """
  @spec delta(t(), t()) :: t()
  def delta(a, b) do
    :lasp_converge_crdt.delta(a, b)
  rescue
    e in ErlangError -> reraise_badcrdt(e, __STACKTRACE__)
  end

  @doc """
  Applies one local operation by `actor`, `type.mutate(op, actor, state)`.

  Returns `{:ok, new_state}`, or `{:error, reason}` where lasp-lang/types
  answers so (as its `state_bcounter` refuses a decrement beyond the
  actor's rights). Raises `LaspConverge.CRDTError` when the state is bad or
  the type has no such operation. As in lasp-lang/types, removing an absent
  element is not an error: it leaves the state as it was.

  The operations are the type's own: `:increment` and `:decrement` for
  counters, `{:add, e}`, `{:add_all, es}`, `{:rmv, e}` and `{:rmv_all, es}`
  for sets, `{:set, timestamp, value}` for `:state_lwwregister`, `:enable`
  and `:disable` for flags, `true` for `:state_boolean`, ...

  ## Examples

      iex> {:ok, counter} = LaspConverge.CRDT.mutate(:increment, :alice, LaspConverge.CRDT.new(:state_gcounter))
      iex> counter
      {:state_gcounter, [alice: 1]}

      iex> LaspConverge.CRDT.mutate({:rmv, 1}, :alice, LaspConverge.CRDT.new(:state_orset))
      {:ok, {:state_orset, []}}

      iex> LaspConverge.CRDT.mutate({:add, 1}, :alice, LaspConverge.CRDT.new(:state_gcounter))
      ** (LaspConverge.CRDTError) operation not supported by :state_gcounter (reason: {:unknown_op, :state_gcounter})
  """
  @spec mutate(op(), actor(), t()) :: {:ok, t()} | {:error, term()}
  def mutate(op, actor, state) do
    :lasp_converge_crdt.mutate(op, actor, state)
  rescue
    e in ErlangError -> reraise_badcrdt(e, __STACKTRACE__)
  end

  @doc """
  Like `mutate/3`, but returns the new state, and raises
  `LaspConverge.CRDTError` with `reason` on `{:error, reason}` too.

  ## Examples

      iex> set = LaspConverge.CRDT.mutate!({:add, :x}, :alice, LaspConverge.CRDT.new(:state_awset))
      iex> LaspConverge.CRDT.value(set)
      MapSet.new([:x])
  """
  @spec mutate!(op(), actor(), t()) :: t()
  def mutate!(op, actor, state) do
    case mutate(op, actor, state) do
      {:ok, new_state} -> new_state
      {:error, reason} -> raise CRDTError, reason: reason
    end
  end

  @doc """
  Applies one local operation by `actor` and returns only its delta,
  `type.delta_mutate(op, actor, state)`: what Lasp's delta-based mode sends.
  Merging the delta into `state` gives what `mutate/3` gives.

  Returns `{:ok, delta}` or `{:error, reason}`, and raises like `mutate/3`.

  ## Examples

      iex> LaspConverge.CRDT.delta_mutate(:increment, :bob, {:state_gcounter, [alice: 4, bob: 1]})
      {:ok, {:state_gcounter, [bob: 2]}}
  """
  @spec delta_mutate(op(), actor(), t()) :: {:ok, t()} | {:error, term()}
  def delta_mutate(op, actor, state) do
    :lasp_converge_crdt.delta_mutate(op, actor, state)
  rescue
    e in ErlangError -> reraise_badcrdt(e, __STACKTRACE__)
  end

  @doc """
  Like `delta_mutate/3`, but returns the delta and raises
  `LaspConverge.CRDTError` on `{:error, reason}`.

  ## Examples

      iex> LaspConverge.CRDT.delta_mutate!({:add, 3}, :alice, {:state_gset, [1, 2]})
      {:state_gset, [3]}
  """
  @spec delta_mutate!(op(), actor(), t()) :: t()
  def delta_mutate!(op, actor, state) do
    case delta_mutate(op, actor, state) do
      {:ok, delta} -> delta
      {:error, reason} -> raise CRDTError, reason: reason
    end
  end

  # `error:{badcrdt, Why}` reaches Elixir as an ErlangError; anything else
  # (a bug, or `badarg` from rustler) is re-raised as it came.
  defp reraise_badcrdt(%ErlangError{original: {:badcrdt, why}}, stacktrace) do
    reraise CRDTError, [reason: why], stacktrace
  end

  defp reraise_badcrdt(error, stacktrace), do: reraise(error, stacktrace)
end
