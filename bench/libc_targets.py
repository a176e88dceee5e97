#!/usr/bin/env python3
"""Every Linux target of the Zig profiles, built and run from this host in one go: where each
NIF loads, what it costs, how fast it is against the default gcc build.

  python bench/libc_targets.py [--repeat N] [--threads T] [--targets a,b] [--skip-speed]
                               [--work DIR] [--home CONAN_HOME] [--report docs/libc-targets.md]

1. build   `conan create` of the default package (gcc, glibc of this host) and of each Zig profile
           (linux-x86_64-glibc2.28, linux-armv8-glibc2.28, linux-x86_64-musl, linux-armv8-musl),
           test_package included: the aarch64 ones run theirs under qemu with Debian 11's libc or
           musl. Wall time each (one private Conan home; Zig's cache in the work folder, cold on
           a new folder: it builds libc++ per target on first use).
2. runs    the tests' NIF and loader per target (tests/programs) run where this host can: natively,
           in Debian 11's userland (its glibc 2.31 ld.so), through the musl loader, under
           qemu-x86_64 (Nehalem, Haswell) and qemu-aarch64 (cortex-a53, cortex-a76, max,sve=off,
           max) with the target's own loader. Each row: the CPU variant chosen, tokens equal to
           the default build's, a clean exit after the loader's dlclose.
3. floor   the newest GLIBC_/GLIBCXX_/CXXABI_/GCC_ version each NIF references
           (llama_cpp_recipe/nifcheck.py), and its size unstripped and stripped.
4. speed   the x86_64 glibc-2.28 NIF against the default gcc NIF in one process: prompt processing
           (512 tokens) and generation (128 tokens), F16 and Q4_0 (34 M-parameter seeded random
           llama, bench/make_model.py), pairs alternating, ratio per pair.

Needs what the tests need (.ci/run) plus numpy. Nothing here is a pass/fail test; a failed run
prints its row as such.
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
from harness import (build_programs, cpu_info, debian11_root, extract_upstream, private_conan,  # noqa: E402
                     profile, run_loader)
from llama_cpp_recipe import nifcheck  # noqa: E402  (harness puts the repository on sys.path)
from run import Nif, log, spread  # noqa: E402  (bench/run.py: the NIF's ctypes bench binding)

DEFAULT = "linux-x86_64 (gcc)"
TARGETS = ["linux-x86_64-glibc2.28", "linux-armv8-glibc2.28", "linux-x86_64-musl", "linux-armv8-musl"]
X86_CPUS = ["Nehalem", "Haswell"]
ARM_CPUS = ["cortex-a53", "cortex-a76", "max,sve=off", "max"]


def profiles(target):
    return ["-pr:b", profile("linux-x86_64"), "-pr:h", profile(target)]


def where(target, roots):
    """(name, emulator command) for every place this host can run the target's loader."""
    if target == DEFAULT:
        return [("native", [])]
    if target.startswith("linux-x86_64"):
        runs = [("native", [])]
        if "glibc" in target:
            lib = os.path.join(roots["debian11"], "lib", "x86_64-linux-gnu")
            runs.append(("Debian 11 (glibc 2.31)", [os.path.join(lib, "ld-linux-x86-64.so.2"), "--library-path", lib]))
        return runs + [(f"qemu-x86_64 -cpu {cpu}", ["qemu-x86_64", "-cpu", cpu]) for cpu in X86_CPUS]
    root = roots["debian11"]  # glibc 2.31 and musl 1.2.2 for arm64 share the unpacked root
    name = "Debian 11 glibc 2.31" if "glibc" in target else "Debian 11 musl 1.2.2"
    return [(f"qemu-aarch64 -cpu {cpu} ({name})", ["qemu-aarch64", "-cpu", cpu, "-L", root]) for cpu in ARM_CPUS]


def emulator_conf(target, roots):
    """conan create arguments that let test_package run a cross target under qemu."""
    if not target.startswith("linux-armv8"):
        return []
    return ["-c", "tools.build.cross_building:can_run=True",
            "-c", f"user.llama-cpp:emulator=qemu-aarch64 -L {roots['debian11']}"]


def stripped(path, work, arm):
    out = os.path.join(work, "stripped-" + os.path.basename(path))
    subprocess.run(["aarch64-linux-gnu-strip" if arm else "strip", "-o", out, path], check=True)
    return os.path.getsize(out)


def build_all(conan, work, targets, roots):
    built = {}
    for target in [DEFAULT, *targets]:
        args = ["-pr:a", profile("linux-x86_64")] if target == DEFAULT else [*profiles(target), *emulator_conf(target, roots)]
        log(f"conan create {target}")
        start = time.perf_counter()
        proc = conan("create", ".", "--build=missing", *args, check=False)
        seconds = time.perf_counter() - start
        ok = proc.returncode == 0
        test_package = re.findall(r"(LOADER OK|floor \S+: kept|no floor checked[^\n]*)", proc.stdout)
        log(f"{target}: {'ok' if ok else 'FAILED'} in {seconds:.0f} s; test_package: {', '.join(test_package)}")
        if not ok:
            print(proc.stdout[-4000:])
            built[target] = {"seconds": seconds, "failed": True}
            continue
        folder = os.path.join(work, target)
        programs = build_programs(conan, folder, [], profiles=None if target == DEFAULT else profiles(target))
        built[target] = {"seconds": seconds, "failed": False, "programs": programs, "test_package": test_package}
    return built


def run_everywhere(built, work, roots, reference):
    rows = []
    for target, b in built.items():
        if b["failed"]:
            rows.append({"target": target, "where": "-", "result": "build failed"})
            continue
        for name, emulator in where(target, roots):
            folder = os.path.join(work, "runs", re.sub(r"\W+", "-", f"{target}-{name}"))
            try:
                proc, report = run_loader(b["programs"], folder, emulator=emulator, env={"LNIF_VERBOSE": "1"},
                                          check=False, timeout=1800)
            except subprocess.TimeoutExpired:
                rows.append({"target": target, "where": name, "result": "timed out"})
                continue
            variant = report["cpu_variant"] if report else "-"
            rows.append({"target": target, "where": name, "exit": proc.returncode, "variant": variant,
                         "tokens": report and (reference is None or report["generated"] == reference),
                         "result": "ok" if proc.returncode == 0 and report and report["failures"] == 0 else
                         f"FAILED (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-200:].strip()}"})
            if reference is None and report:
                reference = report["generated"]
            log(f"{target} / {name}: {rows[-1]['result']}, variant {variant}")
    return rows


def floors(built, work):
    rows = []
    for target, b in built.items():
        if b["failed"]:
            continue
        path = b["programs"]["path"]
        binary = nifcheck.inspect(path)
        floor = next((f for f in nifcheck.FLOORS if target.endswith(f)), None)
        problems = nifcheck.floor_problems(binary, floor) if floor else None
        newest = nifcheck.newest_versions(binary)
        rows.append({"target": target, "newest": ", ".join(f"{k}_{v}" for k, v in sorted(newest.items())) or "none",
                     "needed": ", ".join(binary.needed), "floor": floor or "-",
                     "kept": "-" if problems is None else ("yes" if not problems else "; ".join(problems)),
                     "size": os.path.getsize(path), "stripped": stripped(path, work, binary.machine == "aarch64"),
                     "create": b["seconds"]})
    return rows


def bench_speed(nifs, work, repeat, threads, n_prompt=512, n_gen=128):
    gguf_py = os.path.join(extract_upstream(os.path.join(work, "upstream"), "gguf-py"), "gguf-py")
    models = {}
    for ftype in ("F16", "Q4_0"):
        models[ftype] = os.path.join(work, f"bench-{ftype.lower()}.gguf")
        if not os.path.exists(models[ftype]):
            subprocess.run([sys.executable, os.path.join(ROOT, "bench", "make_model.py"), gguf_py, models[ftype], ftype],
                           check=True)
    loaded = {name: Nif(path) for name, path in nifs.items()}
    base, other = list(loaded)
    rows = []
    for ftype, model in models.items():
        samples = {name: [] for name in loaded}
        for r in range(repeat):
            order = [base, other] if r % 2 == 0 else [other, base]
            for name in order:
                samples[name].append(loaded[name].bench(model, threads, n_prompt, n_gen))
            log(f"speed {ftype} {r + 1}/{repeat}: " + ", ".join(
                f"{n}: pp {s[-1][0]:.0f} tg {s[-1][1]:.1f}" for n, s in samples.items()))
        for i, what in enumerate(("pp", "tg")):
            ratios = [o[i] / b[i] for o, b in zip(samples[other], samples[base])]
            rows.append({"model": ftype, "what": f"{what}{n_prompt if what == 'pp' else n_gen}",
                         "base": [s[i] for s in samples[base]], "other": [s[i] for s in samples[other]],
                         "ratio": ratios})
    return base, other, rows


def report(args, started, built, runs, floor_rows, speed):
    model, _ = cpu_info()
    flags = sorted(f for f in cpu_info()[1] if re.match(r"(sse4_2|avx|fma|f16c|bmi2|amx)", f))
    lines = [f"## Run of {started:%Y-%m-%d %H:%M}", "",
             f"Machine: {model}, {os.cpu_count()} cores; flags: {' '.join(flags)}. Threads: {args.threads}, "
             f"repetitions: {args.repeat}. `python bench/libc_targets.py{' --skip-speed' if args.skip_speed else ''}`.", "",
             "### Where each NIF runs", "",
             "| target | runs where | exit (after dlclose) | CPU variant | tokens = default | result |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['target']} | {r['where']} | {r.get('exit', '-')} | {r.get('variant', '-')} | "
                     f"{'yes' if r.get('tokens') else 'NO' if 'tokens' in r else '-'} | {r['result']} |")
    lines += ["", "### Floor, size, build time", "",
              "| target | newest versions referenced | NEEDED | floor | kept | NIF bytes | stripped | conan create s |",
              "|---|---|---|---|---|---|---|---|"]
    for r in floor_rows:
        lines.append(f"| {r['target']} | {r['newest']} | {r['needed']} | {r['floor']} | {r['kept']} | {r['size']:,} | "
                     f"{r['stripped']:,} | {r['create']:.0f} |")
    tp = {t: ", ".join(b.get("test_package", [])) for t, b in built.items()}
    lines += ["", "test_package: " + "; ".join(f"{t}: {v or 'see log'}" for t, v in tp.items())]
    if speed:
        base, other, rows = speed
        lines += ["", f"### Speed: {other} against {base} (tokens/s; median [min-max])", "",
                  f"| model | test | {base} | {other} | ratio |", "|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['model']} | {r['what']} | {spread(r['base'])} | {spread(r['other'])} | "
                         f"{spread(r['ratio'])} |")
    lines += ["", f"Total wall time: {(datetime.datetime.now() - started).total_seconds() / 60:.0f} min."]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset of: " + ", ".join(TARGETS))
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--report", default=None, help="append the markdown report to this file as well")
    ap.add_argument("--work", default=None, help="work in this folder and keep it (reused by a later run)")
    ap.add_argument("--home", default=None, help="this Conan home instead of one in the work folder: packages "
                    "already built there (the tests' LLAMA_CPP_TEST_HOME) are reused, and their create time is "
                    "then only test_package's")
    args = ap.parse_args()
    started = datetime.datetime.now()
    work = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="llama-libc-")
    os.makedirs(work, exist_ok=True)
    # Zig's cache (libc++ per target) and everything else of the run stay in the work folder
    os.environ["ZIG_GLOBAL_CACHE_DIR"] = os.path.join(work, "zig-cache")
    os.environ["XDG_CACHE_HOME"] = os.path.join(work, "xdg-cache")
    log(f"work folder {work}")
    roots = {"debian11": debian11_root(os.path.join(work, "debian11"), ["libc6:amd64", "libc6:arm64", "musl:arm64"])}
    conan = private_conan(os.path.abspath(args.home) if args.home else os.path.join(work, "home"))
    targets = [t for t in args.targets.split(",") if t]
    built = build_all(conan, work, targets, roots)
    runs = run_everywhere(built, work, roots, None)
    floor_rows = floors(built, work)
    speed = None
    if not args.skip_speed and not built[DEFAULT]["failed"] and not built.get("linux-x86_64-glibc2.28", {"failed": True})["failed"]:
        speed = bench_speed({DEFAULT: built[DEFAULT]["programs"]["path"],
                             "linux-x86_64-glibc2.28 (Zig)": built["linux-x86_64-glibc2.28"]["programs"]["path"]},
                            work, args.repeat, args.threads)
    text = report(args, started, built, runs, floor_rows, speed)
    print(text)
    with open(os.path.join(work, "report.json"), "w") as f:
        json.dump({"runs": runs, "floors": floor_rows, "speed": speed and speed[2]}, f, indent=1, default=str)
    if args.report:
        with open(args.report, "a") as f:
            f.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
