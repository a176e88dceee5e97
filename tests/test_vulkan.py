"""backend=vulkan, built in CI against Debian 12's Vulkan headers and glslc, run on mesa's lavapipe
(a software Vulkan 1.3 device on the CPU) and without any Vulkan loader.

The vulkan package is conftest's parts_package (backend=vulkan next to mtmd, ggml-rpc and one
CPU baseline): those options do not touch ggml-vulkan's code path, and one build serves all
of them. Nothing is reduced for CI: every shader variant this glslc supports is compiled."""
import json
import os
import re
import shutil
import subprocess

import pytest

from llama_cpp_recipe import nifcheck
from conftest import LAVAPIPE_OPS, needs, run_loader

# ggml-vulkan skips CPU-type devices such as lavapipe unless they are listed explicitly (upstream's
# CI does the same to test on llvmpipe)
LAVAPIPE = {"GGML_VK_VISIBLE_DEVICES": "0"}


def _lavapipe_present():
    return os.path.exists("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json")


def _loader_hidden():
    """A command prefix: what follows runs in a private mount namespace where the Vulkan loader is
    an empty file (dlopen fails, as on a machine without libvulkan.so.1)."""
    loaders = [p for p in ("/usr/lib/x86_64-linux-gnu/libvulkan.so.1", "/lib/x86_64-linux-gnu/libvulkan.so.1")
               if os.path.exists(p)]
    mounts = " && ".join(f"mount --bind /dev/null {p}" for p in loaders)
    return ["unshare", "-rm", "sh", "-c", f'{mounts} && exec "$@"', "sh"]


def _run(cmd, env=None, timeout=600):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def shader_features(out):
    """From a vulkan package's build log: the recipe's line ({supported}, {unsupported}) and
    upstream's own CMake probe of the same extensions ("-- X supported by glslc" / "not supported")."""
    line = re.search(r"vulkan shader features of .*: supported: (.*); unsupported: (.*)", out)
    recipe = tuple({n.strip() for n in part.split(",")} - {"none"} for part in line.groups()) if line else None
    upstream = ({m for m in re.findall(r"-- (\w+) supported by glslc", out)},
                {m for m in re.findall(r"-- (\w+) not supported by glslc", out)})
    return recipe, upstream


def test_vulkan_build_reports_its_shader_features(parts_package):
    """The recipe's report of which optional shader extensions this glslc compiles agrees, feature
    by feature, with what upstream's CMake found in the same build (its own probe), and a missing
    one is a warning."""
    out = parts_package["output"]
    if "Calling package()" not in out:  # only with LLAMA_CPP_TEST_HOME (development); CI always builds
        assert os.environ.get("CI") != "true", "CI must build the vulkan package itself"
        pytest.skip("the vulkan package was reused from LLAMA_CPP_TEST_HOME: no build log to read")
    recipe, upstream = shader_features(out)
    print("recipe:", recipe, "upstream CMake:", upstream)
    assert recipe, "the recipe must say which optional shader extensions its glslc supports"
    assert len(upstream[0] | upstream[1]) >= 4, "upstream's CMake probes at least four extensions"
    assert recipe == upstream
    assert ("WARN: backend=vulkan: this glslc lacks" in out) == bool(recipe[1])


def test_vulkan_archive_takes_nothing_from_the_loader(parts_package):
    """Patch 0007: ggml-vulkan calls no loader function directly (no undefined vk* symbol), so
    nothing links libvulkan and the recipe declares no Vulkan library."""
    archive = os.path.join(parts_package["folder"], "lib", "libggml-vulkan.a")
    undefined = _run(["nm", "-u", "--format=posix", archive]).stdout.split("\n")
    from_loader = sorted({line.split()[0] for line in undefined if re.match(r"vk[A-Z]", line)})
    assert not from_loader, from_loader
    print(f"libggml-vulkan.a: {os.path.getsize(archive)} bytes; package created in "
          f"{parts_package['seconds']:.0f} s (vulkan + mtmd + rpc, cpu_baseline=x86-64-v3, no test_package)")


def test_vulkan_nif_needs_no_vulkan_loader(parts_nif):
    binary, problems = nifcheck.check(parts_nif["path"], exports=("lnif_",))
    print("vulkan NIF NEEDED:", ", ".join(binary.needed))
    assert problems == []
    assert not [n for n in binary.needed if "vulkan" in n], binary.needed
    assert nifcheck.leaked(binary) == []


def test_vulkan_nif_generates_on_lavapipe(parts_nif, tmp_path):
    """Every layer of the tiny model on lavapipe (Vulkan0): the NIF lists the device and generates
    the tokens the same package generates on the CPU (the loader's first run, lavapipe not listed)."""
    needs(_lavapipe_present(), "mesa's lavapipe (mesa-vulkan-drivers)")
    proc, report = run_loader(parts_nif, tmp_path, env={**LAVAPIPE, "LNIF_N_GPU_LAYERS": "-1", "LNIF_VERBOSE": "1"})
    print("devices:", report["devices"])
    assert any(d.startswith("Vulkan0|") for d in report["devices"]), report["devices"]
    offloaded = re.search(r"offloaded (\d+)/(\d+) layers to GPU", proc.stderr)
    assert offloaded and offloaded.group(1) == offloaded.group(2), proc.stderr[-3000:]
    on_cpu = parts_nif["report"]
    assert all(d.startswith("CPU|") for d in on_cpu["devices"]), on_cpu["devices"]
    print(f"lavapipe: {report['generated']}\ncpu:      {on_cpu['generated']}")
    assert report["generated"] == on_cpu["generated"] and report["failures"] == 0


def test_vulkan_nif_runs_on_the_cpu_without_a_vulkan_loader(parts_nif, tmp_path):
    needs(shutil.which("unshare") and _run(["unshare", "-rm", "true"]).returncode == 0,
          "unshare -rm (a mount namespace, to hide the Vulkan loader)")
    probe = _run(_loader_hidden() + ["python3", "-c", "import ctypes; ctypes.CDLL('libvulkan.so.1')"])
    assert probe.returncode != 0, "the loader must really be hidden"
    proc, report = run_loader(parts_nif, tmp_path, emulator=_loader_hidden(),
                              env={**LAVAPIPE, "LNIF_N_GPU_LAYERS": "-1", "LNIF_VERBOSE": "1"})
    assert "no Vulkan loader found" in proc.stderr
    assert report["devices"] and all(d.startswith("CPU|") for d in report["devices"]), report["devices"]
    assert report["generated"] == parts_nif["report"]["generated"]


def _gpu_logits(gpu_tool, *options):
    model = os.path.join(gpu_tool["work"], "tiny-llama.gguf")
    assert _run([gpu_tool["tool"], "write-tiny", model]).returncode == 0
    proc = _run([gpu_tool["tool"], "logits", model, "--steps", "16", "--max-nmse", "1e-4", *options], env=LAVAPIPE)
    line = re.search(r"^LOGITS (.*)$", proc.stdout, re.M)
    assert line, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(line.group(1))
    print({k: result[k] for k in ("nmse", "max_abs_diff", "argmax_agree", "steps", "offloaded_layers", "layers",
                                  "cpu_tg_tokens_per_s", "gpu_tg_tokens_per_s")})
    return proc, result


def test_vulkan_logits_match_the_cpu(gpu_tool):
    """The tiny model on the CPU alone and fully on lavapipe, teacher-forced on the CPU's greedy
    tokens for 16 steps: every logit compared (NMSE), and single-token decode speed of both. Every
    layer was on the device (else it compares the CPU with itself)."""
    needs(_lavapipe_present(), "mesa's lavapipe (mesa-vulkan-drivers)")
    proc, result = _gpu_logits(gpu_tool)
    assert result["layers"] > 0 and result["offloaded_layers"] == result["layers"], result
    assert result["pass"] and proc.returncode == 0 and result["nonfinite"] == 0, result
    assert result["argmax_agree"] == result["steps"], result


def test_vulkan_logits_check_fails_when_nothing_is_offloaded(gpu_tool):
    """The same comparison with 0 layers on the device agrees perfectly (CPU against CPU) and must
    still fail: the tool's pass requires every layer offloaded."""
    needs(_lavapipe_present(), "mesa's lavapipe (mesa-vulkan-drivers)")
    proc, result = _gpu_logits(gpu_tool, "--gpu-layers", "0")
    assert result["offloaded_layers"] == 0 and result["layers"] > 0, result
    assert not result["pass"] and proc.returncode == 1, result


@pytest.mark.parametrize("op, params", LAVAPIPE_OPS, ids=[op for op, _ in LAVAPIPE_OPS])
def test_upstream_backend_ops_pass_on_lavapipe(gpu_tool, op, params):
    """upstream's test-backend-ops, mode `test -b Vulkan0 -o OP [-p PARAMS]`: Vulkan vs CPU."""
    needs(_lavapipe_present(), "mesa's lavapipe (mesa-vulkan-drivers)")
    proc = _run([gpu_tool["tool"], "ops", "test", "-b", "Vulkan0", "-o", op, *(["-p", params] if params else [])],
                env=LAVAPIPE, timeout=600)
    tail = proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    passed = re.search(r"(\d+)/(\d+) tests passed", proc.stdout)
    assert passed and passed.group(1) == passed.group(2) and int(passed.group(2)) >= 20, tail
    assert re.search(r"Backend Vulkan0: \S*OK", proc.stdout), tail
    unsupported = proc.stdout.count("not supported [Vulkan0")
    print(f"test-backend-ops -b Vulkan0 -o {op}: {passed.group(0)} ({unsupported} not supported by Vulkan0)")


def test_gpu_tool_lists_the_devices(gpu_tool):
    """`gpu_tool devices` on lavapipe: the Vulkan device and the CPU, one
    "device[i]: name|type|description" line each."""
    needs(_lavapipe_present(), "mesa's lavapipe (mesa-vulkan-drivers)")
    proc = _run([gpu_tool["tool"], "devices"], env=LAVAPIPE)
    devices = re.findall(r"^device\[\d+\]: (.*)$", proc.stdout, re.M)
    print(devices)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert any(d.startswith("Vulkan0|") for d in devices) and any(d.startswith("CPU|") for d in devices), devices
    assert all(d.count("|") >= 2 for d in devices), devices
