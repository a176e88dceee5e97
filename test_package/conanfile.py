import glob
import json
import os
import shutil
import subprocess
import sys

from conan import ConanFile
from conan.errors import ConanException
from conan.tools.build import can_run, cross_building
from conan.tools.cmake import CMake, cmake_layout


class LlamaCppTestPackage(ConanFile):
    """Links the package into one NIF-style shared library the way README tells NIF authors to,
    proves it self-contained (the checker, against the package's declared system libs) and, where
    the build can run it, loads it like a VM does and generates from a tiny model."""
    settings = "os", "arch", "compiler", "build_type"
    generators = "CMakeDeps", "CMakeToolchain"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        # one build folder per host OS (and C library where a profile picks one), so native, MinGW,
        # glibc-2.28, musl and other cross builds never share a CMake cache
        libc = self.conf.get("user.llama-cpp:libc")
        cmake_layout(self, build_folder=os.path.join("build", str(self.settings.os).lower() + (f"-{libc}" if libc else "")))

    @property
    def _sanitized(self):
        return self.dependencies["llama-cpp"].options.get_safe("sanitize")

    def build(self):
        if self._sanitized:
            return
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def _built(self, name):
        found = [p for p in glob.glob(os.path.join(self.build_folder, "**", name), recursive=True) if os.path.isfile(p)]
        if not found:
            raise ConanException(f"test_package: {name} was not built in {self.build_folder}")
        return found[0]

    def _nifcheck(self, *args):
        """Runs the self-containment checker as the tool it is, from the tested recipe's export
        folder (llama_cpp_recipe/nifcheck.py travels with the recipe and needs only the standard
        library): `python -m llama_cpp_recipe.nifcheck ARGS --json`. Returns its JSON output."""
        folder = self.dependencies[self.tested_reference_str].recipe_folder
        # Conan's own Python; a frozen Conan executable cannot run -m, a python3 on PATH can
        frozen = getattr(sys, "frozen", False)
        python = (shutil.which("python3") or shutil.which("python")) if frozen else sys.executable
        # -B: never write bytecode into the export folder in the Conan cache (Conan does not either)
        command = [python or "python3", "-B", "-m", "llama_cpp_recipe.nifcheck", *args, "--json"]
        proc = subprocess.run(command, cwd=folder, env={**os.environ, "PYTHONPATH": folder},
                              capture_output=True, text=True)
        try:
            if proc.returncode not in (0, 1):  # 1: problems found; anything else: it did not run
                raise ValueError
            return json.loads(proc.stdout)
        except ValueError:  # json.JSONDecodeError too: a traceback (CheckError) instead of a result
            raise ConanException(f"test_package: {' '.join(command)} (in {folder}) failed with exit status "
                                 f"{proc.returncode}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")

    def _floor(self):
        """The oldest system the NIF must load on (a nifcheck floor), for Linux: the one the profile
        promises (user.llama-cpp:libc, the Zig profiles), else for a native build this machine's
        glibc (the default gcc profile links against it). None where neither applies."""
        if self.settings.os != "Linux":
            return None
        libc = self.conf.get("user.llama-cpp:libc")
        if libc:
            return libc
        try:
            floor = os.confstr("CS_GNU_LIBC_VERSION").replace(" ", "")  # "glibc 2.36" -> a FLOORS key
        except (AttributeError, ValueError, OSError):  # not glibc
            floor = None
        return floor if floor in self._nifcheck("--floors") and not cross_building(self) else None

    def test(self):
        if self._sanitized:
            # an instrumented NIF needs the sanitizer runtime loaded first: not self-contained by design
            self.output.warning(f"sanitize={self._sanitized}: the self-contained NIF proof does not apply; "
                                f"link the archives into a program built with the same -fsanitize "
                                f"(README, Sanitizer builds; bench/fuzz.py does)")
            return
        nif = self._built({"Windows": "*llama_nif.dll", "Macos": "libllama_nif.dylib"}
                          .get(str(self.settings.os), "libllama_nif.so"))
        declared = self.dependencies["llama-cpp"].cpp_info.aggregated_components().system_libs
        floor = self._floor()
        result = self._nifcheck(nif, "--export", "lnif_", *(f"--lib={lib}" for lib in declared),
                                *([f"--floor={floor}"] if floor else []))
        problems = result["problems"]
        self.output.info(result["report"])
        if problems:
            raise ConanException(f"test_package: {os.path.basename(nif)} is not self-contained:\n  "
                                 + "\n  ".join(problems))
        self.output.success(f"{os.path.basename(nif)}: self-contained (declared system libs: {', '.join(declared)})")
        self.output.success(f"{os.path.basename(nif)}: floor {floor}: kept" if floor else
                            f"{os.path.basename(nif)}: no floor checked (cross build without user.llama-cpp:libc)")
        if not can_run(self):
            self.output.warning("cross build: the NIF was checked, not run (set tools.build.cross_building:can_run "
                                "and user.llama-cpp:emulator to run it)")
            return
        loader = self._built("nif_loader.exe" if self.settings.os == "Windows" else "nif_loader")
        # cross builds run under an emulator ("qemu-aarch64 -L /usr/aarch64-linux-gnu", wine64); the
        # binaries are static there, and a Windows host's conanrun.bat could not run anyway
        emulator = self.conf.get("user.llama-cpp:emulator", default="") if cross_building(self) else ""
        self.run(f'{emulator} "{loader}" "{nif}" "{self.build_folder}"'.strip(), env="" if emulator else "conanrun")
