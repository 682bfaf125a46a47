"""Prints what a Linux binary asks of the machine that loads it: its architecture, the newest
glibc symbol version it needs, whether it still has a symbol table, and its size; exits 1 when
the architecture is not the one expected, it needs a glibc newer than the one given, or it is
not stripped. scripts/cross.sh checks every built .so and .node with it.

    python elfcheck.py FILE ARCH MAX_GLIBC      # e.g. lendkit.linux-arm64-gnu.node aarch64 2.17
"""

import os
import sys

from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

MACHINES = {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64"}


def version(text: str) -> tuple:
    return tuple(int(part) for part in text.split("."))


def main(path: str, arch: str, max_glibc: str) -> int:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        machine = elf["e_machine"]
        needed = set()
        for section in elf.iter_sections():
            if isinstance(section, GNUVerNeedSection):
                for _, auxiliaries in section.iter_versions():
                    for aux in auxiliaries:
                        if aux.name.startswith("GLIBC_") and aux.name[6:7].isdigit():
                            needed.add(aux.name[6:])
        symtab = elf.get_section_by_name(".symtab") is not None
    newest = max(needed, key=version) if needed else "none"
    size = os.path.getsize(path)
    print(
        f"{os.path.basename(path)}: {arch if machine == MACHINES[arch] else machine},"
        f" needs glibc {newest}, {'NOT stripped' if symtab else 'stripped'}, {size / 2**20:.2f} MiB"
    )
    problems = []
    if machine != MACHINES[arch]:
        problems.append(f"built for {machine}, not {arch}")
    if needed and version(newest) > version(max_glibc):
        problems.append(f"needs glibc {newest} > {max_glibc}")
    if symtab:
        problems.append("carries its symbol table")
    if size >= 8 * 2**20:
        problems.append("is 8 MiB or more")
    for problem in problems:
        print(f"  FAIL: {os.path.basename(path)} {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
