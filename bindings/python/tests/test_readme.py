"""The README's examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import List

README = (Path(__file__).parent / "../README.md").resolve()


def examples() -> List[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def run(code: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_readme_has_examples() -> None:
    assert len(examples()) >= 2


def test_the_complete_example_runs(tmp_path: Path) -> None:
    out = run(examples()[0], tmp_path).splitlines()
    assert out[0].endswith("['RentalReserved']")
    assert out[1:4] == ["70 confirmed", "NOT_RENTAL_OWNER", "100"]
    assert out[4].startswith("BookRow(book_id='isbn-978-0'") and "available=2" in out[4]
    assert out[5].startswith("1 BookRegistered book:isbn-978-0 {")
    assert list(tmp_path.iterdir()) == [], "the example cleans up after itself"


def test_the_ports_example_runs(tmp_path: Path) -> None:
    out = run(examples()[1], tmp_path).splitlines()
    assert out == [
        "['RentalReserved', 'RentalConfirmed', 'LoanStarted', 'BookReturned']",
        "6",
        "closed ['RentalReserved', 'CopyAllocated']",
    ]
