"""Self-containment checker for native-extension shared objects (ELF, PE, Mach-O).

Reads the file itself (no readelf/objdump/otool needed, any target architecture) and answers:
what does it load (NEEDED / imported DLLs / load commands), where does it look (RPATH/RUNPATH,
LC_RPATH), what does it export, what does it leave undefined, and is it hardened. `check()`
turns that into a list of problems, each naming the offending entry.

Used by test_package/conanfile.py (on every build, cross builds included) and by tests/.
Command line: python nifcheck.py LIB [--export PREFIX]... [--lib NAME]... [--undefined PREFIX]...
"""
import argparse
import fnmatch
import os
import re
import struct
import sys
from dataclasses import dataclass, field

# Libraries a NIF may need on each format without shipping anything. libstdc++/libgcc_s are
# allowed only when the caller says the link keeps the C++ runtime dynamic.
ELF_SYSTEM = ["libc.so.*", "libm.so.*", "libpthread.so.*", "libdl.so.*", "librt.so.*",
              "ld-linux*.so.*", "ld64.so.*", "libc.musl-*.so.*", "ld-musl-*.so.*"]
ELF_CXX_RUNTIME = ["libstdc++.so.*", "libgcc_s.so.*"]
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
            if p_type == 1 and p_vaddr <= addr < p_vaddr + p_filesz:
                return addr - p_vaddr + p_offset
        raise CheckError(f"{path}: address {addr:#x} is outside every PT_LOAD segment")

    def cstr(off):
        return data[off:data.index(b"\0", off)].decode("utf-8", "replace")

    dyn = []
    for p_type, _, p_offset, _, p_filesz in phdrs:
        if p_type == 2:  # PT_DYNAMIC
            size = 16 if is64 else 8
            for off in range(p_offset, p_offset + p_filesz, size):
                tag, val = struct.unpack_from(end + ("qQ" if is64 else "iI"), data, off)
                if tag == 0:
                    break
                dyn.append((tag, val))
    strtab = next((val for tag, val in dyn if tag == 5), None)
    flags = next((val for tag, val in dyn if tag == 30), 0)
    flags_1 = next((val for tag, val in dyn if tag == 0x6FFFFFFB), 0)
    if strtab is not None:
        stroff = vaddr_to_off(strtab)
        for tag, val in dyn:
            if tag == 1:
                binary.needed.append(cstr(stroff + val))
            elif tag in (15, 29):
                binary.rpaths.append(("RPATH" if tag == 15 else "RUNPATH") + "=" + cstr(stroff + val))
    stack = [f for t, f, *_ in phdrs if t == 0x6474E551]
    binary.hardening = {
        "relro": any(t == 0x6474E552 for t, *_ in phdrs),
        "bind_now": bool(flags & 0x8) or bool(flags_1 & 0x1) or any(t == 24 for t, _ in dyn),
        "nx_stack": bool(stack) and not (stack[0] & 0x1),
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
    dynsym = next((s for s in shdrs if s[0] == 11), None)
    if dynsym is None:
        return binary
    _, sym_off, sym_size, sym_link, sym_ent = dynsym
    str_off = shdrs[sym_link][1]
    count = sym_size // sym_ent
    versym = next((s for s in shdrs if s[0] == 0x6FFFFFFF), None)
    verneed = next((s for s in shdrs if s[0] == 0x6FFFFFFE), None)
    version_file = {}  # version index -> library file name
    if verneed is not None:
        vn_str = shdrs[verneed[3]][1]
        off = verneed[1]
        while True:
            _, vn_cnt, vn_file, vn_aux, vn_next = struct.unpack_from(end + "HHIII", data, off)
            aux = off + vn_aux
            for _ in range(vn_cnt):
                _, _, vna_other, _, vna_next = struct.unpack_from(end + "IHHII", data, aux)
                version_file[vna_other] = cstr(vn_str + vn_file)
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
        if not name or bind not in (1, 2, 10):  # GLOBAL, WEAK, GNU_UNIQUE
            continue
        if st_shndx == 0:
            ver = struct.unpack_from(end + "H", data, versym[1] + 2 * i)[0] & 0x7FFF if versym else 0
            binary.undefined.append((name, version_file.get(ver), bind == 2))
            if name == "__stack_chk_fail":
                binary.hardening["stack_protector"] = True
        elif visibility in (0, 3):  # DEFAULT, PROTECTED
            binary.exports.append(name)
    return binary


# -------------------------------------------------------------------------------------------- PE

PE_MACHINES = {0x8664: "x86_64", 0x14C: "x86", 0xAA64: "aarch64"}


def _read_pe(path, data):
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe:pe + 4] != b"PE\0\0":
        raise CheckError(f"{path}: MZ file without a PE header")
    machine, nsect, _, _, _, opt_size, _ = struct.unpack_from("<HHIIIHH", data, pe + 4)
    opt = pe + 24
    magic = struct.unpack_from("<H", data, opt)[0]
    plus = magic == 0x20B
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
    if len(dirs) > 0 and dirs[0][0]:
        exp = rva(dirs[0][0])
        n_names = struct.unpack_from("<I", data, exp + 24)[0]
        names_rva = struct.unpack_from("<I", data, exp + 32)[0]
        for i in range(n_names):
            binary.exports.append(cstr(rva(struct.unpack_from("<I", data, rva(names_rva) + 4 * i)[0])))
    if len(dirs) > 1 and dirs[1][0]:
        off = rva(dirs[1][0])
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
    binary.hardening = {"nx_stack": bool(dll_chars & 0x100), "aslr": bool(dll_chars & 0x40),
                        "high_entropy_va": bool(dll_chars & 0x20)}
    return binary


# ---------------------------------------------------------------------------------------- Mach-O

MACHO_CPUS = {0x01000007: "x86_64", 0x0100000C: "arm64"}


def _read_macho(path, data):
    magic = struct.unpack_from("<I", data, 0)[0]
    if magic != 0xFEEDFACF:
        raise CheckError(f"{path}: only thin 64-bit little-endian Mach-O files are supported")
    cputype, _, _, ncmds, _, _ = struct.unpack_from("<iIIIII", data, 4)
    binary = Binary(path, "Mach-O", MACHO_CPUS.get(cputype & 0xFFFFFFFF, f"cpu-{cputype:#x}"))
    off = 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, off)
        if cmd in (0xC, 0x80000018, 0x8000001F):  # LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB
            name_off = struct.unpack_from("<I", data, off + 8)[0]
            binary.needed.append(data[off + name_off:data.index(b"\0", off + name_off)].decode())
        elif cmd == 0x8000001C:  # LC_RPATH
            name_off = struct.unpack_from("<I", data, off + 8)[0]
            binary.rpaths.append("LC_RPATH=" + data[off + name_off:data.index(b"\0", off + name_off)].decode())
        elif cmd == 0x2:  # LC_SYMTAB
            symoff, nsyms, stroff, _ = struct.unpack_from("<IIII", data, off + 8)
            for i in range(nsyms):
                n_strx, n_type, _, n_desc, _ = struct.unpack_from("<IBBHQ", data, symoff + 16 * i)
                if n_type & 0xE0:  # stab entry
                    continue
                name = data[stroff + n_strx:data.index(b"\0", stroff + n_strx)].decode("utf-8", "replace")
                name = name[1:] if name.startswith("_") else name
                ext, pext, kind = n_type & 0x1, n_type & 0x10, n_type & 0xE
                if ext and kind == 0x0:
                    binary.undefined.append((name, None, bool(n_desc & 0x40)))
                elif ext and not pext and kind == 0xE:
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


def check(path, exports=("lnif_",), libs=(), undefined=(), cxx_runtime_dynamic=False, hardening=True):
    """Returns (binary, problems). `exports`: prefixes/names the library may export; `libs`: the
    system libraries the package declares (cpp_info system_libs); `undefined`: prefixes of symbols
    the host process provides (enif_ for an Erlang NIF)."""
    b = inspect(path)
    problems = []
    if b.format == "ELF":
        allowed = ELF_SYSTEM + (ELF_CXX_RUNTIME if cxx_runtime_dynamic else [])
    elif b.format == "PE":
        allowed = PE_SYSTEM
    else:
        allowed = MACHO_SYSTEM
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
            problems.append(f"exports {name}: only {', '.join(exports)}* may be exported")
    for name, lib, weak in b.undefined:
        if b.format == "PE":
            continue  # every PE import names its DLL; the DLL list above is the check
        if weak or any(name.startswith(p) for p in undefined):
            continue  # a weak reference never fails a load
        if b.format == "ELF" and lib is None:
            problems.append(f"leaves {name} undefined with no versioned provider: it must come from the host")
        elif b.format == "ELF" and not any(fnmatch.fnmatch(lib, pat) for pat in allowed):
            problems.append(f"imports {name} from {lib}")
    if hardening and b.format == "ELF":
        for key in ("relro", "bind_now", "nx_stack", "stack_protector"):
            if not b.hardening.get(key):
                problems.append(f"is not hardened: {key} missing")
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
             f"  hardening: {', '.join(k + ('=yes' if v else '=NO') for k, v in b.hardening.items())}"]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("library")
    ap.add_argument("--export", action="append", default=[], help="allowed export prefix")
    ap.add_argument("--lib", action="append", default=[], help="declared system library (cudart, gomp)")
    ap.add_argument("--undefined", action="append", default=[], help="prefix the host provides (enif_)")
    ap.add_argument("--cxx-runtime-dynamic", action="store_true")
    ap.add_argument("--no-hardening", action="store_true")
    args = ap.parse_args(argv)
    b, problems = check(args.library, tuple(args.export) or ("lnif_",), args.lib, tuple(args.undefined),
                        args.cxx_runtime_dynamic, not args.no_hardening)
    print(report(b))
    for p in problems:
        print(f"FAIL {os.path.basename(args.library)} {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
