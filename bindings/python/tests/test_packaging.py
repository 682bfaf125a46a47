"""What the installed wheel carries: both licence texts (PEP 639, in .dist-info/licenses/), the
SPDX licence expression, and classifiers PyPI accepts. Checks the distribution pip installed
from the wheel maturin built, not the source tree."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import List

import trove_classifiers

ROOT = Path(__file__).resolve().parents[3]
LICENCES = ("LICENSE-MIT", "LICENSE-APACHE")


def dist() -> metadata.Distribution:
    return metadata.distribution("lendkit")


def test_the_wheel_installs_both_licence_texts() -> None:
    files = dist().files or []
    for name in LICENCES:
        found = [f for f in files if f.name == name and "licenses" in f.parts]
        assert found, f"{name} is not among the installed files: {sorted(map(str, files))}"
        installed = found[0].read_text(encoding="utf-8")
        assert installed == (ROOT / name).read_text(encoding="utf-8"), f"{name} differs"


def test_the_licence_is_an_spdx_expression_with_its_files() -> None:
    meta = dist().metadata
    assert meta["License-Expression"] == "MIT OR Apache-2.0"
    assert sorted(meta.get_all("License-File") or []) == sorted(LICENCES)


def test_the_classifiers_are_ones_pypi_accepts() -> None:
    classifiers: List[str] = dist().metadata.get_all("Classifier") or []
    unknown = [c for c in classifiers if c not in trove_classifiers.classifiers]
    assert not unknown, f"not trove classifiers: {unknown}"
    # PEP 639: with License-Expression, PyPI refuses `License ::` classifiers.
    assert not [c for c in classifiers if c.startswith("License ::")]
    for prefix in (
        "Development Status ::",
        "Operating System ::",
        "Programming Language :: Python :: 3.",
        "Topic ::",
    ):
        assert any(c.startswith(prefix) for c in classifiers), f"no {prefix} classifier"


def test_the_extension_is_stripped_and_under_16_mib() -> None:
    """The wheel ships the `dist` build (stripped, LTO); the module it installs bounds its size
    (about 10.5 MiB with the PostgreSQL and NATS clients of `Library.connect`)."""
    import lendkit._native as native

    path = Path(native.__file__)
    size = path.stat().st_size
    print(f"\nlendkit extension module: {path.name}, {size / 2**20:.2f} MiB")
    assert size < 16 * 2**20, f"{path.name} is {size} bytes: not the stripped dist build?"
    # A stripped ELF file has no symbol table section.
    assert b".symtab" not in path.read_bytes(), f"{path.name} still carries its symbol table"
