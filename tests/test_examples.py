"""Downstream consumers: each example under examples/ is built against the cpu package and run,
and the package travels through a real Conan remote (conan_server on 127.0.0.1)."""
import ctypes
import os
import shutil
import socket
import subprocess
import time

import pytest

from llama_cpp_recipe import nifcheck
from conftest import REF, ROOT, Conan, needs, package_node, profile

EXAMPLES = os.path.join(ROOT, "examples")


def conan_deps(conan, out, *generators):
    gens = [arg for g in generators for arg in ("-g", g)]
    conan("install", f"--requires={REF}", "-pr:a", profile("linux-x86_64"), *gens, "-of", str(out))
    return str(out)


def check_module(path, vocab):
    binary, problems = nifcheck.check(path, exports=("example_",))
    assert problems == [], problems
    lib = ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL)
    lib.example_count_tokens.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    assert lib.example_count_tokens(vocab.encode(), b"Hello world, this is llama.cpp") > 4
    assert lib.example_count_tokens(b"/nonexistent.gguf", b"hello") == -1
    return binary


def test_cmake_example(conan, cpu_package, vocab, tmp_path):
    deps = conan_deps(conan, tmp_path / "deps", "CMakeDeps", "CMakeToolchain")
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", os.path.join(EXAMPLES, "cmake"), "-B", str(build), "-G", "Ninja",
                    f"-DCMAKE_TOOLCHAIN_FILE={deps}/conan_toolchain.cmake", "-DCMAKE_BUILD_TYPE=Release"],
                   check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    check_module(str(build / "example_module.so"), vocab)


def test_pkgconfig_example(conan, cpu_package, vocab, tmp_path):
    deps = conan_deps(conan, tmp_path / "deps", "PkgConfigDeps")
    out = tmp_path / "libexample_module.so"
    subprocess.run([os.path.join(EXAMPLES, "pkgconfig", "build.sh")], check=True,
                   env={**os.environ, "PKG_CONFIG_PATH": deps, "OUT": str(out)})
    check_module(str(out), vocab)


@pytest.fixture(scope="module")
def make_nif(conan, cpu_package, tmp_path_factory):
    """The Make example's NIF, built once for the tests that use it."""
    needs(shutil.which("erl"), "Erlang (erl_nif.h)")
    tmp_path = tmp_path_factory.mktemp("make_nif")
    deps = conan_deps(conan, tmp_path / "conan", "MakeDeps")
    priv = tmp_path / "priv"
    subprocess.run(["make", "-C", os.path.join(EXAMPLES, "make"), f"CONAN_DEPS_DIR={deps}", f"PRIV_DIR={priv}"],
                   check=True, capture_output=True)
    return str(priv / "llama_ex_nif.so")


def test_make_example_builds_a_self_contained_nif(make_nif):
    nif = make_nif
    binary, problems = nifcheck.check(nif, exports=("nif_init",), undefined=("enif_",))
    assert problems == [], problems
    assert binary.exports == ["nif_init"]


# ------------------------------------------------------------------------------ a real remote

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def conan_server(tmp_path_factory):
    """conan_server (PyPI conan-server, in its own venv: it bundles its own copy of conan) on
    127.0.0.1 with a throwaway user."""
    exe = os.environ.get("CONAN_SERVER_EXE") or os.path.join(ROOT, ".venv-conan-server", "bin", "conan_server")
    needs(os.path.exists(exe), f"conan_server at {exe} (or set CONAN_SERVER_EXE)")
    home = tmp_path_factory.mktemp("server_home")
    port = _free_port()
    conf_dir = home / ".conan_server"
    conf_dir.mkdir()
    (conf_dir / "server.conf").write_text(
        "[server]\njwt_secret=test-only-secret\njwt_expire_minutes=120\nssl_enabled=False\n"
        f"port={port}\npublic_port={port}\nhost_name=127.0.0.1\nauthorize_timeout=1800\n"
        f"disk_storage_path={home / 'data'}\ndisk_authorize_timeout=1800\nupdown_secret=test-only-updown\n\n"
        "[write_permissions]\n*/*@*/*: ci\n\n[read_permissions]\n*/*@*/*: *\n\n[users]\nci: ci-password\n")
    proc = subprocess.Popen([exe, "--server_dir", str(conf_dir)], env={**os.environ, "CONAN_SERVER_HOME": str(conf_dir)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("conan_server did not start: " + (proc.stdout.read() if proc.stdout else ""))
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


def test_upload_then_install_from_a_remote_without_building(conan, cpu_package, conan_server, tmp_path):
    conan("remote", "add", "local", conan_server, "--force")
    try:
        conan("remote", "login", "local", "ci", "-p", "ci-password")
        # the default package alone (the session's other variants would be compressed and sent too)
        conan("upload", cpu_package["pref"], "-r", "local", "-c")
    finally:  # the session's other tests must not see a remote that is about to go away
        conan("remote", "remove", "local")
    consumer = Conan(str(tmp_path / "consumer_home"))
    consumer("remote", "remove", "*", check=False)
    consumer("remote", "add", "local", conan_server)
    lock = tmp_path / "conan.lock"
    consumer("lock", "create", f"--requires={REF}", "-pr:a", profile("linux-x86_64"), "--lockfile-out", str(lock))
    proc = consumer("install", f"--requires={REF}", "-pr:a", profile("linux-x86_64"), "--lockfile", str(lock),
                    "--build=never", "-g", "PkgConfigDeps", "-of", str(tmp_path / "deps"), graph=True)
    node = package_node(proc.graph)
    # Conan's own record of where the binary came from: downloaded from this remote, not built
    assert (node["binary"], node["binary_remote"], node["package_id"]) == \
        ("Download", "local", cpu_package["pref"].split(":")[1]), node
    assert "Building" not in proc.stdout and "Calling build()" not in proc.stdout
    assert os.path.exists(tmp_path / "deps" / "llama.pc")
