#!/usr/bin/env python3
"""Benchmarks: what packaging llama.cpp our way costs in build time, binary size and inference
speed, measured side by side in one run on one machine, as pair-by-pair ratios.

  python bench/run.py [--repeat N] [--threads T] [--report docs/benchmarks.md]

1. build   cold `conan create` (fresh CONAN_HOME, sources from the mirror, no test_package: the
           default package, runtime CPU dispatch with its variant sub-builds) vs upstream's own
           portable build of the same source: the same cache variables (read from the recipe's
           generated preset) plus shared libraries, GGML_BACKEND_DL and GGML_CPU_ALL_VARIANTS
           (every x86 variant a module); alternating order. Also a warm `conan create` (package
           cached: test_package only) and `conan install` from cache.
2. size    every packaged archive of the single-baseline (x86-64-v3) package of llama + ggml
           alone (with_common=False); its test NIF unstripped and stripped.
3. runtime prompt processing (512 tokens) and generation (128 tokens) tokens/s of our NIF
           (lnif_bench: the same decode calls llama-bench makes, on a thread pool that stays) vs upstream's llama-bench from two
           upstream builds of the same source: the default (shared libs, GGML_NATIVE) and the
           portable one above (DL, all variants); same model files (34 M-parameter seeded random
           llama: F16, Q8_0, Q4_0 via upstream llama-quantize), same thread count; our variants
           (default dispatch, single baselines, openmp=True) also as a ratio to our `native`
           package in the same repetition when that variant is measured.
4. dispatch the stripped NIF of every variant, and what each ISA variant of cpu_baseline=dispatch
           adds to it (sizes of the symbols carrying that variant's prefix).

Needs what the tests need plus numpy (for upstream's gguf-py). Nothing here is a pass/fail test.
"""
import argparse
import ctypes
import datetime
import glob
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from harness import (ARCHIVE, REF, UPSTREAM, build_programs, cpu_info, package_node, private_conan, source_mirror,  # noqa: E402
                     variant_prefixes)  # bench/harness.py: the same helpers as the tests

PROFILE = os.path.join(ROOT, "profiles", "linux-x86_64")
# upstream's own answer to one portable binary: shared libraries, each CPU variant a module
UPSTREAM_DL = ["-DBUILD_SHARED_LIBS=ON", "-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON", "-DGGML_NATIVE=OFF"]
UPSTREAM_NATIVE, UPSTREAM_VARIANTS = "upstream llama-bench (native)", "upstream llama-bench (DL, all variants)"
DEFAULT = "dispatch (default)"  # the default cpu package: runtime CPU dispatch on x86_64 Linux
SINGLE = "x86-64-v3"  # the same package with one baseline: what dispatch adds to the NIF
LEAN = "x86-64-v3 llama+ggml only"  # the size section (goal 5 MB); same code as SINGLE, no runtime row
VARIANTS = {  # name -> extra conan create options
    DEFAULT: [],
    SINGLE: ["-o", "*:cpu_baseline=x86-64-v3"],
    LEAN: ["-o", "*:cpu_baseline=x86-64-v3", "-o", "*:with_common=False"],
    "openmp=True": ["-o", "*:openmp=True"],
    "x86-64-v2": ["-o", "*:cpu_baseline=x86-64-v2"],
    "x86-64-v4": ["-o", "*:cpu_baseline=x86-64-v4"],
    "native": ["-o", "*:cpu_baseline=native"],
}


def log(msg):
    print(f"[{datetime.datetime.now():%H:%M:%S}] {msg}", flush=True)


def sh(cmd, **kw):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(map(str, cmd))}\n{proc.stdout[-4000:]}")
    return proc.stdout


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def extract(dest):
    with tarfile.open(os.path.join(source_mirror(), ARCHIVE)) as tar:
        tar.extractall(dest, filter="data")
    return os.path.join(dest, UPSTREAM)


def spread(values):
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


# ------------------------------------------------------------------------------------ 1. build

def bench_build(work, repeat):
    flags_home = private_conan(os.path.join(work, "flags_home"))
    _, cache = flags_home.install_recipe(os.path.join(work, "flags"), "-pr:a", PROFILE)
    defines = [f"-D{k}={v}" for k, v in cache.items() if not k.startswith("CMAKE_POLICY")]
    pairs = []
    home = None
    for r in range(repeat):
        def conan_cold():
            nonlocal home
            home = private_conan(os.path.join(work, f"cold_home_{r}"))
            home("create", ".", "--build=missing", "-tf", "", "-pr:a", PROFILE, cwd=ROOT)

        def raw():  # the same libraries the package holds, all of them shared, ggml-cpu as modules
            src = extract(os.path.join(work, f"raw_{r}"))
            build = os.path.join(src, "build")
            sh(["cmake", "-S", src, "-B", build, "-G", "Ninja", *defines, *UPSTREAM_DL])
            sh(["cmake", "--build", build])

        order = [("conan", conan_cold), ("raw", raw)] if r % 2 == 0 else [("raw", raw), ("conan", conan_cold)]
        times = {}
        for name, fn in order:
            log(f"build {r + 1}/{repeat}: {name}")
            times[name] = timed(fn)
        log(f"build {r + 1}/{repeat}: conan {times['conan']:.1f} s, raw {times['raw']:.1f} s")
        pairs.append(times)
    warm = timed(lambda: home("create", ".", "--build=missing", "-pr:a", PROFILE, cwd=ROOT))
    install = timed(lambda: home("install", f"--requires={REF}", "-pr:a", PROFILE, "-of", os.path.join(work, "inst")))
    log(f"warm conan create {warm:.1f} s, conan install from cache {install:.1f} s")
    return {"pairs": pairs, "warm_create": warm, "install": install, "home": home}


# ------------------------------------------------------------------------------------- 2. size

def create(home, *options):
    """conan create (no test_package) of one variant; returns its package folder, from the JSON
    graph Conan prints on stdout (also when the binary was already in the cache)."""
    proc = subprocess.run([home.executable, "create", ".", "--build=missing", "-tf", "", "-pr:a", PROFILE,
                           *options, "--format=json"], cwd=ROOT, env=home.env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"conan create {' '.join(options)} failed:\n{proc.stderr[-4000:]}")
    return package_node(json.loads(proc.stdout))["package_folder"]


def build_variant(home, work, name, options):
    """conan create of one variant in the bench home, then the tests' NIF against it
    (bench/harness.py build_programs: conan install + CMake, the NIF link line)."""
    start = time.perf_counter()
    folder = create(home, *options)
    seconds = time.perf_counter() - start
    programs = build_programs(home, os.path.join(work, "nif_" + "".join(ch if ch.isalnum() else "_" for ch in name)),
                              list(options), profiles=["-pr:a", PROFILE])
    return folder, programs["path"], seconds


def sizes(folder, nif, work):
    archives = {os.path.basename(p): os.path.getsize(p) for p in sorted(glob.glob(os.path.join(folder, "lib", "*.a")))}
    return {"archives": archives, "nif": os.path.getsize(nif), "nif_stripped": stripped_size(nif, work)}


def stripped_size(nif, work):
    stripped = os.path.join(work, "nif-stripped.so")
    sh(["strip", "-o", stripped, nif])
    return os.path.getsize(stripped)


def variant_shares(nif):
    """Bytes of code and data each cpu_baseline=dispatch variant keeps in a NIF: the sizes of the
    symbols with that variant's prefix (the recipe's CpuDispatch.prefix)."""
    prefixes = variant_prefixes()
    shares = {}
    for line in sh(["nm", "-S", "--defined-only", nif]).splitlines():
        parts = line.split()
        name = next((n for p, n in prefixes.items() if len(parts) == 4 and parts[3].startswith(p)), None)
        if name:
            shares[name] = shares.get(name, 0) + int(parts[1], 16)
    return shares


# ---------------------------------------------------------------------------------- 3. runtime

def upstream_tools(work, which):
    """Upstream's llama-bench and llama-quantize from the same source, one build per name in
    `which`: UPSTREAM_NATIVE, upstream's default (shared libraries, GGML_NATIVE: this CPU only),
    and UPSTREAM_VARIANTS, its portable answer (UPSTREAM_DL: every x86 variant a dlopen'ed module
    next to the tools). Returns the source folder, {name: its bin folder} and {name: build seconds}."""
    src = extract(os.path.join(work, "upstream"))
    tools = ["-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
             "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF"]
    bins, seconds = {}, {}
    for name in which:
        extra = {UPSTREAM_NATIVE: [], UPSTREAM_VARIANTS: UPSTREAM_DL}[name]
        build = os.path.join(src, "build-" + ("dl" if extra else "native"))
        sh(["cmake", "-S", src, "-B", build, "-G", "Ninja", *tools, *extra])
        modules = [line.split(":")[0] for line in sh(["ninja", "-C", build, "-t", "targets", "all"]).splitlines()
                   if re.match(r"ggml-cpu-[\w.]+: phony", line)]
        seconds[name] = timed(lambda: sh(["cmake", "--build", build, "--target", "llama-bench", "llama-quantize",
                                           *modules]))
        log(f"{name}: llama-bench, llama-quantize and {len(modules)} ggml-cpu targets built in {seconds[name]:.0f} s")
        bins[name] = os.path.join(build, "bin")
    return src, bins, seconds


def make_models(src, bin_dir, work):
    f16 = os.path.join(work, "bench-f16.gguf")
    sh([sys.executable, os.path.join(ROOT, "bench", "make_model.py"), os.path.join(src, "gguf-py"), f16])
    models = {"F16": f16}
    for q in ("Q8_0", "Q4_0"):
        out = os.path.join(work, f"bench-{q.lower()}.gguf")
        sh([os.path.join(bin_dir, "llama-quantize"), f16, out, q], env={**os.environ, "LD_LIBRARY_PATH": bin_dir})
        models[q] = out
    return models


def llama_bench(bin_dir, model, threads, n_prompt, n_gen):
    out = subprocess.run([os.path.join(bin_dir, "llama-bench"), "-m", model, "-p", str(n_prompt), "-n", str(n_gen),
                          "-t", str(threads), "-r", "1", "-o", "json"], env={**os.environ, "LD_LIBRARY_PATH": bin_dir},
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True).stdout
    rows = json.loads(out)
    pp = next(r["avg_ts"] for r in rows if r["n_prompt"] == n_prompt and r["n_gen"] == 0)
    tg = next(r["avg_ts"] for r in rows if r["n_gen"] == n_gen and r["n_prompt"] == 0)
    return pp, tg


class Nif:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL)
        self.lib.lnif_open.restype = ctypes.c_void_p
        self.lib.lnif_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
        self.lib.lnif_close.argtypes = [ctypes.c_void_p]
        self.lib.lnif_bench.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                        ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double)]
        self.lib.lnif_last_error.restype = ctypes.c_char_p

    def bench(self, model, threads, n_prompt, n_gen):
        m = self.lib.lnif_open(model.encode(), 0, n_prompt + n_gen)
        if not m:
            raise SystemExit(f"lnif_open({model}): {self.lib.lnif_last_error().decode()}")
        pp, tg = ctypes.c_double(), ctypes.c_double()
        for _ in range(2):  # the first run is the warm-up, as llama-bench does
            if self.lib.lnif_bench(m, n_prompt, n_gen, threads, ctypes.byref(pp), ctypes.byref(tg)) != 0:
                raise SystemExit(f"lnif_bench: {self.lib.lnif_last_error().decode()}")
        self.lib.lnif_close(m)
        return pp.value, tg.value


def bench_runtime(bins, models, nifs, threads, repeat, n_prompt=512, n_gen=128):
    rows = []
    loaded = {name: Nif(path) for name, path in nifs.items()}  # all in one process: hidden symbols
    for qname, model in models.items():
        samples = {name: [] for name in [*bins, *nifs]}
        runs = [(name, lambda b=b: llama_bench(b, model, threads, n_prompt, n_gen)) for name, b in bins.items()]
        runs += [(name, lambda n=n: n.bench(model, threads, n_prompt, n_gen)) for name, n in loaded.items()]
        for r in range(repeat):
            for name, run in (runs if r % 2 == 0 else runs[::-1]):  # order alternates between repetitions
                samples[name].append(run())
            log(f"runtime {qname} {r + 1}/{repeat}: " + ", ".join(
                f"{n}: pp {s[-1][0]:.0f} tg {s[-1][1]:.1f}" for n, s in samples.items()))
        base, dl, native = samples.get(UPSTREAM_NATIVE), samples.get(UPSTREAM_VARIANTS), samples.get("native")

        def ratio(vals, against, i):
            return [v[i] / b[i] for v, b in zip(vals, against)] if against else None

        for name, vals in samples.items():
            rows.append({"model": qname, "build": name, "pp": [v[0] for v in vals], "tg": [v[1] for v in vals],
                         "pp_ratio": ratio(vals, base, 0), "tg_ratio": ratio(vals, base, 1),
                         "pp_dl": ratio(vals, dl, 0), "tg_dl": ratio(vals, dl, 1),
                         "pp_native": ratio(vals, native, 0), "tg_native": ratio(vals, native, 1)})
    return rows


# ----------------------------------------------------------------------------------- report

def cpu_flags():
    """The ISA flags of this machine's CPU that the variants care about, named next to every figure."""
    model, flags = cpu_info()
    wanted = ("sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
              "avx512_vnni", "avx512vbmi", "avx512_bf16", "amx_tile")
    return f"{model}; " + " ".join(f for f in wanted if f in flags)


def report(args, build, size, runtime, started, nif_sizes=None, upstream_seconds=None):
    lines = ["# Benchmarks", "",
             f"Generated by `python bench/run.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}` "
             f"(repeat {args.repeat}, threads {args.threads}) on "
             f"{started:%Y-%m-%d} ({platform.node() or 'unknown host'}: {os.cpu_count()} cores, "
             f"{cpu_flags()}, Python {platform.python_version()}). "
             "Every ratio is computed pair by pair within this one run; medians with [min-max].", ""]
    if build:
        ratios = [p["conan"] / p["raw"] for p in build["pairs"]]
        lines += [f"## Build cost (cpu package, Release, {os.cpu_count()} cores)", "",
                  "| measurement | seconds | ratio conan / raw |", "|---|---|---|",
                  f"| cold `conan create` (no test_package) | {spread([p['conan'] for p in build['pairs']])} | "
                  f"{spread(ratios)} (goal <= 1.10) |",
                  f"| upstream's portable build: `cmake -G Ninja` + build of the same libraries, same flags plus "
                  f"`{' '.join(UPSTREAM_DL)}` | {spread([p['raw'] for p in build['pairs']])} | 1 |",
                  f"| warm `conan create` (package cached: test_package only) | {build['warm_create']:.1f} | |",
                  f"| `conan install --requires={REF}` from cache | {build['install']:.1f} | |", ""]
    if size:
        lines += [f"## Size ({LEAN}: the single-baseline package without llama-common)", "", "| file | bytes |", "|---|---|"]
        lines += [f"| package `lib/{k}` | {v:,} |" for k, v in size["archives"].items()]
        lines += [f"| cpu NIF `libllama_nif.so` | {size['nif']:,} |",
                  f"| cpu NIF stripped | {size['nif_stripped']:,} (goal <= 5,000,000) |", ""]
    if nif_sizes:
        lines += ["## NIF size per variant (the tests' NIF, stripped)", "", "| variant | cold `conan create` s (no "
                  "test_package, one run) | bytes | what each dispatch variant keeps (symbol sizes) |", "|---|---|---|---|"]
        for name, row in nif_sizes.items():
            shares = ", ".join(f"{v} {b:,}" for v, b in row["shares"].items())
            lines.append(f"| {name} | {row['create']:.0f} | {row['stripped']:,} | {shares} |")
        lines.append("")
        if upstream_seconds:
            lines += ["Upstream's builds for the runtime rows (llama-bench, llama-quantize and their libraries; "
                      "one run each, not the same content as a package): " +
                      ", ".join(f"{name}: {t:.0f} s" for name, t in upstream_seconds.items()), ""]
    if runtime:
        lines += [f"## Runtime (pp512 / tg128, {args.threads} threads, tokens/s)", "",
                  "| model | build | pp t/s | tg t/s | pp / tg vs upstream native | pp / tg vs upstream DL "
                  "variants | pp / tg vs our native |",
                  "|---|---|---|---|---|---|---|"]

        def pair(row, key):
            return f"{spread(row['pp_' + key])} / {spread(row['tg_' + key])}" if row["pp_" + key] else ""

        for row in runtime:
            lines.append(f"| {row['model']} | {row['build']} | {spread(row['pp'])} | {spread(row['tg'])} | "
                         f"{pair(row, 'ratio')} | {pair(row, 'dl')} | {pair(row, 'native')} |")
        lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--skip-build", action="store_true", help="skip the cold/raw build comparison")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of: " + ", ".join(VARIANTS))
    ap.add_argument("--no-upstream-native", dest="upstream_native", action="store_false",
                    help="skip upstream's default (GGML_NATIVE) build; its ratio column stays empty")
    ap.add_argument("--report", default=None, help="write the markdown report here as well")
    ap.add_argument("--work", default=None, help="work in this folder and keep it (a later run with the same "
                    "folder reuses the packages built there); default: a temporary folder, removed at the end")
    args = ap.parse_args()
    started = datetime.datetime.now()
    work = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="llama-bench-")
    os.makedirs(work, exist_ok=True)
    log(f"work folder {work}")
    build = None if args.skip_build else bench_build(work, args.repeat)
    home = build["home"] if build else private_conan(os.path.join(work, "home"))
    nifs, size, nif_sizes = {}, None, {}
    for name in [v for v in args.variants.split(",") if v]:
        log(f"variant {name}")
        folder, nif, seconds = build_variant(home, work, name, VARIANTS[name])
        nif_sizes[name] = {"stripped": stripped_size(nif, work), "shares": variant_shares(nif), "create": seconds}
        if name == LEAN:
            size = sizes(folder, nif, work)
        else:
            nifs[name] = nif
    log("upstream builds (llama-bench, llama-quantize)")
    src, bins, upstream_seconds = upstream_tools(work, [UPSTREAM_NATIVE] * args.upstream_native + [UPSTREAM_VARIANTS])
    models = make_models(src, next(iter(bins.values())), work)
    runtime = bench_runtime(bins, models, nifs, args.threads, args.repeat)
    text = report(args, build, size, runtime, started, nif_sizes, upstream_seconds)
    print(text)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text + "\n")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
