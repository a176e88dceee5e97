#!/usr/bin/env python3
"""Upstream's test-backend-ops on mesa's lavapipe (mode `test -b Vulkan0`: each Vulkan kernel
against the CPU backend) with every MUL_MAT case of bench/harness.py's LAVAPIPE_MUL_MAT (mat-vec
with n=1..8 columns, mat-mat with n=9 and 16) and the other LAVAPIPE_OPS, each op with a cold
mesa shader cache. CI (tests/test_vulkan.py) runs MUL_MAT with n=1, 2, 3, 9 and 16 only: n=4..8
run the same SPIR-V with a larger NUM_COLS specialization constant, and llvmpipe spends minutes
compiling them. Run it before a release and after an upstream update.

  python bench/lavapipe_ops.py [--home DIR] [--ops MUL_MAT,ROPE]

The package is the tests' vulkan variant (harness.PARTS), built in DIR's cache or taken from it
(a LLAMA_CPP_TEST_HOME of the tests works). Prints one line per op: passed/total and seconds.
Exit status 1 if any case failed.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from harness import (LAVAPIPE_MUL_MAT, LAVAPIPE_OPS, PARTS, build_consumer, build_package, extract_upstream,  # noqa: E402
                     private_conan)

# every MUL_MAT case of the tests' shapes, whatever its column count
OPS = [(op, LAVAPIPE_MUL_MAT.format(n="[0-9]+") if op == "MUL_MAT" else params) for op, params in LAVAPIPE_OPS]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default="/tmp/llama-cpp-lavapipe-ops", help="CONAN_HOME to build in or reuse")
    parser.add_argument("--ops", default="", help="comma-separated op names (default: all)")
    args = parser.parse_args()
    conan = private_conan(args.home)
    build_package(conan, *PARTS, "-tf", "")
    work = os.path.join(args.home, "lavapipe-ops")
    upstream = extract_upstream(work, "tests/test-backend-ops.cpp")
    build = build_consumer(conan, work, os.path.join(ROOT, "bench", "gpu_tool"), PARTS,
                           [f"-DUPSTREAM_TESTS_DIR={upstream}/tests", f"-DTEST_PACKAGE_SRC={ROOT}/test_package/src"])
    wanted = set(filter(None, args.ops.split(",")))
    failed = 0
    for op, params in OPS:
        if wanted and op not in wanted:
            continue
        with tempfile.TemporaryDirectory() as cache:  # cold: what CI pays on a fresh machine
            started = time.time()
            proc = subprocess.run([os.path.join(build, "gpu_tool"), "ops", "test", "-b", "Vulkan0", "-o", op,
                                   *(["-p", params] if params else [])], capture_output=True, text=True,
                                  env={**os.environ, "GGML_VK_VISIBLE_DEVICES": "0", "MESA_SHADER_CACHE_DIR": cache})
        passed = re.search(r"(\d+)/(\d+) tests passed", proc.stdout)
        ok = proc.returncode == 0 and passed and passed.group(1) == passed.group(2)
        failed += not ok
        print(f"{op:10} {passed.group(0) if passed else 'no summary':22} {time.time() - started:6.1f} s"
              f"{'' if ok else ' FAILED'}", flush=True)
        if not ok:
            for line in re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr).splitlines():
                if "FAIL" in line or "NMSE" in line or "error" in line.lower():
                    print("    " + line.strip()[:300], flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
