"""bench/ in CI, in seconds: every script starts (imports bench/harness.py and the recipe's
llama_cpp_recipe, parses its arguments) and stops before building anything, and the bench model writer (bench/make_model.py)
makes files llama.cpp loads and decodes. What the scripts then build, run and report is not run
here: they take from minutes to an hour each (figures in docs/). Their measuring and reporting
halves (bench/run.py's runtime pairs, size and dispatch shares; bench/libc_targets.py's speed
pairs) run on the tests' NIF with tiny models and a few tokens."""
import argparse
import datetime
import importlib
import os
import subprocess
import sys

import pytest

from conftest import ROOT, run_logits

BENCH = os.path.join(ROOT, "bench")
# script -> (arguments that make it print its usage or refuse its input, then exit before any work;
# the exit status that means so; a word its output must hold)
STARTS = {
    "run.py": (["--help"], 0, "--variants"),
    "libc_targets.py": (["--help"], 0, "--targets"),
    "cross_backend_ops.py": (["--help"], 0, "--ops"),
    "lavapipe_ops.py": (["--help"], 0, "--ops"),
    "cuda_build.py": (["--help"], 0, "--option"),
    "cuda_gpu_prepare.py": (["--help"], 0, "--work"),
    "cuda_gpu_check.py": (["no-such-step"], 1, "unknown step"),
    "make_model.py": ([], 1, "usage"),
    "cuda_gpu_model.py": ([], 1, "usage"),
    "fuzz.py": (["--harnesses", "no-such-harness"], 1, "unknown no-such-harness"),
    "release_set.py": (["--help"], 0, "--compare"),
}


def test_every_bench_script_is_listed():
    scripts = {f for f in os.listdir(BENCH) if f.endswith(".py")} - {"harness.py"}  # the helpers, not a script
    assert scripts == set(STARTS), scripts ^ set(STARTS)


@pytest.mark.parametrize("script", sorted(STARTS))
def test_bench_script_starts(script, tmp_path):
    args, status, word = STARTS[script]
    proc = subprocess.run([sys.executable, os.path.join(BENCH, script), *args], capture_output=True, text=True,
                          timeout=120, cwd=str(tmp_path), env={**os.environ, "GPUCHECK_WORK": str(tmp_path / "w"),
                                                               "OUT": str(tmp_path / "out")})
    out = proc.stdout + proc.stderr
    assert proc.returncode == status and word in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert os.listdir(tmp_path) == [], "it must stop before doing any work"


def tiny_bench_models(oracle, folder):
    """bench/make_model.py's writer (its F16 and its directly drawn Q4_0 matrices) at a tiny shape,
    named as the bench scripts name their models: {"F16": path, "Q4_0": path}."""
    np, gguf = oracle["np"], oracle["gguf"]
    make_model = oracle["ref"].bench_models()
    rng = np.random.default_rng(1)

    def f16(w, name, rows, cols):
        w.add_tensor(name, (rng.standard_normal((rows, cols)) * 0.02).astype(np.float16))

    os.makedirs(folder, exist_ok=True)
    models = {}
    for ftype, matrix in (("F16", f16), ("Q4_0", make_model.q4_0_matrix(gguf, np, rng))):
        path = os.path.join(folder, f"bench-{ftype.lower()}.gguf")
        file_type = getattr(gguf.LlamaFileType, f"MOSTLY_{ftype}")
        make_model.write_random_llama(gguf, np, path, "smoke", file_type, 64, 2, 2, 128, 2, 128, 32, matrix)
        models[ftype] = path
    return models


def test_bench_models_load_and_decode(cpu_nif, oracle, tmp_path):
    """The bench models at a tiny shape: llama.cpp opens both files and gives finite logits."""
    np = oracle["np"]
    models = list(tiny_bench_models(oracle, str(tmp_path)).values())
    _, logits = run_logits(cpu_nif, str(tmp_path / "run"), models, [1, 259, 260, 270])
    for path, values in logits.items():
        assert values.shape == (4, 259 + 32) and np.isfinite(values).all() and values.std() > 0, path


def test_bench_measure_and_report(cpu_nif, oracle, tmp_path):
    """The measuring and reporting code of bench/run.py and bench/libc_targets.py, on the tests' NIF
    standing in for every build (pp 8 and tg 4 tokens, 2 pairs): each row holds one positive rate
    per repetition and one ratio per pair, and the reports print those rows."""
    # bench/ is on sys.path (pytest.ini): the scripts import `harness`, the same module as the tests'
    run, libc = importlib.import_module("run"), importlib.import_module("libc_targets")
    nif, work = cpu_nif["path"], str(tmp_path / "libc")
    models = tiny_bench_models(oracle, work)  # where bench_speed() looks for its models first

    rows = run.bench_runtime({}, models, {"native": nif, run.DEFAULT: nif}, 1, 2, n_prompt=8, n_gen=4)
    assert [(r["model"], r["build"]) for r in rows] == [(m, b) for m in models for b in ("native", run.DEFAULT)]
    for r in rows:
        assert len(r["pp"]) == len(r["tg"]) == len(r["pp_native"]) == 2, r
        assert min(r["pp"] + r["tg"] + r["pp_native"] + r["tg_native"]) > 0, r
        assert r["pp_ratio"] is None and r["pp_dl"] is None, r  # no upstream row measured
    shares = run.variant_shares(nif)
    assert set(shares) == set(run.variant_prefixes().values()) and min(shares.values()) > 0, shares
    sizes = {run.DEFAULT: {"stripped": run.stripped_size(nif, str(tmp_path)), "shares": shares, "create": 1.0}}
    assert 0 < sizes[run.DEFAULT]["stripped"] < os.path.getsize(nif)
    text = run.report(argparse.Namespace(repeat=2, threads=1), None, None, rows, datetime.datetime.now(), sizes)
    table = [line for line in text.splitlines() if line.startswith(("| F16 |", "| Q4_0 |"))]
    assert len(table) == 4 and all(line.count("|") == 8 for line in table), text

    base, other, speed = libc.bench_speed({"gcc": nif, "zig": nif}, work, 2, 1, n_prompt=8, n_gen=4)
    assert (base, other) == ("gcc", "zig")
    assert [(r["model"], r["what"]) for r in speed] == [("F16", "pp8"), ("F16", "tg4"), ("Q4_0", "pp8"), ("Q4_0", "tg4")]
    assert all(len(r["ratio"]) == 2 and min(r["ratio"] + r["base"] + r["other"]) > 0 for r in speed), speed
    text = libc.report(argparse.Namespace(threads=1, repeat=2, skip_speed=False), datetime.datetime.now(), {}, [], [],
                       (base, other, speed))
    assert "### Speed: zig against gcc" in text and text.count("| F16 |") == 2 and text.count("| Q4_0 |") == 2, text
