#!/usr/bin/env python3
"""Builds HERE, on the machine without a GPU, everything the GPU check (bench/cuda_gpu_check.md)
carries to the GPU machine, and packs it under .gpucheck/ in the repository (git-ignored through
.git/info/exclude), within the device tool's 64 MiB transfer limit.

  python bench/cuda_gpu_prepare.py [--work DIR]

1. the cuda package, reduced to the GPU that is lent (H200: cuda_architectures=90-real) but with the
   flash-attention kernels (cuda_fa=True, the default) and without llama-common (not CUDA code),
   and the cpu package with the same options, in a private CONAN_HOME under --work (kept, so a
   second run reuses both packages); the CUDA toolkit root is the tests' own scaffolding
   (bench/harness.py make_cuda_toolkit: nvcc from $CUDA_HOME, cuBLAS from the nvidia-cublas wheel);
2. the tests' NIF and loader against each (bench/harness.py build_programs), and the loader's
   report here (CPU only, no driver);
3. bench/gpu_tool (upstream test-backend-ops.cpp + the logits probe) against the cuda package;
4. two bundles, stripped and xz-compressed: .gpucheck/nif/nif.tar.xz (cuda NIF, cpu NIF, loader,
   gguf-py, a fallback libcudart, manifest.json) and .gpucheck/ops/ops.tar.xz (gpu_tool, gguf-py);
5. the size of what one device call would send (the working tree git sees + the bundles), and the
   exact `run` call(s) to make: one call carrying .gpucheck when it fits, else two back to back.
   They are printed last and written to .gpucheck/RUN.txt.

Needs what tests/test_cuda.py needs: nvcc under $CUDA_HOME (default /usr/local/cuda), the
nvidia-cublas wheel (pip install nvidia-cublas==13.0.2.14), the source archive at ../shared/sources
or $LLAMA_CPP_SOURCE_MIRROR, conan, cmake, ninja, strip. It never calls the device tool.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import tarfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from harness import (REF, UPSTREAM, build_consumer, build_programs, cuda_create_args, make_cuda_toolkit,  # noqa: E402
                     package_node, private_conan, profile, run_loader, source_mirror)
from llama_cpp_recipe import nifcheck  # noqa: E402  (harness puts the repository on sys.path)
from run import log, sh  # noqa: E402  (bench/run.py)

CUDA_OPTIONS = ["-o", "*:cuda_architectures=90-real", "-o", "*:cuda_fa=True", "-o", "*:with_common=False"]
CPU_OPTIONS = ["-o", "*:with_common=False"]
LIMIT = 64 * 1024 * 1024  # the device tool's cap on the working tree + carried paths, per call
MARGIN = 1024 * 1024      # kept free: files the session adds before its call
CARRY_DIR = ".gpucheck"
RUN_TIMEOUT_S = 400  # the script's own deadline is 300 s (DEADLINE_S); the rest is slack
COMMAND = "bash bench/cuda_gpu_check.sh"


def create(conan, args, env):
    """conan create (no test_package); (seconds, package folder, package id) from Conan's JSON graph,
    also when the binary was already in the cache."""
    proc = conan("create", ".", "--build=missing", "-tf", "", *args, env=env, graph=True, timeout=6 * 3600)
    node = package_node(proc.graph)
    return proc.seconds, node["package_folder"], node["package_id"]


def programs(conan, work, name, args, env):
    """The tests' NIF and loader (bench/harness.py build_programs) against one package, and the
    loader run here (CPU only, no driver): (nif, loader, facts, seconds)."""
    started = time.time()
    built = build_programs(conan, os.path.join(work, f"programs_{name}"), args, profiles=[], env=env)
    proc, report = run_loader(built, os.path.join(work, f"run_{name}"), env=env, check=False)
    if proc.returncode != 0 or not report or report["failures"]:
        raise SystemExit(f"the {name} NIF's loader failed here:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    facts = {"generated": " ".join(map(str, report["generated"])), "devices": report["devices"],
             "needs": ", ".join(nifcheck.inspect(built["path"]).needed)}
    return built["path"], built["loader"], facts, time.time() - started


def extract_upstream(dest):
    """tests/test-backend-ops.cpp and gguf-py/gguf/ from the source archive."""
    shutil.rmtree(dest, ignore_errors=True)
    wanted = (f"{UPSTREAM}/tests/test-backend-ops.cpp", f"{UPSTREAM}/gguf-py/gguf/", f"{UPSTREAM}/LICENSE")
    with tarfile.open(os.path.join(source_mirror(), f"{UPSTREAM}.tar.gz")) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(wanted) or m.name in wanted]
        tar.extractall(dest, members=members, filter="data")
    return os.path.join(dest, UPSTREAM)


def build_tool(conan, work, args, env, upstream):
    started = time.time()
    build = build_consumer(conan, os.path.join(work, "tool"), os.path.join(ROOT, "bench", "gpu_tool"), args,
                           [f"-DUPSTREAM_TESTS_DIR={upstream}/tests", f"-DTEST_PACKAGE_SRC={ROOT}/test_package/src"],
                           profiles=[], env=env)
    tool = os.path.join(build, "gpu_tool")
    # here: it loads with only the CUDA runtime on the loader path, lists the CPU alone, and
    # upstream's main() answers through `ops`
    lib_env = {**os.environ, **env}
    devices = sh([tool, "devices"], env=lib_env)
    ops = sh([tool, "ops", "--list-ops"], env=lib_env)
    for op in ("MUL_MAT", "FLASH_ATTN_EXT", "SOFT_MAX", "ROPE", "RMS_NORM", "GET_ROWS", "CPY"):
        if f"  {op}\n" not in ops:
            raise SystemExit(f"gpu_tool ops --list-ops does not list {op}")
    return tool, time.time() - started, devices.strip()


def glibc_needed(path):
    """the newest GLIBC_x.y symbol version a binary needs (it will not load on an older glibc)"""
    versions = set(re.findall(r"GLIBC_([0-9.]+)", sh(["objdump", "-T", path])))
    return "GLIBC_" + max(versions, key=lambda v: tuple(int(x) for x in v.split("."))) if versions else None


def strip_copy(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    sh(["strip", "--strip-unneeded", "-o", dst, src])
    return os.path.getsize(dst)


def pack(stage, archive):
    os.makedirs(os.path.dirname(archive), exist_ok=True)
    with tarfile.open(archive, "w:xz", preset=9) as tar:
        for name in sorted(os.listdir(stage)):
            tar.add(os.path.join(stage, name), arcname=name)
    return os.path.getsize(archive)


def travelling_bytes():
    """bytes of the files one device call sends besides carried paths: tracked and
    untracked-not-ignored files (what `git ls-files` lists), as the device tool counts them."""
    out = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         stdout=subprocess.PIPE, check=True).stdout.decode()
    total = 0
    for rel in filter(None, out.split("\0")):
        path = os.path.join(ROOT, rel)
        if os.path.islink(path):
            total += len(os.readlink(path))
        elif os.path.isfile(path):
            total += os.path.getsize(path)
    return total


def ignore_carry_dir():
    exclude = subprocess.run(["git", "-C", ROOT, "rev-parse", "--git-path", "info/exclude"], stdout=subprocess.PIPE,
                             text=True, check=True).stdout.strip()
    exclude = exclude if os.path.isabs(exclude) else os.path.join(ROOT, exclude)
    os.makedirs(os.path.dirname(exclude), exist_ok=True)
    line = f"/{CARRY_DIR}/"
    existing = open(exclude).read().splitlines() if os.path.exists(exclude) else []
    if line not in existing:
        with open(exclude, "a") as f:
            f.write(line + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/lnif-gpucheck", help="build folder, kept between runs (default %(default)s)")
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    started = time.time()
    manifest = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "ref": REF, "cuda_options": CUDA_OPTIONS[1::2],
                "cpu_options": CPU_OPTIONS[1::2], "seconds": {}}
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], stdout=subprocess.PIPE, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain"], stdout=subprocess.PIPE, text=True).stdout
    manifest["git"] = {"head": head, "dirty_files": len(dirty.splitlines())}

    toolkit = os.path.join(work, "toolkit")
    shutil.rmtree(toolkit, ignore_errors=True)
    os.makedirs(toolkit)
    try:
        make_cuda_toolkit(toolkit)
    except LookupError as missing:
        raise SystemExit(f"missing: {missing}")
    manifest["nvcc"] = sh([os.path.join(toolkit, "bin", "nvcc"), "--version"]).strip().splitlines()[-1]
    create_args, env = cuda_create_args(toolkit)
    conan = private_conan(os.path.join(work, "home"))
    cuda_args = ["-pr:b", profile("linux-x86_64"), *create_args, *CUDA_OPTIONS]
    cpu_args = ["-pr:a", profile("linux-x86_64"), *CPU_OPTIONS]

    log(f"cuda package {' '.join(CUDA_OPTIONS[1::2])} (cold on 2 cores: about half an hour)")
    secs, folder, package_id = create(conan, cuda_args, env)
    manifest["seconds"]["conan_create_cuda"] = round(secs)
    manifest["cuda_package_id"] = package_id
    log(f"cuda package: {secs:.0f} s")
    log("cpu package, same options")
    secs, _, _ = create(conan, cpu_args, None)
    manifest["seconds"]["conan_create_cpu"] = round(secs)
    manifest["cuda_archives"] = {os.path.basename(p): os.path.getsize(p)
                                 for p in sorted(glob.glob(os.path.join(folder, "lib", "*.a")))}
    log(f"cuda archives: {manifest['cuda_archives']}")

    log("the tests' NIF and loader against both packages")
    cuda_nif, cuda_loader, cuda_facts, secs = programs(conan, work, "cuda", cuda_args, env)
    manifest["seconds"]["nif_cuda"] = round(secs)
    cpu_nif, _, cpu_facts, _ = programs(conan, work, "cpu", cpu_args, None)
    manifest["loader_here"] = {"cuda": cuda_facts, "cpu": cpu_facts}
    manifest["cpu_tokens_build_machine"] = cpu_facts["generated"]
    if cuda_facts["generated"] != cpu_facts["generated"]:
        raise SystemExit(f"cuda NIF on the CPU here generated {cuda_facts['generated']}, the cpu package "
                         f"{cpu_facts['generated']}: fix that before spending device time")

    log("gpu_tool (test-backend-ops + logits probe)")
    upstream = extract_upstream(os.path.join(work, "upstream"))
    tool, secs, devices = build_tool(conan, work, cuda_args, env, upstream)
    manifest["seconds"]["gpu_tool"] = round(secs)
    manifest["gpu_tool_devices_here"] = devices

    stage = os.path.join(work, "stage")
    shutil.rmtree(stage, ignore_errors=True)
    nif_stage, ops_stage = os.path.join(stage, "nif"), os.path.join(stage, "ops")
    sizes = {"cuda_nif_unstripped": os.path.getsize(cuda_nif), "cpu_nif_unstripped": os.path.getsize(cpu_nif),
             "cuda_nif": strip_copy(cuda_nif, os.path.join(nif_stage, "libllama_nif.so")),
             "nif_loader": strip_copy(cuda_loader, os.path.join(nif_stage, "nif_loader")),
             "cpu_nif": strip_copy(cpu_nif, os.path.join(nif_stage, "cpu", "libllama_nif.so"))}
    os.makedirs(os.path.join(nif_stage, "fallback"))
    shutil.copy(os.path.join(toolkit, "lib", "libcudart.so.13"), os.path.join(nif_stage, "fallback", "libcudart.so.13"))
    os.makedirs(ops_stage)
    shutil.copy(tool, os.path.join(ops_stage, "gpu_tool"))
    sizes["gpu_tool"] = os.path.getsize(os.path.join(ops_stage, "gpu_tool"))
    for dest in (nif_stage, ops_stage):
        shutil.copytree(os.path.join(upstream, "gguf-py"), os.path.join(dest, "gguf-py"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(os.path.join(upstream, "LICENSE"), os.path.join(dest, "LICENSE-llama.cpp"))
    manifest["sizes"] = sizes
    manifest["glibc_needed"] = {name: glibc_needed(path) for name, path in (
        ("cuda NIF", cuda_nif), ("cpu NIF", cpu_nif), ("nif_loader", cuda_loader), ("gpu_tool", tool))}
    log(f"glibc needed: {manifest['glibc_needed']}")
    log(f"sizes (stripped unless named): {sizes}")

    carry = os.path.join(ROOT, CARRY_DIR)
    shutil.rmtree(carry, ignore_errors=True)
    ignore_carry_dir()
    with open(os.path.join(ops_stage, "manifest-ops.json"), "w") as f:
        json.dump({"date": manifest["date"], "git": manifest["git"], "gpu_tool": sizes["gpu_tool"]}, f, indent=1)
    with open(os.path.join(nif_stage, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    log("packing (xz -9)")
    bundles = {"nif": pack(nif_stage, os.path.join(carry, "nif", "nif.tar.xz")),
               "ops": pack(ops_stage, os.path.join(carry, "ops", "ops.tar.xz"))}
    tree = travelling_bytes()
    log(f"bundles: {bundles}; working tree that travels: {tree:,} bytes")

    mib = lambda n: f"{n / 2**20:.1f} MiB"  # noqa: E731
    budget = LIMIT - MARGIN
    if tree + sum(bundles.values()) <= budget:
        calls = [{"command": COMMAND, "carry": [CARRY_DIR], "timeout_s": RUN_TIMEOUT_S}]
        plan = f"ONE call: {mib(tree + sum(bundles.values()))} of {mib(LIMIT)}"
    elif all(tree + b <= budget for b in bundles.values()):
        calls = [{"command": f"DEADLINE_S=200 {COMMAND} nif,bench", "carry": [f"{CARRY_DIR}/nif"], "timeout_s": 280},
                 {"command": f"DEADLINE_S=260 {COMMAND} logits,ops", "carry": [f"{CARRY_DIR}/ops"], "timeout_s": 340}]
        plan = (f"TWO calls, back to back (the machine stays warm 30 s): nif {mib(tree + bundles['nif'])}, "
                f"ops {mib(tree + bundles['ops'])}; together {mib(tree + sum(bundles.values()))} > {mib(budget)}")
    else:
        raise SystemExit(f"a bundle alone does not fit the {mib(LIMIT)} transfer: {bundles}, tree {tree}; "
                         "see bench/cuda_gpu_check.md, 'If something does not fit'")
    manifest["bundles"] = bundles
    manifest["working_tree_bytes"] = tree
    manifest["plan"] = plan
    manifest["seconds"]["total"] = round(time.time() - started)
    with open(os.path.join(carry, "prepare.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    text = [plan, ""] + [f"run(command={c['command']!r}, carry={json.dumps(c['carry'])}, timeout_s={c['timeout_s']})"
                         for c in calls]
    with open(os.path.join(carry, "RUN.txt"), "w") as f:
        f.write("\n".join(text) + "\n")
    log(f"done in {time.time() - started:.0f} s")
    print("\n".join(text))


if __name__ == "__main__":
    main()
