"""Cross targets built from this x86_64 machine: aarch64 and riscv64 run under qemu-user, Windows
DLLs built with MinGW-w64 are checked as PE files and run under wine64 (macOS, which cannot be
built here, is checked through the recipe's own link_components() in test_recipe_config.py).
The armv8 and MinGW packages are runtime CPU dispatch (their default): qemu's Arm CPU models, which
report exact HWCAPs, each get their variant here, and the MinGW DLL gets this CPU's under wine
(its PE/COFF renaming is checked too); Linux x86_64 dispatch is tested in test_cpu_dispatch.py."""
import os
import re
import shutil
import subprocess

import pytest

from llama_cpp_recipe import nifcheck
from llama_cpp_recipe.cpu import CPU_VARIANT_ENV, CPU_VARIANTS
from conftest import (CI_X86_VARIANTS, CROSS_OPTIONS, build_programs, cross_compiler, cross_create_args,
                      cross_profiles, declared_cpu_functions, instructions_by_variant, matches_oracle, needs,
                      header_variants, plain_definitions, run_loader, runnable_variants, variant_prefixes,
                      within_bounds)

QEMU = {
    "linux-armv8": ("aarch64", "qemu-aarch64 -L /usr/aarch64-linux-gnu"),
    "linux-riscv64": ("riscv", "qemu-riscv64 -L /usr/riscv64-linux-gnu"),
}
def cross_nif(conan, packages, work, target, emulator, extra=(), env=None):
    """The cross package (no test_package), then the tests' NIF and loader built for the target
    against it and the loader run under the emulator."""
    packages.get(target, *cross_create_args(target), *extra, env=env)
    programs = build_programs(conan, work, [*CROSS_OPTIONS[target], *extra], profiles=cross_profiles(target),
                              env=env)
    proc, report = run_loader(programs, os.path.join(str(work), "run"), emulator=emulator, env=env)
    return programs, report


@pytest.fixture(scope="module")
def qemu_run(conan, packages, tmp_path_factory):
    """cross_nif for a QEMU target, built and run once per module: (programs, report)."""
    runs = {}

    def run(target):
        if target not in runs:
            emulator, compiler = QEMU[target][1], cross_compiler(target)
            needs(shutil.which(compiler) and shutil.which(emulator.split()[0]), f"{compiler} and {emulator.split()[0]}")
            runs[target] = cross_nif(conan, packages, tmp_path_factory.mktemp(target), target, emulator.split())
        return runs[target]
    return run


@pytest.mark.parametrize("target", sorted(QEMU))
def test_linux_cross_target_runs_under_qemu(qemu_run, cpu_nif, target):
    machine, emulator = QEMU[target]
    programs, report = qemu_run(target)
    binary, problems = nifcheck.check(programs["path"], exports=("lnif_",))
    assert binary.format == "ELF" and binary.machine == machine
    assert problems == [] and nifcheck.leaked(binary) == []
    assert report["failures"] == 0
    assert report["generated"] == cpu_nif["report"]["generated"], "same tokens as on x86_64"


# armv8 runtime dispatch: qemu-aarch64 CPU models (their HWCAPs are exact) and the variant each must
# get: Cortex-A53 is plain ARMv8.0, Cortex-A76 has dotprod+fp16, `max` every feature qemu emulates
# (SVE, I8MM, BF16, ...), and with SVE switched off it is an i8mm CPU without SVE
ARMV8_MODELS = {"cortex-a53": "armv8.0", "cortex-a76": "armv8.2", "max,sve=off": "armv8.6", "max": "armv8.6-sve"}


def test_armv8_variants_hold_their_instructions(qemu_run, packages):
    """Each variant of the armv8 archive has the code its row promises: no SDOT/SMMLA/SVE in the
    floor, SDOT from armv8.2, SMMLA from armv8.6, SVE (z registers) only in armv8.6-sve."""
    needs(shutil.which("aarch64-linux-gnu-objdump"), "binutils-aarch64-linux-gnu")
    qemu_run("linux-armv8")
    folder = packages.built["linux-armv8"]["folder"]
    counts = instructions_by_variant("aarch64-linux-gnu-objdump", os.path.join(folder, "lib", "libggml-cpu.a"),
                                     {"sdot": r"\t[su]dot\t", "smmla": r"\t[su]mmla\t", "sve": r"\bz[0-9]+\.[bhsdq]\b"},
                                     arch="armv8")
    for name, c in counts.items():
        print(f"{name:12} {c['lines']:7} instructions, sdot {c['sdot']:5}, smmla {c['smmla']:5}, sve {c['sve']:6}")
    assert counts["armv8.0"]["lines"] > 10000 and counts["armv8.0"]["sdot"] == counts["armv8.0"]["smmla"] == 0
    assert counts["armv8.0"]["sve"] == 0
    assert counts["armv8.2"]["sdot"] > 100 and counts["armv8.2"]["smmla"] == 0 and counts["armv8.2"]["sve"] == 0
    assert counts["armv8.6"]["smmla"] > 10 and counts["armv8.6"]["sve"] == 0
    assert counts["armv8.6-sve"]["sve"] > 1000 and counts["armv8.6-sve"]["smmla"] > 10
    assert counts["-"]["sdot"] == counts["-"]["smmla"] == counts["-"]["sve"] == 0, "the dispatcher runs on any armv8"


@pytest.mark.parametrize("model", ARMV8_MODELS)
def test_armv8_emulated_cpu_gets_its_variant_and_the_same_tokens(qemu_run, cpu_nif, model, tmp_path):
    programs, _ = qemu_run("linux-armv8")
    qemu, *rest = QEMU["linux-armv8"][1].split()
    proc, report = run_loader(programs, str(tmp_path), emulator=[qemu, "-cpu", model, *rest], env={"LNIF_VERBOSE": "1"})
    chosen = re.search(r"ggml-cpu: variant .*", proc.stderr)
    print(f"qemu-aarch64 -cpu {model}: {chosen.group(0) if chosen else proc.stderr[-500:]}")
    assert report["cpu_variant"] == ARMV8_MODELS[model]
    assert chosen and "chosen for this CPU" in chosen.group(0)
    assert report["failures"] == 0 and report["generated"] == cpu_nif["report"]["generated"]


@pytest.mark.parametrize("model", ARMV8_MODELS)
def test_armv8_emulated_cpu_matches_the_oracle(qemu_run, oracle, model, tmp_path):
    """Each armv8 variant's forward pass (its CPU model chooses it) against tests/oracle.py's
    numpy reference: F32, F16, Q8_0, Q4_0, Q4_K, Q6_K, within oracle.BOUNDS."""
    programs, _ = qemu_run("linux-armv8")
    qemu, *rest = QEMU["linux-armv8"][1].split()
    proc, errors = matches_oracle(oracle, programs, str(tmp_path), emulator=[qemu, "-cpu", model, *rest])
    assert f"cpu_variant: {ARMV8_MODELS[model]}\n" in proc.stdout
    assert within_bounds(oracle, errors) == []


def test_riscv64_matches_the_oracle(qemu_run, oracle, tmp_path):
    programs, _ = qemu_run("linux-riscv64")
    proc, errors = matches_oracle(oracle, programs, str(tmp_path), emulator=QEMU["linux-riscv64"][1].split())
    assert within_bounds(oracle, errors) == []


def test_armv8_forcing_sve_on_a_cpu_without_it_is_refused(qemu_run, tmp_path):
    programs, _ = qemu_run("linux-armv8")
    qemu, *rest = QEMU["linux-armv8"][1].split()
    env = CPU_VARIANT_ENV
    proc, report = run_loader(programs, str(tmp_path), emulator=[qemu, "-cpu", "cortex-a76", *rest],
                              env={env: "armv8.6-sve", "LNIF_VERBOSE": "1"}, check=False)
    errors = [line for line in proc.stderr.splitlines() if f"{env}=armv8.6-sve" in line]
    assert proc.returncode > 0, f"the loader must end normally with failures, not by a signal: {proc.returncode}"
    assert len(errors) == 1 and "lacks" in errors[0] and "SVE" in errors[0] and "armv8.2" in errors[0], errors
    assert report and report["cpu_variant"] == "none" and report["failures"] > 0


WINE = "/usr/lib/wine/wine64"  # Debian's wine64 loader (not on PATH without the `wine` wrapper)
MINGW = "x86_64-w64-mingw32-"


@pytest.fixture(scope="module")
def mingw_run(conan, packages, tmp_path_factory):
    """The MinGW package (x86_64 runtime dispatch, the Windows default), the tests' DLL and loader
    built against it and run under wine: (programs, report, wine environment)."""
    needs(shutil.which(MINGW + "g++-posix"), "mingw-w64")
    needs(os.path.exists(WINE), f"wine64 ({WINE})")
    env = {"WINEPREFIX": str(tmp_path_factory.mktemp("wineprefix")), "WINEDEBUG": "-all"}  # never ~/.wine
    programs, report = cross_nif(conan, packages, tmp_path_factory.mktemp("mingw"), "windows-x86_64-mingw", [WINE],
                                 env=env)
    return programs, report, env


def test_windows_mingw_dll_runs_under_wine(mingw_run, packages, cpu_nif):
    """The MinGW cross build: the DLL imports only system DLLs, and the Windows loader under wine64
    loads it, writes the tiny model, picks the CPU variant the Linux NIF picks on this CPU,
    generates the same greedy tokens as the Linux build, and gets errors for a missing and a
    garbage model file."""
    programs, report, _ = mingw_run
    binary, problems = nifcheck.check(programs["path"], exports=("lnif_",))
    assert binary.format == "PE" and binary.machine == "x86_64"
    assert problems == []
    assert {n.lower() for n in binary.needed} <= {"kernel32.dll", "advapi32.dll", "msvcrt.dll"}, binary.needed
    assert binary.exports and all(e.startswith("lnif_") for e in binary.exports)
    # ggml names its MinGW archives ggml*.a; the package renames them so -lggml finds them (CI's
    # MinGW package has llama-common in: it is the release test's Windows package too)
    folder = packages.built["windows-x86_64-mingw"]["folder"]
    assert sorted(f for f in os.listdir(os.path.join(folder, "lib")) if f.endswith(".a")) == \
        ["libcpp-httplib.a", "libggml-base.a", "libggml-cpu.a", "libggml.a", "libllama-common-base.a",
         "libllama-common.a", "libllama.a"]
    # it ran: under wine, same variant and tokens as Linux x86_64, errors are errors
    assert report["cpu_variant"] == runnable_variants()[-1] == cpu_nif["report"]["cpu_variant"]
    assert report["failures"] == 0
    assert report["generated"] == cpu_nif["report"]["generated"], "same tokens as on Linux"
    assert report["missing_file_error"] and report["garbage_file_error"]


def section_headers(archive):
    """`objdump -h -w` of a MinGW archive: (member, section name, size, the header's whole line,
    flags included) for every section of every member, and what objdump wrote to stderr."""
    proc = subprocess.run([MINGW + "objdump", "-h", "-w", archive], capture_output=True, text=True, check=True)
    rows, member = [], None
    for line in proc.stdout.splitlines():
        start = re.match(r"^(\S+):\s+file format ", line)
        section = re.match(r"^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s", line)
        if start:
            member = start.group(1)
        elif section and member:
            rows.append((member, section.group(1), int(section.group(2), 16), line))
    return rows, proc.stderr


def test_windows_dispatch_archive_renames_every_comdat_section(mingw_run, packages):
    """PE/COFF: GNU ld folds link-once sections by COMDAT symbol, and those without one
    (.xdata$f, .pdata$f: unwind data) by section name. Every link-once section of the variants
    carries its variant's prefix, like every symbol they define; what keeps an upstream name is
    the dispatcher's forwarders. Each variant keeps its own code (no AVX in the floor, AVX2 in
    haswell, AVX-512 in skylakex where this CPU runs it, so CI built it: conftest's X86_ROWS),
    not the same objects several times."""
    needs(shutil.which(MINGW + "objdump"), "binutils-mingw-w64")
    folder = packages.built["windows-x86_64-mingw"]["folder"]
    archive = os.path.join(folder, "lib", "libggml-cpu.a")
    prefixes = variant_prefixes()
    variants = tuple(f"{name}__" for name in prefixes.values())  # CpuDispatch's object names
    sections, warnings = section_headers(archive)
    assert "warning" not in warnings, warnings[:2000]  # e.g. a COMDAT symbol left behind its section
    # the variants' objects (the dispatcher's own link-once .refptr sections aside)
    link_once = [name for member, name, _, line in sections
                 if member.startswith(variants) and re.search(r"\bLINK_ONCE_", line)]
    unprefixed = [name for name in link_once if not name.partition("$")[2].startswith(tuple(prefixes))]
    print(f"{len(link_once)} link-once sections, {len(unprefixed)} without a variant prefix: {unprefixed[:5]}")
    # about 430 per variant (859 for x86-64 + haswell)
    assert len(link_once) > 300 * len(CI_X86_VARIANTS) and unprefixed == [], "every variant keeps its own COMDAT sections"
    # global names without a variant prefix (the dispatcher's .refptr.<variant symbol> pointers aside)
    extra = plain_definitions(MINGW + "nm", archive, "TDBR") - declared_cpu_functions(folder)
    assert extra == {"llama_cpp_cpu_variant"}, sorted(extra)[:10]
    counts = instructions_by_variant(MINGW + "objdump", archive, {"ymm": r"%ymm", "zmm": r"%zmm"})
    print({name: (c["lines"], c["ymm"], c["zmm"]) for name, c in counts.items()})
    assert counts["x86-64"]["lines"] > 10000 and counts["x86-64"]["ymm"] == counts["x86-64"]["zmm"] == 0
    built = [name for name, c in counts.items() if name != "-" and c["lines"]]
    assert built == header_variants(folder) == CI_X86_VARIANTS
    assert counts["haswell"]["ymm"] > 1000 and ("skylakex" not in built or counts["skylakex"]["zmm"] > 1000)
    assert counts["-"]["ymm"] == counts["-"]["zmm"] == 0, "the dispatcher runs on any x86-64"


def big_data_sections(archive, least=64 * 1024):
    """(member, section, size) of every `.data$<name>` section of `least` bytes or more in a
    MinGW archive: what gcc's -fdata-sections makes of a zero-initialized global on PE/COFF
    (file-backed data instead of .bss), each written out in full into a DLL."""
    return [(member, name, size) for member, name, size, _ in section_headers(archive)[0]
            if name.startswith(".data$") and size >= least]


def test_windows_zero_tables_stay_out_of_the_dll(mingw_run, packages):
    """ggml-cpu's zero-initialized tables (about 0.5 MB per CPU variant) are .bss, not file data:
    no archive of the MinGW package has a .data$ section of 64 KiB or more."""
    needs(shutil.which(MINGW + "objdump"), "binutils-mingw-w64")
    lib = os.path.join(packages.built["windows-x86_64-mingw"]["folder"], "lib")
    found = [row for a in sorted(os.listdir(lib)) if a.endswith(".a") for row in big_data_sections(os.path.join(lib, a))]
    print(f"{len(found)} large .data$ sections: {found[:6]}")
    assert found == []


def test_windows_forced_variants_under_wine(mingw_run, cpu_nif, tmp_path):
    """LLAMA_CPP_CPU_VARIANT reaches the DLL through wine's environment: the floor, forced, gives
    the same tokens; a variant this CPU cannot run (or, on a CPU that runs them all, an unknown
    name) is one error line and a DLL that stays alive, never a crash."""
    programs, _, wine_env = mingw_run
    env = CPU_VARIANT_ENV
    proc, report = run_loader(programs, str(tmp_path / "floor"), emulator=[WINE],
                              env={**wine_env, env: "x86-64", "LNIF_VERBOSE": "1"})
    assert report["cpu_variant"] == "x86-64" and f"forced by {env}" in proc.stderr
    assert report["failures"] == 0 and report["generated"] == cpu_nif["report"]["generated"]
    names, runnable = [v["name"] for v in CPU_VARIANTS["x86_64"]], runnable_variants()
    refused = next((n for n in names if n not in runnable), "no-such-cpu")
    proc, report = run_loader(programs, str(tmp_path / "refused"), emulator=[WINE],
                              env={**wine_env, env: refused, "LNIF_VERBOSE": "1"}, check=False)
    errors = [line for line in proc.stderr.splitlines() if f"{env}={refused}" in line]
    print(refused, errors)
    assert proc.returncode == 1, f"the loader must return its failure status, not crash: {proc.returncode}"
    assert len(errors) == 1 and ("lacks" in errors[0] or "not a variant" in errors[0]), proc.stderr[-3000:]
    assert report and report["cpu_variant"] == "none" and report["failures"] > 0


def test_windows_dll_matches_the_oracle(mingw_run, oracle, tmp_path):
    """The DLL's forward pass under wine (this CPU's variant) against tests/oracle.py."""
    programs, _, wine_env = mingw_run
    _, errors = matches_oracle(oracle, programs, str(tmp_path), emulator=[WINE], env=wine_env)
    assert within_bounds(oracle, errors) == []
