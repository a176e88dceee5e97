"""The fuzzing regression corpus, tests/data/fuzz/<harness>/: inputs that crashed, aborted, hung or
overflowed the stack with upstream b11312 (found by bench/fuzz.py's libFuzzer runs or by
tests/test_hostile_api.py, written in the harness's input format; `.gz` files are stored
compressed), replayed through the same harness code (tests/programs/fuzz, built into one
`fuzz_replay` program) against the normal package, each input in its own process: it must exit
normally within the time limit. The harnesses catch llama-common's exceptions, nothing else."""
import glob
import gzip
import os
import subprocess

import pytest

from conftest import ROOT
from harness import extract_upstream

CORPUS = os.path.join(ROOT, "tests", "data", "fuzz")
HARNESSES = ("tokenize", "grammar", "schema", "template", "gguf")


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    """The vocabulary the harnesses load ($LLAMA_FUZZ_VOCAB), as bench/fuzz.py gives it."""
    src = extract_upstream(tmp_path_factory.mktemp("fuzz-vocab"), "models/ggml-vocab-llama-bpe.gguf")
    return os.path.join(src, "models", "ggml-vocab-llama-bpe.gguf")


def test_every_harness_has_a_corpus():
    assert sorted(os.listdir(CORPUS)) == sorted(HARNESSES)
    for harness in HARNESSES:
        assert os.listdir(os.path.join(CORPUS, harness)), f"no regression input for {harness}"


@pytest.mark.parametrize("harness", HARNESSES)
def test_corpus_replays(cpu_nif, vocab, tmp_path, harness):
    replay = os.path.join(os.path.dirname(cpu_nif["loader"]), "fuzz_replay")
    assert os.path.exists(replay), "tests/programs builds fuzz_replay when the package has llama-common"
    failed = {}
    names = sorted(os.listdir(os.path.join(CORPUS, harness)))
    for name in names:
        path = os.path.join(CORPUS, harness, name)
        if name.endswith(".gz"):
            with gzip.open(path) as f:
                data = f.read()
            path = str(tmp_path / name[:-3])
            with open(path, "wb") as f:
                f.write(data)
        try:
            proc = subprocess.run([replay, harness, path], capture_output=True, text=True, errors="replace", timeout=60,
                                  env={**os.environ, "LLAMA_FUZZ_VOCAB": vocab, "GGML_NO_BACKTRACE": "1",
                                       "TMPDIR": str(tmp_path)})
        except subprocess.TimeoutExpired:
            failed[name] = "no exit within 60 s"
            continue
        if proc.returncode != 0 or "replayed" not in proc.stdout:
            failed[name] = f"exit status {proc.returncode}: {proc.stderr.strip()[-500:]}"
    print(f"{harness}: {len(names) - len(failed)} of {len(names)} inputs replayed")
    assert not failed, failed
    # a harness's scratch files (fuzz_gguf's model file) go to $TMPDIR and are removed after each input
    assert not glob.glob(str(tmp_path / "llama-fuzz-*")), os.listdir(tmp_path)
