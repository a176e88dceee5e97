"""Robustness: the NIF (through the loader and through a real Erlang VM) survives hostile model
files: truncations, corrupted copies, random bytes, a directory, and the minimised inputs that
crashed upstream."""
import os
import random
import subprocess

from conftest import needs


def mutations(model, count, seed=1234):
    """Truncations, bit flips (biased to the metadata at the front), and random files."""
    rng = random.Random(seed)
    size = len(model)
    header = min(size, 16384)
    cases = []
    for i in range(count // 4):
        cases.append(("truncated", model[:rng.randrange(0, size)]))
    for i in range(count // 2):
        data = bytearray(model)
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(0, header) if rng.random() < 0.8 else rng.randrange(0, size)
            data[pos] = rng.randrange(256)
        cases.append(("corrupted", bytes(data)))
    while len(cases) < count:
        n = rng.randrange(0, 4096)
        prefix = b"GGUF\x03\x00\x00\x00" if rng.random() < 0.5 else b""
        cases.append(("random", prefix + bytes(rng.randrange(256) for _ in range(n))))
    return cases


def run_probes(loader, nif, files, timeout=120):
    """Feeds files to `nif_loader --probe`; a crash or hang is recorded against the file that was
    being probed and probing resumes after it. Returns {file: 'ok'|'error'|'CRASH ...'|'HANG'}."""
    results, pending = {}, list(files)
    while pending:
        proc = subprocess.Popen([loader, nif, os.path.dirname(pending[0]), "--probe", *pending],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            out += "\nHANG"
        current = None
        for line in out.splitlines():
            if line.startswith("probe ") and line.count(" ") == 1:
                current = line.split(" ", 1)[1]
            elif line.startswith("result "):
                _, name, verdict = line.split(" ", 2)
                results[name] = verdict
                current = None
        if current is None:  # finished (or died between files, which never happens)
            for name in pending:
                results.setdefault(name, "MISSING")
            break
        results[current] = "HANG" if out.endswith("HANG") else f"CRASH (exit {proc.returncode})"
        pending = pending[pending.index(current) + 1:]
    return results


def test_hostile_model_files_never_crash_the_nif(cpu_nif, tmp_path):
    loader = cpu_nif["loader"]
    model = open(cpu_nif["model"], "rb").read()
    files = []
    for i, (kind, data) in enumerate(mutations(model, 400)):
        path = tmp_path / f"{i:04d}-{kind}.gguf"
        path.write_bytes(data)
        files.append(str(path))
    (tmp_path / "a-directory.gguf").mkdir()
    files.append(str(tmp_path / "a-directory.gguf"))
    results = {os.path.basename(k): v for k, v in run_probes(loader, cpu_nif["path"], files).items()}
    bad = {k: v for k, v in results.items() if v not in ("ok", "error")}
    counts = {v: sum(1 for x in results.values() if x == v) for v in set(results.values())}
    print(f"hostile inputs: {len(results)} files tried: {counts}")
    assert len(results) == len(files)
    assert not bad, f"{len(bad)} inputs crashed or hung the NIF: {sorted(bad.items())[:10]}"


def test_hostile_model_files_through_the_erlang_nif(cpu_nif, erlang_ebin, tmp_path):
    """A sample of the same mutations through the real Erlang NIF, all in one VM."""
    needs(cpu_nif["erl_nif"], "Erlang (erl, erl_nif.h)")
    priv = os.path.dirname(cpu_nif["erl_nif"])
    model = open(cpu_nif["model"], "rb").read()
    files = []
    for i, (kind, data) in enumerate(mutations(model, 60, seed=99)):
        path = tmp_path / f"{i:03d}-{kind}.gguf"
        path.write_bytes(data)
        files.append(str(path))
    listing = ", ".join(f'"{f}"' for f in files)
    proc = subprocess.run(["erl", "-noshell", "-pa", erlang_ebin, "-eval",
                           f"llama_nif_selftest:probe([{listing}]), halt(0)."],
                          env={**os.environ, "LLAMA_NIF_PRIV": priv}, capture_output=True, text=True, timeout=300)
    results = [line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("result ")]
    print(f"Erlang NIF hostile inputs: {len(results)} files, {results.count('ok')} ok, {results.count('error')} errors")
    assert proc.returncode == 0 and "ERLANG PROBE DONE" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert len(results) == len(files)


def test_minimised_crash_inputs_are_errors(cpu_nif):
    """Inputs that crashed upstream b11312, minimised and kept (patches/0003)."""
    loader = cpu_nif["loader"]
    data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
    files = sorted(os.path.join(data, f) for f in os.listdir(data) if f.endswith(".gguf"))
    assert files
    assert run_probes(loader, cpu_nif["path"], files) == {f: "error" for f in files}
