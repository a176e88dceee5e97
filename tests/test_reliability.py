"""Supply chain and robustness: reproducible bytes, tamper-proof sources, no network during the
build, interrupt safety, and a NIF that survives hostile model files."""
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import time

import pytest

from conftest import ARCHIVE, REF, SHA256, Conan, build_package, needs, package_folder, profile, source_mirror


def fresh_conan(tmp_path_factory, name, mirror=None):
    """A second, independent CONAN_HOME (different path, empty cache, no remotes)."""
    home = str(tmp_path_factory.mktemp(name))
    c = Conan(home)
    with open(os.path.join(home, "global.conf"), "w") as f:
        f.write(f"user.llama-cpp:source_mirror={mirror or source_mirror()}\n")
    c("remote", "remove", "*", check=False)
    return c


def package_files(folder):
    """sha256 of every file of the package, Conan's own bookkeeping excluded (conanmanifest.txt
    records a timestamp by design; conaninfo.txt is compared through the package id)."""
    out = {}
    for d, _, files in os.walk(folder):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), folder)
            if rel in ("conanmanifest.txt", "conaninfo.txt"):
                continue
            with open(os.path.join(d, f), "rb") as fh:
                out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


def binaries(conan):
    """Number of package binaries registered in that cache for REF."""
    data = json.loads(conan("list", f"{REF}:*", "--format=json").stdout)["Local Cache"]
    return sum(len(rev.get("packages", {})) for rev in data.get(REF, {}).get("revisions", {}).values())


def _unshare_works():
    return shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"]).returncode == 0


@pytest.fixture(scope="module")
def second_build(tmp_path_factory):
    """The default package built a second time, in another CONAN_HOME with a longer path, inside a
    network namespace with no network at all, with SOURCE_DATE_EPOCH set. The first attempt is
    killed (SIGKILL) after 20 compile steps; the second completes. One build serves the interrupt
    and the reproducibility tests (CI time)."""
    needs(_unshare_works(), "unshare -n (a network namespace, to prove the build needs no network)")
    other = fresh_conan(tmp_path_factory, "reproducible_home_with_a_longer_path")
    args = ["unshare", "-n", other.executable, "create", ".", "--build=missing", "-pr:a", profile("linux-x86_64")]
    env = {**other.env, "SOURCE_DATE_EPOCH": "1700000000"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    killed = subprocess.Popen(args, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    compiled = 0
    deadline = time.time() + 900
    for line in killed.stdout:
        if "Building C" in line:
            compiled += 1
        if compiled >= 20 or time.time() > deadline:
            break
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    registered_after_kill = binaries(other)
    proc = subprocess.run(args, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=3600)
    return {"conan": other, "proc": proc, "compiled_before_kill": compiled,
            "registered_after_kill": registered_after_kill}


def test_interrupted_build_recovers(second_build):
    """Kill conan create mid-compile; nothing half-built is registered, the next run succeeds."""
    assert second_build["compiled_before_kill"] >= 20, "the build never reached the compile step"
    assert second_build["registered_after_kill"] == 0, "a half-built package was registered"
    proc = second_build["proc"]
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "LOADER OK" in proc.stdout, "the rebuilt package passes test_package"


def test_reproducible_offline_build(cpu_package, second_build):
    """The second build (another home and build path, no network, SOURCE_DATE_EPOCH set, and
    interrupted once) gives identical bytes for every package file."""
    proc = second_build["proc"]
    assert proc.returncode == 0, proc.stdout[-4000:]
    first, second = package_files(cpu_package["folder"]), package_files(package_folder(second_build["conan"], proc.stdout))
    assert sorted(first) == sorted(second)
    differ = [f for f in first if first[f] != second[f]]
    print(f"reproducible: {len(first)} files compared, {len(differ)} differ")
    for name in sorted(first):
        if name.startswith("lib/"):
            print(f"  {first[name][:16]}  {name}")
    assert not differ, differ


def test_tampered_source_fails_before_compiling(tmp_path, tmp_path_factory):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    data = bytearray(open(os.path.join(source_mirror(), ARCHIVE), "rb").read())
    data[len(data) // 2] ^= 0x01  # one changed bit in the middle of the archive
    (mirror / ARCHIVE).write_bytes(bytes(data))
    actual = hashlib.sha256(data).hexdigest()
    c = fresh_conan(tmp_path_factory, "tampered", mirror=str(mirror))
    proc = build_package(c, "-tf", "", check=False)
    assert proc.returncode != 0
    assert SHA256 in proc.stdout and actual in proc.stdout, proc.stdout[-3000:]
    assert "Building C" not in proc.stdout and "Calling build()" not in proc.stdout
    assert binaries(c) == 0, "nothing may be packaged from a tampered source"


# ------------------------------------------------------------------------------ hostile inputs

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
    build = cpu_nif["build"]
    loader = os.path.join(build, "nif_loader")
    model = open(os.path.join(build, "work", "tiny-llama.gguf"), "rb").read()
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


def test_hostile_model_files_through_the_erlang_nif(cpu_nif, tmp_path):
    """A sample of the same mutations through the real Erlang NIF, all in one VM."""
    needs(shutil.which("erl"), "Erlang (erl)")
    priv = os.path.join(cpu_nif["build"], "priv")
    ebin = os.path.join(cpu_nif["build"], "ebin")
    model = open(os.path.join(cpu_nif["build"], "work", "tiny-llama.gguf"), "rb").read()
    files = []
    for i, (kind, data) in enumerate(mutations(model, 60, seed=99)):
        path = tmp_path / f"{i:03d}-{kind}.gguf"
        path.write_bytes(data)
        files.append(str(path))
    listing = ", ".join(f'"{f}"' for f in files)
    proc = subprocess.run(["erl", "-noshell", "-pa", ebin, "-eval",
                           f"llama_nif_selftest:probe([{listing}]), halt(0)."],
                          env={**os.environ, "LLAMA_NIF_PRIV": priv}, capture_output=True, text=True, timeout=300)
    results = [line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("result ")]
    print(f"Erlang NIF hostile inputs: {len(results)} files, {results.count('ok')} ok, {results.count('error')} errors")
    assert proc.returncode == 0 and "ERLANG PROBE DONE" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert len(results) == len(files)


def test_minimised_crash_inputs_are_errors(cpu_nif):
    """Inputs that crashed upstream b11312, minimised and kept (patches/0003)."""
    loader = os.path.join(cpu_nif["build"], "nif_loader")
    data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
    files = sorted(os.path.join(data, f) for f in os.listdir(data) if f.endswith(".gguf"))
    assert files
    assert run_probes(loader, cpu_nif["path"], files) == {f: "error" for f in files}
