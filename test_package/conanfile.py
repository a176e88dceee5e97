import glob
import os
import shlex
import shutil
import subprocess
import sys

from conan import ConanFile
from conan.errors import ConanException
from conan.tools.build import can_run, cross_building
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import nifcheck  # noqa: E402  (the self-containment checker, tests/nifcheck.py)


class LlamaCppTestPackage(ConanFile):
    """Links the packaged archives into one NIF-style shared library and proves it is
    self-contained (checker) and works (loader, and a real Erlang VM when available)."""
    settings = "os", "arch", "compiler", "build_type"
    generators = "CMakeDeps"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        # one build folder per host OS, so native, MinGW and other cross builds never share a cache
        cmake_layout(self, build_folder=os.path.join("build", str(self.settings.os).lower()))

    def _erl_nif_include(self):
        """erl_nif.h of the Erlang on this machine (only useful when the NIF can be run here)."""
        if cross_building(self) or not shutil.which("erl") or not shutil.which("erlc"):
            return None
        root = subprocess.run(["erl", "-noshell", "-eval", 'io:format("~s", [code:root_dir()]), halt().'],
                              capture_output=True, text=True, timeout=120).stdout.strip()
        include = os.path.join(root, "usr", "include")
        return include if os.path.exists(os.path.join(include, "erl_nif.h")) else None

    def generate(self):
        tc = CMakeToolchain(self)
        include = self._erl_nif_include()
        if include:
            tc.cache_variables["ERL_NIF_INCLUDE_DIR"] = include.replace("\\", "/")
        tc.generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def _find(self, pattern):
        found = [p for p in glob.glob(os.path.join(self.build_folder, "**", pattern), recursive=True)
                 if os.path.isfile(p)]
        if not found:
            raise ConanException(f"test_package: {pattern} was not built in {self.build_folder}")
        return found[0]

    def _check(self, path, **kwargs):
        declared = self.dependencies["llama-cpp"].cpp_info \
            .aggregated_components().system_libs
        binary, problems = nifcheck.check(path, libs=declared, **kwargs)
        self.output.info("self-containment report\n" + nifcheck.report(binary))
        if problems:
            raise ConanException("test_package: " + os.path.basename(path) + " is not self-contained:\n  "
                                 + "\n  ".join(problems))
        self.output.success(f"{os.path.basename(path)}: self-contained (declared system libs: "
                            f"{', '.join(declared)})")

    def test(self):
        nif = self._find({"Windows": "*llama_nif.dll", "Macos": "libllama_nif.dylib"}
                         .get(str(self.settings.os), "libllama_nif.so"))
        self._check(nif, exports=("lnif_",))
        # the same code linked with a bare -shared: the package alone must keep ggml/llama hidden
        plain = nifcheck.inspect(self._find(os.path.basename(nif).replace("llama_nif", "llama_plain_link")))
        leaks = nifcheck.leaked(plain)
        if leaks:
            raise ConanException(f"test_package: {len(leaks)} ggml/gguf/llama symbols exported from a plain "
                                 f"-shared link, e.g. {', '.join(leaks[:5])}")
        self.output.success(f"plain -shared link: 0 ggml/gguf/llama exports ({len(plain.exports)} exports: "
                            f"the C ABI and std:: template instantiations)")
        erl_nif = glob.glob(os.path.join(self.build_folder, "**", "priv", "llama_cpp_ex_nif.so"), recursive=True)
        if erl_nif:
            self._check(erl_nif[0], exports=("nif_init",), undefined=("enif_",))

        if not can_run(self):
            self.output.warning("cross build: the loader was built and the NIF checked, but not run "
                                "(set tools.build.cross_building:can_run with an emulator to run it)")
            return
        work = os.path.join(self.build_folder, "work")
        os.makedirs(work, exist_ok=True)
        loader = self._find("nif_loader.exe" if self.settings.os == "Windows" else "nif_loader")
        # cross builds run under an emulator, e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu"
        emulator = self.conf.get("user.llama-cpp:emulator", default="") if cross_building(self) else ""
        # under an emulator (qemu, wine) no run environment of the host applies: the binaries are
        # static, and a Windows host's conanrun.bat cannot run here
        self.run(f'{emulator} "{loader}" "{nif}" "{work}"'.strip(), env="" if emulator else "conanrun")

        if erl_nif:
            # paths go through the shell quoted, and reach Erlang as plain arguments (no quoting
            # inside an -eval expression)
            q = shlex.quote
            erl_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "erlang")
            ebin = os.path.join(self.build_folder, "ebin")
            os.makedirs(ebin, exist_ok=True)
            sources = [os.path.join(erl_dir, name) for name in ("llama_cpp_ex_nif.erl", "llama_nif_selftest.erl")]
            self.run(f"erlc -o {q(ebin)} {' '.join(q(s) for s in sources)}")
            model = os.path.join(work, "tiny-llama.gguf")
            priv = os.path.dirname(erl_nif[0])
            self.run(f"LLAMA_NIF_PRIV={q(priv)} erl -noshell -pa {q(ebin)} -s llama_nif_selftest main -extra {q(model)}")
        elif cross_building(self):
            self.output.info("cross build: the Erlang NIF is built and run only in native builds")
        else:
            self.output.warning("Erlang (erl, erlc, erl_nif.h) not found: the Erlang NIF was not built")
