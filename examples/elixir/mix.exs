defmodule Mix.Tasks.Compile.LlamaNif do
  @moduledoc "Runs ../make/Makefile with PRIV_DIR set to this app's priv/ (what elixir_make does)."
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    priv = Path.join(Mix.Project.app_path(), "priv")
    makefile_dir = Path.expand("../make", __DIR__)
    conan_deps = System.get_env("CONAN_DEPS_DIR") || Path.join(makefile_dir, "build/conan")

    case System.cmd("make", ["-C", makefile_dir, "PRIV_DIR=#{priv}", "CONAN_DEPS_DIR=#{conan_deps}"],
           stderr_to_stdout: true
         ) do
      {_, 0} -> {:ok, []}
      {out, status} -> Mix.raise("make failed (#{status}):\n#{out}")
    end
  end
end

defmodule LlamaEx.MixProject do
  use Mix.Project

  # No Hex dependencies: the NIF is built by ../make/Makefile (elixir_make's shape) through the
  # compiler task above, from the llama-cpp Conan package's MakeDeps flags.
  def project do
    [
      app: :llama_ex,
      version: "0.1.0",
      elixir: "~> 1.14",
      compilers: [:llama_nif] ++ Mix.compilers(),
      deps: []
    ]
  end

  def application, do: [extra_applications: []]
end
