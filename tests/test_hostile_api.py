"""A NIF's callers hand it token ids, output indices, sequence ids, grammars, JSON schemas and chat
templates. Each hostile value below goes to one llama.h call from C (tests/programs/nif/hostile.c;
a C caller cannot catch a C++ exception) or to llama-common's C++ API, each in its own loader
process: the call must return its error value (or, for llama-common, throw an exception the NIF
catches) and the process must exit normally, within the time limit (a hang fails too). The sane
values beside them must succeed, so a call that always fails passes nothing."""
import os
import subprocess

import pytest

N = 100_000  # nesting depth of the deep values: far beyond any limit, and beyond the stack without one


def deep_json(depth):
    return '{"type": "array", "items": ' * depth + '{"type": "string"}' + "}" * depth


HOSTILE = {  # name -> (kind, value)
    "piece of token -1": ("piece", "-1"),
    "piece of token n_vocab": ("piece", "n_vocab"),
    "piece of token 5000000": ("piece", "5000000"),
    "detokenize token -5": ("detokenize", "-5"),
    "detokenize token 1000000": ("detokenize", "1000000"),
    "text of token 99999": ("text", "99999"),
    "text of token -1": ("text", "-1"),
    "score of token 99999": ("score", "99999"),
    "attr of token 99999": ("attr", "99999"),
    "sample output index 7": ("sample", "7"),
    "sample output index -5": ("sample", "-5"),
    "sample output index 1000": ("sample", "1000"),
    "sequence id 256": ("seq", "256"),  # LLAMA_MAX_SEQ: the KV cache has 256 (0..255 work)
    "sequence id -7": ("seq", "-7"),
    "sequence id 1000000": ("seq", "1000000"),
    "grammar accepts token -1": ("accept", "-1"),
    "grammar accepts token n_vocab": ("accept", "n_vocab"),
    "grammar accepts a token it does not allow": ("accept", "disallowed"),
    "grammar accepts end of generation too early": ("accept", "eos"),
    "grammar with deeply nested groups": ("grammar", "root ::= " + "(" * N + '"a"' + ")" * N),
    "grammar with a long chain of rules": ("grammar", "\n".join(f"r{i} ::= r{i + 1} \"x\"" for i in range(N))
                                           .replace("r0 ::=", "root ::=") + f"\nr{N} ::= \"a\""),
    "grammar with a repetition whose maximum is below its minimum": ("grammar", 'root ::= [a-z]{6,5}'),
    "trigger pattern that is no regex": ("trigger", "(unclosed"),
    "trigger pattern deeply nested": ("trigger", "(" * N + "a" + ")" * N),
    "JSON schema deeply nested": ("schema", deep_json(N)),
    "JSON array deeply nested": ("schema", "[" * N + "]" * N),
    "decode with pos NULL and sequence id 200000000": ("decode_seq", "200000000"),
    "decode a token with no sequence id": ("decode_nseq", "0"),
    "decode one token more than n_batch": ("decode_many", "n_batch+1"),
    "divide positions by 0": ("seq_div", "0"),
    "sample from no candidates": ("candidates", "0"),
    "sample with a chain that selects nothing": ("chain", "top_k"),
    "grammar candidate outside the vocabulary": ("candidate", "1000000"),
    "grammar candidate -3": ("candidate", "-3"),
    "grammar without a root name": ("grammar_root", "NULL"),
    "batch of -5 tokens": ("batch_init", "-5,0,1"),
    "batch with no sequence ids": ("batch_init", "8,0,0"),
    "chat message with a NULL role": ("chat_role", "NULL"),
    "infill candidate outside the vocabulary": ("infill", "1000000"),
    "chat template with a recursive macro": ("template", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
    "chat template with an endless loop": ("template", "{% for a in range(100000) %}{% for b in range(100000) %}"
                                                       "{{ a }}{% endfor %}{% endfor %}"),
    "chat template with a deep expression": ("template", "{{ " + "(" * N + "1" + ")" * N + " }}"),
}
SANE = {  # the same calls with values that must work
    "piece of token 1": ("piece", "1"),
    "detokenize token 1": ("detokenize", "1"),
    "text of token 1": ("text", "1"),
    "score of token 1": ("score", "1"),
    "attr of token 1": ("attr", "1"),
    "sample output index -1": ("sample", "-1"),
    "sequence id 0": ("seq", "0"),
    "sequence id 255": ("seq", "255"),
    "grammar of one word": ("grammar", 'root ::= [a-z]+'),
    "decode with pos NULL and sequence id 0": ("decode_seq", "0"),
    "decode a token with one sequence id": ("decode_nseq", "1"),
    "decode 8 tokens": ("decode_many", "8"),
    "divide positions by 2": ("seq_div", "2"),
    "sample from 8 candidates": ("candidates", "8"),
    "sample with top-k and greedy": ("chain", "top_k,greedy"),
    "grammar candidate a letter": ("candidate", "letter"),
    "grammar with its root name": ("grammar_root", "root"),
    "batch of 8 tokens": ("batch_init", "8,0,1"),
    "chat message with a role": ("chat_role", "user"),
    "infill candidate 302": ("infill", "302"),
    "grammar accepts a token it allows": ("accept", "allowed"),
    "grammar with a bounded repetition": ("grammar", 'root ::= [a-z]{2,5}'),
    "grammar with nested groups": ("grammar", "root ::= " + "(" * 20 + "[a-z]" + ")+" * 20),
    "trigger pattern": ("trigger", "[a-z]+"),
    "JSON schema": ("schema", deep_json(10)),
    "chat template": ("template", "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"),
    # an endless template fails its common_chat_templates_init/apply call; a direct render on the
    # same thread afterwards must not inherit that call's exhausted step budget
    "direct render after an endless template": ("template_then_direct", "{% for a in range(100000) %}"
                                                "{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}"),
}


def call(nif, kind, value, work, timeout=60):
    """nif_loader --call in its own process: ('error'|'ok'|'unknown', what came back), or
    ('CRASH', status) / ('HANG', ...)."""
    os.makedirs(work, exist_ok=True)
    value_file = os.path.join(work, "value")
    with open(value_file, "w") as f:
        f.write(value)
    try:
        proc = subprocess.run([nif["loader"], nif["path"], str(work), "--call", nif["model"], kind, value_file],
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "GGML_NO_BACKTRACE": "1"})
    except subprocess.TimeoutExpired:
        return "HANG", f"no answer within {timeout} s"
    line = next((x for x in proc.stdout.splitlines() if x.startswith("call ")), "")
    if proc.returncode != 0 or ": " not in line:
        return "CRASH", f"exit status {proc.returncode}; {line!r}; {proc.stderr.strip()[-500:]}"
    verdict, what = line.split(" ", 2)[2].split(": ", 1)
    return verdict, what


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_value_is_an_error(cpu_nif, tmp_path, name):
    kind, value = HOSTILE[name]
    verdict, what = call(cpu_nif, kind, value, tmp_path)
    print(f"{name}: {verdict}: {what[:300]}")
    assert verdict == "error", f"{name}: {verdict}: {what[:2000]}"


@pytest.mark.parametrize("name", sorted(SANE))
def test_sane_value_works(cpu_nif, tmp_path, name):
    kind, value = SANE[name]
    verdict, what = call(cpu_nif, kind, value, tmp_path)
    assert verdict == "ok", f"{name}: {verdict}: {what[:2000]}"


def test_upstream_templates_render(cpu_nif, tmp_path):
    """The template bounds (patch 0009) leave every real chat template upstream ships in
    models/templates working: each renders one user message, and a system message with 64 turns."""
    from harness import extract_upstream
    folder = os.path.join(extract_upstream(tmp_path / "src", "models/templates"), "models", "templates")
    names = sorted(f for f in os.listdir(folder) if f.endswith(".jinja"))
    assert len(names) > 20, names
    failed = {}
    for name in names:
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            text = f.read()
        for kind in ("template", "template_long"):
            verdict, what = call(cpu_nif, kind, text, tmp_path / "w")
            if verdict != "ok":
                failed[f"{name} ({kind})"] = f"{verdict}: {what[-300:]}"
    print(f"{len(names) - len(failed)} of {len(names)} templates rendered")
    assert not failed, failed


def test_hostile_values_through_the_erlang_nif(cpu_nif, erlang_ebin):
    """One value per class above through the real Erlang NIF, on a dirty CPU scheduler (whose stack
    is smaller than a main thread's): every one comes back as {error, _} and the VM then still
    generates (llama_nif_selftest:hostile_main)."""
    from conftest import needs
    needs(cpu_nif["erl_nif"], "Erlang (erl_nif.h)")
    proc = subprocess.run(["erl", "-noshell", "-pa", erlang_ebin, "-s", "llama_nif_selftest", "hostile_main", "-extra",
                           cpu_nif["model"]], env={**os.environ, "LLAMA_NIF_PRIV": os.path.dirname(cpu_nif["erl_nif"]),
                                                   "GGML_NO_BACKTRACE": "1"},
                          capture_output=True, text=True, timeout=600)
    print(proc.stdout[-3000:])
    assert proc.returncode == 0 and "ERLANG HOSTILE OK" in proc.stdout, \
        f"exit status {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.stdout.count("hostile ") == 13, proc.stdout  # the cases of hostile_main
