#!/usr/bin/env python3
"""The whole precompiled NIF set (examples/precompiled/release.py, every target) run twice in one
Conan home: the first run builds what the home lacks (every package on a new home: the cold
run), the second must build nothing (the warm run). The archives and checksum.exs of the two runs
are compared byte for byte, and with the dist folder of a run in another home (--compare DIR:
reproducibility across homes).

  python bench/release_set.py [--home DIR] [--work DIR] [--targets a,b] [--compare DIST]
                              [--report docs/release.md]

Needs what the tests need (.ci/run) and Debian 11's package archive. Prints the release table of
each run, both wall times, which packages each run built, and every archive that differs.
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from harness import cpu_info, private_conan  # noqa: E402
from run import log  # noqa: E402

RELEASE = os.path.join(ROOT, "examples", "precompiled", "release.py")


def release(home, out, targets):
    started = time.perf_counter()
    args = [sys.executable, RELEASE, "--out", out] + (["--targets", targets] if targets else [])
    proc = subprocess.run(args, env={**os.environ, "CONAN_HOME": home}, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    sys.stderr.write(proc.stderr[-3000:])
    facts = json.load(open(os.path.join(out, "release.json"))) if os.path.exists(os.path.join(out, "release.json")) else {}
    return {"seconds": seconds, "code": proc.returncode, "table": open(os.path.join(out, "release.md")).read().strip()
            if os.path.exists(os.path.join(out, "release.md")) else proc.stdout[-3000:], "facts": facts}


def files(dist):
    return {f: open(os.path.join(dist, f), "rb").read() for f in sorted(os.listdir(dist))
            if f.endswith(".tar.gz") or f == "checksum.exs"}


def differences(a, b, common_only=False):
    """Files that differ; common_only: only the archives both folders hold (another run may have
    built fewer targets, so its checksum.exs lists fewer)."""
    fa, fb = files(a), files(b)
    names = set(fa) & set(fb) - ({"checksum.exs"} if common_only else set()) if common_only else set(fa) | set(fb)
    return sorted(n for n in names if fa.get(n) != fb.get(n))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", default=None, help="Conan home (default: a new one in the work folder: a cold run)")
    ap.add_argument("--work", default=None)
    ap.add_argument("--targets", default=None)
    ap.add_argument("--compare", default=None, help="a dist folder from a run in another Conan home")
    ap.add_argument("--report", default=None, help="append the markdown report to this file")
    args = ap.parse_args()
    work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="llama-release-"))
    os.makedirs(work, exist_ok=True)
    home = os.path.abspath(args.home or os.path.join(work, "home"))
    fresh = not os.path.exists(os.path.join(home, "p"))
    private_conan(home)
    os.environ.setdefault("ZIG_GLOBAL_CACHE_DIR", os.path.join(work, "zig-cache"))
    started = datetime.datetime.now()
    runs = []
    for name in ("first", "second"):
        log(f"release.py, {name} run")
        runs.append(release(home, os.path.join(work, f"dist-{name}"), args.targets))
        built = [r["target"] for r in runs[-1]["facts"].get("targets", []) if r.get("package") == "built"]
        log(f"{name} run: exit {runs[-1]['code']}, {runs[-1]['seconds']:.0f} s, packages built: {built or 'none'}")
    same = differences(os.path.join(work, "dist-first"), os.path.join(work, "dist-second"))
    other = differences(os.path.join(work, "dist-first"), args.compare, True) if args.compare else None
    model, flags = cpu_info()
    flags = " ".join(sorted(f for f in flags if re.match(r"(sse4_2|avx|fma|f16c|bmi2)", f)))
    lines = [f"## Run of {started:%Y-%m-%d %H:%M}", "",
             f"Machine: {model}, {os.cpu_count()} cores; flags: {flags}. "
             f"`python bench/release_set.py{' --targets ' + args.targets if args.targets else ''}`, "
             f"{'a new Conan home' if fresh else 'a Conan home holding packages already'}.", "",
             runs[0]["table"], ""]
    for name, run in zip(("first", "second"), runs):
        built = [r["target"] for r in run["facts"].get("targets", []) if r.get("package") == "built"]
        native = run["facts"].get("native", {}).get("package")
        lines.append(f"- {name} run: {run['seconds']:.0f} s, exit {run['code']}; packages built: "
                     f"{', '.join(built + (['native reference'] if native == 'built' else [])) or 'none'}")
    lines.append(f"- archives and checksum.exs, first against second run: "
                 f"{'byte-identical' if not same else 'differ: ' + ', '.join(same)}")
    if other is not None:
        lines.append(f"- against {args.compare} (another Conan home): "
                     f"{'byte-identical (the targets both have)' if not other else 'differ: ' + ', '.join(other)}")
    text = "\n".join(lines)
    print(text)
    if args.report:
        with open(args.report, "a") as f:
            f.write("\n" + text + "\n")
    return max(run["code"] for run in runs)


if __name__ == "__main__":
    sys.exit(main())
