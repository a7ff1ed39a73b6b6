# mix.exs loads this file before Mix compiles lib/ (a compiler has to exist
# before the compile that uses it), so skip the definition when compiling lib/
# would only redefine the module already loaded.
unless Code.ensure_loaded?(Mix.Tasks.Compile.LaspConvergeNif) do
  defmodule Mix.Tasks.Compile.LaspConvergeNif do
    @moduledoc """
    Builds the NIF with `make nif` (what elixir_make does, in a few lines,
    since no hex package can be fetched here).

    The Makefile alone owns `cargo build` and the copy into `priv/`; this
    compiler runs it and then relinks `priv/` into `_build`, so that
    `code:priv_dir(lasp_converge)` finds `lasp_converge_nif.so` even on the
    first build of a fresh clone, when `priv/` did not exist yet. Where
    `make docs` has written the Erlang modules' doc chunks, it links `doc/`
    into the build too, so `h :lasp_converge_crdt` works in `iex -S mix`.
    """
    use Mix.Task.Compiler

    @impl Mix.Task.Compiler
    def run(_args) do
      root = Path.dirname(Mix.Project.project_file())
      make = System.get_env("MAKE", "make")

      if System.find_executable(make) == nil do
        error("cannot find `#{make}` on PATH")
      else
        case System.cmd(make, ["nif"],
               cd: root,
               into: IO.stream(:stdio, :line),
               stderr_to_stdout: true
             ) do
          {_, 0} ->
            Mix.Project.build_structure()
            link_doc_chunks(root)
            {:ok, []}

          {_, status} ->
            error("`#{make} nif` exited with status #{status}")
        end
      end
    end

    # The Erlang modules' doc chunks (`make docs` writes them to doc/chunks)
    # are found by `h :lasp_converge_crdt` in iex beside the application's
    # ebin, so link doc/ into the build as priv/ is.
    defp link_doc_chunks(root) do
      chunks = Path.join([root, "doc", "chunks"])
      link = Path.join(Mix.Project.app_path(), "doc")

      if File.dir?(chunks) and not File.exists?(link) do
        _ = File.ln_s(Path.join(root, "doc"), link)
      end

      :ok
    end

    defp error(message) do
      Mix.shell().error("compile.lasp_converge_nif: " <> message)

      {:error,
       [
         %Mix.Task.Compiler.Diagnostic{
           compiler_name: "lasp_converge_nif",
           file: Path.join(File.cwd!(), "Makefile"),
           message: message,
           position: nil,
           severity: :error
         }
       ]}
    end
  end
end
