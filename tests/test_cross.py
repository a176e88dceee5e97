"""Cross targets built from this x86_64 machine: aarch64 and riscv64 run under qemu-user, Windows
DLLs built with MinGW-w64 are checked as PE files and run under wine64 (macOS, which cannot be
built here, is checked through the recipe's own link_components() in test_recipe_config.py). Also:
the CPU baseline option really changes the instructions in libggml-cpu.a."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import PARTS, needs, profile

QEMU = {
    "linux-armv8": ("aarch64", "qemu-aarch64 -L /usr/aarch64-linux-gnu", "aarch64-linux-gnu-g++"),
    "linux-riscv64": ("riscv", "qemu-riscv64 -L /usr/riscv64-linux-gnu", "riscv64-linux-gnu-g++"),
}
# The cross targets leave llama-common out in CI: what they prove is the CPU code, the link and the
# loader under emulation, and common would add about 3 minutes of CI time to each (it was built and
# run under wine once by hand: same chat prompt and JSON as on Linux; README "Targets")
LEAN = {target: ["-o", "*:with_common=False"] for target in ("linux-armv8", "linux-riscv64", "windows-x86_64-mingw")}


def generated_tokens(output):
    return re.search(r"^generated: ([\d ]+)$", output, re.M).group(1).split()


@pytest.mark.parametrize("target", sorted(QEMU))
def test_linux_cross_target_runs_under_qemu(packages, cpu_package, target):
    machine, emulator, compiler = QEMU[target]
    needs(shutil.which(compiler) and shutil.which(emulator.split()[0]), f"{compiler} and {emulator.split()[0]}")
    out = packages.get(target, "-pr:h", profile(target), "-c", "tools.build.cross_building:can_run=True",
                       "-c", f"user.llama-cpp:emulator={emulator}", *LEAN.get(target, []))["output"]
    assert f"libllama_nif.so: ELF {machine}," in out
    assert "libllama_nif.so: self-contained" in out
    assert "ggml/gguf/llama exports: 0" in out
    assert f"RUN: {emulator}" in out, "the loader ran under the emulator"
    assert "LOADER OK" in out
    assert generated_tokens(out) == generated_tokens(cpu_package["output"]), "same tokens as on x86_64"


WINE = "/usr/lib/wine/wine64"  # Debian's wine64 loader (not on PATH without the `wine` wrapper)


def test_windows_mingw_dll_runs_under_wine(packages, cpu_package, tmp_path_factory):
    """The MinGW cross build: the DLL imports only system DLLs, and test_package's Windows loader
    runs under wine64 (the emulator conf, like qemu for Linux targets): it loads the DLL, writes
    the tiny model, generates the same greedy tokens as the Linux build, and gets errors for a
    missing and a garbage model file."""
    needs(shutil.which("x86_64-w64-mingw32-g++-posix"), "mingw-w64")
    needs(os.path.exists(WINE), f"wine64 ({WINE})")
    prefix = str(tmp_path_factory.mktemp("wineprefix"))  # one prefix per session, never ~/.wine
    pkg = packages.get("windows-x86_64-mingw", "-pr:h", profile("windows-x86_64-mingw"),
                       "-c", "tools.build.cross_building:can_run=True", "-c", f"user.llama-cpp:emulator={WINE}",
                       *LEAN["windows-x86_64-mingw"], env={"WINEPREFIX": prefix, "WINEDEBUG": "-all"})
    out = pkg["output"]
    assert "libllama_nif.dll: PE x86_64," in out
    assert "libllama_nif.dll: self-contained" in out
    imports = re.search(r"libllama_nif\.dll: PE.*\n  needs: +(.*)", out).group(1).split(", ")
    assert {n.lower() for n in imports} <= {"kernel32.dll", "advapi32.dll", "msvcrt.dll"}, imports
    for dll in ("libstdc++-6.dll", "libgcc_s_seh-1.dll", "libwinpthread-1.dll"):
        assert dll not in imports
    assert re.search(r"libllama_nif\.dll: PE.*\n.*\n.*\n  exports: +\d+ \(lnif_", out)
    # ggml names its MinGW archives ggml*.a; the package renames them so -lggml finds them
    assert sorted(os.listdir(os.path.join(pkg["folder"], "lib"))) == \
        ["libggml-base.a", "libggml-cpu.a", "libggml.a", "libllama.a"]
    # it ran: under wine, same tokens as Linux x86_64, common works, errors are errors
    assert f"RUN: {WINE}" in out, "the loader ran under wine"
    assert "LOADER OK" in out
    assert generated_tokens(out) == generated_tokens(cpu_package["output"]), "same tokens as on Linux"
    assert "missing file -> error: " in out and "garbage file -> error: " in out


def _disassembly(archive):
    return subprocess.run(["objdump", "-d", "--no-show-raw-insn", archive], capture_output=True, text=True,
                          check=True).stdout


def test_cpu_baseline_controls_the_instructions(parts_package, cpu_package):
    """x86-64-v2 has no AVX (no ymm register), the default x86-64-v3 has AVX2 but no AVX-512 (zmm).
    The x86-64-v2 archive is the one of conftest's parts_package (built once for several tests)."""
    v2 = parts_package
    assert "*:cpu_baseline=x86-64-v2" in " ".join(PARTS)
    v2_asm = _disassembly(os.path.join(v2["folder"], "lib", "libggml-cpu.a"))
    v3_asm = _disassembly(os.path.join(cpu_package["folder"], "lib", "libggml-cpu.a"))
    assert "%xmm" in v2_asm and "%ymm" not in v2_asm
    assert v3_asm.count("%ymm") > 1000, "the v3 archive does use AVX2"
    assert "%zmm" not in v3_asm
    print(f"ymm uses: v2={v2_asm.count('%ymm')} v3={v3_asm.count('%ymm')}; zmm uses: v3={v3_asm.count('%zmm')}")
