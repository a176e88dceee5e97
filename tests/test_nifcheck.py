"""The self-containment checker must reject what makes a NIF fail to load, clash or stay loaded:
exported ggml symbols, RPATH/RUNPATH, undeclared libraries (libgomp), missing hardening,
STB_GNU_UNIQUE definitions and DF_1_NODELETE. Each case is a real shared object built here with
gcc/g++, and the unload cases are also dlopen'ed and dlclose'd to show what glibc does."""
import json
import shutil
import subprocess

import pytest


from llama_cpp_recipe import nifcheck
from conftest import load_call_unload, needs

GOOD = """
__attribute__((visibility("default"))) int lnif_answer(void) { return 42; }
"""


def build(tmp_path, name, source, *flags, cc="gcc"):
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / f"lib{name}.so"
    subprocess.run([cc, "-shared", "-fPIC", "-fvisibility=hidden", "-fstack-protector-all", "-O1", str(src),
                    "-o", str(out), "-Wl,-z,relro,-z,now,-z,noexecstack", *flags], check=True)
    return str(out)


def problems(path, **kwargs):
    return nifcheck.check(path, **{"exports": ("lnif_",), **kwargs})[1]


def test_clean_library_passes(tmp_path):
    b, found = nifcheck.check(build(tmp_path, "good", GOOD), exports=("lnif_",))
    assert found == []
    assert b.format == "ELF" and b.machine == "x86_64"
    assert b.exports == ["lnif_answer"]


def test_rejects_exported_ggml_symbol(tmp_path):
    lib = build(tmp_path, "leaky", GOOD + '__attribute__((visibility("default"))) void ggml_init(void) {}\n')
    found = problems(lib)
    assert any(p.startswith("exports ggml_init") for p in found), found
    assert nifcheck.leaked(nifcheck.inspect(lib)) == ["ggml_init"]


def test_rejects_runpath_and_rpath(tmp_path):
    runpath = build(tmp_path, "runpath", GOOD, "-Wl,-rpath,/opt/llama/lib", "-Wl,--enable-new-dtags")
    assert any("has RUNPATH=/opt/llama/lib" in p for p in problems(runpath))
    rpath = build(tmp_path, "rpath", GOOD, "-Wl,-rpath,$ORIGIN", "-Wl,--disable-new-dtags")
    assert any("has RPATH=$ORIGIN" in p for p in problems(rpath))


OPENMP = GOOD + """
#include <omp.h>
__attribute__((visibility("default"))) int lnif_threads(void) { return omp_get_max_threads(); }
"""


def test_rejects_libgomp_unless_declared(tmp_path):
    lib = build(tmp_path, "omp", OPENMP, "-fopenmp")
    found = problems(lib)
    assert any(p.startswith("needs libgomp.so.1") for p in found), found
    assert any("from libgomp.so.1" in p for p in found), "undefined symbols are attributed to their library"
    assert problems(lib, libs=["gomp"]) == [], "openmp=True declares gomp, which makes it allowed"


def test_rejects_dynamic_cxx_runtime_unless_allowed(tmp_path):
    src = tmp_path / "cxx.cpp"
    src.write_text('#include <string>\n__attribute__((visibility("default"))) extern "C" '
                   'unsigned long lnif_len(const char * s) { return std::string(s).size(); }\n')
    out = str(tmp_path / "libcxx.so")
    subprocess.run(["g++", "-shared", "-fPIC", "-fvisibility=hidden", "-fstack-protector-all", str(src), "-o",
                    out, "-Wl,-z,relro,-z,now"], check=True)
    assert any(p.startswith("needs libstdc++.so.6") for p in problems(out))
    assert not [p for p in problems(out, cxx_runtime_dynamic=True) if "libstdc++" in p]


def test_rejects_undefined_symbol_from_nowhere_but_allows_host_api(tmp_path):
    src = GOOD + "extern int enif_make_int(void); extern int mystery(void);\n" \
                 '__attribute__((visibility("default"))) int lnif_x(void) { return enif_make_int() + mystery(); }\n'
    lib = build(tmp_path, "undef", src)
    found = problems(lib, undefined=("enif_",))
    assert any("leaves mystery undefined" in p for p in found), found
    assert not any("enif_make_int" in p for p in found)


def test_rejects_missing_hardening(tmp_path):
    src = tmp_path / "soft.c"
    src.write_text(GOOD)
    out = str(tmp_path / "libsoft.so")
    subprocess.run(["gcc", "-shared", "-fPIC", "-fvisibility=hidden", "-fno-stack-protector", str(src), "-o", out,
                    "-Wl,-z,norelro,-z,lazy"], check=True)
    found = problems(out)
    for what in ("relro", "bind_now", "stack_protector"):
        assert f"is not hardened: {what} missing" in found


def test_nothing_may_be_exported_unless_named(tmp_path):
    lib = build(tmp_path, "named", GOOD)
    assert nifcheck.check(lib)[1] == ["exports lnif_answer: nothing may be exported (no export prefix given)"]


# A function-local static in an inline function of a template: g++ gives it STB_GNU_UNIQUE
# binding when it is exported (libstdc++'s std:: templates are full of them, and namespace std has
# default visibility even under -fvisibility=hidden).
UNIQUE = """
template <typename T> struct counter { static int & get() { static int n = 0; return n; } };
extern "C" __attribute__((visibility("default"))) int lnif_count(void) { return ++counter<int>::get(); }
"""
def test_rejects_unique_symbols_that_pin_the_library(tmp_path):
    src = tmp_path / "unique.cpp"
    src.write_text(UNIQUE)
    pinned, hidden = str(tmp_path / "libpinned.so"), str(tmp_path / "libhidden.so")
    flags = ["-shared", "-fPIC", "-fstack-protector-all", "-Wl,-z,relro,-z,now"]
    subprocess.run(["g++", *flags, str(src), "-o", pinned], check=True)
    subprocess.run(["g++", *flags, "-fvisibility=hidden", "-fvisibility-inlines-hidden", str(src), "-o", hidden],
                   check=True)
    found = problems(pinned, cxx_runtime_dynamic=True)
    assert any(p.startswith("cannot be unloaded: exports STB_GNU_UNIQUE _ZZN7counterIiE3getEvE1n") for p in found), found
    assert load_call_unload(pinned)[1], "glibc keeps a library with a unique symbol mapped"
    assert problems(hidden, cxx_runtime_dynamic=True) == []
    assert not load_call_unload(hidden)[1]


def test_rejects_nodelete(tmp_path):
    lib = build(tmp_path, "nodelete", GOOD, "-Wl,-z,nodelete")
    assert "cannot be unloaded: DF_1_NODELETE is set" in problems(lib)
    assert load_call_unload(lib)[1]
    assert problems(lib, unloadable=False) == []


def test_pe_imports_and_exports(tmp_path):
    needs(shutil.which("x86_64-w64-mingw32-gcc"), "mingw-w64")
    src = tmp_path / "w.c"
    src.write_text('__declspec(dllexport) int lnif_answer(void) { return 42; }\n')
    out = str(tmp_path / "w.dll")
    subprocess.run(["x86_64-w64-mingw32-gcc", "-shared", str(src), "-o", out, "-static"], check=True)
    b, found = nifcheck.check(out, exports=("lnif_",))
    assert b.format == "PE" and b.exports == ["lnif_answer"]
    assert {d.lower() for d in b.needed} <= {"kernel32.dll", "msvcrt.dll", "advapi32.dll"}, b.needed
    assert found == [], found


def test_cli_reports_and_fails(tmp_path, capsys):
    lib = build(tmp_path, "leaky2", GOOD + '__attribute__((visibility("default"))) void llama_x(void) {}\n')
    assert nifcheck.main([lib, "--export", "lnif_"]) == 1
    out = capsys.readouterr().out
    assert "ggml/gguf/llama exports: 1" in out and "FAIL libleaky2.so" in out and "exports llama_x" in out


def test_cli_json_and_floors(tmp_path, capsys):
    """--json: what test_package reads (the report text and the problems, same exit status);
    --floors: the floor names (with --json, their limits), no library needed."""
    lib = build(tmp_path, "leaky3", GOOD + '__attribute__((visibility("default"))) void llama_x(void) {}\n')
    assert nifcheck.main([lib, "--export", "lnif_", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    binary, problems = nifcheck.check(lib, exports=("lnif_",))
    assert result == {"library": lib, "format": "ELF", "machine": "x86_64", "report": nifcheck.report(binary),
                      "problems": problems} and problems
    assert nifcheck.main([build(tmp_path, "good3", GOOD), "--export", "lnif_", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["problems"] == []
    assert nifcheck.main(["--floors"]) == 0
    assert capsys.readouterr().out.split() == list(nifcheck.FLOORS)
    assert nifcheck.main(["--floors", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == nifcheck.FLOORS
    with pytest.raises(SystemExit):
        nifcheck.main(["--export", "lnif_"])  # no library


def _macho_dylib(path, dylibs, rpaths, symbols):
    """A minimal thin arm64 Mach-O dylib: load commands and a symbol table, no code. Enough for the
    checker's Mach-O reader, which otherwise cannot be exercised on Linux (no ld64 here)."""
    import struct

    def lc_str(cmd, text, fixed):  # load command with an lc_str at offset 8 + fixed fields
        body = text.encode() + b"\0"
        size = (8 + 4 + fixed + len(body) + 7) & ~7
        return struct.pack("<III", cmd, size, 12 + fixed) + b"\0" * fixed + body.ljust(size - 12 - fixed, b"\0")

    cmds = [lc_str(0xC, d, 12) for d in dylibs] + [lc_str(0x8000001C, r, 0) for r in rpaths]
    strtab = b"\0"
    nlist = b""
    for name, n_type in symbols:  # 0x0f: external, defined in a section; 0x1f: private extern; 0x01: undefined
        nlist += struct.pack("<IBBHQ", len(strtab), n_type, 1 if n_type & 0xE else 0, 0, 0)
        strtab += name.encode() + b"\0"
    header_size = 32 + sum(len(c) for c in cmds) + 24
    symoff = header_size
    stroff = symoff + len(nlist)
    cmds.append(struct.pack("<IIIIII", 0x2, 24, symoff, len(symbols), stroff, len(strtab)))
    header = struct.pack("<IiiIIIII", 0xFEEDFACF, 0x0100000C, 0, 6, len(cmds), sum(len(c) for c in cmds), 0, 0)
    with open(path, "wb") as f:
        f.write(header + b"".join(cmds) + nlist + strtab)
    return str(path)


def test_macho_load_commands_exports_and_rpath(tmp_path):
    lib = _macho_dylib(tmp_path / "libnif.dylib",
                       ["/usr/lib/libSystem.B.dylib", "/System/Library/Frameworks/Metal.framework/Metal",
                        "@rpath/libomp.dylib"],
                       ["@loader_path/../lib"],
                       [("_lnif_open", 0x0F), ("_ggml_init", 0x0F), ("_hidden_helper", 0x1F), ("_malloc", 0x01)])
    b, found = nifcheck.check(lib, hardening=False)
    assert b.format == "Mach-O" and b.machine == "arm64"
    assert b.exports == ["lnif_open", "ggml_init"], "private externs are not exports"
    assert nifcheck.leaked(b) == ["ggml_init"]
    assert "needs @rpath/libomp.dylib: not a system library and not declared by the package" in found
    assert "has LC_RPATH=@loader_path/../lib: a self-contained library must not search extra directories" in found
    assert not [p for p in found if "libSystem" in p or "Metal.framework" in p]


FLOOR_CALLS = """
#include <pthread.h>
#include <stdlib.h>
static void * run(void * arg) { return arg; }
__attribute__((visibility("default"))) unsigned lnif_answer(void) {
    pthread_t t;
    pthread_create(&t, 0, run, 0);   /* GLIBC_2.34: libpthread moved into libc */
    pthread_join(t, 0);
    return arc4random();             /* GLIBC_2.36 */
}
"""


def test_floor_rule_names_every_symbol_version_above_the_floor(tmp_path):
    """Built by this host's gcc, pthread_create and arc4random bind to GLIBC_2.34 and 2.36: fine
    for a Debian 12 floor, two versions too new for glibc 2.28 (RHEL 8)."""
    lib = build(tmp_path, "newglibc", FLOOR_CALLS)
    b = nifcheck.inspect(lib)
    assert nifcheck.newest_versions(b)["GLIBC"] == "2.36"
    assert problems(lib, floor="glibc2.36") == []
    found = problems(lib, floor="glibc2.28")
    assert found == ["references GLIBC_2.34, GLIBC_2.36: newer than GLIBC_2.28, the glibc2.28 floor"], found
    assert problems(build(tmp_path, "good", GOOD), floor="glibc2.28") == []


def test_floor_rule_covers_the_cxx_and_gcc_runtimes_and_musl():
    """GLIBCXX_, CXXABI_ and GCC_ each have their own limit per floor; a musl floor allows musl's
    libc only and no versioned symbol at all (synthetic binaries: the rule is pure)."""
    cxx = nifcheck.Binary("x.so", "ELF", "x86_64", needed=["libstdc++.so.6", "libc.so.6"],
                          versions={"GLIBCXX_3.4.30": "libstdc++.so.6", "GLIBCXX_3.4": "libstdc++.so.6",
                                    "CXXABI_1.3.13": "libstdc++.so.6", "GCC_12.0.0": "libgcc_s.so.1",
                                    "GLIBC_2.17": "libc.so.6"})
    found = nifcheck.floor_problems(cxx, "glibc2.28")
    assert [p.split(":")[0] for p in found] == ["references CXXABI_1.3.13", "references GCC_12.0.0",
                                                "references GLIBCXX_3.4.30"], found
    assert nifcheck.floor_problems(cxx, "glibc2.36") == []
    musl = nifcheck.Binary("m.so", "ELF", "x86_64", needed=["libc.so"])
    assert nifcheck.floor_problems(musl, "musl") == []
    glibc = nifcheck.Binary("g.so", "ELF", "x86_64", needed=["libc.so.6"], versions={"GLIBC_2.2.5": "libc.so.6"})
    assert len(nifcheck.floor_problems(glibc, "musl")) == 2
    with pytest.raises(nifcheck.CheckError, match="unknown floor"):
        nifcheck.floor_problems(glibc, "glibc2.99")


def test_stack_protector_linked_into_the_library_counts(tmp_path):
    """Zig links its own __stack_chk_fail into each shared object instead of importing glibc's:
    a local definition in .symtab counts; once stripped, the file can no longer show it."""
    own = GOOD + ('#include <string.h>\n__attribute__((visibility("hidden"))) void __stack_chk_fail(void) { for (;;); }\n'
                  '__attribute__((visibility("default"))) int lnif_copy(const char *s) { char b[64]; strcpy(b, s); return b[1]; }\n')
    lib = build(tmp_path, "ownssp", own)
    b = nifcheck.inspect(lib)
    assert not any(name == "__stack_chk_fail" for name, _, _ in b.undefined)
    assert b.hardening["stack_protector"], "the local definition counts"
    subprocess.run(["strip", lib], check=True)
    assert not nifcheck.inspect(lib).hardening["stack_protector"]
