#!/usr/bin/env python3
"""Fuzzing the API a NIF's callers reach: libFuzzer harnesses (tests/programs/fuzz) against a
sanitizer build of the package's sources, each run for a set time from seed corpora.

  python bench/fuzz.py [--seconds S] [--parallel N] [--harnesses a,b] [--work DIR] [--report docs/fuzzing.md]

1. build   `conan create` of the package (its patches, pinned cache variables, llama-common on)
           with the recipe's option sanitize=address,undefined,fuzzer-no-link and cpu_baseline
           x86-64-v3 (one CPU variant), compiler Debian's clang, in a Conan home under the work
           folder; each harness linked against its archives with -fsanitize=address,undefined,fuzzer.
2. seeds   tokenize: the tokenizer test inputs (models/*.inp); grammar: grammars/*.gbnf;
           schema: the JSON schemas of upstream's tests/test-json-schema-to-grammar.cpp;
           template: models/templates/*.jinja (each with two messages); gguf: tests/data/*.gguf
           and upstream's models/ggml-vocab-llama-bpe.gguf; and every harness its regression
           corpus, tests/data/fuzz/<harness>/ (earlier findings run again under the sanitizers).
3. run     each harness for --seconds in libFuzzer's fork mode (-fork=1: a crash, leak, timeout
           or OOM is saved and counted, and the run goes on; -timeout=10 per input,
           -rss_limit_mb=4096), --parallel harnesses at once, each in its own corpus folder; the
           figures from libFuzzer's last status line: executions, exec/s, coverage (cov: edges,
           ft: features), corpus size, oom/timeout/crash counts, the saved artifacts.

Every artifact is a finding: fix it (a patch) and copy the input into tests/data/fuzz/<harness>/,
which tests/test_fuzz_corpus.py replays against the normal package. Nothing here is a pass/fail
test. Needs clang (with libFuzzer and the sanitizer runtimes), cmake, ninja.
"""
import argparse
import concurrent.futures
import datetime
import glob
import gzip
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from harness import UPSTREAM, cpu_info, extract_upstream, package_node, private_conan  # noqa: E402
from llama_cpp_recipe.link import link_components  # noqa: E402  (harness puts the repository on sys.path)
from harness import profile as harness_profile  # noqa: E402
from run import log, sh  # noqa: E402  (bench/run.py)

HARNESSES = ["tokenize", "grammar", "schema", "template", "gguf"]
FUZZ = os.path.join(ROOT, "tests", "programs", "fuzz")
SANITIZE = "address,undefined,fuzzer-no-link"  # the recipe's `sanitize` option
BASELINE = "x86-64-v3"  # one CPU variant: dispatch's renaming adds nothing to fuzz
CLANG_PROFILE = """[settings]
os=Linux
arch=x86_64
build_type=Release
compiler=clang
compiler.version={version}
compiler.libcxx=libstdc++11
compiler.cppstd=17
[conf]
tools.build:compiler_executables={{'c': 'clang', 'cpp': 'clang++'}}
"""


def clang_version():
    text = sh(["clang", "--version"])
    return re.search(r"version (\d+)", text).group(1)


def build(work):
    """`conan create` of the package with sanitize=address,undefined,fuzzer-no-link and clang, in
    a Conan home under work (a second run reuses it); returns (package folder, archives in link
    order, seconds)."""
    profile_path = os.path.join(work, "clang.profile")
    with open(profile_path, "w") as f:
        f.write(CLANG_PROFILE.format(version=clang_version()))
    home = private_conan(os.path.join(work, "home"))
    started = time.time()
    proc = subprocess.run([home.executable, "create", ".", "--build=missing", "-tf", "", "-pr:b",
                           harness_profile("linux-x86_64"), "-pr:h", profile_path, "-o", f"&:sanitize={SANITIZE}",
                           "-o", f"&:cpu_baseline={BASELINE}", "-o", "&:with_common=True", "--format=json"],
                          cwd=ROOT, env=home.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"conan create -o sanitize={SANITIZE} failed:\n{proc.stderr[-4000:]}")
    seconds = time.time() - started
    folder = package_node(json.loads(proc.stdout))["package_folder"]
    components = link_components("Linux", "cpu", compiler="clang", parts=["with_common"])
    archives = [os.path.join(folder, "lib", f"lib{lib}.a") for spec in components.values() for lib in spec["libs"]]
    log(f"sanitizer package {folder} ({seconds:.0f} s)")
    return folder, archives, seconds


def link(folder, archives, work, name):
    binary = os.path.join(work, f"fuzz_{name}")
    includes = [f"-I{os.path.join(folder, 'include', d)}" for d in ("", "llama-common", "llama-common-vendor")]
    sh(["clang++", "-std=c++17", "-g", "-O1", "-fno-omit-frame-pointer", "-fsanitize=address,undefined,fuzzer",
        *includes, os.path.join(FUZZ, f"fuzz_{name}.cpp"), *archives, "-lpthread", "-ldl", "-lm", "-o", binary])
    return binary


def seeds(src, work, name):
    """The seed corpus of one harness, written into work/seeds/<name>."""
    folder = os.path.join(work, "seeds", name)
    if os.path.isdir(folder):
        return folder
    os.makedirs(folder)
    items = []
    if name == "tokenize":
        for path in sorted(glob.glob(os.path.join(src, "models", "*.inp"))):
            with open(path, encoding="utf-8", errors="replace") as f:
                items += [block.encode() for block in f.read().split("\n__ggml_vocab_test__\n") if block.strip()][:20]
    elif name == "grammar":
        for path in sorted(glob.glob(os.path.join(src, "grammars", "*.gbnf"))):
            with open(path, "rb") as f:
                items.append(b"\x01\x00\x00\x00" + f.read())
    elif name == "schema":
        with open(os.path.join(src, "tests", "test-json-schema-to-grammar.cpp"), encoding="utf-8") as f:
            items += [m.encode() for m in re.findall(r'R"""\((\s*[\[{].*?)\)"""', f.read(), re.S)]
    elif name == "template":
        for path in sorted(glob.glob(os.path.join(src, "models", "templates", "*.jinja"))):
            with open(path, "rb") as f:
                items.append(f.read() + b"\x00hello\x00hi, how can I help?")
    elif name == "gguf":
        for path in sorted(glob.glob(os.path.join(ROOT, "tests", "data", "*.gguf"))) + \
                [os.path.join(src, "models", "ggml-vocab-llama-bpe.gguf")]:
            with open(path, "rb") as f:
                items.append(f.read())
    # and the regression corpus (tests/data/fuzz/<harness>): every earlier finding runs again under
    # the sanitizers, where a normal build's replay (tests/test_fuzz_corpus.py) cannot see UB
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "data", "fuzz", name, "*"))):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            items.append(f.read())
    for i, data in enumerate(items):
        with open(os.path.join(folder, f"seed-{i:04d}"), "wb") as f:
            f.write(data)
    return folder


def run(binary, name, seed_folder, work, seconds, vocab):
    corpus = os.path.join(work, "corpus", name)
    artifacts = os.path.join(work, "artifacts", name)
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    env = {**os.environ, "LLAMA_FUZZ_VOCAB": vocab, "GGML_NO_BACKTRACE": "1",
           "ASAN_OPTIONS": "detect_leaks=1:allocator_may_return_null=1",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    started = time.time()
    # fork mode (one job at a time): a crash, timeout or OOM is saved and counted, and the run goes
    # on for the whole time instead of stopping at the first finding
    proc = subprocess.run([binary, f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=4096", "-fork=1",
                           "-ignore_crashes=1", "-ignore_timeouts=1", "-ignore_ooms=1",
                           f"-artifact_prefix={artifacts}/", "-close_fd_mask=1", corpus, seed_folder],
                          env=env, capture_output=True, text=True, timeout=seconds + 600)
    wall = time.time() - started
    text = proc.stdout + proc.stderr
    # "#<runs>: cov: <edges> ft: <features> corp: <n> exec/s <n> oom/timeout/crash: a/b/c time: <s>s ..."
    status = [line for line in text.splitlines() if re.match(r"#\d+:?\s+cov:", line)]
    last = status[-1] if status else ""

    def field(pattern):
        m = re.search(pattern, last)
        return int(m.group(1)) if m else None

    counts = re.search(r"oom/timeout/crash: (\d+)/(\d+)/(\d+)", last)
    execs = field(r"^#(\d+)")
    found = sorted(os.listdir(artifacts))
    with open(os.path.join(work, f"{name}.log"), "w") as f:
        f.write(text)
    return {"harness": name, "seconds": wall, "execs": execs, "exec_s": execs / wall if execs else None,
            "cov": field(r"cov: (\d+)"), "ft": field(r"ft: (\d+)"), "corpus": len(os.listdir(corpus)),
            "artifacts": found, "exit": proc.returncode,
            "oom_timeout_crash": "/".join(counts.groups()) if counts else "-",
            "summary": next((line for line in reversed(text.splitlines()) if "SUMMARY:" in line), "")}


def report(args, started, rows, build_seconds, wall):
    model, flags = cpu_info()
    lines = [f"## Run of {started:%Y-%m-%d %H:%M}", "",
             f"`python bench/fuzz.py --seconds {args.seconds} --parallel {args.parallel}` on {model}, "
             f"{os.cpu_count()} cores "
             f"({' '.join(f for f in ('avx2', 'avx512f') if f in flags)}); "
             f"{sh(['clang', '--version']).splitlines()[0]}; the package built with "
             f"`-o sanitize={SANITIZE} -o cpu_baseline={BASELINE}` ({build_seconds}, 0 s when "
             f"cached), harnesses linked with -fsanitize=address,undefined,fuzzer. Fuzzing wall time "
             f"{wall:.0f} s, {sum(r['seconds'] for r in rows):.0f} harness-seconds in all.", "",
             "| harness | seconds | executions | exec/s | cov (edges) | ft (features) | corpus | oom/timeout/crash | "
             "artifacts |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        found = r["artifacts"]
        findings = (f"{len(found)}: {', '.join(found[:2])}{', ...' if len(found) > 2 else ''}" if found else "none")
        lines.append(f"| {r['harness']} | {r['seconds']:.0f} | {r['execs'] or '-'} | "
                     f"{r['exec_s']:.0f} | {r['cov']} | {r['ft']} | {r['corpus']} | {r['oom_timeout_crash']} | {findings} |"
                     if r["exec_s"] else f"| {r['harness']} | {r['seconds']:.0f} | - | - | - | - | {r['corpus']} | "
                     f"{r['oom_timeout_crash']} | {findings} ({r['summary']}) |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=600, help="run time per harness (default 600)")
    ap.add_argument("--harnesses", default=",".join(HARNESSES), help="comma-separated subset of: " + ", ".join(HARNESSES))
    ap.add_argument("--parallel", type=int, default=1, help="harnesses run at once (default 1; one core each)")
    ap.add_argument("--work", default=None, help="work in this folder and keep it (a later run reuses its build "
                    "and corpora); default: a temporary folder, removed at the end")
    ap.add_argument("--report", default=None, help="append the markdown report to this file as well")
    args = ap.parse_args()
    names = [n for n in args.harnesses.split(",") if n]
    unknown = sorted(set(names) - set(HARNESSES))
    if unknown:
        raise SystemExit(f"--harnesses: unknown {', '.join(unknown)}; known: {', '.join(HARNESSES)}")
    if not shutil.which("clang++"):
        raise SystemExit("clang++ not found: install clang (Debian: apt install clang) for libFuzzer")
    started = datetime.datetime.now()
    work = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="llama-fuzz-")
    os.makedirs(work, exist_ok=True)
    log(f"work folder {work}")
    folder, archives, build_seconds = build(work)
    src = os.path.join(work, UPSTREAM)
    if not os.path.isdir(os.path.join(src, "grammars")):
        extract_upstream(work, "models", "grammars", "tests/test-json-schema-to-grammar.cpp")
    vocab = os.path.join(src, "models", "ggml-vocab-llama-bpe.gguf")
    binaries = {name: link(folder, archives, work, name) for name in names}

    def one(name):
        log(f"{name}: running {args.seconds} s")
        r = run(binaries[name], name, seeds(src, work, name), work, args.seconds, vocab)
        log(f"{name}: {r['execs']} executions, cov {r['cov']}, ft {r['ft']}, findings: {r['artifacts'] or 'none'} "
            f"{r['summary']}")
        return r

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.parallel) as pool:
        rows = list(pool.map(one, names))
    wall = time.time() - t0
    text = report(args, started, rows, f"{build_seconds:.0f} s", wall)
    print(text)
    if args.report:
        with open(args.report, "a") as f:
            f.write("\n" + text + "\n")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
