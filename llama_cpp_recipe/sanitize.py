"""The `sanitize` option: what refuses a value (one line), and the flags of a valid one."""
from .tables import LIBC_CONF, SANITIZERS


def sanitize_problem(value, os_, compiler, libc):
    """Why `sanitize=value` cannot be built here (one line), or None. value None: not asked."""
    if value in (None, "None", ""):
        return None
    names = value.split(",")
    unknown = [n for n in names if n not in SANITIZERS]
    if unknown or len(set(names)) != len(names):
        return (f"sanitize={value}: {'unknown ' + ', '.join(unknown) if unknown else 'a sanitizer twice'}; "
                f"use a comma-separated subset of {', '.join(SANITIZERS)} (e.g. sanitize=address,undefined)")
    if os_ not in ("Linux", "Macos"):
        return f"sanitize={value} is supported on os=Linux and os=Macos only, not os={os_}"
    if libc is not None:
        return (f"sanitize={value} cannot be used with {LIBC_CONF}={libc} (the Zig profiles ship no "
                f"sanitizer runtimes): use the host's gcc or clang profile")
    for name in names:
        row = SANITIZERS[name]
        if compiler not in row["compilers"]:
            return (f"sanitize={value}: {name} needs compiler={'/'.join(row['compilers'])}, not "
                    f"compiler={compiler}")
        if row.get("needs") and row["needs"] not in names:
            return f"sanitize={value}: {name} needs {row['needs']} too (sanitize={row['needs']},{value})"
    return None


def sanitize_flags(value):
    """(compile flags, consumer link flags) of a valid `sanitize` value."""
    if value in (None, "None", ""):
        return [], []
    names = value.split(",")
    linked = [n for n in names if SANITIZERS[n]["link"]]
    return ([f"-fsanitize={value}", "-fno-omit-frame-pointer"],
            [f"-fsanitize={','.join(linked)}"] if linked else [])

