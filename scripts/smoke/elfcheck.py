"""Prints what a Linux binary asks of the machine that loads it: its architecture, the newest
glibc symbol version it needs (or, for musl, the C library it links), whether it still has a
symbol table, and its size; exits 1 when the architecture is not the one expected, it needs a
glibc newer than the one given, it is not stripped, or it is 16 MiB or more (the Python module,
which carries the PostgreSQL and NATS clients for Library.connect, is about 10.5 MiB; a build
that is not the stripped dist profile is several times that). With `musl` for
MAX_GLIBC it must need no glibc at all: no GLIBC_ symbol version, and among its DT_NEEDED musl's
libc.so, not glibc's libc.so.6 (or libm, libpthread, libdl, ld-linux: musl has them all in
libc.so). scripts/cross.sh checks every built .so and .node with it.

    python elfcheck.py FILE ARCH MAX_GLIBC      # e.g. lendkit.linux-arm64-gnu.node aarch64 2.17
    python elfcheck.py FILE ARCH musl           # e.g. lendkit.linux-x64-musl.node x86_64 musl
"""

import os
import sys

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

MACHINES = {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64"}
GLIBC_LIBRARIES = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1"}


def version(text: str) -> tuple:
    return tuple(int(part) for part in text.split("."))


def main(path: str, arch: str, max_glibc: str) -> int:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        machine = elf["e_machine"]
        needed = set()
        libraries = []
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                libraries += [tag.needed for tag in section.iter_tags("DT_NEEDED")]
            if isinstance(section, GNUVerNeedSection):
                for _, auxiliaries in section.iter_versions():
                    for aux in auxiliaries:
                        if aux.name.startswith("GLIBC_") and aux.name[6:7].isdigit():
                            needed.add(aux.name[6:])
        symtab = elf.get_section_by_name(".symtab") is not None
    newest = max(needed, key=version) if needed else "none"
    size = os.path.getsize(path)
    musl = max_glibc == "musl"
    needs = f"needs {', '.join(libraries) or 'no library'}" if musl else f"needs glibc {newest}"
    print(
        f"{os.path.basename(path)}: {arch if machine == MACHINES[arch] else machine},"
        f" {needs}, {'NOT stripped' if symtab else 'stripped'}, {size / 2**20:.2f} MiB"
    )
    problems = []
    if machine != MACHINES[arch]:
        problems.append(f"built for {machine}, not {arch}")
    if musl:
        if needed:
            problems.append(f"needs glibc symbol versions (GLIBC_{newest})")
        glibc = [lib for lib in libraries if lib in GLIBC_LIBRARIES or lib.startswith("ld-linux")]
        if glibc:
            problems.append(f"needs glibc's {', '.join(glibc)}")
        if "libc.so" not in libraries:
            problems.append("does not link musl's libc.so")
    elif needed and version(newest) > version(max_glibc):
        problems.append(f"needs glibc {newest} > {max_glibc}")
    if symtab:
        problems.append("carries its symbol table")
    if size >= 16 * 2**20:
        problems.append("is 16 MiB or more")
    for problem in problems:
        print(f"  FAIL: {os.path.basename(path)} {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
