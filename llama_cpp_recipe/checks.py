"""The checks of validate(), validate_build() and build() that are plain functions of their inputs
(a value, a compiler, a shader folder): each returns what the recipe reports."""
import os
import re
import subprocess

from .tables import LIBC_CONF, LIBCS


def cuda_architectures_problem(archs):
    """Why cuda_architectures=archs is malformed (one line), or None."""
    if not re.fullmatch(r"(native|all|all-major|(\d{2,3}[af]?(-real|-virtual)?)(;\d{2,3}[af]?"
                        r"(-real|-virtual)?)*)", archs):
        return (f"cuda_architectures={archs!r} is malformed: use ';'-separated compute "
                f"capabilities like '86-real;90-real;90-virtual', or 'all'/'all-major'/'native'")
    return None


def cuda_ptx_12x(archs):
    """The plain 12x entries of cuda_architectures: upstream rewrites a plain 12x to 12xa, whose
    PTX then runs on that family only."""
    return [a for a in archs.split(";") if re.fullmatch(r"12\d(-virtual)?", a)]


def libc_problem(cc, libc):
    """Why the C compiler `cc` does not target the C library conf user.llama-cpp:libc=libc
    promises (one line), or None: asked of the compiler itself (one preprocessor run)."""
    probe = "#include <stdio.h>\n#ifdef __GLIBC__\nglibc __GLIBC__.__GLIBC_MINOR__\n#else\nnoglibc\n#endif\n"
    try:
        proc = subprocess.run([cc, "-E", "-P", "-x", "c", "-"], input=probe, capture_output=True, text=True,
                              timeout=600)
    except OSError as error:
        return f"{LIBC_CONF}={libc}: the C compiler {cc} cannot run ({error})"
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{LIBC_CONF}={libc}: the C compiler {cc} failed: {reason}"
    found = re.search(r"^glibc\s+(\d+)\s*\.\s*(\d+)", proc.stdout, re.M)
    targets = f"{found.group(1)}.{found.group(2)}" if found else None
    if targets != LIBCS[libc]["glibc"]:
        return (f"{LIBC_CONF}={libc}, but {cc} compiles against "
                f"{'glibc ' + targets if targets else 'a libc without __GLIBC__ (musl)'}: "
                f"use the matching profile linux-<arch>-<libc>")
    return None


def shader_features(glslc, folder):
    """(glslc's version line, supported, missing): the optional shader extensions of ggml-vulkan
    this glslc compiles, probed with upstream's own feature-test shaders in `folder`."""
    version = subprocess.run([glslc, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    supported, missing = [], []
    for name in sorted(os.listdir(folder)):
        shader = os.path.join(folder, name)
        with open(shader, encoding="utf-8") as f:
            extension = re.search(r"#extension\s+(\w+)\s*:\s*require", f.read())
        extension = extension.group(1) if extension else name
        proc = subprocess.run([glslc, "-o", os.devnull, "-fshader-stage=compute", "--target-env=vulkan1.3",
                               shader], capture_output=True, text=True)
        (supported if proc.returncode == 0 else missing).append(extension)
    return version, supported, missing
