"""cpu_baseline=dispatch: every CPU_VARIANTS row of the recipe compiled into one libggml-cpu.a,
the variant chosen at first use by the running CPU. It is the default on x86_64 Linux: the package
is conftest's cpu_package (and its NIF, cpu_nif).

What runs here: natively (this machine's CPU, whatever it is), under qemu-x86_64 with older CPU
models (Nehalem, SandyBridge: no AVX2; Haswell: AVX2), and upstream's test-backend-ops against the
CPU reference path with every variant this CPU can run forced in turn. qemu emulates no AVX-512 or
AVX-VNNI: those variants are checked for their instructions and refused cleanly when forced."""
import os
import re
import shutil
import subprocess

import pytest

from llama_cpp_recipe import nifcheck
from llama_cpp_recipe.cpu import CPU_VARIANT_ENV, CPU_VARIANTS
from conftest import (BACKEND_OPS, cpu_info, declared_cpu_functions, instructions_by_variant,
                      matches_oracle, needs, plain_definitions, run_loader, runnable_variants, within_bounds)

VARIANTS = CPU_VARIANTS["x86_64"]
ENV = CPU_VARIANT_ENV

# qemu-user CPU models and the variant each must get (no AVX2 below Haswell)
QEMU_MODELS = {"Nehalem": "x86-64", "SandyBridge": "x86-64", "Haswell": "haswell"}


def _disassembly_by_variant(archive):
    """Instructions counted per variant: AVX/AVX2 (ymm), AVX-512 (zmm) registers, VNNI dot products."""
    return instructions_by_variant("objdump", archive, {"ymm": r"%ymm", "zmm": r"%zmm", "vpdpbusd": r"vpdpbusd"})


def test_each_variant_holds_its_instructions(cpu_package, parts_package):
    """The floor uses no AVX register, haswell and alderlake AVX2 (alderlake also VNNI's
    VPDPBUSD), skylakex/icelake AVX-512 (zmm): real code, not the same object five times. And
    a single-baseline package (parts: x86-64-v3): AVX2, no AVX-512."""
    counts = _disassembly_by_variant(os.path.join(cpu_package["folder"], "lib", "libggml-cpu.a"))
    for name, c in counts.items():
        print(f"{name:10} {c['lines']:7} instructions, ymm {c['ymm']:6}, zmm {c['zmm']:6}, vpdpbusd {c['vpdpbusd']}")
    assert counts["x86-64"]["ymm"] == 0 and counts["x86-64"]["zmm"] == 0 and counts["x86-64"]["lines"] > 10000
    assert counts["haswell"]["ymm"] > 1000 and counts["haswell"]["zmm"] == 0 and counts["haswell"]["vpdpbusd"] == 0
    assert counts["alderlake"]["vpdpbusd"] > 0 and counts["alderlake"]["zmm"] == 0
    assert counts["skylakex"]["zmm"] > 1000 and counts["icelake"]["zmm"] > 1000
    assert counts["icelake"]["vpdpbusd"] > 0
    assert counts["-"]["ymm"] == 0 and counts["-"]["zmm"] == 0, "the dispatcher itself must run on any x86-64"
    v3 = _disassembly_by_variant(os.path.join(parts_package["folder"], "lib", "libggml-cpu.a"))["-"]
    assert v3["ymm"] > 1000 and v3["zmm"] == 0, v3


def test_only_the_forwarders_keep_upstream_names(cpu_package):
    """Every symbol the variants define is renamed (weak and COMDAT ones too, or the linker would
    share one variant's inline functions with all); what keeps a plain name is one forwarder per
    function ggml-cpu.h declares, and llama_cpp_cpu_variant."""
    archive = os.path.join(cpu_package["folder"], "lib", "libggml-cpu.a")
    plain = plain_definitions("nm", archive, "TWVDBRu")
    declared = declared_cpu_functions(cpu_package["folder"])
    # upstream declares ggml_threadpool_get_n_threads but defines it nowhere: not forwardable
    assert plain == (declared - {"ggml_threadpool_get_n_threads"}) | {"llama_cpp_cpu_variant"}, \
        sorted(plain ^ declared)
    groups = subprocess.run(["readelf", "-gW", archive], capture_output=True, text=True, check=True).stdout
    signatures = re.findall(r"\[([^\]\s]+)\] contains", groups)
    assert signatures and all(s.startswith("cpuvar_") for s in signatures), \
        [s for s in signatures if not s.startswith("cpuvar_")][:10]


def test_native_run_picks_the_best_variant_for_this_cpu(cpu_nif):
    flags = sorted(f for f in cpu_info()[1] if re.match(r"(avx|sse4|fma|f16c|bmi)", f))
    expected = runnable_variants()[-1]
    got = cpu_nif["report"]["cpu_variant"]
    print(f"this CPU ({' '.join(flags)}): {got}; runnable: {', '.join(runnable_variants())}")
    assert got == expected
    assert cpu_nif["report"]["failures"] == 0


@pytest.mark.parametrize("model", sorted(QEMU_MODELS))
def test_emulated_cpu_gets_its_variant_and_the_same_tokens(cpu_nif, model, tmp_path):
    needs(shutil.which("qemu-x86_64"), "qemu-user (qemu-x86_64)")
    proc, report = run_loader(cpu_nif, str(tmp_path), emulator=["qemu-x86_64", "-cpu", model],
                              env={"LNIF_VERBOSE": "1"})
    chosen = re.search(r"ggml-cpu: variant .*", proc.stderr)
    print(f"qemu -cpu {model}: {chosen.group(0) if chosen else proc.stderr[-500:]}")
    assert report["cpu_variant"] == QEMU_MODELS[model]
    assert chosen and "chosen for this CPU" in chosen.group(0), "one log line names the choice"
    assert report["failures"] == 0 and report["generated"] == cpu_nif["report"]["generated"]


@pytest.mark.parametrize("forced, why, emulator", [("icelake", "lacks", ["qemu-x86_64", "-cpu", "Haswell"]),
                                                   ("no-such-cpu", "not a variant", [])])
def test_forcing_a_variant_the_cpu_cannot_run_is_an_error_not_a_crash(cpu_nif, forced, why, emulator, tmp_path):
    """Under qemu's Haswell (no AVX-512 on any qemu model, whatever the host has), forcing icelake
    must be refused by the check, not executed (its code has AVX-512: SIGILL). The NIF stays
    alive: no CPU backend, the model open fails with an error. An unknown name likewise."""
    needs(not emulator or shutil.which(emulator[0]), "qemu-user (qemu-x86_64)")
    proc, report = run_loader(cpu_nif, str(tmp_path), emulator=emulator,
                              env={ENV: forced, "LNIF_VERBOSE": "1"}, check=False)
    errors = [line for line in proc.stderr.splitlines() if f"{ENV}={forced}" in line]
    print(errors)
    assert proc.returncode > 0, f"the loader must end normally with failures, not by a signal: {proc.returncode}"
    assert len(errors) == 1 and why in errors[0], proc.stderr[-3000:]
    if why == "lacks":
        assert "AVX512" in errors[0] and "haswell" in errors[0], "names what is missing and what can run"
    assert report and report["cpu_variant"] == "none" and report["failures"] > 0


def test_forcing_a_runnable_variant_is_honoured(cpu_nif, tmp_path):
    proc, report = run_loader(cpu_nif, str(tmp_path), env={ENV: "x86-64", "LNIF_VERBOSE": "1"})
    assert report["cpu_variant"] == "x86-64" and "forced by " + ENV in proc.stderr
    assert report["generated"] == cpu_nif["report"]["generated"]


def test_the_nif_stays_self_contained(cpu_nif):
    binary, problems = nifcheck.check(cpu_nif["path"], exports=("lnif_",))
    assert problems == [], problems
    assert nifcheck.leaked(binary) == []


@pytest.mark.parametrize("variant", [v["name"] for v in VARIANTS])
def test_upstream_backend_ops_pass_for_each_variant(cpu_tool, variant):
    """upstream's test-backend-ops, mode `test -b CPU -o OP` for each of BACKEND_OPS: the forced variant's
    kernels against ggml's reference path. A variant this CPU cannot run is skipped, saying so."""
    if variant not in runnable_variants():
        pytest.skip(f"this CPU cannot run {variant} (and qemu emulates no AVX-512/AVX-VNNI)")
    for op, params in BACKEND_OPS:
        proc = subprocess.run([cpu_tool["tool"], "ops", "test", "-b", "CPU", "-o", op, *(["-p", params] if params else [])],
                              capture_output=True, text=True, timeout=900, env={**os.environ, ENV: variant})
        tail = proc.stdout[-3000:] + proc.stderr[-2000:]
        assert proc.returncode == 0, tail
        passed = re.search(r"(\d+)/(\d+) tests passed", proc.stdout)
        assert passed and passed.group(1) == passed.group(2) and int(passed.group(2)) >= 10, tail
        assert f"variant {variant}, forced" in proc.stderr + proc.stdout, "the forced variant was the one tested"
        print(f"{variant} {op}: {passed.group(0)}")


# The forward pass of each variant against tests/oracle.py (numpy over gguf-py's dequantization,
# no ggml code): F32, F16, Q8_0, Q4_0, Q4_K and Q6_K models, logits of every prompt position.
# upstream's test-backend-ops above compares a variant with the same variant (its reference side
# is a second CPU backend in the same process); this does not.
@pytest.mark.parametrize("variant", [v["name"] for v in VARIANTS])
def test_each_variant_matches_the_oracle(cpu_nif, oracle, variant, tmp_path):
    if variant not in runnable_variants():
        pytest.skip(f"not run: this CPU cannot run {variant} (and qemu emulates no AVX-512/AVX-VNNI)")
    proc, errors = matches_oracle(oracle, cpu_nif, str(tmp_path), env={ENV: variant})
    assert f"cpu_variant: {variant}\n" in proc.stdout, "the forced variant was the one that ran"
    assert within_bounds(oracle, errors) == []


@pytest.mark.parametrize("model", sorted(QEMU_MODELS))
def test_emulated_cpu_matches_the_oracle(cpu_nif, oracle, model, tmp_path):
    needs(shutil.which("qemu-x86_64"), "qemu-user (qemu-x86_64)")
    proc, errors = matches_oracle(oracle, cpu_nif, str(tmp_path), emulator=["qemu-x86_64", "-cpu", model])
    assert f"cpu_variant: {QEMU_MODELS[model]}\n" in proc.stdout
    assert within_bounds(oracle, errors) == []


@pytest.mark.parametrize("qtype, tensor, row, factor", [
    ("Q4_0", "token_embd.weight", "second prompt token", 64.0),  # gross: every position after the first
    ("Q4_K", "token_embd.weight", "second prompt token", 64.0),
    ("Q4_0", "output.weight", 300, 1.25),  # subtle: one logit, 32 of its 256 weights 25 % larger
    ("Q6_K", "output.weight", 300, 1.25),  # subtle: 256 weights
])
def test_the_oracle_sees_one_corrupted_block_scale(cpu_nif, oracle, qtype, tensor, row, factor, tmp_path):
    """The comparison can fail: the same model with the scale of one quantized block multiplied.
    A gross change breaks the all-positions bound; a subtle one stays inside it (it is within what
    rounding does to a quantized model) but not inside the first-position bound."""
    ref = oracle["ref"]
    row = ref.PROMPT[1] if row == "second prompt token" else row
    bad = ref.corrupt_scale(oracle["gguf"], oracle["np"], oracle["models"][qtype],
                            os.path.join(str(tmp_path), f"corrupt-{qtype.lower()}.gguf"), tensor, row, factor)
    _, errors = matches_oracle(oracle, cpu_nif, str(tmp_path), models={qtype: bad})
    every, first = errors[qtype]
    if factor > 2:
        assert every > 10 * ref.BOUNDS[qtype], errors
    else:
        assert every <= ref.BOUNDS[qtype] and first > 100 * ref.FIRST_BOUNDS[qtype], errors
    assert within_bounds(oracle, errors) != []
