"""Self-containment checker for native-extension shared objects (ELF, PE, Mach-O).

Reads the file itself (no readelf/objdump/otool needed, any target architecture) and answers:
what does it load (NEEDED / imported DLLs / load commands), where does it look (RPATH/RUNPATH,
LC_RPATH), what does it export, what does it leave undefined, is it hardened, and can it be
unloaded again (ELF: no STB_GNU_UNIQUE definitions, no DF_1_NODELETE; glibc keeps such a library
mapped after dlclose, which blocks an Erlang NIF's purge and reload). `check()` turns that into a
list of problems, each naming the offending entry. Nothing in it is specific to one project: the
caller says what may be exported, which system libraries are declared, what the host provides.

A NIF author runs it on their own library; it needs only the standard library, so any of:
    python3 -m llama_cpp_recipe.nifcheck priv/my_nif.so --export nif_init --undefined enif_ [--lib gomp]...
        from a checkout of the recipe (its root), or with the recipe's export folder in the Conan
        cache on the path: PYTHONPATH="$(conan cache path llama-cpp/<version>)" python3 -m ...
    python3 path/to/nifcheck.py priv/my_nif.so ...   (this file, anywhere: it imports nothing of the recipe)
--floor glibc2.28 (--floors lists them) checks the oldest system it must load on; --json prints
the result as one JSON object. Exit status 1 when there are problems.

It is a tool shipped with the recipe (exported with llama_cpp_recipe/), not recipe logic:
conanfile.py never imports it. test_package runs it this way (every build, cross builds included)
from the tested recipe's export folder; the tests and bench/ import it.
"""
import argparse
import fnmatch
import json
import os
import re
import struct
import sys
from dataclasses import dataclass, field

# Libraries a NIF may need on each format without shipping anything. libstdc++/libgcc_s are
# allowed only when the caller says the link keeps the C++ runtime dynamic.
ELF_SYSTEM = ["libc.so.*", "libm.so.*", "libpthread.so.*", "libdl.so.*", "librt.so.*",
              "ld-linux*.so.*", "ld64.so.*", "libc.so", "libc.musl-*.so.*", "ld-musl-*.so.*"]  # libc.so: musl (Zig)
ELF_CXX_RUNTIME = ["libstdc++.so.*", "libgcc_s.so.*"]
CXX_RUNTIME_NAMES = {"stdc++", "gcc_s"}  # as system_libs name them (stdcpp_library())
PE_SYSTEM = ["kernel32.dll", "advapi32.dll", "msvcrt.dll", "ntdll.dll", "user32.dll", "ws2_32.dll",
             "bcrypt.dll", "ole32.dll", "shell32.dll", "api-ms-win-*.dll", "ucrtbase.dll"]
MACHO_SYSTEM = ["/usr/lib/libSystem.B.dylib", "/usr/lib/libc++.1.dylib", "/usr/lib/libobjc.A.dylib",
                "/System/Library/Frameworks/*"]
# symbols the static linker itself defines in every ELF shared object
ELF_LINKER_SYMBOLS = {"_init", "_fini", "_edata", "_end", "__bss_start"}


@dataclass
class Binary:
    path: str
    format: str  # ELF, PE, Mach-O
    machine: str
    needed: list = field(default_factory=list)
    rpaths: list = field(default_factory=list)
    exports: list = field(default_factory=list)
    undefined: list = field(default_factory=list)  # (name, providing library or None, weak)
    hardening: dict = field(default_factory=dict)
    unique: list = field(default_factory=list)  # ELF: exported STB_GNU_UNIQUE definitions
    nodelete: bool = False  # ELF: DF_1_NODELETE
    versions: dict = field(default_factory=dict)  # ELF: referenced version -> library (GLIBC_2.28 -> libc.so.6)


class CheckError(Exception):
    pass


# C names, and C++ names whose outermost identifier (function, class, its typeinfo/vtable) is ggml's,
# gguf's or llama's: _Z19ggml_quantize..., _ZN11llama_model..., _ZTV12llama_context. A std::
# template merely instantiated over a llama type (std::vector<llama_token>) is not counted.
_LEAK = re.compile(r"^(ggml_|gguf_|llama_)|^_Z(T[ISV])?N?K?\d+(ggml|gguf|llama)")


def leaked(binary):
    """Exports that belong to ggml/gguf/llama."""
    return [n for n in binary.exports if _LEAK.search(n)]


# ------------------------------------------------------------------------------------------- ELF

ELF_MACHINES = {3: "x86", 62: "x86_64", 183: "aarch64", 243: "riscv", 40: "arm", 21: "ppc64"}
PT_LOAD, PT_DYNAMIC, PT_GNU_STACK, PT_GNU_RELRO = 1, 2, 0x6474E551, 0x6474E552
PF_X = 0x1
DT_NULL, DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH, DT_FLAGS, DT_BIND_NOW, DT_FLAGS_1 = 0, 1, 5, 15, 29, 30, 24, 0x6FFFFFFB
DF_BIND_NOW, DF_1_NOW, DF_1_NODELETE = 0x8, 0x1, 0x8
SHT_SYMTAB, SHT_DYNSYM, SHT_GNU_VERNEED, SHT_GNU_VERSYM = 2, 11, 0x6FFFFFFE, 0x6FFFFFFF
# the stack protector's failure handler: imported from libc (glibc, musl), or linked into the
# object itself (Zig links its own: a local symbol, seen in .symtab unless the file is stripped)
STACK_CHK = (b"__stack_chk_fail", b"__stack_chk_fail_local")
STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 1, 2, 10
STV_DEFAULT, STV_PROTECTED = 0, 3
SHN_UNDEF = 0


def _read_elf(path, data):
    if data[4] not in (1, 2) or data[5] not in (1, 2):
        raise CheckError(f"{path}: unsupported ELF class/encoding")
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        (e_type, e_machine, _, _, e_phoff, e_shoff, _, _, e_phentsize, e_phnum, e_shentsize, e_shnum,
         _) = struct.unpack_from(end + "HHIQQQIHHHHHH", data, 16)
    else:
        (e_type, e_machine, _, _, e_phoff, e_shoff, _, _, e_phentsize, e_phnum, e_shentsize, e_shnum,
         _) = struct.unpack_from(end + "HHIIIIIHHHHHH", data, 16)
    binary = Binary(path, "ELF", ELF_MACHINES.get(e_machine, f"machine-{e_machine}"))

    phdrs = []
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        if is64:
            p_type, p_flags, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from(end + "IIQQQQQQ", data, off)
        else:
            p_type, p_offset, p_vaddr, _, p_filesz, _, p_flags, _ = struct.unpack_from(end + "IIIIIIII", data, off)
        phdrs.append((p_type, p_flags, p_offset, p_vaddr, p_filesz))

    def vaddr_to_off(addr):
        for p_type, _, p_offset, p_vaddr, p_filesz in phdrs:
            if p_type == PT_LOAD and p_vaddr <= addr < p_vaddr + p_filesz:
                return addr - p_vaddr + p_offset
        raise CheckError(f"{path}: address {addr:#x} is outside every PT_LOAD segment")

    def cstr(off):
        return data[off:data.index(b"\0", off)].decode("utf-8", "replace")

    dyn = []
    for p_type, _, p_offset, _, p_filesz in phdrs:
        if p_type == PT_DYNAMIC:
            size = 16 if is64 else 8
            for off in range(p_offset, p_offset + p_filesz, size):
                tag, val = struct.unpack_from(end + ("qQ" if is64 else "iI"), data, off)
                if tag == DT_NULL:
                    break
                dyn.append((tag, val))
    strtab = next((val for tag, val in dyn if tag == DT_STRTAB), None)
    flags = next((val for tag, val in dyn if tag == DT_FLAGS), 0)
    flags_1 = next((val for tag, val in dyn if tag == DT_FLAGS_1), 0)
    if strtab is not None:
        stroff = vaddr_to_off(strtab)
        for tag, val in dyn:
            if tag == DT_NEEDED:
                binary.needed.append(cstr(stroff + val))
            elif tag in (DT_RPATH, DT_RUNPATH):
                binary.rpaths.append(("RPATH" if tag == DT_RPATH else "RUNPATH") + "=" + cstr(stroff + val))
    binary.nodelete = bool(flags_1 & DF_1_NODELETE)
    stack = [f for t, f, *_ in phdrs if t == PT_GNU_STACK]
    binary.hardening = {
        "relro": any(t == PT_GNU_RELRO for t, *_ in phdrs),
        "bind_now": bool(flags & DF_BIND_NOW) or bool(flags_1 & DF_1_NOW) or any(t == DT_BIND_NOW for t, _ in dyn),
        "nx_stack": bool(stack) and not (stack[0] & PF_X),
        "stack_protector": False,  # set below from the symbol table
    }

    # sections: .dynsym, its string table, and GNU symbol versioning to attribute undefined symbols
    shdrs = []
    for i in range(e_shnum):
        off = e_shoff + i * e_shentsize
        if is64:
            _, sh_type, _, _, sh_offset, sh_size, sh_link, _, _, sh_entsize = struct.unpack_from(end + "IIQQQQIIQQ", data, off)
        else:
            _, sh_type, _, _, sh_offset, sh_size, sh_link, _, _, sh_entsize = struct.unpack_from(end + "IIIIIIIIII", data, off)
        shdrs.append((sh_type, sh_offset, sh_size, sh_link, sh_entsize))
    symtab = next((s for s in shdrs if s[0] == SHT_SYMTAB), None)
    if symtab is not None:
        names = data[shdrs[symtab[3]][1]:shdrs[symtab[3]][1] + shdrs[symtab[3]][2]]
        offsets = {names.find(b"\0" + name + b"\0") + 1 for name in STACK_CHK} - {0}
        for i in range(symtab[2] // symtab[4] if offsets else 0):
            off = symtab[1] + i * symtab[4]
            st_name, st_shndx = (struct.unpack_from(end + "I2xH", data, off) if is64 else
                                 struct.unpack_from(end + "I10xH", data, off))
            if st_name in offsets and st_shndx != SHN_UNDEF:
                binary.hardening["stack_protector"] = True
                break
    dynsym = next((s for s in shdrs if s[0] == SHT_DYNSYM), None)
    if dynsym is None:
        return binary
    _, sym_off, sym_size, sym_link, sym_ent = dynsym
    str_off = shdrs[sym_link][1]
    count = sym_size // sym_ent
    versym = next((s for s in shdrs if s[0] == SHT_GNU_VERSYM), None)
    verneed = next((s for s in shdrs if s[0] == SHT_GNU_VERNEED), None)
    version_file = {}  # version index -> library file name
    if verneed is not None:
        vn_str = shdrs[verneed[3]][1]
        off = verneed[1]
        while True:
            _, vn_cnt, vn_file, vn_aux, vn_next = struct.unpack_from(end + "HHIII", data, off)
            aux = off + vn_aux
            for _ in range(vn_cnt):
                _, _, vna_other, vna_name, vna_next = struct.unpack_from(end + "IHHII", data, aux)
                version_file[vna_other] = cstr(vn_str + vn_file)
                binary.versions[cstr(vn_str + vna_name)] = cstr(vn_str + vn_file)
                aux += vna_next
            if not vn_next:
                break
            off += vn_next
    for i in range(1, count):
        off = sym_off + i * sym_ent
        if is64:
            st_name, st_info, st_other, st_shndx, _, _ = struct.unpack_from(end + "IBBHQQ", data, off)
        else:
            st_name, _, _, st_info, st_other, st_shndx = struct.unpack_from(end + "IIIBBH", data, off)
        name = cstr(str_off + st_name)
        bind, visibility = st_info >> 4, st_other & 3
        if not name or bind not in (STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE):
            continue
        if st_shndx == SHN_UNDEF:
            ver = struct.unpack_from(end + "H", data, versym[1] + 2 * i)[0] & 0x7FFF if versym else 0
            binary.undefined.append((name, version_file.get(ver), bind == STB_WEAK))
            if name == "__stack_chk_fail":
                binary.hardening["stack_protector"] = True
        elif visibility in (STV_DEFAULT, STV_PROTECTED):
            binary.exports.append(name)
            if bind == STB_GNU_UNIQUE:
                binary.unique.append(name)
    return binary


# -------------------------------------------------------------------------------------------- PE

PE_MACHINES = {0x8664: "x86_64", 0x14C: "x86", 0xAA64: "aarch64"}
PE32_PLUS = 0x20B
IMAGE_DIRECTORY_ENTRY_EXPORT, IMAGE_DIRECTORY_ENTRY_IMPORT = 0, 1
DLLCHARACTERISTICS_HIGH_ENTROPY_VA, DLLCHARACTERISTICS_DYNAMIC_BASE, DLLCHARACTERISTICS_NX_COMPAT = 0x20, 0x40, 0x100


def _read_pe(path, data):
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe:pe + 4] != b"PE\0\0":
        raise CheckError(f"{path}: MZ file without a PE header")
    machine, nsect, _, _, _, opt_size, _ = struct.unpack_from("<HHIIIHH", data, pe + 4)
    opt = pe + 24
    magic = struct.unpack_from("<H", data, opt)[0]
    plus = magic == PE32_PLUS
    dll_chars = struct.unpack_from("<H", data, opt + 70)[0]
    ndirs_off = opt + (108 if plus else 92)
    ndirs = struct.unpack_from("<I", data, ndirs_off)[0]
    dirs = [struct.unpack_from("<II", data, ndirs_off + 4 + 8 * i) for i in range(min(ndirs, 16))]
    sections = []
    for i in range(nsect):
        off = opt + opt_size + 40 * i
        vsize, vaddr, rsize, roff = struct.unpack_from("<IIII", data, off + 8)
        sections.append((vaddr, max(vsize, rsize), roff))

    def rva(addr):
        for vaddr, size, roff in sections:
            if vaddr <= addr < vaddr + size:
                return addr - vaddr + roff
        raise CheckError(f"{path}: RVA {addr:#x} is outside every section")

    def cstr(off):
        return data[off:data.index(b"\0", off)].decode("ascii", "replace")

    binary = Binary(path, "PE", PE_MACHINES.get(machine, f"machine-{machine:#x}"))
    if len(dirs) > IMAGE_DIRECTORY_ENTRY_EXPORT and dirs[IMAGE_DIRECTORY_ENTRY_EXPORT][0]:
        exp = rva(dirs[IMAGE_DIRECTORY_ENTRY_EXPORT][0])
        n_names = struct.unpack_from("<I", data, exp + 24)[0]
        names_rva = struct.unpack_from("<I", data, exp + 32)[0]
        for i in range(n_names):
            binary.exports.append(cstr(rva(struct.unpack_from("<I", data, rva(names_rva) + 4 * i)[0])))
    if len(dirs) > IMAGE_DIRECTORY_ENTRY_IMPORT and dirs[IMAGE_DIRECTORY_ENTRY_IMPORT][0]:
        off = rva(dirs[IMAGE_DIRECTORY_ENTRY_IMPORT][0])
        while True:
            lookup, _, _, name_rva, thunk = struct.unpack_from("<IIIII", data, off)
            if not name_rva:
                break
            dll = cstr(rva(name_rva))
            binary.needed.append(dll)
            table = rva(lookup or thunk)
            step, flag = (8, 1 << 63) if plus else (4, 1 << 31)
            while True:
                entry = struct.unpack_from("<Q" if plus else "<I", data, table)[0]
                if not entry:
                    break
                name = f"#{entry & 0xFFFF}" if entry & flag else cstr(rva(entry & 0x7FFFFFFF) + 2)
                binary.undefined.append((name, dll, False))
                table += step
            off += 20
    binary.hardening = {"nx_stack": bool(dll_chars & DLLCHARACTERISTICS_NX_COMPAT),
                        "aslr": bool(dll_chars & DLLCHARACTERISTICS_DYNAMIC_BASE),
                        "high_entropy_va": bool(dll_chars & DLLCHARACTERISTICS_HIGH_ENTROPY_VA)}
    return binary


# ---------------------------------------------------------------------------------------- Mach-O

MACHO_CPUS = {0x01000007: "x86_64", 0x0100000C: "arm64"}
MH_MAGIC_64 = 0xFEEDFACF
LC_SYMTAB, LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_RPATH, LC_REEXPORT_DYLIB = 0x2, 0xC, 0x80000018, 0x8000001C, 0x8000001F
N_STAB, N_PEXT, N_TYPE, N_EXT, N_UNDF, N_SECT, N_WEAK_REF = 0xE0, 0x10, 0xE, 0x1, 0x0, 0xE, 0x40


def _read_macho(path, data):
    magic = struct.unpack_from("<I", data, 0)[0]
    if magic != MH_MAGIC_64:
        raise CheckError(f"{path}: only thin 64-bit little-endian Mach-O files are supported")
    cputype, _, _, ncmds, _, _ = struct.unpack_from("<iIIIII", data, 4)
    binary = Binary(path, "Mach-O", MACHO_CPUS.get(cputype & 0xFFFFFFFF, f"cpu-{cputype:#x}"))
    off = 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, off)
        if cmd in (LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB):
            name_off = struct.unpack_from("<I", data, off + 8)[0]
            binary.needed.append(data[off + name_off:data.index(b"\0", off + name_off)].decode())
        elif cmd == LC_RPATH:
            name_off = struct.unpack_from("<I", data, off + 8)[0]
            binary.rpaths.append("LC_RPATH=" + data[off + name_off:data.index(b"\0", off + name_off)].decode())
        elif cmd == LC_SYMTAB:
            symoff, nsyms, stroff, _ = struct.unpack_from("<IIII", data, off + 8)
            for i in range(nsyms):
                n_strx, n_type, _, n_desc, _ = struct.unpack_from("<IBBHQ", data, symoff + 16 * i)
                if n_type & N_STAB:
                    continue
                name = data[stroff + n_strx:data.index(b"\0", stroff + n_strx)].decode("utf-8", "replace")
                name = name[1:] if name.startswith("_") else name
                ext, pext, kind = n_type & N_EXT, n_type & N_PEXT, n_type & N_TYPE
                if ext and kind == N_UNDF:
                    binary.undefined.append((name, None, bool(n_desc & N_WEAK_REF)))
                elif ext and not pext and kind == N_SECT:
                    binary.exports.append(name)
        off += size
    return binary


def inspect(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] == b"\x7fELF":
        return _read_elf(path, data)
    if data[:2] == b"MZ":
        return _read_pe(path, data)
    if data[:4] in (b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe"):
        return _read_macho(path, data)
    raise CheckError(f"{path}: not an ELF, PE or Mach-O file")


# ---------------------------------------------------------------------------------------- policy

def _lib_patterns(fmt, names):
    """Declared system libs (Conan names: cudart, gomp, ...) as file-name patterns per format."""
    if fmt == "ELF":
        return [f"lib{n}.so*" for n in names]
    if fmt == "PE":
        return [f"{n}*.dll" for n in names] + [f"lib{n}*.dll" for n in names]
    return [f"*/lib{n}.*dylib" for n in names] + [f"*/{n}.framework/*" for n in names]


# Floors, like auditwheel's manylinux policies: the newest symbol version of each versioned runtime
# library a binary may reference to load on a system with that glibc and the gcc runtime it ships
# (glibc2.28: RHEL/Alma/Rocky 8 and manylinux_2_28, gcc 8; glibc2.31: Debian 11 and Ubuntu 20.04,
# gcc 10; glibc2.36: Debian 12, gcc 12). `musl` forbids every versioned reference and every library
# but musl's libc (one file: libc.so, ld-musl-<arch>.so.1).
FLOORS = {
    "glibc2.28": {"GLIBC": "2.28", "GLIBCXX": "3.4.25", "CXXABI": "1.3.11", "GCC": "7.0.0"},
    "glibc2.31": {"GLIBC": "2.31", "GLIBCXX": "3.4.28", "CXXABI": "1.3.12", "GCC": "7.0.0"},
    "glibc2.36": {"GLIBC": "2.36", "GLIBCXX": "3.4.30", "CXXABI": "1.3.13", "GCC": "12.0.0"},
    "musl": None,
}
MUSL_LIBC = ["libc.so", "libc.musl-*.so.1", "ld-musl-*.so.1"]
_VERSION = re.compile(r"^(GLIBC|GLIBCXX|CXXABI|GCC)_(\d+(?:\.\d+)*)$")


def _key(version):
    return tuple(int(part) for part in version.split("."))


def newest_versions(binary):
    """{family: newest version referenced} for GLIBC, GLIBCXX, CXXABI and GCC (ELF)."""
    newest = {}
    for name in binary.versions:
        match = _VERSION.match(name)
        if match and (match.group(1) not in newest or _key(match.group(2)) > _key(newest[match.group(1)])):
            newest[match.group(1)] = match.group(2)
    return newest


def floor_problems(binary, floor):
    """What keeps an ELF binary from loading on every system of `floor` (a FLOORS key)."""
    if floor not in FLOORS:
        raise CheckError(f"unknown floor {floor!r}: use one of {', '.join(FLOORS)}")
    problems = []
    if FLOORS[floor] is None:
        for lib in binary.needed:
            if not any(fnmatch.fnmatch(lib, pat) for pat in MUSL_LIBC):
                problems.append(f"needs {lib}: a musl binary may need musl's libc only ({', '.join(MUSL_LIBC)})")
        for name, lib in sorted(binary.versions.items()):
            problems.append(f"references {name} ({lib}): versioned symbols are glibc's, musl has none")
        return problems
    for family, version in sorted(newest_versions(binary).items()):
        limit = FLOORS[floor].get(family)
        if _key(version) > _key(limit):
            users = sorted(n for n in binary.versions if n.startswith(family + "_") and _key(n[len(family) + 1:]) > _key(limit))
            problems.append(f"references {', '.join(users)}: newer than {family}_{limit}, the {floor} floor")
    return problems


def check(path, exports=(), libs=(), undefined=(), cxx_runtime_dynamic=False, hardening=True, unloadable=True,
          floor=None):
    """Returns (binary, problems). `exports`: prefixes/names the library may export (none by
    default); `libs`: the system libraries its dependencies declare (Conan system_libs names);
    `undefined`: prefixes of symbols the host process provides (enif_ for an Erlang NIF);
    `unloadable`: dlclose must be able to unmap it (ELF); `floor`: a FLOORS key the ELF binary
    must load on (newest GLIBC_/GLIBCXX_/CXXABI_/GCC_ reference, or musl only)."""
    b = inspect(path)
    problems = []
    if b.format == "ELF":
        allowed = ELF_SYSTEM + (ELF_CXX_RUNTIME if cxx_runtime_dynamic else [])
    elif b.format == "PE":
        allowed = PE_SYSTEM
    else:
        allowed = MACHO_SYSTEM
    if not cxx_runtime_dynamic:  # declared by the package for C consumers, but still a choice here
        libs = [n for n in libs if n not in CXX_RUNTIME_NAMES]
    allowed = allowed + _lib_patterns(b.format, libs)
    for lib in b.needed:
        if not any(fnmatch.fnmatch(lib.lower(), pat.lower()) for pat in allowed):
            problems.append(f"needs {lib}: not a system library and not declared by the package")
    for rpath in b.rpaths:
        problems.append(f"has {rpath}: a self-contained library must not search extra directories")
    for name in b.exports:
        if b.format == "ELF" and name in ELF_LINKER_SYMBOLS:
            continue
        if not any(name.startswith(p) for p in exports):
            allowed_names = f"only {', '.join(exports)}* may be exported" if exports else \
                "nothing may be exported (no export prefix given)"
            problems.append(f"exports {name}: {allowed_names}")
    for name, lib, weak in b.undefined:
        if b.format == "PE":
            continue  # every PE import names its DLL; the DLL list above is the check
        if weak or any(name.startswith(p) for p in undefined):
            continue  # a weak reference never fails a load
        if b.format == "ELF" and lib is None:
            # with symbol versions (glibc) every libc symbol names its library, so an unversioned
            # one comes from nowhere known; without any (musl), only the NEEDED check above applies
            if b.versions:
                problems.append(f"leaves {name} undefined with no versioned provider: it must come from the host")
        elif b.format == "ELF" and not any(fnmatch.fnmatch(lib, pat) for pat in allowed):
            problems.append(f"imports {name} from {lib}")
    if hardening and b.format == "ELF":
        for key in ("relro", "bind_now", "nx_stack", "stack_protector"):
            if not b.hardening.get(key):
                problems.append(f"is not hardened: {key} missing")
    if unloadable and b.format == "ELF":
        for name in b.unique:
            problems.append(f"cannot be unloaded: exports STB_GNU_UNIQUE {name} (glibc then ignores dlclose)")
        if b.nodelete:
            problems.append("cannot be unloaded: DF_1_NODELETE is set")
    if floor is not None and b.format == "ELF":
        problems += floor_problems(b, floor)
    if hardening and b.format == "PE":
        for key in ("nx_stack", "aslr"):
            if not b.hardening.get(key):
                problems.append(f"is not hardened: {key} missing")
    return b, problems


def report(b):
    size = os.path.getsize(b.path)
    leaks = leaked(b)
    lines = [f"{b.path}: {b.format} {b.machine}, {size} bytes",
             f"  needs:     {', '.join(b.needed) or '(nothing)'}",
             f"  rpath:     {', '.join(b.rpaths) or '(none)'}",
             f"  exports:   {len(b.exports)} ({', '.join(sorted(b.exports)[:12])}"
             f"{', ...' if len(b.exports) > 12 else ''})",
             f"  ggml/gguf/llama exports: {len(leaks)}",
             f"  undefined: {len(b.undefined)}",
             f"  unloadable: {'no' if b.unique or b.nodelete else 'yes'} ({len(b.unique)} unique symbols"
             f"{', DF_1_NODELETE' if b.nodelete else ''})",
             f"  hardening: {', '.join(k + ('=yes' if v else '=NO') for k, v in b.hardening.items())}"]
    if b.format == "ELF":
        newest = newest_versions(b)
        lines.append(f"  newest versions: {', '.join(f'{k}_{v}' for k, v in sorted(newest.items())) or '(none)'}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("library", nargs="?", help="the shared object to check (.so, .dll, .dylib)")
    ap.add_argument("--export", action="append", default=[], help="allowed export prefix (default: none)")
    ap.add_argument("--lib", action="append", default=[], help="declared system library (cudart, gomp)")
    ap.add_argument("--undefined", action="append", default=[], help="prefix the host provides (enif_)")
    ap.add_argument("--cxx-runtime-dynamic", action="store_true")
    ap.add_argument("--no-hardening", action="store_true")
    ap.add_argument("--may-stay-loaded", action="store_true", help="skip the unload rule")
    ap.add_argument("--floor", choices=sorted(FLOORS), help="the oldest system it must load on (ELF)")
    ap.add_argument("--floors", action="store_true",
                    help="list the floors (with --json: their version limits) and exit")
    ap.add_argument("--json", action="store_true",
                    help='print one JSON object instead of text: {"library", "format", "machine", "report" (the '
                         'text report), "problems" (a list)}; the exit status is the same')
    args = ap.parse_args(argv)
    if args.floors:
        print(json.dumps(FLOORS, indent=1) if args.json else "\n".join(FLOORS))
        return 0
    if args.library is None:
        ap.error("the library to check is required (or --floors)")
    b, problems = check(args.library, tuple(args.export), args.lib, tuple(args.undefined),
                        args.cxx_runtime_dynamic, not args.no_hardening, not args.may_stay_loaded, args.floor)
    if args.json:
        print(json.dumps({"library": args.library, "format": b.format, "machine": b.machine, "report": report(b),
                          "problems": problems}, indent=1))
    else:
        print(report(b))
        for p in problems:
            print(f"FAIL {os.path.basename(args.library)} {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
