"""The type stub matches the native module, and the tests type-check against it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List

import lendkit

HERE = Path(__file__).parent


def run(args: List[str], cwd: Path) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_package_ships_its_stub_and_py_typed() -> None:
    package = Path(lendkit.__file__).parent
    assert (package / "_native.pyi").is_file()
    assert (package / "py.typed").is_file()


def test_stubtest_finds_no_difference(tmp_path: Path) -> None:
    # Run outside the source tree, so the installed package is what is checked. (The pure-Python
    # modules are checked by mypy --strict below.)
    done = run(["mypy.stubtest", "lendkit._native"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_package_and_the_tests_type_check_strictly(tmp_path: Path) -> None:
    # The installed package (its .py modules and the stub) and these tests, as a user's code.
    for target in (["-p", "lendkit"], [str(HERE)]):
        done = run(["mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), *target], tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
