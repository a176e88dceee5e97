"""The optional parts bindings link beside llama + ggml: mtmd (multimodal input) and ggml-rpc
(upstream's distributed backend), built once per session as one package with both on
(conftest's parts_package, which is also the backend=vulkan and a single-CPU-baseline variant), and
consumed through upstream's CMake names (tests/programs). llama-common is in the default package
and proven by test_package and tests/test_cpu_package.py.

Every call that could abort runs in its own Python process, so an abort is measured, not fatal."""
import ast
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from llama_cpp_recipe import nifcheck
from conftest import extract_upstream



@pytest.fixture(scope="module")
def programs(parts_nif, tmp_path_factory):
    """tests/programs built with CMakeDeps against the parts package (conftest), plus upstream's
    test image."""
    upstream = extract_upstream(tmp_path_factory.mktemp("upstream"), "tools/mtmd/test-1.jpeg")
    return {**parts_nif, "image": os.path.join(upstream, "tools", "mtmd", "test-1.jpeg")}


def run_python(code, *args, timeout=300):
    """Runs `code` in a fresh Python process (argv[1:] = args); returns the finished process."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_package_holds_the_parts_archives_and_headers(parts_package):
    root = parts_package["folder"]
    libs = {f for f in os.listdir(os.path.join(root, "lib")) if f.endswith(".a")}
    assert libs == {"libmtmd.a", "libvendor-hash.a", "libggml-rpc.a", "libllama.a", "libggml.a", "libggml-cpu.a",
                    "libggml-base.a", "libggml-vulkan.a"}  # the parts variant is also the vulkan one
    headers = set(os.listdir(os.path.join(root, "include")))
    assert {"mtmd.h", "mtmd-helper.h", "ggml-rpc.h"} <= headers


def test_upstream_mtmd_c_api_test_passes(programs):
    proc = subprocess.run([os.path.join(programs["build"], "test-mtmd-c-api")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


MTMD = """
    import ctypes, os, sys, time
    lib = ctypes.CDLL(sys.argv[1], mode=os.RTLD_NOW | os.RTLD_LOCAL)
    err = ctypes.create_string_buffer(1024)
    text, mmproj, image = sys.argv[2:5]
    if sys.argv[5] == "write":
        assert lib.mnif_write_models(text.encode(), mmproj.encode(), 7, err, len(err)) == 0, err.value
    stats = (ctypes.c_double * 5)()
    start = time.time()
    rc = lib.mnif_encode_image(text.encode(), mmproj.encode(), image.encode(), 2, stats, err, len(err))
    print("rc", rc, "stats", list(stats), "seconds", round(time.time() - start, 2))
    print("error", err.value.decode())
"""


def test_mtmd_encodes_a_real_image_inside_a_nif(programs, tmp_path):
    nif = os.path.join(programs["build"], "libmtmd_nif.so")
    binary, problems = nifcheck.check(nif, exports=("mnif_",))
    assert problems == [], problems
    text, mmproj = tmp_path / "tiny-llama.gguf", tmp_path / "tiny-mmproj.gguf"
    runs = [run_python(MTMD, nif, text, mmproj, programs["image"], "write") for _ in range(2)]
    for proc in runs:
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        print(proc.stdout.strip())
    stats = [ast.literal_eval(proc.stdout.split("stats ")[1].split(" seconds")[0]) for proc in runs]
    n_tokens, n_embd, total, squares, nonfinite = stats[0]
    assert n_tokens > 0 and n_embd == 64, "one embedding of the text model's width per image token"
    assert nonfinite == 0 and squares > 0
    assert stats[0] == stats[1], "the same image gives the same embeddings"


def test_mtmd_bad_inputs_are_errors(programs, tmp_path):
    """Corrupt projectors, a wrong-width projector and bad images come back as error codes; the
    process lives. Two of these aborted or loaded garbage in upstream b11312 (patch 0004): a key
    stored with another type, and a file cut inside the tensor clip reads last."""
    nif = os.path.join(programs["build"], "libmtmd_nif.so")
    text, mmproj = tmp_path / "tiny-llama.gguf", tmp_path / "tiny-mmproj.gguf"
    assert run_python(MTMD, nif, text, mmproj, programs["image"], "write").returncode == 0
    data = mmproj.read_bytes()
    key = data.index(b"clip.vision.image_size") + len(b"clip.vision.image_size")
    assert data[key:key + 4] == (4).to_bytes(4, "little"), "GGUF_TYPE_UINT32"
    cases = {"image_size stored as int32": data[:key] + (5).to_bytes(4, "little") + data[key + 4:],
             "garbage projector": b"GGUF\x03\x00\x00\x00" + bytes(range(256)) * 16,
             "text model as projector": text.read_bytes()}
    # cuts from the header to the last tensor (which clip reads last: the silent case upstream)
    for cut in [100, 400, 1000] + [len(data) * k // 10 for k in range(2, 10)] + [len(data) - 60, len(data) - 4]:
        cases[f"cut at {cut} of {len(data)} bytes"] = data[:cut]
    failures = []
    for index, (name, content) in enumerate(cases.items()):
        bad = tmp_path / f"bad-{index}.gguf"
        bad.write_bytes(content)
        proc = run_python(MTMD, nif, text, bad, programs["image"], "keep")
        last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        print(f"{name}: exit {proc.returncode}, {last[:150]}")
        if proc.returncode != 0 or "rc -" not in proc.stdout or last == "error":
            failures.append(f"{name}: exit {proc.returncode} {proc.stdout[-300:]} {proc.stderr[-300:]}")
    images = {"missing image": str(tmp_path / "missing.jpg"), "not an image": str(mmproj)}
    for name, image in images.items():
        proc = run_python(MTMD, nif, text, mmproj, image, "keep")
        print(f"{name}: exit {proc.returncode}, {proc.stdout.strip().splitlines()[-1:]}")
        if proc.returncode != 0 or "rc -" not in proc.stdout:
            failures.append(f"{name}: {proc.stdout[-300:]} {proc.stderr[-300:]}")
    assert not failures, "\n".join(failures)


RPC = """
    import ctypes, os, sys
    lib = ctypes.CDLL(sys.argv[1], mode=os.RTLD_NOW | os.RTLD_LOCAL)
    if sys.argv[2] == "serve":
        sys.exit(lib.rnif_serve(sys.argv[3].encode(), 1))
    if sys.argv[2] == "write":
        sys.exit(lib.rnif_write_model(sys.argv[3].encode(), 42))
    if sys.argv[2] == "unreachable":  # the same failure many times: an error each time, no fd leak
        out, err = (ctypes.c_int32 * 4)(), ctypes.create_string_buffer(1024)
        fds = [len(os.listdir("/proc/self/fd"))]
        rcs = {lib.rnif_generate(sys.argv[3].encode(), sys.argv[4].encode(), 4, out, 4, err, len(err))
               for _ in range(20)}
        fds.append(len(os.listdir("/proc/self/fd")))
        print("rcs", sorted(rcs), "fds", fds[0], fds[1])
        print("rc", min(rcs), "error", err.value.decode(), flush=True)
        sys.exit(0)
    model, endpoint, n_predict = sys.argv[3], sys.argv[4], int(sys.argv[5])
    out = (ctypes.c_int32 * n_predict)()
    err = ctypes.create_string_buffer(1024)
    print("start", flush=True)
    n = lib.rnif_generate(model.encode(), endpoint.encode(), n_predict, out, n_predict, err, len(err))
    print("tokens", " ".join(map(str, out[:max(n, 0)])))
    print("rc", n, "error", err.value.decode(), flush=True)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def rpc_server(programs):
    """An rpc server on 127.0.0.1 serving this machine's CPU backend, in its own process."""
    nif = os.path.join(programs["build"], "librpc_nif.so")
    endpoint = f"127.0.0.1:{free_port()}"
    server = subprocess.Popen([sys.executable, "-c", textwrap.dedent(RPC), nif, "serve", endpoint],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", int(endpoint.split(":")[1]))) == 0:
                break
        assert server.poll() is None, server.stdout.read()
        time.sleep(0.2)
    yield {"nif": nif, "endpoint": endpoint, "process": server}
    server.kill()
    server.wait(timeout=30)


def test_rpc_offloads_every_layer_over_loopback(rpc_server, tmp_path):
    nif = rpc_server["nif"]
    binary, problems = nifcheck.check(nif, exports=("rnif_",))
    assert problems == [], problems
    model = tmp_path / "tiny-llama.gguf"
    assert run_python(RPC, nif, "write", model).returncode == 0
    local = run_python(RPC, nif, "generate", model, "", 16)
    remote = run_python(RPC, nif, "generate", model, rpc_server["endpoint"], 16)
    for proc in (local, remote):
        assert proc.returncode == 0 and "rc 16 " in proc.stdout, proc.stdout + proc.stderr[-3000:]
    print("local :", local.stdout.split("tokens ")[1].splitlines()[0])
    print("remote:", remote.stdout.split("tokens ")[1].splitlines()[0])
    assert local.stdout.split("tokens ")[1].splitlines()[0] == remote.stdout.split("tokens ")[1].splitlines()[0]


def test_rpc_unreachable_endpoint_is_an_error(programs, tmp_path):
    nif = os.path.join(programs["build"], "librpc_nif.so")
    model = tmp_path / "tiny-llama.gguf"
    assert run_python(RPC, nif, "write", model).returncode == 0
    for endpoint in (f"127.0.0.1:{free_port()}", "no-port-here"):  # refused; malformed
        proc = run_python(RPC, nif, "unreachable", model, endpoint, timeout=120)
        print(endpoint, proc.stdout.strip(), proc.stderr.strip()[-300:])
        assert proc.returncode == 0, f"the client process died ({proc.returncode}): {proc.stderr[-2000:]}"
        rcs, fds = proc.stdout.split("rcs ")[1].split(" fds ")
        assert rcs == "[-1]" and "add_server" in proc.stdout, proc.stdout
        before, after = map(int, fds.split("\n")[0].split())
        assert after == before, f"{after - before} file descriptors leaked by 20 failed connects"


def test_rpc_server_killed_mid_generation_aborts_the_client(rpc_server, tmp_path):
    """Documents upstream's behaviour (README "llama-common, mtmd and RPC", docs/rpc.md): a server lost mid-request aborts
    the client process (RPC_STATUS_ASSERT is GGML_ABORT, on the dispatcher thread). If upstream
    turns this into an error, this test fails and README must be updated."""
    nif = rpc_server["nif"]
    model = tmp_path / "tiny-llama.gguf"
    assert run_python(RPC, nif, "write", model).returncode == 0
    client = subprocess.Popen([sys.executable, "-c", textwrap.dedent(RPC), nif, "generate", str(model),
                               rpc_server["endpoint"], "100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "RNIF_PROGRESS": "1"})
    generating = False
    try:
        for line in client.stderr:  # wait until tokens are being generated over RPC
            if line.strip() == "rnif-progress 20":
                generating = True
                break
        rpc_server["process"].send_signal(signal.SIGKILL)
        out, err = client.communicate(timeout=120)
    finally:
        client.kill()
    print(f"client exit {client.returncode}; stderr tail: {err.strip().splitlines()[-1:]}")
    assert generating, f"the client never reported 20 tokens generated over RPC: {err[-2000:]}"
    assert "rc " not in out, "rnif_generate never returns"
    assert client.returncode == -signal.SIGABRT, (client.returncode, out[-500:], err[-2000:])
