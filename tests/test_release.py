"""examples/precompiled/release.py, the command that builds the precompiled NIF set: its archives
and checksum.exs are read back by Elixir the way elixir_make reads them (Code.eval_file, sha256,
:erl_tar.extract), and the Elixir example's `mix test` runs on the x86_64 artifact. CI builds and
runs two targets in the tests' Conan home: x86_64-linux-gnu (the glibc-2.28 floor: natively and in
Debian 11) and x86_64-windows-msvc (MinGW, under wine). Their packages are the ones
test_libc_targets.py and test_cross.py build (same options: release.py's -o passes CI's dispatch
rows, conftest's X86_ROWS), so nothing is built twice. The whole set, cold and warm, is bench's
(bench/release_set.py, docs/release.md)."""
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

import pytest

from conftest import ROOT, X86_ROWS, needs

sys.path.insert(0, os.path.join(ROOT, "examples", "precompiled"))
import release  # noqa: E402

CI_TARGETS = ["x86_64-linux-gnu", "x86_64-windows-msvc"]

# what elixir_make does with a downloaded archive (ElixirMake.Artefact.verify_and_decompress):
# checksum.exs evaluated as an Elixir map, "sha256:<hex>" compared, the archive unpacked into priv/
READ_BACK = r"""
[dist, name, priv] = System.argv()
{checksums, _} = Code.eval_file(Path.join(dist, "checksum.exs"))
contents = File.read!(Path.join(dist, name))
["sha256", hex] = String.split(Map.fetch!(checksums, name), ":")
^hex = Base.encode16(:crypto.hash(:sha256, contents), case: :lower)
:ok = :erl_tar.extract({:binary, contents}, [:compressed, {:cwd, String.to_charlist(priv)}])
IO.puts("verified #{map_size(checksums)}")
"""


def read_back(dist, name, priv):
    return subprocess.run(["elixir", "-e", READ_BACK, str(dist), name, str(priv)], capture_output=True, text=True,
                          timeout=300)


def test_archives_and_checksum_file_read_back_like_elixir_make(tmp_path):
    needs(shutil.which("elixir"), "Elixir")
    priv = tmp_path / "priv"
    priv.mkdir()
    (priv / "my_nif.so").write_bytes(os.urandom(5000))
    (priv / "my_nif.dll").write_bytes(b"MZ" + os.urandom(300))
    dist = tmp_path / "dist"
    dist.mkdir()
    names = [release.archive_name("my_app", "2.16", target, "1.2.3") for target in ("x86_64-linux-gnu", "aarch64-linux-musl")]
    assert names[0] == "my_app-nif-2.16-x86_64-linux-gnu-1.2.3.tar.gz"
    sums = {name: release.write_archive(str(dist / name), str(priv)) for name in names}
    (dist / "checksum.exs").write_text(release.checksum_exs(sums))
    out = tmp_path / "out"
    out.mkdir()
    proc = read_back(dist, names[1], out)
    assert proc.returncode == 0 and "verified 2" in proc.stdout, proc.stderr[-2000:]
    assert sorted(os.listdir(out)) == ["my_nif.dll", "my_nif.so"]
    assert (out / "my_nif.so").read_bytes() == (priv / "my_nif.so").read_bytes()
    # a byte changed in the archive: elixir_make's comparison refuses it
    data = bytearray((dist / names[1]).read_bytes())
    data[-9] ^= 1
    (dist / names[1]).write_bytes(bytes(data))
    assert read_back(dist, names[1], tmp_path).returncode != 0


def test_archive_bytes_do_not_depend_on_time_or_owner(tmp_path):
    priv = tmp_path / "priv"
    priv.mkdir()
    (priv / "a.so").write_bytes(b"x" * 1000)
    first = release.write_archive(str(tmp_path / "1.tar.gz"), str(priv))
    time.sleep(1.1)  # gzip's header keeps seconds
    os.utime(priv / "a.so", (1, 1))
    os.chmod(priv / "a.so", 0o600)
    assert release.write_archive(str(tmp_path / "2.tar.gz"), str(priv)) == first


@pytest.fixture(scope="module")
def release_run(conan, cpu_nif, tmp_path_factory):
    """release.py for CI_TARGETS in the tests' Conan home (cpu_nif: the native reference's package
    is the default one; test_libc_targets.py and test_cross.py build the targets' packages)."""
    needs(shutil.which("erl"), "Erlang (erl)")
    work = tmp_path_factory.mktemp("release")
    dist = work / "dist"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "precompiled", "release.py"), "--out", str(dist),
                           "--targets", ",".join(CI_TARGETS), *X86_ROWS], capture_output=True, text=True, timeout=5400,
                          env={**os.environ, "CONAN_HOME": conan.home})  # Zig's cache: the session's XDG one
    print(proc.stdout)
    print(proc.stderr[-3000:])
    facts = json.loads((dist / "release.json").read_text()) if (dist / "release.json").exists() else None
    return {"proc": proc, "dist": dist, "facts": facts}


def test_release_builds_runs_and_matches_on_the_ci_targets(release_run):
    proc, facts, dist = release_run["proc"], release_run["facts"], release_run["dist"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["where"] for r in facts["native"]["runs"]] == ["Erlang/OTP VM (erl)", "nif_host"]
    assert all(r["equal"] for r in facts["native"]["runs"]), "nif_host answers as the VM does"
    reference = facts["reference"]
    assert reference[0].startswith("{ok,[") and reference[0].count(",") == 16, reference
    assert reference[1].startswith("{ok,<<"), reference
    rows = {r["target"]: r for r in facts["targets"]}
    assert sorted(rows) == sorted(CI_TARGETS)
    for target, row in rows.items():
        assert row["problems"] == [], (target, row["problems"])
        assert row["runs"] and all(run["ok"] and run["equal"] for run in row["runs"]), row["runs"]
    wheres = {target: [run["where"] for run in row["runs"]] for target, row in rows.items()}
    assert wheres["x86_64-linux-gnu"][1] == "Debian 11 (glibc 2.31)"
    assert wheres["x86_64-windows-msvc"][0].startswith("wine"), wheres
    sums = (dist / "checksum.exs").read_text()
    for row in rows.values():
        assert f'"{row["archive"]}" => "sha256:{release.sha256((dist / row["archive"]).read_bytes())}"' in sums
    assert "| x86_64-linux-gnu |" in proc.stdout and "| x86_64-windows-msvc |" in proc.stdout


def build_paths_in(dist, paths):
    """{archive: [each of `paths` whose bytes a file in it holds]} for the .tar.gz files of dist."""
    found = {}
    for name in sorted(os.listdir(dist)):
        if name.endswith(".tar.gz"):
            with tarfile.open(os.path.join(dist, name)) as tar:
                data = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
            found[name] = [p for p in paths if p.encode() in data]
    return found


def test_released_nifs_name_no_folder_of_this_build(release_run, conan):
    """Two Conan homes must give the same archives (docs/release.md "Reproducible"): no NIF may
    hold the path of the Conan home, of this checkout or of the Zig cache it was built with (Zig's
    runtime objects carried them in their DWARF until release.py's strip_debug took it out)."""
    assert release_run["proc"].returncode == 0
    paths = [conan.home, ROOT] + [os.environ[v] for v in ("XDG_CACHE_HOME", "ZIG_GLOBAL_CACHE_DIR") if os.environ.get(v)]
    found = build_paths_in(release_run["dist"], paths)
    assert sorted(found) == sorted(r["archive"] for r in release_run["facts"]["targets"])
    assert all(not hits for hits in found.values()), found


def test_elixir_mix_test_on_the_precompiled_artifact(release_run, cpu_nif, tmp_path):
    """examples/elixir with LLAMA_EX_PRECOMPILED: the x86_64-linux-gnu archive, verified and
    unpacked by the mix project's compile step as elixir_make does, answers `mix test`; a copy of
    the set with one byte changed is refused before anything loads."""
    needs(shutil.which("mix"), "Elixir (mix)")
    assert release_run["proc"].returncode == 0
    work = tmp_path / "examples"
    for name in ("make", "elixir"):
        shutil.copytree(os.path.join(ROOT, "examples", name), work / name, ignore=shutil.ignore_patterns("_build", "priv", "build"))
    env = {**os.environ, "LLAMA_EX_PRECOMPILED": str(release_run["dist"]), "MIX_HOME": str(tmp_path / "mix"),
           "HEX_OFFLINE": "1", "MIX_ENV": "test", "LLAMA_EX_MODEL": cpu_nif["model"]}
    proc = subprocess.run(["mix", "test"], cwd=work / "elixir", env=env, capture_output=True, text=True, timeout=900)
    print(proc.stdout[-2000:])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "4 tests, 0 failures" in proc.stdout and "unpacked into priv/" in proc.stdout
    tampered = tmp_path / "tampered"
    shutil.copytree(release_run["dist"], tampered)
    name = next(r["archive"] for r in release_run["facts"]["targets"] if r["target"] == "x86_64-linux-gnu")
    data = bytearray((tampered / name).read_bytes())
    data[100] ^= 1
    (tampered / name).write_bytes(bytes(data))
    shutil.rmtree(work / "elixir" / "_build")
    proc = subprocess.run(["mix", "compile"], cwd=work / "elixir", env={**env, "LLAMA_EX_PRECOMPILED": str(tampered)},
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode != 0 and "does not match its checksum" in proc.stdout + proc.stderr
