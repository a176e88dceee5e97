"""Cross targets built from this x86_64 machine: aarch64 and riscv64 run under qemu-user, Windows
DLLs built with MinGW-w64 are checked as PE files and run under wine64 (macOS, which cannot be
built here, is checked through the recipe's own link_components() in test_recipe_config.py). What the CPU baseline does to the
instructions is checked in test_cpu_dispatch.py."""
import os
import shutil

import pytest

import nifcheck
from conftest import build_programs, needs, profile, run_loader

QEMU = {
    "linux-armv8": ("aarch64", "qemu-aarch64 -L /usr/aarch64-linux-gnu", "aarch64-linux-gnu-g++"),
    "linux-riscv64": ("riscv", "qemu-riscv64 -L /usr/riscv64-linux-gnu", "riscv64-linux-gnu-g++"),
}
# The cross targets leave llama-common out in CI: what they prove is the CPU code, the link and the
# loader under emulation, and common would add about 3 minutes of CI time to each (it was built and
# run under wine once by hand: same chat prompt and JSON as on Linux; README "Targets")
LEAN = {target: ["-o", "*:with_common=False"] for target in ("linux-armv8", "linux-riscv64", "windows-x86_64-mingw")}
# test_package runs under the emulator for one target per binary format (ELF, PE); for riscv64 the
# tests' own NIF and loader below prove the same (CI time)
TEST_PACKAGE = {"linux-armv8", "windows-x86_64-mingw"}


def cross_nif(conan, packages, work, target, emulator, extra=(), env=None):
    """The cross package (for TEST_PACKAGE targets its conan create runs test_package under the
    emulator), then the tests' NIF and loader built for the target against it and the loader run
    under the emulator."""
    can_run = ["-c", "tools.build.cross_building:can_run=True", "-c", f"user.llama-cpp:emulator={' '.join(emulator)}"]
    cross = ["-pr:b", profile("linux-x86_64"), "-pr:h", profile(target)]
    skip = [] if target in TEST_PACKAGE else ["-tf", ""]
    packages.get(target, cross[2], cross[3], *can_run, *LEAN[target], *extra, *skip, env=env)
    programs = build_programs(conan, work, [*LEAN[target], *extra], profiles=cross, env=env)
    proc, report = run_loader(programs, os.path.join(str(work), "run"), emulator=emulator, env=env)
    return programs, report


@pytest.mark.parametrize("target", sorted(QEMU))
def test_linux_cross_target_runs_under_qemu(conan, packages, cpu_nif, target, tmp_path):
    machine, emulator, compiler = QEMU[target]
    needs(shutil.which(compiler) and shutil.which(emulator.split()[0]), f"{compiler} and {emulator.split()[0]}")
    programs, report = cross_nif(conan, packages, tmp_path, target, emulator.split())
    binary, problems = nifcheck.check(programs["path"], exports=("lnif_",))
    assert binary.format == "ELF" and binary.machine == machine
    assert problems == [] and nifcheck.leaked(binary) == []
    assert report["failures"] == 0
    assert report["generated"] == cpu_nif["report"]["generated"], "same tokens as on x86_64"


WINE = "/usr/lib/wine/wine64"  # Debian's wine64 loader (not on PATH without the `wine` wrapper)


def test_windows_mingw_dll_runs_under_wine(conan, packages, cpu_nif, tmp_path_factory):
    """The MinGW cross build: the DLL imports only system DLLs, and the Windows loader runs under
    wine64 (the emulator conf, like qemu for Linux targets; test_package runs its own loader the same
    way): it loads the DLL, writes the tiny model, generates the same greedy tokens as the Linux
    build, and gets errors for a missing and a garbage model file."""
    needs(shutil.which("x86_64-w64-mingw32-g++-posix"), "mingw-w64")
    needs(os.path.exists(WINE), f"wine64 ({WINE})")
    prefix = str(tmp_path_factory.mktemp("wineprefix"))  # one prefix per session, never ~/.wine
    programs, report = cross_nif(conan, packages, tmp_path_factory.mktemp("mingw"), "windows-x86_64-mingw", [WINE],
                                 env={"WINEPREFIX": prefix, "WINEDEBUG": "-all"})
    binary, problems = nifcheck.check(programs["path"], exports=("lnif_",))
    assert binary.format == "PE" and binary.machine == "x86_64"
    assert problems == []
    assert {n.lower() for n in binary.needed} <= {"kernel32.dll", "advapi32.dll", "msvcrt.dll"}, binary.needed
    assert binary.exports and all(e.startswith("lnif_") for e in binary.exports)
    # ggml names its MinGW archives ggml*.a; the package renames them so -lggml finds them
    folder = packages.built["windows-x86_64-mingw"]["folder"]
    assert sorted(f for f in os.listdir(os.path.join(folder, "lib")) if f.endswith(".a")) == \
        ["libggml-base.a", "libggml-cpu.a", "libggml.a", "libllama.a"]
    # it ran: under wine, same tokens as Linux x86_64, errors are errors
    assert report["failures"] == 0
    assert report["generated"] == cpu_nif["report"]["generated"], "same tokens as on Linux"
    assert report["missing_file_error"] and report["garbage_file_error"]
