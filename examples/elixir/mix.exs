defmodule Mix.Tasks.Compile.LlamaNif do
  @moduledoc """
  Puts the NIF in this app's priv/: with LLAMA_EX_PRECOMPILED set to a folder that
  examples/precompiled/release.py wrote, the archive for this machine, verified and unpacked the
  way elixir_make does it for a precompiled NIF; otherwise built by ../make/Makefile with PRIV_DIR
  set to priv/ (what elixir_make's compile step does).
  """
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    priv = Path.join(Mix.Project.app_path(), "priv")

    case System.get_env("LLAMA_EX_PRECOMPILED") do
      nil -> make(priv)
      dist -> precompiled(dist, priv)
    end
  end

  # cc_precompiler's name for this machine: arch-os-abi of the VM's system_architecture
  # (x86_64-pc-linux-gnu -> x86_64-linux-gnu), or TARGET_ARCH/TARGET_OS/TARGET_ABI when set
  defp current_target do
    case {System.get_env("TARGET_ARCH"), System.get_env("TARGET_OS"), System.get_env("TARGET_ABI")} do
      {nil, nil, nil} ->
        case String.split(to_string(:erlang.system_info(:system_architecture)), "-") do
          [arch, _vendor, os, abi] -> "#{arch}-#{os}-#{abi}"
          parts -> Enum.join(parts, "-")
        end

      {arch, os, abi} ->
        "#{arch}-#{os}-#{abi}"
    end
  end

  # elixir_make's steps: the archive name, its "sha256:<hex>" in checksum.exs (an Elixir map),
  # then :erl_tar.extract into priv/
  defp precompiled(dist, priv) do
    config = Mix.Project.config()
    name = "#{config[:app]}-nif-#{:erlang.system_info(:nif_version)}-#{current_target()}-#{config[:version]}.tar.gz"
    {checksums, _} = Code.eval_file(Path.join(dist, "checksum.exs"))
    contents = File.read!(Path.join(dist, name))
    expected = Map.get(checksums, name) || Mix.raise("#{name} is not in #{dist}/checksum.exs")
    actual = "sha256:" <> Base.encode16(:crypto.hash(:sha256, contents), case: :lower)
    if actual != expected, do: Mix.raise("#{name} does not match its checksum (#{actual}, expected #{expected})")
    File.mkdir_p!(priv)
    :ok = :erl_tar.extract({:binary, contents}, [:compressed, {:cwd, String.to_charlist(priv)}])
    Mix.shell().info("llama_nif: #{name} (#{actual}) unpacked into priv/")
    {:ok, []}
  end

  defp make(priv) do
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
