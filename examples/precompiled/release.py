#!/usr/bin/env python3
"""Builds the precompiled NIF set of an elixir_make-style project (a Makefile that takes
CONAN_DEPS_DIR, PRIV_DIR, ERTS_INCLUDE_DIR, CC, CXX and NIF_EXT, like examples/make) for every
target this Debian host can build, packs each as elixir_make downloads it, and runs each one.

  python3 examples/precompiled/release.py --out dist                      # examples/make, every target
  python3 examples/precompiled/release.py --nif path/to/project --app my_app --version 1.2.0 \\
      --call 'generate b:{model} "b:hello world" i:16' --targets x86_64-linux-gnu,x86_64-windows-msvc

For each target: the llama-cpp package (`conan install --build=missing`: built once, then taken
from Conan's cache), the NIF (make -B with the target's compilers), llama_cpp_recipe.nifcheck's
rules (exports, no unexpected library, the glibc floor), one archive
<app>-nif-<nif_version>-<target>-<version>.tar.gz holding priv/'s files, and checksum.exs as
`mix elixir_make.checksum` writes it. Then each NIF runs where this host can run it, through
nif_host.c (a stand-in for the VM, built per target): natively, with Debian 11's glibc 2.31, through
the musl loader, under qemu-user with the target's own loader, under wine. Every --call's result
must equal the native build's under the real Erlang VM (the NIF built with profiles/linux-x86_64,
gcc, this host's glibc). The table goes to stdout and <out>/release.md, the facts to
<out>/release.json. Exit status 1 if any target failed to build, to load or to match.

Needs what `bash .ci/run` installs (cross compilers, Zig, qemu-user, musl, wine64, Erlang) and
network access to Debian 11's package archive (the glibc 2.31 and arm64 userlands, unpacked into
<out>/../ once).
"""
import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [ROOT, os.path.join(ROOT, "bench")]
from harness import REF, Conan, debian11_root, extract_upstream, package_node, profile, source_mirror  # noqa: E402
from llama_cpp_recipe import nifcheck  # noqa: E402
from make_model import write_random_llama  # noqa: E402

NATIVE = "native"  # the reference build: profiles/linux-x86_64 (gcc, this host's glibc), run in erl

# target (cc_precompiler's name for the VM it loads into) -> how this host builds and runs it.
# runs: where nif_host runs it; "debian11" needs Debian 11's userland (glibc 2.31, musl for arm64)
TARGETS = {
    "x86_64-linux-gnu": {"profile": "linux-x86_64-glibc2.28", "floor": "glibc2.28",
                         "runs": ["native", "debian11-x86_64"]},
    "aarch64-linux-gnu": {"profile": "linux-armv8-glibc2.28", "floor": "glibc2.28", "runs": ["qemu-aarch64-debian11"]},
    "x86_64-linux-musl": {"profile": "linux-x86_64-musl", "floor": "musl", "runs": ["musl-x86_64"]},
    "aarch64-linux-musl": {"profile": "linux-armv8-musl", "floor": "musl", "runs": ["qemu-aarch64-debian11"]},
    # Debian's riscv64 cross gcc: glibc 2.36 (no older riscv64 sysroot on this host; Zig's is the
    # next step); rv64gc baseline (gcc 12 has no RVV intrinsics)
    "riscv64-linux-gnu": {"profile": "linux-riscv64", "floor": None, "runs": ["qemu-riscv64"]},
    # the official Windows Erlang/OTP is built with MSVC, so cc_precompiler asks for
    # x86_64-windows-msvc there; the MinGW DLL has the C ABI a NIF needs and no MinGW DLL beside it
    "x86_64-windows-msvc": {"profile": "windows-x86_64-mingw", "floor": None, "ext": "dll", "runs": ["wine"]},
    # not here: a vulkan variant with the glibc-2.28 floor. The recipe builds GPU backends with the
    # host's gcc only (the Zig sysroot has no Vulkan headers or loader; docs/release.md says where
    # a Zig vulkan build stops)
}
DEFAULT_CALLS = ['generate b:{model} "b:hello world" i:16', 'chat_prompt b:{model} b:hello']


def log(*args):
    print(f"[release {time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- elixir_make's names and files

def archive_name(app, nif_version, target, version):
    """elixir_make's precompiled archive name for a NIF (ElixirMake.Artefact)."""
    return f"{app}-nif-{nif_version}-{target}-{version}.tar.gz"


def write_archive(path, priv):
    """A gzip'd tar of priv/'s files at the archive's root (elixir_make extracts it into the app's
    priv/). Reproducible: names sorted, mtime 0, owner 0/root, no gzip name or time."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=buf, mode="wb", mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name in sorted(os.listdir(priv)):
                info = tar.gettarinfo(os.path.join(priv, name), arcname=name)
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
                info.mode = 0o755
                with open(os.path.join(priv, name), "rb") as f:
                    tar.addfile(info, f)
    data = buf.getvalue()
    with open(path, "wb") as f:
        f.write(data)
    return sha256(data)


def checksum_exs(sums):
    """checksum.exs as `mix elixir_make.checksum` writes it: an Elixir map, one line per archive,
    sorted, "sha256:<hex>"."""
    return "%{\n" + "".join(f'  "{name}" => "sha256:{digest}",\n' for name, digest in sorted(sums.items())) + "}\n"


# ---------------------------------------------------------------- building

def erts_include(work, windows):
    """ERTS headers for the NIF: this host's, or for Windows a copy whose erl_int_sizes_config.h
    has Win64's sizes (long is 4 bytes there; the host's header says 8, and ERL_NIF_TERM and the
    64-bit integer API would be wrong)."""
    out = subprocess.run(["erl", "-noshell", "-eval", 'io:format("~ts/usr/include", [code:root_dir()]), halt().'],
                         capture_output=True, text=True, check=True).stdout
    if not windows:
        return out
    win = os.path.join(work, "erts-include-win64")
    if not os.path.exists(win):
        shutil.copytree(out, win)
        # OTP 25's erl_drv_nif.h gives gcc >= 11 malloc(deallocator) attributes that the Windows
        # branch of erl_nif.h then puts on the members of its callback table (function pointers),
        # which gcc rejects ("'enif_free' undeclared"): MinGW gets the attribute-free variant
        drv = os.path.join(win, "erl_drv_nif.h")
        with open(drv) as f:
            text = f.read()
        with open(drv, "w") as f:
            f.write(text.replace("#    if defined(__GNUC__) && __GNUC__ >= 11",
                                 "#    if defined(__GNUC__) && __GNUC__ >= 11 && !defined(_WIN32)"))
        with open(os.path.join(win, "erl_int_sizes_config.h"), "w") as f:
            f.write("/* Win64 (LLP64), as an MSVC-built Erlang/OTP has it */\n#define SIZEOF_CHAR 1\n#define SIZEOF_SHORT 2\n"
                    "#define SIZEOF_INT 4\n#define SIZEOF_LONG 4\n#define SIZEOF_LONG_LONG 8\n#define SIZEOF_VOID_P 8\n")
    return win


def compilers(conan, host_profile):
    """(cc, c++, environment) of a profile: tools.build:compiler_executables, else gcc/g++."""
    proc = subprocess.run([conan.executable, "profile", "show", "-pr:b", profile("linux-x86_64"), "-pr:h", host_profile,
                           "--format=json"], env=conan.env, capture_output=True, text=True, check=True)
    host = json.loads(proc.stdout)["host"]
    exe = host["conf"].get("tools.build:compiler_executables", {})
    env = {}
    if "zig" in exe.get("c", ""):
        import ziglang
        env["ZIG"] = os.path.join(os.path.dirname(ziglang.__file__), "zig")
    return exe.get("c", "gcc"), exe.get("cpp", "g++"), env


def install_package(conan, target, spec, work, mirror_conf):
    """The llama-cpp package for the target (built only when Conan's cache lacks it) and its
    MakeDeps: (deps folder, 'built' or 'cache', seconds)."""
    deps = os.path.join(work, "conan")
    pr = profile("linux-x86_64") if target == NATIVE else profile(spec["profile"])
    proc = conan("install", f"--requires={REF}", "-pr:b", profile("linux-x86_64"), "-pr:h", pr,
                 *spec.get("options", []), *mirror_conf, "--build=missing", "-g", "MakeDeps", "-of", deps,
                 graph=True, check=False, timeout=7200)
    if proc.returncode != 0:
        raise RuntimeError("conan install failed: " + last_error(proc.stdout))
    node = package_node(proc.graph)
    return deps, "built" if node["binary"] == "Build" else "cache", proc.seconds


def last_error(text):
    """The first line that says what went wrong (a compiler's or linker's first complaint, Conan's
    ERROR), else the last line."""
    lines = [line for line in text.splitlines()
             if "ERROR" in line or "error:" in line or "undefined reference" in line or "cannot find" in line]
    return (lines[0] if lines else text.strip().splitlines()[-1] if text.strip() else "?")[-300:]


def build_nif(nif_dir, deps, priv, cc, cxx, env, ext, erts):
    shutil.rmtree(priv, ignore_errors=True)
    os.makedirs(priv)
    proc = subprocess.run(["make", "-B", "-C", nif_dir, f"CONAN_DEPS_DIR={deps}", f"PRIV_DIR={priv}",
                           f"ERTS_INCLUDE_DIR={erts}", f"CC={cc}", f"CXX={cxx}", f"NIF_EXT={ext}"],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError("make failed: " + last_error(proc.stdout + proc.stderr))
    libs = [f for f in os.listdir(priv) if f.endswith("." + ext)]
    if len(libs) != 1:
        raise RuntimeError(f"make left {sorted(os.listdir(priv))} in PRIV_DIR, expected one .{ext}")
    return os.path.join(priv, libs[0])


def strip_debug(target, lib):
    """Drops an ELF NIF's debug sections with the target's binutils objcopy (Debian names it
    <arch>-linux-gnu-objcopy, for musl targets too), keeping its symbol table (nifcheck finds the
    stack protector there). Zig's runtime objects (compiler-rt, libunwind, libc++abi) carry DWARF
    naming the folders they were built in (the Conan build folder, the checkout,
    $ZIG_GLOBAL_CACHE_DIR): the same release from two Conan homes differed only there. Zig's own
    -Wl,--strip-debug strips the symbol table too, and `zig objcopy` cannot strip ELF, hence
    binutils."""
    objcopy = target.split("-")[0] + "-linux-gnu-objcopy"
    if not shutil.which(objcopy):
        raise RuntimeError(f"{objcopy} not found: install binutils for {target} (Debian: binutils, "
                           "binutils-aarch64-linux-gnu, binutils-riscv64-linux-gnu)")
    proc = subprocess.run([objcopy, "--strip-debug", lib], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{objcopy} --strip-debug failed: " + last_error(proc.stdout + proc.stderr))


def build_host(work, cc, env, erts, windows, musl):
    """nif_host.c for the target, with the NIF's own C compiler."""
    exe = os.path.join(work, "nif_host.exe" if windows else "nif_host")
    flags = ["-static"] if windows else ["-rdynamic", "-ldl"] + (["-fPIE", "-dynamic", "-pie"] if musl else [])
    subprocess.run([cc, "-O1", "-std=c11", "-D_DEFAULT_SOURCE", f"-I{erts}", os.path.join(HERE, "nif_host.c"), "-o", exe,
                    *flags], check=True, capture_output=True, text=True, env={**os.environ, **env})
    return exe


# ---------------------------------------------------------------- running

def runners(kind, roots, work):
    """(description, command prefix, environment) for one of TARGETS' runs."""
    if kind == "native":
        return "native (glibc {})".format(os.confstr("CS_GNU_LIBC_VERSION").split()[-1]), [], {}
    if kind == "debian11-x86_64":
        lib = os.path.join(roots(), "lib", "x86_64-linux-gnu")
        return "Debian 11 (glibc 2.31)", [os.path.join(lib, "ld-linux-x86-64.so.2"), "--library-path", lib], {}
    if kind == "musl-x86_64":
        return "musl loader (Debian's musl)", [], {}
    if kind == "qemu-aarch64-debian11":
        return "qemu-aarch64 -cpu max, Debian 11 arm64 userland", ["qemu-aarch64", "-cpu", "max", "-L", roots()], {}
    if kind == "qemu-riscv64":
        return "qemu-riscv64, Debian 12 riscv64 libc", ["qemu-riscv64", "-L", "/usr/riscv64-linux-gnu"], {}
    if kind == "wine":
        # a wine prefix of its own in the work folder, never ~/.wine
        wine = "/usr/lib/wine/wine64" if os.path.exists("/usr/lib/wine/wine64") else "wine64"  # Debian: not on PATH
        return "wine64 8.0", [wine], {"WINEDEBUG": "-all", "WINEPREFIX": os.path.join(work, "wineprefix")}
    raise ValueError(kind)


def parse_call(call, model):
    return shlex.split(call.replace("{model}", model))


def run_host(prefix, env, host, lib, call, timeout=1800):
    proc = subprocess.run([*prefix, host, lib, *call], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env})
    out = proc.stdout.strip().splitlines()
    return proc.returncode, out[-1] if out else "", proc.stderr.strip()[-300:]


def erl_term(arg):
    """A nif_host argument as an Erlang term (binaries as byte lists: no quoting to get wrong)."""
    kind, value = arg[:2], arg[2:]
    if kind == "b:":
        return "<<" + ",".join(str(b) for b in value.encode()) + ">>"
    if kind == "i:":
        return str(int(value))
    if kind == "a:":
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise ValueError(f"{arg}: not b:TEXT, i:INTEGER or a:ATOM")


def run_in_erl(lib, host, calls, work):
    """Each call through the real VM: a module with the NIF's name and functions (nif_host lists
    them) that loads the library, then io:format("~w~n") of each result."""
    listing = subprocess.run([host, lib], capture_output=True, text=True, check=True).stdout.splitlines()
    module = listing[0].split()[1]
    funcs = [line.rsplit("/", 1) for line in listing[1:]]
    src = os.path.join(work, "erl")
    os.makedirs(src, exist_ok=True)
    stubs = "".join(f"'{name}'({', '.join('_' for _ in range(int(arity)))}) -> erlang:nif_error(not_loaded).\n"
                    for name, arity in funcs)
    with open(os.path.join(src, f"{module}.erl"), "w") as f:
        f.write(f"-module('{module}').\n-export([{', '.join(f'{chr(39)}{n}{chr(39)}/{a}' for n, a in funcs)}]).\n"
                f"-on_load(init/0).\ninit() -> erlang:load_nif(\"{os.path.splitext(lib)[0]}\", 0).\n{stubs}")
    subprocess.run(["erlc", "-o", src, os.path.join(src, f"{module}.erl")], check=True, capture_output=True, text=True)
    body = "".join(f"io:format(\"~w~n\", [try '{module}':'{c[0]}'({', '.join(erl_term(a) for a in c[1:])}) "
                   f"catch C{k}:R{k} -> {{raised, C{k}, R{k}}} end]), " for k, c in enumerate(calls))
    proc = subprocess.run(["erl", "-noshell", "-pa", src, "-eval", body + "halt()."], capture_output=True, text=True,
                          timeout=1800, cwd=src)
    return proc.returncode, proc.stdout.strip().splitlines(), proc.stderr.strip()[-300:]


def tiny_model(path, work):
    """A seeded random-weight llama (F32, about 0.6 M parameters, SentencePiece-style vocabulary)
    written with upstream's gguf-py from the source archive: every target loads the same bytes."""
    if os.path.exists(path):
        return path
    import numpy as np
    sys.path.insert(0, os.path.join(extract_upstream(os.path.join(work, "upstream"), "gguf-py"), "gguf-py"))
    import gguf
    rng = np.random.default_rng(31)

    def matrix(w, name, rows, cols):
        w.add_tensor(name, (rng.standard_normal((rows, cols), dtype=np.float32) * 0.2).astype(np.float32))
    write_random_llama(gguf, np, path + ".part", "release-check", None, 64, 4, 4, 128, 2, 512, 512, matrix)
    os.replace(path + ".part", path)
    return path


# ---------------------------------------------------------------- the set

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nif", default=os.path.join(ROOT, "examples", "make"), help="the Makefile project (default examples/make)")
    ap.add_argument("--app", default="llama_ex")
    ap.add_argument("--version", default="0.1.0")
    ap.add_argument("--nif-version", default=None, help="default: this Erlang's erlang:system_info(nif_version)")
    ap.add_argument("--out", required=True, help="the archives, checksum.exs, release.md and release.json go here")
    ap.add_argument("--work", default=None, help="build folders (default <out>/../<out name>-work; kept, reused)")
    ap.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset of: " + ", ".join(TARGETS))
    ap.add_argument("--call", action="append", default=None,
                    help="a NIF call every target must answer like the native build (repeatable; {model} is the "
                         "test model's path); default: " + " | ".join(DEFAULT_CALLS))
    ap.add_argument("--model", default=None, help="the model {model} names (default: a tiny seeded one)")
    ap.add_argument("-o", "--package-option", action="append", default=[], metavar="PATTERN:OPTION=VALUE",
                    help="an option of every target's package, as conan's -o (repeatable), e.g. "
                         "'llama-cpp/*:cpu_variants=x86-64,haswell' for x86_64 targets without the AVX-512 rows")
    args = ap.parse_args(argv)
    started = time.time()
    unknown = [t for t in args.targets.split(",") if t and t not in TARGETS]
    if unknown:
        sys.exit(f"release.py: unknown target {', '.join(unknown)}: use some of {', '.join(TARGETS)}")
    targets = [t for t in TARGETS if t in args.targets.split(",")]
    extra = [a for option in args.package_option for a in ("-o", option)]
    out = os.path.abspath(args.out)
    work = os.path.abspath(args.work or out.rstrip("/") + "-work")
    os.makedirs(out, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    nif_version = args.nif_version or subprocess.run(
        ["erl", "-noshell", "-eval", 'io:format("~s", [erlang:system_info(nif_version)]), halt().'],
        capture_output=True, text=True, check=True).stdout
    conan = Conan(os.environ.get("CONAN_HOME") or os.path.expanduser("~/.conan2"))
    mirror = source_mirror()
    mirror_conf = ["-c", f"user.llama-cpp:source_mirror={mirror}"] if os.path.isdir(mirror) else []
    conan("export", ROOT)
    model = os.path.abspath(args.model) if args.model else tiny_model(os.path.join(work, "release-check.gguf"), work)
    calls = [parse_call(c, model) for c in (args.call or DEFAULT_CALLS)]
    roots_cache = {}

    def roots():
        if "d11" not in roots_cache:
            roots_cache["d11"] = debian11_root(os.path.join(work, "debian11"), ["libc6:amd64", "libc6:arm64", "musl:arm64"])
        return roots_cache["d11"]

    # the reference: the native build under the real VM, and nif_host's answer for the same library
    rows, sums = [], {}
    log("native reference (profiles/linux-x86_64, gcc)")
    folder = os.path.join(work, NATIVE)
    deps, how, seconds = install_package(conan, NATIVE, {}, folder, mirror_conf)
    erts = erts_include(work, False)
    lib = build_nif(args.nif, deps, os.path.join(folder, "priv"), "gcc", "g++", {}, "so", erts)
    host = build_host(folder, "gcc", {}, erts, False, False)
    code, reference, err = run_in_erl(lib, host, calls, folder)
    if code != 0 or len(reference) != len(calls):
        sys.exit(f"release.py: the native NIF failed under erl ({code}): {err}")
    shim = [run_host([], {}, host, lib, c)[1] for c in calls]
    log(f"native: package {how}; erl: {reference[0][:60]}...; nif_host {'agrees' if shim == reference else 'DIFFERS'}")
    native = {"target": "native reference", "package": how, "size": os.path.getsize(lib), "floor": "-",
              "runs": [{"where": "Erlang/OTP VM (erl)", "ok": True, "equal": True},
                       {"where": "nif_host", "ok": True, "equal": shim == reference}]}

    for target in targets:
        spec = {**TARGETS[target]}
        spec["options"] = spec.get("options", []) + extra
        ext = spec.get("ext", "so")
        windows = ext == "dll"
        row = {"target": target, "profile": spec["profile"], "runs": []}
        rows.append(row)
        folder = os.path.join(work, target)
        log(f"{target}: package ({spec['profile']} {' '.join(spec.get('options', []))})")
        try:
            deps, row["package"], row["package_s"] = install_package(conan, target, spec, folder, mirror_conf)
            cc, cxx, env = compilers(conan, profile(spec["profile"]))
            erts = erts_include(work, windows)
            lib = build_nif(args.nif, deps, os.path.join(folder, "priv"), cc, cxx, env, ext, erts)
            if not windows:
                strip_debug(target, lib)
            host = build_host(folder, cc, env, erts, windows, spec["floor"] == "musl")
        except (RuntimeError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            detail = getattr(error, "stderr", None) or str(error)
            row["error"] = f"build failed: {last_error(detail) if not isinstance(error, RuntimeError) else error}"
            log(f"{target}: {row['error']}")
            continue
        binary, problems = nifcheck.check(lib, exports=("nif_init",), undefined=() if windows else ("enif_",),
                                          floor=spec["floor"])
        row.update(size=os.path.getsize(lib), problems=problems,
                   floor=spec["floor"] or ("newest " + ", ".join(f"{k}_{v}" for k, v in sorted(nifcheck.newest_versions(binary).items())) if not windows else "Windows DLLs only"))
        name = archive_name(args.app, nif_version, target, args.version)
        sums[name] = write_archive(os.path.join(out, name), os.path.join(folder, "priv"))
        row["archive"] = name
        for kind in spec["runs"]:
            try:
                where, prefix, env = runners(kind, roots, work)
            except subprocess.CalledProcessError as error:
                row["runs"].append({"where": kind, "ok": False, "equal": False, "error": f"no userland: {error}"})
                continue
            results, ok, err = [], True, ""
            for call in calls:
                code, line, err = run_host(prefix, env, host, lib, call)
                ok = ok and code == 0
                results.append(line)
            row["runs"].append({"where": where, "ok": ok, "equal": results == reference,
                                **({} if ok else {"error": err}), **({} if results == reference else {"got": results})})
            log(f"{target} / {where}: {'ran' if ok else 'FAILED ' + err}, {'equal' if results == reference else 'DIFFERENT'}")

    with open(os.path.join(out, "checksum.exs"), "w") as f:
        f.write(checksum_exs(sums))
    seconds = time.time() - started
    table = report(rows, native, nif_version, seconds)
    print(table)
    with open(os.path.join(out, "release.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(out, "release.json"), "w") as f:
        json.dump({"nif_version": nif_version, "reference": reference, "calls": calls, "native": native, "targets": rows,
                   "seconds": seconds, "checksums": sums}, f, indent=1)
    failed = [r["target"] for r in rows if r.get("error") or r.get("problems") or not r["runs"]
              or not all(x["ok"] and x["equal"] for x in r["runs"])]
    if not all(x["equal"] for x in native["runs"]):
        failed.append("nif_host against erl")
    if failed:
        print(f"release.py: not releasable: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def report(rows, native, nif_version, seconds):
    lines = [f"Precompiled NIF set, NIF version {nif_version}, {datetime.datetime.now():%Y-%m-%d %H:%M}, "
             f"{seconds:.0f} s", "",
             "| target | package | size | glibc floor / libc | nifcheck | runs (where) | tokens equal |",
             "|---|---|---|---|---|---|---|"]
    for r in [native, *rows]:
        if r.get("error"):
            lines.append(f"| {r['target']} | - | - | - | - | {r['error']} | no |")
            continue
        runs = "; ".join(x["where"] + ("" if x["ok"] else " (FAILED: " + x.get("error", "") + ")") for x in r["runs"])
        check = "-" if "problems" not in r else ("ok" if not r["problems"] else "; ".join(r["problems"]))
        equal = "yes" if r["runs"] and all(x["equal"] for x in r["runs"]) else "NO"
        lines.append(f"| {r['target']} | {r['package']} | {r['size']:,} | {r['floor']} | {check} | {runs} | {equal} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
