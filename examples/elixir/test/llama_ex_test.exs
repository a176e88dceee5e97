defmodule LlamaExTest do
  use ExUnit.Case

  # the tiny seeded model written by test_package's loader; the pytest that runs `mix test` sets it
  @model System.get_env("LLAMA_EX_MODEL")

  test "system info comes from the statically linked llama.cpp" do
    assert LlamaEx.system_info() =~ "CPU"
  end

  test "greedy generation is deterministic" do
    assert {:ok, tokens} = LlamaEx.generate(@model, "hello world", 8)
    assert length(tokens) == 8
    assert {:ok, ^tokens} = LlamaEx.generate(@model, "hello world", 8)
  end

  test "chat template through llama-common (ChatML when the model has none)" do
    assert {:ok, prompt} = LlamaEx.chat_prompt(@model, "hello")
    assert prompt =~ "<|im_start|>user\nhello<|im_end|>"
    assert String.ends_with?(prompt, "<|im_start|>assistant\n")
  end

  test "bad input is an error tuple, not a crash" do
    assert {:error, reason} = LlamaEx.generate("/nonexistent/model.gguf", "hi", 4)
    assert is_binary(reason)
    assert {:error, _} = LlamaEx.generate(@model, String.duplicate("hello ", 300), 4)
    assert_raise ArgumentError, fn -> LlamaEx.generate(@model, "hi", 0) end
  end
end
