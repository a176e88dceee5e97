"""The dispatcher's C (recipe_src/dispatch: dispatch.c and the per-arch CPU probes) compiled on its
own, without Conan or a package build: with the table header the recipe generates from the real
ggml-cpu.h (dispatch_table(), the same function CpuDispatch.build() calls), -Wall -Wextra -Werror,
for every target cpu_baseline=dispatch supports a compiler for here."""
import os
import shutil
import subprocess
import tarfile

import pytest

from conftest import ARCHIVE, ROOT, UPSTREAM, cpu_info, needs, source_mirror
from harness import CPUINFO_X86
from llama_cpp_recipe.cpu import DISPATCH_FEATURES, DISPATCH_TARGETS
from llama_cpp_recipe.dispatch import TABLE_HEADER, dispatch_table, header_functions

SOURCES = os.path.join(ROOT, "recipe_src", "dispatch")
FLAGS = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror"]
# (Conan arch, C compiler, OS): the dispatch targets (DISPATCH_TARGETS) with a compiler .ci/run installs
TARGETS = [("x86_64", "gcc", "Linux"), ("armv8", "aarch64-linux-gnu-gcc", "Linux"),
           ("x86_64", "x86_64-w64-mingw32-gcc", "Windows")]
# the standalone probe: the table's F_ bits (as dispatch.c defines them) and cpu_features()
PROBE_MAIN = f"""#include <stdio.h>
#include "{TABLE_HEADER}"
#define FEATURE_BIT(name, bit) F_##name = 1u << bit,
enum {{ CPU_FEATURES(FEATURE_BIT) }};
#include CPU_FEATURES_PROBE
int main(void) {{
    printf("%u\\n", cpu_features());
    return 0;
}}
"""


@pytest.fixture(scope="module")
def ggml_include(tmp_path_factory):
    """ggml/include of the source archive (only those headers are unpacked)."""
    archive = os.path.join(source_mirror(), ARCHIVE)
    needs(os.path.exists(archive), f"the source archive {archive}")
    dest = tmp_path_factory.mktemp("ggml-include")
    prefix = f"{UPSTREAM}/ggml/include/"
    with tarfile.open(archive) as tar:
        tar.extractall(dest, members=[m for m in tar.getmembers() if m.name.startswith(prefix)], filter="data")
    return os.path.join(str(dest), prefix)


def _project(tmp_path, arch, functions):
    """recipe_src/dispatch copied, with the generated table next to dispatch.c (as CpuDispatch does)."""
    project = tmp_path / "dispatcher"
    shutil.copytree(SOURCES, project)
    (project / TABLE_HEADER).write_text(dispatch_table(arch, functions))
    return project


def _compiler(cc):
    needs(shutil.which(cc), f"the C compiler {cc}")
    return cc


@pytest.mark.parametrize("arch, cc, os_", TARGETS, ids=[f"{a}-{o}" for a, _, o in TARGETS])
def test_dispatcher_compiles_without_warnings(ggml_include, tmp_path, arch, cc, os_):
    assert arch in DISPATCH_TARGETS[os_]["arch"]
    cc = _compiler(cc)
    with open(os.path.join(ggml_include, "ggml-cpu.h")) as f:
        functions = header_functions(f.read())
    assert any(name == "ggml_backend_cpu_reg" for _, name, _ in functions) and len(functions) > 30
    project = _project(tmp_path, arch, functions)
    proc = subprocess.run([cc, *FLAGS, "-I", ggml_include, "-c", "dispatch.c", "-o", "dispatch.c.o"], cwd=project,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    nm = subprocess.run(["nm", "-P", "--defined-only", str(project / "dispatch.c.o")], capture_output=True, text=True,
                        check=True).stdout
    defined = {line.split()[0].lstrip("_") for line in nm.splitlines() if line.split()[1] in "T"}
    # every forwarder and llama_cpp_cpu_variant; nothing else global
    assert defined == {name for _, name, _ in functions} | {"llama_cpp_cpu_variant"}


@pytest.mark.parametrize("arch, cc, os_", TARGETS, ids=[f"{a}-{o}" for a, _, o in TARGETS])
def test_cpu_probe_compiles_standalone(tmp_path, arch, cc, os_):
    """cpu-features-<arch>.h with only the generated table: every F_ bit it sets is a
    DISPATCH_FEATURES entry (else no compile), and every entry is probed."""
    cc = _compiler(cc)
    project = _project(tmp_path, arch, [("void", "ggml_cpu_init", [])])
    (project / "probe.c").write_text(PROBE_MAIN)
    proc = subprocess.run([cc, *FLAGS, "-c", "probe.c", "-o", "probe.o"], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(os.path.join(SOURCES, f"cpu-features-{arch}.h")) as f:
        probe = f.read()
    assert [flag for flag in DISPATCH_FEATURES[arch] if f"f |= F_{flag};" not in probe] == []


def test_x86_64_probe_agrees_with_the_kernel(tmp_path):
    """The x86_64 probe run here reports the features /proc/cpuinfo lists (CPU support and OS state)."""
    if os.uname().machine != "x86_64":
        pytest.skip("not an x86_64 machine")
    project = _project(tmp_path, "x86_64", [("void", "ggml_cpu_init", [])])
    (project / "probe.c").write_text(PROBE_MAIN)
    subprocess.run(["gcc", *FLAGS, "probe.c", "-o", "probe"], cwd=project, check=True)
    bits = int(subprocess.run([str(project / "probe")], capture_output=True, text=True, check=True).stdout)
    found = {flag for i, flag in enumerate(DISPATCH_FEATURES["x86_64"]) if bits >> i & 1}
    flags = cpu_info()[1]
    expected = {isa for isa, names in CPUINFO_X86.items() if names <= flags}
    assert found & set(CPUINFO_X86) == expected
