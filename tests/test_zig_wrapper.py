"""profiles/zig/zig-tool, the wrapper every Zig profile's compilers are, checked without Zig: ZIG
points to a stand-in that prints the command line it was given, so what the wrapper adds, drops
and refuses per target is read back exactly (the Linux targets' builds and runs are
test_libc_targets.py's; macOS has no such run here: docs/release.md "macOS")."""
import os
import subprocess

import pytest

from conftest import ROOT

BIN = os.path.join(ROOT, "profiles", "zig", "bin")
DSO_FINI = os.path.join(ROOT, "profiles", "zig", "dso_fini.c")


@pytest.fixture
def wrapper(tmp_path):
    echo = tmp_path / "zig"
    echo.write_text("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n")
    echo.chmod(0o755)

    def run(target, tool, *args):
        proc = subprocess.run([os.path.join(BIN, f"{target}-{tool}"), *args], capture_output=True, text=True,
                              env={**os.environ, "ZIG": str(echo)})
        return proc.returncode, proc.stdout.splitlines(), proc.stderr
    return run


# CMake's Darwin rules put -arch and -isysroot on every line (Conan names the SDK `macosx`)
CMAKE_DARWIN = ["-arch", "arm64", "-isysroot", "macosx", "-mmacosx-version-min=11.0", "-O3", "-c", "a.c"]


@pytest.mark.parametrize("target", ["aarch64-macos.11.0", "x86_64-macos.11.0"])
def test_macos_target_drops_the_sdk_and_arch_flags(wrapper, target):
    code, argv, err = wrapper(target, "cc", *CMAKE_DARWIN)
    assert code == 0, err
    assert argv[:4] == ["cc", "-target", target, "-g0"]
    assert argv[4:] == ["-mmacosx-version-min=11.0", "-O3", "-c", "a.c"]


def test_dso_fini_goes_to_linux_shared_links_only(wrapper):
    """A Mach-O dylib's terminators are dyld's; dso_fini.c is an ELF fix (see zig-tool)."""
    _, linux, _ = wrapper("x86_64-linux-gnu.2.28", "c++", "-shared", "a.o", "-o", "a.so")
    _, macos, _ = wrapper("aarch64-macos.11.0", "c++", "-shared", "a.o", "-o", "a.dylib")
    _, linux_exe, _ = wrapper("x86_64-linux-gnu.2.28", "c++", "a.o", "-o", "a")
    assert linux[-1] == DSO_FINI and DSO_FINI not in macos and DSO_FINI not in linux_exe
    assert macos[-3:] == ["a.o", "-o", "a.dylib"]


def test_install_name_tool_refuses_with_one_line(wrapper):
    """CMake's Darwin rules must find one; the build never calls it, and a call must fail loudly."""
    code, out, err = wrapper("aarch64-macos.11.0", "install_name_tool", "-id", "x", "a.dylib")
    assert code == 1 and out == [] and len(err.strip().splitlines()) == 1
    assert "install_name_tool" in err
