defmodule LaspConverge.MixProject do
  use Mix.Project

  # App metadata lives once, in the .app.src that rebar3 uses; this file reads
  # it as telemetry's mix.exs does.
  {:ok, [{:application, :lasp_converge, props}]} =
    :file.consult(Path.join(__DIR__, "src/lasp_converge.app.src"))

  @props props
  @version to_string(props[:vsn])

  # A project's own compiler must exist before Mix compiles lib/, so load it
  # from source here. The file defines the module only when it is not loaded
  # yet, so compiling lib/ does not redefine it.
  Code.require_file("lib/mix/tasks/compile.lasp_converge_nif.ex", __DIR__)

  def project do
    [
      app: :lasp_converge,
      version: @version,
      elixir: "~> 1.14",
      description: to_string(@props[:description]),
      # `make nif` builds the NIF and copies it into priv/, which Mix links
      # into _build so that code:priv_dir(lasp_converge) finds it.
      compilers: [:lasp_converge_nif] ++ Mix.compilers(),
      # rebar3 owns _build/default and _build/test; keep Mix out of its way.
      build_path: "_build/mix",
      erlc_paths: ["src"],
      erlc_include_path: "include",
      elixirc_paths: ["lib"],
      # Only ExUnit files: the EUnit/PropEr/CT .erl files in test/ are rebar3's.
      test_paths: ["test"],
      test_pattern: "*_test.exs",
      deps: [],
      package: package(),
      docs: [main: "LaspConverge.CRDT", source_ref: "v#{@version}"]
    ]
  end

  def application do
    Keyword.take(@props, [:applications, :description, :env, :mod, :registered])
  end

  defp package do
    [
      licenses: Enum.map(Keyword.get(@props, :licenses, []), &to_string/1),
      files:
        ~w(src include lib native Cargo.toml Cargo.lock Makefile rebar.config mix.exs README*)
    ]
  end
end
