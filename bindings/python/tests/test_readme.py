"""Every ```python block of the READMEs runs as written with the built package, prints what its
comments say, and passes `mypy --strict` — as a user's code would be checked. (cli/tests/readme.rs
fails when a README holds a block that no test runs.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[3]
# The READMEs whose Python blocks run here, by their path in the repository.
READMES = {name: ROOT / name for name in ("README.md", "bindings/python/README.md")}


def examples(name: str) -> List[str]:
    text = READMES[name].read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def every_example() -> List[Tuple[str, int]]:
    return [(name, i) for name in READMES for i in range(len(examples(name)))]


def check_quickstart(out: List[str]) -> None:
    assert out == ["70", "NOT_RENTAL_OWNER"]


def check_complete_example(out: List[str]) -> None:
    assert re.fullmatch(r"r-\S+ \['PointsCharged', 'RentalReserved'\]", out[0]), out[0]
    assert out[1:4] == ["70 confirmed", "NOT_RENTAL_OWNER", "100"]
    assert out[4].startswith("BookRow(book_id='isbn-978-0'") and "available=2" in out[4]
    assert out[5].startswith("1 BookRegistered book:isbn-978-0 {")


def check_ports_example(out: List[str]) -> None:
    assert out == [
        "['RentalReserved', 'RentalConfirmed', 'LoanStarted', 'BookReturned']",
        "6",
        "closed ['RentalReserved', 'CopyAllocated']",
    ]


def check_asyncio_example(out: List[str]) -> None:
    assert out == ["10"]


# What each block prints. A new block needs its entry here: running without error is not enough.
EXPECTED: Dict[Tuple[str, int], Callable[[List[str]], None]] = {
    ("README.md", 0): check_quickstart,
    ("bindings/python/README.md", 0): check_complete_example,
    ("bindings/python/README.md", 1): check_ports_example,
    ("bindings/python/README.md", 2): check_asyncio_example,
}


def run(code: str, cwd: Path) -> List[str]:
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def test_the_readmes_have_python_examples() -> None:
    assert len(examples("README.md")) >= 1
    assert len(examples("bindings/python/README.md")) >= 2
    assert sorted(EXPECTED) == sorted(every_example()), "every block has its expected output"


@pytest.mark.parametrize("name,index", every_example())
def test_the_example_runs_as_written(name: str, index: int, tmp_path: Path) -> None:
    out = run(examples(name)[index], tmp_path)
    EXPECTED[(name, index)](out)
    assert list(tmp_path.iterdir()) == [], "the example cleans up after itself"


def test_the_examples_type_check_strictly(tmp_path: Path) -> None:
    files: List[str] = []
    for name, index in every_example():
        path = tmp_path / f"{name.replace('/', '_').replace('.', '_')}_{index}.py"
        path.write_text(examples(name)[index], encoding="utf-8")
        files.append(str(path))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), *files],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
