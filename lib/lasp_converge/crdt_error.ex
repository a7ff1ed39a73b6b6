defmodule LaspConverge.CRDTError do
  @moduledoc """
  Raised by `LaspConverge.CRDT` when an input is not a CRDT state this library
  accepts, or when lasp-lang/types itself would raise on it.

  The Erlang API raises `error:{badcrdt, Why}`; the Elixir façade raises this
  exception instead, with `Why` in the `:reason` field, so callers can still
  pattern-match on it:

      try do
        LaspConverge.CRDT.merge(a, b)
      rescue
        e in LaspConverge.CRDTError ->
          case e.reason do
            {:type_mismatch, left, right} -> ...
            other -> ...
          end
      end

  The reasons (see `:lasp_converge_crdt`) are

    * `:not_a_crdt` - not a `{Type, Payload}` tuple
    * `:unknown_type` - the type atom names no type this library implements
    * `{:type_mismatch, type_a, type_b}` - two states of different types
    * `{:malformed, type}` - the payload does not have the type's shape
    * `{:unsorted, type}` - an ordset or orddict is out of order
    * `{:improper_list, type}` - a list in the payload is improper
    * `:too_deep` and `:too_large` - past the documented limits
    * `{:conflict, type}` - lasp-lang/types raises on this input
      (for example two different `state_ivar` values)
    * `{:not_identical, type}` - two keys compare `==` but are not `===`
      where lasp-lang/types matches keys exactly
    * `{:unknown_op, type}` - an operation the type does not accept
    * `{:bad_binary, why}` - bytes that `LaspConverge.Replica.to_binary/1`
      did not write (`:bad_magic`, `:bad_version`, `:truncated`,
      `:unsorted`, `:malformed`, or `:unsupported` for an atom this VM lacks)

  `LaspConverge.CRDT.mutate!/3` and `LaspConverge.CRDT.delta_mutate!/3` also
  raise it for an `{:error, reason}` answer of lasp-lang/types, such as
  `{:precondition, :non_enough_permissions}`.
  """

  defexception [:reason]

  @type t :: %__MODULE__{reason: term()}

  @impl Exception
  def message(%__MODULE__{reason: reason}) do
    describe(reason) <> " (reason: " <> inspect(reason) <> ")"
  end

  defp describe(:not_a_crdt), do: "not a {type, payload} CRDT state"
  defp describe(:unknown_type), do: "unknown CRDT type"

  defp describe({:type_mismatch, left, right}),
    do: "cannot combine a #{inspect(left)} with a #{inspect(right)}"

  defp describe({:malformed, type}), do: "malformed #{inspect(type)} payload"
  defp describe({:unsorted, type}), do: "#{inspect(type)} payload is not sorted"
  defp describe({:improper_list, type}), do: "improper list in #{inspect(type)} payload"
  defp describe(:too_deep), do: "state nested too deeply"
  defp describe(:too_large), do: "state too large"

  defp describe({:conflict, type}),
    do: "lasp-lang/types raises on this #{inspect(type)} input"

  defp describe({:not_identical, type}),
    do: "#{inspect(type)} keys compare equal but are not identical"

  defp describe({:unknown_op, type}), do: "operation not supported by #{inspect(type)}"
  defp describe({:not_implemented, type}), do: "#{inspect(type)} is not implemented yet"
  defp describe({:precondition, _}), do: "operation precondition failed"
  defp describe({:bad_binary, why}), do: "not a replica binary (#{why})"
  defp describe(_), do: "bad CRDT input"
end
