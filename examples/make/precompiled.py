#!/usr/bin/env python3
"""Turns built NIFs into elixir_make precompiled artifacts: one
<app>-nif-<nif_version>-<target>-<version>.tar.gz per target (the NIF inside, under priv/'s name)
and a checksum.exs mapping each archive to "sha256:<hex>", which elixir_make verifies on download.

usage: precompiled.py --app llama_ex --version 0.1.0 --nif-version 2.16 --out dist \\
                      PROFILE=PATH/TO/llama_ex_nif.so [PROFILE=PATH ...]
PROFILE is a file name from profiles/ (linux-armv8, ...); it picks the target triple.
"""
import argparse
import gzip
import hashlib
import io
import os
import sys
import tarfile

# profiles/ name -> the target triple elixir_make's cc_precompiler uses
TARGETS = {
    "linux-x86_64": "x86_64-linux-gnu",
    "linux-x86_64-cuda": "x86_64-linux-gnu-cuda",
    "linux-armv8": "aarch64-linux-gnu",
    "linux-riscv64": "riscv64-linux-gnu",
    "windows-x86_64-mingw": "x86_64-windows-gnu",
    "macos-armv8-metal": "aarch64-apple-darwin",
    "macos-x86_64": "x86_64-apple-darwin",
}


def artifact(app, version, nif_version, target, nif_path, out):
    name = f"{app}-nif-{nif_version}-{target}-{version}.tar.gz"
    buf = io.BytesIO()
    # reproducible: fixed mtime/owner in the tar and the gzip header
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        info = tar.gettarinfo(nif_path, arcname=os.path.basename(nif_path))
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        with open(nif_path, "rb") as f:
            tar.addfile(info, f)
    data = buf.getvalue()
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    return name, hashlib.sha256(data).hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--app", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--nif-version", required=True, help="erlang:system_info(nif_version), e.g. 2.16")
    ap.add_argument("--out", required=True)
    ap.add_argument("builds", nargs="+", metavar="PROFILE=NIF")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    sums = {}
    for build in args.builds:
        prof, _, path = build.partition("=")
        if prof not in TARGETS:
            sys.exit(f"unknown profile {prof!r}: one of {', '.join(TARGETS)}")
        name, digest = artifact(args.app, args.version, args.nif_version, TARGETS[prof], path, args.out)
        sums[name] = digest
        print(f"{name}  sha256:{digest}")
    with open(os.path.join(args.out, "checksum.exs"), "w") as f:
        f.write("%{\n" + "".join(f'  "{n}" => "sha256:{d}",\n' for n, d in sorted(sums.items())) + "}\n")


if __name__ == "__main__":
    main()
