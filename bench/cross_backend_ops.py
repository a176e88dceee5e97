#!/usr/bin/env python3
"""Upstream's test-backend-ops (mode `test -b CPU`: each CPU kernel against ggml's reference path)
for every armv8 variant of the default (runtime dispatch) armv8 package, each forced in turn with
LLAMA_CPP_CPU_VARIANT under qemu-aarch64 `-cpu max` (which runs all of them). Too slow under
emulation for CI: tests/test_cross.py checks the armv8 variants' choice and tokens instead.

  python bench/cross_backend_ops.py [--home DIR] [--cpu max] [--ops MUL_MAT,ROPE]

The package is built (or taken from DIR's cache) with the options tests/test_cross.py uses
(with_common=False); the op subset is bench/harness.py's BACKEND_OPS. Prints one line per variant
and op: passed/total and seconds. Exit status 1 if any case failed.
"""
import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from harness import (BACKEND_OPS, build_consumer, build_package, extract_upstream, private_conan,  # noqa: E402
                     profile)
from llama_cpp_recipe.cpu import CPU_VARIANT_ENV, CPU_VARIANTS  # noqa: E402  (harness puts the repository on sys.path)

TARGET = ["-pr:b", profile("linux-x86_64"), "-pr:h", profile("linux-armv8")]
OPTIONS = ["-o", "*:with_common=False"]
QEMU = ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default="/tmp/llama-cpp-cross-ops", help="CONAN_HOME to build in or reuse")
    parser.add_argument("--cpu", default="max", help="qemu-aarch64 CPU model")
    parser.add_argument("--ops", default="", help="comma-separated op names (default: all of BACKEND_OPS)")
    args = parser.parse_args()
    conan = private_conan(args.home)
    build_package(conan, *TARGET, *OPTIONS, "-tf", "")
    work = os.path.join(args.home, "cross-backend-ops")
    upstream = extract_upstream(work, "tests/test-backend-ops.cpp")
    build = build_consumer(conan, work, os.path.join(ROOT, "bench", "gpu_tool"), OPTIONS,
                           [f"-DUPSTREAM_TESTS_DIR={upstream}/tests", f"-DTEST_PACKAGE_SRC={ROOT}/test_package/src"],
                           profiles=TARGET)
    wanted = set(filter(None, args.ops.split(",")))
    failed = 0
    for variant in CPU_VARIANTS["armv8"]:
        for op, params in BACKEND_OPS:
            if wanted and op not in wanted:
                continue
            started = time.time()
            proc = subprocess.run([QEMU[0], "-cpu", args.cpu, *QEMU[1:], os.path.join(build, "gpu_tool"), "ops", "test",
                                   "-b", "CPU", "-o", op, *(["-p", params] if params else [])],
                                  capture_output=True, text=True, env={**os.environ, CPU_VARIANT_ENV: variant["name"]})
            passed = re.search(r"(\d+)/(\d+) tests passed", proc.stdout)
            forced = f"variant {variant['name']}, forced" in proc.stdout + proc.stderr
            ok = proc.returncode == 0 and passed and passed.group(1) == passed.group(2) and forced
            failed += not ok
            print(f"{variant['name']:12} {op:15} {passed.group(0) if passed else 'no summary':22} "
                  f"{time.time() - started:6.1f} s{'' if ok else ' FAILED'}", flush=True)
            if not ok:  # the failing cases with their error lines (NMSE, ...), colours stripped
                text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
                for line in text.splitlines():
                    if "FAIL" in line or "NMSE" in line or "error" in line.lower():
                        print("    " + line.strip()[:300], flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
