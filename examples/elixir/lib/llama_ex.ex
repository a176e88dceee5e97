defmodule LlamaEx do
  @moduledoc "Greedy text generation through the statically linked llama.cpp NIF."

  @doc "llama.cpp's system information string (CPU features the build uses)."
  defdelegate system_info(), to: LlamaEx.Nif

  @doc "Generates `n_predict` token ids after `prompt`; `{:ok, tokens}` or `{:error, reason}`."
  def generate(model_path, prompt, n_predict), do: LlamaEx.Nif.generate(model_path, prompt, n_predict)

  @doc "The model's chat template (llama-common) around one user message: `{:ok, prompt}` or `{:error, reason}`."
  def chat_prompt(model_path, message), do: LlamaEx.Nif.chat_prompt(model_path, message)
end

defmodule LlamaEx.Nif do
  @moduledoc false
  @on_load :load_nif

  def load_nif do
    path = :filename.join(:code.priv_dir(:llama_ex), ~c"llama_ex_nif")
    :erlang.load_nif(path, 0)
  end

  def system_info, do: :erlang.nif_error(:not_loaded)
  def generate(_model_path, _prompt, _n_predict), do: :erlang.nif_error(:not_loaded)
  def chat_prompt(_model_path, _message), do: :erlang.nif_error(:not_loaded)
end
