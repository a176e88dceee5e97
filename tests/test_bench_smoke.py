"""bench/ in CI, in seconds: every script starts (imports what it uses from tests/, parses its
arguments) and stops before building anything, and the bench model writer (bench/make_model.py)
makes files llama.cpp loads and decodes. What the scripts then build, run and report is not run
here: they take from minutes to an hour each (figures in docs/)."""
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
}


def test_every_bench_script_is_listed():
    scripts = {f for f in os.listdir(BENCH) if f.endswith(".py")}
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


def test_bench_models_load_and_decode(cpu_nif, oracle, tmp_path):
    """bench/make_model.py's writer (the F16 and the directly drawn Q4_0 matrices) at a tiny shape:
    llama.cpp opens both files and gives finite logits."""
    np, gguf = oracle["np"], oracle["gguf"]
    make_model = oracle["ref"].bench_models()
    rng = np.random.default_rng(1)

    def f16(w, name, rows, cols):
        w.add_tensor(name, (rng.standard_normal((rows, cols)) * 0.02).astype(np.float16))

    models = []
    for ftype, matrix in (("F16", f16), ("Q4_0", make_model.q4_0_matrix(gguf, np, rng))):
        path = str(tmp_path / f"bench-{ftype.lower()}.gguf")
        file_type = getattr(gguf.LlamaFileType, f"MOSTLY_{ftype}")
        make_model.write_random_llama(gguf, np, path, "smoke", file_type, 64, 2, 2, 128, 2, 128, 32, matrix)
        models.append(path)
    _, logits = run_logits(cpu_nif, str(tmp_path / "run"), models, [1, 259, 260, 270])
    for path, values in logits.items():
        assert values.shape == (4, 259 + 32) and np.isfinite(values).all() and values.std() > 0, path
