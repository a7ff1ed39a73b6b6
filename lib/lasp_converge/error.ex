defmodule LaspConverge.Error do
  @moduledoc """
  Raised by the `!` functions of `LaspConverge` when the plain function
  returns `{:error, reason}`; `reason` is in the `:reason` field.

  Reasons: `:not_tracked` (no tracker of the variable on this node),
  `:already_tracked`, `:not_started` (the `:lasp_converge` application is
  not running), `:bad_opts`, `:bad_ts`, `:bad_format`, and
  `{:badcrdt, why}` for a state that is not a CRDT or not of the tracked
  type (see `LaspConverge.CRDTError` for the values of `why`).

      iex> LaspConverge.stats!({"no such variable", :state_gset})
      ** (LaspConverge.Error) convergence tracking failed: :not_tracked
  """
  defexception [:reason]

  @impl true
  def message(%__MODULE__{reason: reason}),
    do: "convergence tracking failed: #{inspect(reason)}"
end
