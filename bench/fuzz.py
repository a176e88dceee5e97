#!/usr/bin/env python3
"""Fuzzing the API a NIF's callers reach: libFuzzer harnesses (tests/programs/fuzz) against a
sanitizer build of the package's sources, each run for a set time from seed corpora.

  python bench/fuzz.py [--seconds S] [--harnesses a,b] [--work DIR] [--report docs/fuzzing.md]

1. build   upstream's source from the mirror with the recipe's patches (conandata.yml) and the
           recipe's cache variables (PINNED, llama-common on, the x86-64-v3 baseline: one CPU
           variant), compiled by clang with -fsanitize=address,undefined,fuzzer-no-link; each
           harness linked with -fsanitize=fuzzer,address,undefined. Debian's clang (14 here).
2. seeds   tokenize: the tokenizer test inputs (models/*.inp); grammar: grammars/*.gbnf;
           schema: the JSON schemas of upstream's tests/test-json-schema-to-grammar.cpp;
           template: models/templates/*.jinja (each with two messages); gguf: tests/data/*.gguf
           and upstream's models/ggml-vocab-llama-bpe.gguf.
3. run     each harness for --seconds (-timeout=10 per input, -rss_limit_mb=4096), in its own
           corpus folder; the figures from libFuzzer's last status line: executions, exec/s,
           coverage (cov: edges, ft: features), corpus size; crash/leak/timeout/oom artifacts.

Every artifact is a finding: fix it (a patch) and copy the input into tests/data/fuzz/<harness>/,
which tests/test_fuzz_corpus.py replays against the normal package. Nothing here is a pass/fail
test. Needs clang (with libFuzzer and the sanitizer runtimes), cmake, ninja.
"""
import argparse
import datetime
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from harness import UPSTREAM, VERSION, cpu_info, load_recipe  # noqa: E402
from run import extract, log, sh  # noqa: E402  (bench/run.py)

HARNESSES = ["tokenize", "grammar", "schema", "template", "gguf"]
FUZZ = os.path.join(ROOT, "tests", "programs", "fuzz")
SANITIZE = "-fsanitize=address,undefined"
LIBS = ["common/libllama-common.a", "common/libllama-common-base.a", "src/libllama.a", "ggml/src/libggml.a",
        "ggml/src/libggml-cpu.a", "ggml/src/libggml-base.a"]


def cache_variables():
    """The recipe's own cache variables for this build: its pinned set, llama-common on, the other
    optional parts off, the x86-64-v3 baseline (one CPU variant: dispatch's renaming adds nothing
    to fuzz)."""
    recipe = load_recipe()
    variables = dict(recipe.PINNED)
    for part, row in recipe.OPTIONAL_PARTS.items():
        variables.update(row["cmake"] if part == "with_common" else row["off"])
    variables.update(recipe.CPU_BASELINES["x86-64-v3"]["cmake"])
    return variables


def patches():
    import yaml
    with open(os.path.join(ROOT, "conandata.yml")) as f:
        data = yaml.safe_load(f)
    return [os.path.join(ROOT, p["patch_file"]) for p in data["patches"][VERSION]]


def build(work, jobs):
    src = os.path.join(work, UPSTREAM)
    out = os.path.join(work, "build")
    if all(os.path.exists(os.path.join(out, lib)) for lib in LIBS):
        log(f"sanitizer build reused: {out}")
        return src, out
    if not os.path.isdir(src):
        extract(work)
        for patch in patches():
            sh(["patch", "-p1", "-s", "-i", patch], cwd=src)
    flags = f"{SANITIZE},fuzzer-no-link -fno-omit-frame-pointer -g -O1"
    defines = [f"-D{k}={'ON' if v is True else 'OFF' if v is False else v}" for k, v in cache_variables().items()]
    sh(["cmake", "-S", src, "-B", out, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_C_COMPILER=clang",
        "-DCMAKE_CXX_COMPILER=clang++", f"-DCMAKE_C_FLAGS={flags}", f"-DCMAKE_CXX_FLAGS={flags}", *defines])
    started = time.time()
    sh(["cmake", "--build", out, "-j", str(jobs), "--target", "llama-common", "llama"])
    log(f"sanitizer build: {time.time() - started:.0f} s")
    return src, out


def link(src, out, work, name):
    binary = os.path.join(work, f"fuzz_{name}")
    includes = [f"-I{os.path.join(src, d)}" for d in ("include", "common", "ggml/include", "vendor")]
    sh(["clang++", "-std=c++17", "-g", "-O1", "-fno-omit-frame-pointer", f"{SANITIZE},fuzzer", *includes,
        os.path.join(FUZZ, f"fuzz_{name}.cpp"), *[os.path.join(out, lib) for lib in LIBS], "-lpthread", "-ldl", "-lm",
        "-o", binary])
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
    proc = subprocess.run([binary, f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=4096",
                           "-print_final_stats=1", f"-artifact_prefix={artifacts}/", "-close_fd_mask=1",
                           corpus, seed_folder], env=env, capture_output=True, text=True,
                          timeout=seconds + 600)
    wall = time.time() - started
    text = proc.stdout + proc.stderr
    status = [line for line in text.splitlines() if re.match(r"#\d+\s", line)]
    last = status[-1] if status else ""

    def field(key):
        m = re.search(rf"{key}: (\d+)", last)
        return int(m.group(1)) if m else None

    execs = re.search(r"stat::number_of_executed_units: (\d+)", text)
    found = sorted(os.listdir(artifacts))
    with open(os.path.join(work, f"{name}.log"), "w") as f:
        f.write(text)
    return {"harness": name, "seconds": wall, "execs": int(execs.group(1)) if execs else None,
            "exec_s": (int(execs.group(1)) / wall) if execs else None, "cov": field("cov"), "ft": field("ft"),
            "corpus": len(os.listdir(corpus)), "artifacts": found, "exit": proc.returncode,
            "summary": next((line for line in text.splitlines() if "SUMMARY:" in line or "ERROR: libFuzzer" in line), "")}


def report(args, started, rows, build_seconds):
    model, flags = cpu_info()
    lines = [f"## Run of {started:%Y-%m-%d %H:%M}", "",
             f"`python bench/fuzz.py --seconds {args.seconds}` on {model}, {os.cpu_count()} cores "
             f"({' '.join(f for f in ('avx2', 'avx512f') if f in flags)}); "
             f"{sh(['clang', '--version']).splitlines()[0]}, {SANITIZE},fuzzer. "
             f"Sanitizer build: {build_seconds}.", "",
             "| harness | seconds | executions | exec/s | cov (edges) | ft (features) | corpus | findings |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        findings = ", ".join(r["artifacts"]) or "none"
        lines.append(f"| {r['harness']} | {r['seconds']:.0f} | {r['execs'] or '-'} | "
                     f"{r['exec_s']:.0f} | {r['cov']} | {r['ft']} | {r['corpus']} | {findings} |"
                     if r["exec_s"] else f"| {r['harness']} | {r['seconds']:.0f} | - | - | - | - | {r['corpus']} | "
                     f"{findings} ({r['summary']}) |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=600, help="run time per harness (default 600)")
    ap.add_argument("--harnesses", default=",".join(HARNESSES), help="comma-separated subset of: " + ", ".join(HARNESSES))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
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
    t0 = time.time()
    src, out = build(work, args.jobs)
    build_seconds = f"{time.time() - t0:.0f} s"
    vocab = os.path.join(src, "models", "ggml-vocab-llama-bpe.gguf")
    rows = []
    for name in names:
        binary = link(src, out, work, name)
        log(f"{name}: running {args.seconds} s")
        rows.append(run(binary, name, seeds(src, work, name), work, args.seconds, vocab))
        r = rows[-1]
        log(f"{name}: {r['execs']} executions, cov {r['cov']}, ft {r['ft']}, findings: {r['artifacts'] or 'none'} "
            f"{r['summary']}")
    text = report(args, started, rows, build_seconds)
    print(text)
    if args.report:
        with open(args.report, "a") as f:
            f.write("\n" + text + "\n")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
