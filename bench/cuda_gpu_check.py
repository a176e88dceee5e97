#!/usr/bin/env python3
"""The GPU check's steps, run ON the GPU machine through bench/cuda_gpu_check.sh (see
bench/cuda_gpu_check.md). Standard library only, plus numpy for the bench models.

  nif     test_package's nif_loader + the cuda NIF: with every layer offloaded (LNIF_N_GPU_LAYERS=-1),
          on the CPU (variable unset), with the driver hidden (libcuda.so.1 masked in a private mount
          namespace, or a chroot holding only the loader's libraries) and with no visible device
          (CUDA_VISIBLE_DEVICES=""); the cpu package's NIF on this machine is the token reference
  logits  gpu_tool: CPU-alone vs fully offloaded logits of the tiny model (and of the bench models
          when they exist), NMSE against a stated tolerance
  bench   pp512 / tg128 tokens/s of a ~311 M parameter random model, F16 and Q4_0: cpu package NIF on
          every core vs cuda NIF with every layer on the GPU (lnif_bench, the calls llama-bench makes)
  ops     upstream test-backend-ops, mode test, -b CUDA0, one run per op, with the time left

usage: cuda_gpu_check.py [all|STEP,STEP...]
"""
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARRY = os.environ.get("GPUCHECK_CARRY") or os.path.join(ROOT, ".gpucheck")
WORK = os.environ.get("GPUCHECK_WORK", "/tmp/gpucheck")
OUT = os.environ.get("OUT") or "/tmp/gpucheck-out"
STEPS = ("nif", "logits", "bench", "ops")
OPS = ("GET_ROWS", "RMS_NORM", "SOFT_MAX", "ROPE", "CPY", "MUL_MAT", "FLASH_ATTN_EXT")
OP_WEIGHT = {"MUL_MAT": 3, "FLASH_ATTN_EXT": 6}  # share of the time left (others 1); FA has ~5300 cases
# stated tolerances: NMSE = sum((gpu - cpu)^2) / sum(cpu^2) over every logit of every compared step
TOLERANCE = {"tiny F32": 1e-4, "F16": 1e-3, "Q4_0": 1e-2}
N_PROMPT, N_GEN = 512, 128
START = time.time()
DEADLINE = START + float(os.environ.get("DEADLINE_S", "300"))
RESULTS = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "checks": {}}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log(msg):
    print(f"[{time.time() - START:6.1f}s] {msg}", flush=True)


def left():
    return DEADLINE - time.time()


def run(cmd, env=None, timeout=120, cwd=None):
    """(returncode or 'timeout', stdout, stderr); never raises for a failing command."""
    try:
        p = subprocess.run(cmd, env={**os.environ, **(env or {})}, cwd=cwd, timeout=max(1, timeout),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return "timeout", out, err
    except OSError as e:
        return "oserror", "", str(e)


def record(name, ok, **facts):
    RESULTS["checks"][name] = {"ok": ok, **facts}
    log(f"{'PASS' if ok else 'FAIL' if ok is False else 'INFO'} {name}: "
        + ", ".join(f"{k}={v}" for k, v in facts.items() if k not in ("stdout", "stderr")))


# ----------------------------------------------------------------------------------- machine

def unpack():
    bundles = {}
    for name in ("nif", "ops"):
        archive = os.path.join(CARRY, name, f"{name}.tar.xz")
        dest = os.path.join(WORK, name)
        if not os.path.exists(archive):
            continue
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        with tarfile.open(archive) as tar:
            try:
                tar.extractall(dest, filter="data")
            except TypeError:  # a Python without extraction filters
                tar.extractall(dest)
        bundles[name] = dest
        manifest = os.path.join(dest, "manifest.json")  # what was built, and how, on the build machine
        if os.path.exists(manifest):
            shutil.copy(manifest, os.path.join(OUT, "manifest.json"))
    log(f"bundles: {', '.join(f'{k} -> {v}' for k, v in bundles.items()) or 'NONE (run bench/cuda_gpu_prepare.py here first)'}")
    return bundles


def machine_info():
    info = {"nproc": os.cpu_count(), "python": sys.version.split()[0]}
    rc, out, err = run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,"
                        "clocks.max.sm,temperature.gpu,power.draw", "--format=csv"], timeout=30)
    info["nvidia_smi"] = out.strip() or err.strip()
    rc2, full, _ = run(["nvidia-smi"], timeout=30)
    with open(os.path.join(OUT, "nvidia-smi.txt"), "w") as f:
        f.write(out + "\n" + full)
    info["kernel"] = os.uname().release
    try:
        info["glibc"] = os.confstr("CS_GNU_LIBC_VERSION")  # the binaries built here need GLIBC_2.36 or so
    except (ValueError, OSError):
        info["glibc"] = "?"
    RESULTS["machine"] = info
    log(f"machine: {info}")


def ldconfig_paths(prefix):
    rc, out, _ = run(["ldconfig", "-p"], timeout=20)
    found = []
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) .*=> (\S+)$", line)
        if m and m.group(1).startswith(prefix):
            found.append(m.group(2))
    return found


def cuda_runtime_dirs(bundles):
    """Folders holding libcudart.so.13, libcublas.so.13 and libcublasLt.so.13 on this machine:
    the loader's cache, the Python packages (nvidia-cublas and nvidia-cuda-runtime wheels under
    site-packages/nvidia/...), the toolkit; the carried libcudart as the last resort."""
    want = ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13")
    candidates = []
    for lib in want:
        candidates += [os.path.dirname(p) for p in ldconfig_paths(lib)]
    roots = [p for p in sys.path if p and os.path.isdir(p)]
    for r in roots:
        candidates += [os.path.dirname(p) for p in glob.glob(os.path.join(r, "nvidia", "**", "libcu*.so.13"), recursive=True)]
    candidates += glob.glob("/usr/local/cuda*/lib64") + glob.glob("/usr/local/cuda*/targets/x86_64-linux/lib")
    dirs, have = [], {}
    for d in dict.fromkeys(candidates):
        for lib in want:
            if lib not in have and os.path.exists(os.path.join(d, lib)):
                have[lib] = d
                if d not in dirs:
                    dirs.append(d)
    if "libcudart.so.13" not in have and "nif" in bundles:
        have["libcudart.so.13"] = os.path.join(bundles["nif"], "fallback")
        dirs.append(have["libcudart.so.13"])
    RESULTS["cuda_runtime"] = have
    log(f"CUDA runtime: {have}")
    missing = [lib for lib in want if lib not in have]
    if missing:
        log(f"MISSING on this machine: {missing} (the cuda NIF cannot load)")
    return dirs


def libcuda_files(library_path):
    """Every libcuda.so* file the dynamic loader could reach (cache, the LD_LIBRARY_PATH the NIF runs
    with, usual folders), resolved to real files."""
    dirs = [d for d in library_path.split(":") if d]
    dirs += ["/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu",
             "/usr/lib64", "/lib64", "/usr/lib", "/lib", "/usr/local/cuda/compat", "/usr/local/cuda/lib64",
             "/usr/local/cuda/lib64/stubs", "/usr/local/lib"]
    for conf in glob.glob("/etc/ld.so.conf.d/*.conf") + ["/etc/ld.so.conf"]:
        try:
            dirs += [l.strip() for l in open(conf) if l.strip().startswith("/")]
        except OSError:
            pass
    paths = ldconfig_paths("libcuda.so")
    for d in dict.fromkeys(dirs):
        paths += glob.glob(os.path.join(d, "libcuda.so*"))
    real = sorted({os.path.realpath(p) for p in paths if os.path.exists(p)})
    return [p for p in real if os.path.isfile(p)], sorted(set(paths))


def guarded_glibc(bundles):
    """the binaries were linked on the build machine (Debian 12, glibc 2.36, static libstdc++): an
    older glibc here would refuse to load them, which the manifest predicts"""
    try:
        needed = json.load(open(os.path.join(bundles["nif"], "manifest.json"))).get("glibc_needed") or {}
        have = tuple(int(x) for x in RESULTS["machine"]["glibc"].split()[-1].split("."))
        newest = max((tuple(int(x) for x in v.split("_")[1].split(".")) for v in needed.values() if v), default=None)
    except (KeyError, OSError, ValueError, IndexError):
        return
    if newest:
        record("glibc of this machine vs the binaries", have >= newest, machine=RESULTS["machine"]["glibc"],
               needed=needed)


# --------------------------------------------------------------------------------------- nif

def read_report(work, out):
    """The loader's facts from the report.json it writes in its work folder (tokens as one
    space-separated string, the form gpu_tool's logits JSON uses); loader_ok: every check passed."""
    try:
        with open(os.path.join(work, "report.json"), encoding="utf-8", errors="surrogateescape") as f:
            report = json.loads(f.read())
    except (OSError, ValueError):
        return {"devices": [], "generated": None, "loader_ok": False}
    return {"devices": report.get("devices", []), "generated": " ".join(map(str, report.get("generated", []))) or None,
            "loader_ok": report.get("failures") == 0 and "LOADER OK" in out}


LOADER_RUNS = [0]


def loader(bundles, nif, env, timeout=120, prefix=None):
    LOADER_RUNS[0] += 1
    work = os.path.join(WORK, f"loader-{LOADER_RUNS[0]}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    cmd = (prefix or []) + [os.path.join(bundles["nif"], "nif_loader"), nif, work]
    rc, out, err = run(cmd, env=env, timeout=timeout)
    res = read_report(work, out)
    res["rc"] = rc
    return res, out, err


def hide_driver_unshare(bundles, env, masks):
    empty = os.path.join(WORK, "empty")
    open(empty, "w").close()
    script = os.path.join(WORK, "hide_driver.sh")
    with open(script, "w") as f:
        f.write("""#!/bin/bash
# inside a private mount namespace: an empty file over every libcuda.so* found, then the command
set -u
empty=$1; shift
while [ "$1" != "--" ]; do
    mount --bind "$empty" "$1" || { echo "HIDE: cannot mask $1"; exit 97; }
    shift
done
shift
if python3 -c 'import ctypes; ctypes.CDLL("libcuda.so.1")' 2>/dev/null; then
    echo "HIDE: libcuda.so.1 still loads"; exit 98
fi
echo "HIDE: libcuda.so.1 does not load"
exec "$@"
""")
    prefix = ["unshare", "--mount", "--propagation", "private", "bash", script, empty, *masks, "--"]
    return loader(bundles, os.path.join(bundles["nif"], "libllama_nif.so"), env, prefix=prefix)


def hide_driver_chroot(bundles, env):
    """A root holding only the loader, the NIF and the libraries ldd names for them (the CUDA
    runtime, libc...), no driver: what a machine without the NVIDIA driver looks like."""
    jail = os.path.join(WORK, "jail")
    shutil.rmtree(jail, ignore_errors=True)
    for sub in ("lib", "lib64", "bin", "work", "tmp"):
        os.makedirs(os.path.join(jail, sub))
    nif = os.path.join(bundles["nif"], "libllama_nif.so")
    ldr = os.path.join(bundles["nif"], "nif_loader")
    shutil.copy(nif, os.path.join(jail, "bin"))
    shutil.copy(ldr, os.path.join(jail, "bin"))
    deps = set()
    for binary in (nif, ldr):
        rc, out, _ = run(["ldd", binary], env=env, timeout=30)
        for line in out.splitlines():
            m = re.search(r"=> (/\S+)", line) or re.match(r"\s*(/\S+ld-linux\S*)", line)
            if m:
                deps.add(m.group(1))
    for d in deps:
        if "libcuda.so" in os.path.basename(d):
            continue
        shutil.copy(d, os.path.join(jail, "lib", os.path.basename(d)))
        if "ld-linux" in d:
            shutil.copy(d, os.path.join(jail, "lib64", "ld-linux-x86-64.so.2"))
    cmd = [shutil.which("chroot") or "/usr/sbin/chroot", jail, "/lib64/ld-linux-x86-64.so.2", "--library-path",
           "/lib", "/bin/nif_loader", "/bin/libllama_nif.so", "/work"]
    rc, out, err = run(cmd, env={**env, "LD_LIBRARY_PATH": "/lib"}, timeout=120)
    res = read_report(os.path.join(jail, "work"), out)
    res["rc"] = rc
    res["libraries_in_root"] = sorted(os.listdir(os.path.join(jail, "lib")))
    return res, out, err


def step_nif(bundles, libenv):
    if "nif" not in bundles:
        record("nif", None, skipped="no nif bundle carried")
        return
    nif = os.path.join(bundles["nif"], "libllama_nif.so")
    cpu_nif = os.path.join(bundles["nif"], "cpu", "libllama_nif.so")
    manifest = json.load(open(os.path.join(bundles["nif"], "manifest.json")))
    build_ref = manifest.get("cpu_tokens_build_machine")

    cpu, out, err = loader(bundles, cpu_nif, {})
    ref = cpu["generated"]
    RESULTS["reference_tokens"] = ref
    record("cpu package NIF on this machine", cpu["loader_ok"], devices=cpu["devices"], tokens=ref,
           same_as_build_machine=ref == build_ref)

    gpu, out, err = loader(bundles, nif, {**libenv, "LNIF_N_GPU_LAYERS": "-1", "LNIF_VERBOSE": "1"})
    with open(os.path.join(OUT, "loader-gpu.log"), "w") as f:
        f.write(out + "\n----- stderr (LNIF_VERBOSE=1: llama.cpp's log) -----\n" + err)
    offloaded = re.findall(r"offloaded (\d+)/(\d+) layers to GPU", err)
    # the log's buffers say where weights and KV cache went (the "offloaded" line counts requests)
    buffers = sorted(set(re.findall(r"(\S+) (model|KV) buffer size", err)))
    all_layers = (bool(offloaded) and all(a == b for a, b in offloaded)
                  and any(name.startswith("CUDA") and kind == "model" for name, kind in buffers))
    cuda_devices = [d for d in gpu["devices"] if "|gpu|" in d]
    init = re.findall(r"ggml_cuda_init: .*|Device \d+: .*", err)
    record("cuda NIF, every layer on the GPU", gpu["loader_ok"] and bool(cuda_devices) and all_layers,
           rc=gpu["rc"], devices=gpu["devices"], offloaded=[f"{a}/{b}" for a, b in offloaded][:1],
           buffers=[f"{n} {k}" for n, k in buffers], cuda_init=init[:3],
           tokens=gpu["generated"], tokens_equal_cpu_package=gpu["generated"] == ref)
    RESULTS["gpu_tokens_equal_cpu_package"] = gpu["generated"] is not None and gpu["generated"] == ref

    plain, out, err = loader(bundles, nif, libenv)
    record("cuda NIF, LNIF_N_GPU_LAYERS unset (CPU weights)", plain["loader_ok"] and plain["generated"] == ref,
           rc=plain["rc"], devices=plain["devices"], tokens=plain["generated"])

    # the driver hidden, two ways: (1) this machine as it is, with every libcuda.so* masked by an
    # empty file in a private mount namespace; (2) a chroot holding only the libraries ldd names
    masks, seen = libcuda_files(libenv["LD_LIBRARY_PATH"])
    RESULTS["libcuda_files"] = {"masked": masks, "seen": seen}
    hidden_env = {**libenv, "LNIF_N_GPU_LAYERS": "-1", "LNIF_VERBOSE": "1"}  # verbose: ggml-cuda's init message
    ways = []
    if not masks:
        record("driver hidden, mount namespace", None, skipped="no libcuda.so* found on this machine")
    elif not (shutil.which("unshare") and shutil.which("mount")):
        record("driver hidden, mount namespace", None, skipped="no unshare/mount")
    else:
        res, out, err = hide_driver_unshare(bundles, hidden_env, masks)
        if "HIDE: libcuda.so.1 does not load" in out:
            ways.append(("driver hidden: mount namespace, libcuda.so* masked", res, out, err))
        else:
            record("driver hidden, mount namespace", None, skipped=f"could not hide it (rc={res['rc']}): "
                   + (out + err)[-300:])
    res, out, err = hide_driver_chroot(bundles, hidden_env)
    ways.append(("driver hidden: chroot holding ldd's libraries only", res, out, err))
    for name, res, out, err in ways:
        cpu_only = bool(res["devices"]) and all(d.split("|")[1] == "cpu" for d in res["devices"])
        record(name, res["loader_ok"] and cpu_only and res["generated"] == ref, rc=res["rc"], devices=res["devices"],
               tokens_equal_cpu_package=res["generated"] == ref,
               cuda_message=re.findall(r"failed to initialize CUDA: .*", err)[:1],
               **({"masked": masks} if "mount" in name else {"libraries": res.get("libraries_in_root")}),
               output_tail=(out + err)[-400:] if not res["loader_ok"] else "")

    novis, out, err = loader(bundles, nif, {**libenv, "LNIF_N_GPU_LAYERS": "-1", "CUDA_VISIBLE_DEVICES": ""})
    cpu_only = bool(novis["devices"]) and all(d.split("|")[1] == "cpu" for d in novis["devices"])
    record("cuda NIF, driver present, CUDA_VISIBLE_DEVICES=\"\"",
           novis["loader_ok"] and cpu_only and novis["generated"] == ref, rc=novis["rc"], devices=novis["devices"])


# ------------------------------------------------------------------------------------ logits

def tool_logits(bundles, libenv, name, model, args, tolerance, timeout=180):
    tool = os.path.join(bundles["ops"], "gpu_tool")
    rc, out, err = run([tool, "logits", model, *args, "--max-nmse", str(tolerance)], env=libenv, timeout=timeout)
    m = re.search(r"^LOGITS (\{.*\})$", out, re.M)
    facts = json.loads(m.group(1)) if m else {"rc": rc, "tail": (out + err)[-800:]}
    if m and name == "tiny F32" and RESULTS.get("reference_tokens"):
        # the tool's CPU run greedy-decodes the loader's prompt: the cpu package NIF's 16 tokens
        facts["cpu_tokens_equal_cpu_package_nif"] = facts.get("cpu_tokens") == RESULTS["reference_tokens"]
    record(f"logits CPU alone vs all on GPU: {name}", bool(m) and facts.get("pass") is True, **facts)


def step_logits(bundles, libenv):
    if "ops" not in bundles:
        record("logits", None, skipped="no ops bundle carried (gpu_tool)")
        return
    rc, out, err = run([os.path.join(bundles["ops"], "gpu_tool"), "devices"], env=libenv, timeout=60)
    RESULTS["gpu_tool_devices"] = re.findall(r"^device\[\d+\]: (.*)$", out, re.M)
    tiny = os.path.join(WORK, "tiny-llama.gguf")
    run([os.path.join(bundles["ops"], "gpu_tool"), "write-tiny", tiny], env=libenv, timeout=60)
    tool_logits(bundles, libenv, "tiny F32", tiny,
                ["--prompt", "hello world", "--steps", "16"], TOLERANCE["tiny F32"])


def step_logits_models(bundles, libenv, models):
    """the bench models: a 64-token synthetic prompt (one batch: the GEMM paths), then 7 single tokens"""
    if "ops" not in bundles:
        return
    for ftype, path in models.items():
        if left() < 60:
            record(f"logits bench model {ftype}", None, skipped="out of time")
            continue
        tool_logits(bundles, libenv, f"bench {ftype}", path, ["--prompt-tokens", "64", "--steps", "8"],
                    TOLERANCE[ftype])


# ------------------------------------------------------------------------------------- bench

def make_models(bundles):
    folder = os.path.join(WORK, "models")
    models = {"F16": os.path.join(folder, "bench-f16.gguf"), "Q4_0": os.path.join(folder, "bench-q4_0.gguf")}
    if all(os.path.exists(p) and os.path.getsize(p) > 100e6 for p in models.values()):
        log("bench models already there (warm machine)")
        return models
    gguf_py = os.path.join(bundles.get("nif") or bundles["ops"], "gguf-py")
    started = time.time()
    rc, out, err = run([sys.executable, os.path.join(ROOT, "bench", "cuda_gpu_model.py"), gguf_py, folder], timeout=240)
    log(out.strip() or err[-1500:])
    if rc != 0:
        record("bench models", False, rc=rc, tail=err[-800:])
        return None
    RESULTS["bench_models"] = {k: {"path": v, "bytes": os.path.getsize(v)} for k, v in models.items()}
    RESULTS["bench_models"]["seconds"] = round(time.time() - started, 1)
    return models


BENCH_CODE = r"""
import ctypes, json, os, sys
nif, model, threads, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lib = ctypes.CDLL(nif, mode=os.RTLD_NOW | os.RTLD_LOCAL)
lib.lnif_open.restype = ctypes.c_void_p
lib.lnif_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
lib.lnif_close.argtypes = [ctypes.c_void_p]
lib.lnif_bench.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                           ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double)]
lib.lnif_last_error.restype = ctypes.c_char_p
m = lib.lnif_open(model.encode(), 0, %(n_ctx)d)
if not m:
    raise SystemExit("lnif_open: " + lib.lnif_last_error().decode())
pp, tg, runs = ctypes.c_double(), ctypes.c_double(), []
for r in range(reps + 1):  # the first is the warm-up, as llama-bench does
    if lib.lnif_bench(m, %(n_prompt)d, %(n_gen)d, threads, ctypes.byref(pp), ctypes.byref(tg)) != 0:
        raise SystemExit("lnif_bench: " + lib.lnif_last_error().decode())
    if r:
        runs.append([pp.value, tg.value])
lib.lnif_close(m)
print("BENCH " + json.dumps(runs))
""" % {"n_ctx": N_PROMPT + N_GEN, "n_prompt": N_PROMPT, "n_gen": N_GEN}


def bench_one(nif, model, env, threads, reps, timeout):
    rc, out, err = run([sys.executable, "-c", BENCH_CODE, nif, model, str(threads), str(reps)], env=env, timeout=timeout)
    m = re.search(r"^BENCH (.*)$", out, re.M)
    if not m:
        return None, f"rc={rc}: {(out + err)[-500:]}"
    runs = json.loads(m.group(1))
    return {"pp": [r[0] for r in runs], "tg": [r[1] for r in runs]}, None


def step_bench(bundles, libenv, models):
    if "nif" not in bundles or not models:
        record("bench", None, skipped="no nif bundle or no models")
        return
    threads = os.cpu_count() or 1
    builds = [("cpu package NIF, CPU", os.path.join(bundles["nif"], "cpu", "libllama_nif.so"), {}, 2),
              ("cuda package NIF, all layers on GPU", os.path.join(bundles["nif"], "libllama_nif.so"),
               {**libenv, "LNIF_N_GPU_LAYERS": "-1"}, 3)]
    rows = []
    for ftype, model in models.items():
        for name, nif, env, reps in builds:
            if left() < 45:
                rows.append({"model": ftype, "build": name, "error": "out of time"})
                continue
            started = time.time()
            res, error = bench_one(nif, model, env, threads, reps, timeout=min(150, max(30, left() - 30)))
            row = {"model": ftype, "build": name, "threads": threads, "seconds": round(time.time() - started, 1)}
            if res:
                row.update(res)
                row["pp_median"] = statistics.median(res["pp"])
                row["tg_median"] = statistics.median(res["tg"])
            else:
                row["error"] = error
            rows.append(row)
            log(f"bench {ftype} {name}: " + (f"pp{N_PROMPT} {row['pp_median']:.1f} t/s, tg{N_GEN} {row['tg_median']:.1f} t/s"
                                           if res else error))
    RESULTS["bench"] = rows
    RESULTS["checks"]["bench"] = {"ok": all("error" not in r for r in rows)}


# --------------------------------------------------------------------------------------- ops

def step_ops(bundles, libenv):
    if "ops" not in bundles:
        record("ops", None, skipped="no ops bundle carried")
        return
    tool = os.path.join(bundles["ops"], "gpu_tool")
    jobs = str(max(1, min(8, (os.cpu_count() or 2) // 2)))
    rows = []
    with open(os.path.join(OUT, "ops.log"), "w") as logf:
        for i, op in enumerate(OPS):
            remaining = left() - 10
            weights = [OP_WEIGHT.get(o, 1) for o in OPS[i:]]
            # its share of what is left, at least 20 s (the small ops finish well inside; what they
            # leave goes to the ops after them)
            budget = min(remaining, max(20, remaining * OP_WEIGHT.get(op, 1) / sum(weights)))
            if budget < 5:
                rows.append({"op": op, "status": "not run (out of time)"})
                continue
            started = time.time()
            cmd = [tool, "ops", "test", "-b", "CUDA0", "-o", op, "-j", jobs]
            rc, out, err = run(cmd, env=libenv, timeout=budget)
            seconds = time.time() - started
            text = ANSI.sub("", out)
            logf.write(f"===== {' '.join(cmd[1:])}  (rc={rc}, {seconds:.1f} s, limit {budget:.0f} s)\n{text}\n{ANSI.sub('', err)[-4000:]}\n")
            logf.flush()
            summary = re.search(r"^\s*(\d+)/(\d+) tests passed", text, re.M)
            # one line per case, "  OP(params): OK|FAIL|not supported [...]" (an error detail the
            # case printed before it may share the line)
            ok_lines = len(re.findall(r"\): OK$", text, re.M))
            fail_lines = re.findall(r"([A-Z][A-Z0-9_]*\(\S*\)): FAIL$", text, re.M)
            unsupported = len(re.findall(r"not supported \[", text))
            backend_ok = re.search(r"Backend CUDA0: OK", text) is not None
            row = {"op": op, "rc": rc, "seconds": round(seconds, 1), "limit_s": round(budget),
                   "passed": int(summary.group(1)) if summary else ok_lines,
                   "run": int(summary.group(2)) if summary else ok_lines + len(fail_lines),
                   "failed": fail_lines[:20], "not_supported": unsupported,
                   "status": "OK" if rc == 0 and backend_ok else ("TIMEOUT (partial)" if rc == "timeout" else "FAIL")}
            rows.append(row)
            log(f"ops {op}: {row['status']} {row['passed']}/{row['run']} passed, {unsupported} not supported, "
                f"{seconds:.0f} s")
    RESULTS["ops"] = rows
    RESULTS["checks"]["test-backend-ops"] = {
        "ok": all(r.get("status") == "OK" for r in rows) if rows else None,
        "no_failures": all(not r.get("failed") and r.get("status") != "FAIL" for r in rows)}


# ------------------------------------------------------------------------------------ report

def summary():
    smi = (RESULTS.get("machine", {}).get("nvidia_smi") or "?").splitlines() or ["?"]
    lines = [f"GPU check, {RESULTS['started']}, {time.time() - START:.0f} s; GPU: {smi[-1]}", ""]
    lines.append(f"{'check':52} result")
    for name, c in RESULTS["checks"].items():
        if name == "bench":
            continue
        verdict = {True: "PASS", False: "FAIL", None: "----"}[c.get("ok")]
        if "nmse" in c:
            detail = (f"nmse {c['nmse']:.3g} (<= {c['max_nmse']:g}), max|d| {c['max_abs_diff']:.3g} of "
                      f"{c['ref_max_abs']:.3g}, argmax {c['argmax_agree']}/{c['steps']}")
        elif "how" in c:
            detail = c["how"]
        elif "needed" in c:
            detail = f"{c['machine']}; binaries need {', '.join(sorted(set(v for v in c['needed'].values() if v)))}"
        elif "skipped" in c or "error" in c:
            detail = f"skipped: {c['skipped']}" if "skipped" in c else f"error: {c['error']}"
        else:
            parts = []
            if c.get("devices"):
                parts.append("devices " + "; ".join(d.split("|")[0] + "/" + d.split("|")[-1][:24] for d in c["devices"]))
            if c.get("offloaded"):
                parts.append("offloaded " + ",".join(c["offloaded"]))
            if "tokens_equal_cpu_package" in c:
                parts.append("tokens = cpu pkg" if c["tokens_equal_cpu_package"] else "tokens DIFFER from cpu pkg")
            elif c.get("tokens"):
                parts.append("tokens " + c["tokens"][:40])
            detail = ", ".join(parts)
        lines.append(f"{name[:52]:52} {verdict} {detail}")
    if RESULTS.get("bench"):
        lines += ["", f"{'model':6} {'build':38} {'pp' + str(N_PROMPT) + ' t/s':>14} {'tg' + str(N_GEN) + ' t/s':>12}"]
        for r in RESULTS["bench"]:
            if "error" in r:
                lines.append(f"{r['model']:6} {r['build']:38} {r['error'][:60]}")
            else:
                lines.append(f"{r['model']:6} {r['build']:38} {r['pp_median']:14.1f} {r['tg_median']:12.1f}")
    if RESULTS.get("ops"):
        lines += ["", f"{'op (test -b CUDA0)':18} {'status':18} {'passed/run':>12} {'n/s':>5} {'s':>6}"]
        for r in RESULTS["ops"]:
            lines.append(f"{r['op']:18} {r['status']:18} {str(r.get('passed', '')) + '/' + str(r.get('run', '')):>12} "
                         f"{r.get('not_supported', ''):>5} {r.get('seconds', ''):>6}")
            for name in r.get("failed", [])[:5]:
                lines.append(f"    FAIL {name[:150]}")
    return "\n".join(lines)


def verdict_tokens_or_logits():
    """the issue's criterion: the offloaded NIF's greedy tokens equal the cpu package's, or the
    logits are within the stated tolerance (the tiny model, the one the NIF generated from)"""
    equal = RESULTS.get("gpu_tokens_equal_cpu_package")
    logits = RESULTS["checks"].get("logits CPU alone vs all on GPU: tiny F32", {})
    if equal is None and not logits:
        return
    ok = bool(equal) or logits.get("ok") is True
    tokens = "tokens equal" if equal else "tokens differ" if equal is False else "tokens not compared"
    how = (tokens if equal else
           f"{tokens}, logits within tolerance (nmse {logits.get('nmse')})" if logits.get("ok") else
           f"{tokens}, logits not within tolerance or not measured")
    record("GPU vs CPU: tokens equal or logits within tolerance", ok, how=how)


def main():
    wanted = STEPS if len(sys.argv) < 2 or sys.argv[1] == "all" else tuple(s for s in sys.argv[1].split(",") if s)
    unknown = [s for s in wanted if s not in STEPS]
    if unknown:
        raise SystemExit(f"unknown step(s) {unknown}; choose from {STEPS}")
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(OUT, exist_ok=True)
    bundles = unpack()
    machine_info()
    dirs = cuda_runtime_dirs(bundles)
    guarded_glibc(bundles)
    libenv = {"LD_LIBRARY_PATH": ":".join(dirs + [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p])}
    RESULTS["LD_LIBRARY_PATH"] = libenv["LD_LIBRARY_PATH"]
    models = None

    def guarded(name, fn, *args):
        """a step that breaks is recorded as a failure; the steps after it still run"""
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            record(f"step {name}", False, error=f"{type(e).__name__}: {e}")
            return None

    try:
        if "nif" in wanted:
            guarded("nif", step_nif, bundles, libenv)
        if "logits" in wanted:
            guarded("logits", step_logits, bundles, libenv)
        if ("bench" in wanted or "logits" in wanted) and bundles:
            if left() > 90:
                models = guarded("models", make_models, bundles)
            else:
                record("bench models", None, skipped="out of time")
        if "bench" in wanted:
            guarded("bench", step_bench, bundles, libenv, models)
        if "logits" in wanted and models:
            guarded("logits (bench models)", step_logits_models, bundles, libenv, models)
        if "ops" in wanted:
            guarded("ops", step_ops, bundles, libenv)
    finally:
        verdict_tokens_or_logits()
        RESULTS["seconds"] = round(time.time() - START, 1)
        with open(os.path.join(OUT, "results.json"), "w") as f:
            json.dump(RESULTS, f, indent=1)
        text = summary()
        with open(os.path.join(OUT, "summary.txt"), "w") as f:
            f.write(text + "\n")
        print("\n" + text)
    failed = [n for n, c in RESULTS["checks"].items() if c.get("ok") is False]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
