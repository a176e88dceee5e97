#!/usr/bin/env python3
"""Build cost of backend=cuda: one cold `conan create` of the cuda package in a fresh CONAN_HOME
(no test_package), then the tests' NIF and loader built against it and run (bench/harness.py
build_programs/run_loader), against a toolkit root made by the tests' own scaffolding
(bench/harness.py make_cuda_toolkit: nvcc + cudart from $CUDA_HOME, cuBLAS from nvidia-cublas).

  python bench/cuda_build.py [-o '*:cuda_architectures=90-real' ...] [--json FILE]

Without -o it builds the recipe's default options (the full default architecture list). Prints,
with timestamps: the wall time of the build (no test_package) and of the NIF build, the number of
CUDA objects and the CPU seconds ninja recorded for them (slowest first), every packaged archive's
size, and what the test NIF needs (nifcheck) and its loader reports. Nothing here is a pass/fail test; a failing step
stops the script with conan's output.
"""
import argparse
import json
import os
import shutil
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from harness import (REF, build_programs, cuda_create_args, make_cuda_toolkit, package_node,  # noqa: E402
                     private_conan, run_loader)
from llama_cpp_recipe import nifcheck  # noqa: E402  (harness puts the repository on sys.path)
from run import log  # noqa: E402  (bench/run.py)


def ninja_times(build_folder):
    """(seconds, output) per CUDA object from the last build recorded in .ninja_log."""
    logs = [os.path.join(d, f) for d, _, files in os.walk(build_folder) for f in files if f == ".ninja_log"]
    last = {}
    for path in logs:
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 5 and parts[3].endswith(".cu.o"):
                    last[parts[3]] = (int(parts[1]) - int(parts[0])) / 1000
    return sorted(((s, o) for o, s in last.items()), reverse=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--option", action="append", default=[], help="conan option, e.g. '*:cuda_fa=False'")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--keep", action="store_true", help="keep the scratch CONAN_HOME")
    args = ap.parse_args()
    options = [x for o in args.option for x in ("-o", o)]

    work = tempfile.mkdtemp(prefix="cuda-bench-")
    os.mkdir(os.path.join(work, "toolkit"))
    toolkit = make_cuda_toolkit(os.path.join(work, "toolkit"))
    create_args, env = cuda_create_args(toolkit)
    conan = private_conan(os.path.join(work, "home"))
    profiles = ["-pr:b", os.path.join(ROOT, "profiles", "linux-x86_64")]

    log(f"cuda build, options: {' '.join(args.option) or '(recipe defaults)'}")
    created = conan("create", ".", "--build=missing", "-tf", "", *profiles, *create_args, *options, env=env,
                    timeout=4 * 3600, graph=True)
    log(f"conan create (no test_package): {created.seconds:.0f} s")
    started = time.time()
    programs = build_programs(conan, os.path.join(work, "programs"), [*create_args, *options], profiles=profiles, env=env)
    _, report = run_loader(programs, os.path.join(work, "run"), env=env)
    nif_seconds = time.time() - started
    log(f"the tests' NIF built and run: {nif_seconds:.0f} s")

    # Conan's JSON graph names the package; Conan says where its build folder is
    node = package_node(created.graph)
    package = node["package_folder"]
    build_folder = conan("cache", "path", f"{REF}:{node['package_id']}", "--folder=build").stdout.strip()
    objects = ninja_times(build_folder)
    archives = {f: os.path.getsize(os.path.join(package, "lib", f))
                for f in sorted(os.listdir(os.path.join(package, "lib"))) if f.endswith(".a")}
    lines = {"needs": ", ".join(nifcheck.inspect(programs["path"]).needed),
             "generated": " ".join(map(str, report["generated"]))}
    devices = report["devices"]

    log(f"CUDA objects: {len(objects)}, ninja CPU seconds for them: {sum(s for s, _ in objects):.0f}")
    for seconds, obj in objects[:8]:
        log(f"  {seconds:7.1f} s  {os.path.basename(obj)}")
    for name, size in archives.items():
        log(f"{name}: {size:,} bytes")
    log(f"NIF needs: {lines['needs']}")
    log(f"devices: {'; '.join(devices)}")
    log(f"generated: {lines['generated']}")
    figures = {"options": args.option, "create_s": created.seconds, "nif_s": nif_seconds,
               "cuda_objects": len(objects), "cuda_object_cpu_s": sum(s for s, _ in objects),
               "slowest": objects[:8], "archives": archives, "nif_needs": lines["needs"], "devices": devices,
               "generated": lines["generated"]}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
