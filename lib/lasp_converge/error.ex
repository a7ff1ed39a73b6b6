defmodule LaspConverge.Error do
  @moduledoc """
  Raised by the `!` functions of `LaspConverge` when the plain function
  returns `{:error, reason}`; `reason` is in the `:reason` field.

  The usual reasons: `:not_tracked` (no tracker of the variable on this
  node), `:already_tracked`, `:not_started` (the `:lasp_converge`
  application is not running), `{:unknown_option, key}` and `{:bad_option,
  key, value}` for `LaspConverge.track/2`'s options, `{:bad_ts, ts}`, `:bad_format`,
  `{:aggregator_down, node}` and `{:aggregator_alive, node}` (see
  `guides/tracking.md`), `:too_many_nodes`, and `{:badcrdt, why}` for a
  state that is not a CRDT or not of the tracked type (see
  `LaspConverge.CRDTError` for the values of `why`). `:lasp_converge`'s
  reference documents each call's.

      iex> LaspConverge.stats!({"no such variable", :state_gset})
      ** (LaspConverge.Error) convergence tracking failed: :not_tracked
  """
  defexception [:reason]

  @impl true
  def message(%__MODULE__{reason: reason}),
    do: "convergence tracking failed: #{inspect(reason)}"
end
