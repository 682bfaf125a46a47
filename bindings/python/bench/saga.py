"""The saga workload of `lendkit bench`, driven through the Python package, next to the Rust
rate measured in the same run: reserve -> (allocate, confirm) -> loan -> return -> (release),
in batches of 500 with settle() after each step, every policy and both views current.

    python bench/saga.py [lifecycles] [members] [books] [--json]

Prints the Python rate for one call per command and for one execute_batch per step (one
crossing into Rust for 500 commands), the Rust rate, and Python / Rust. Rates move by a third
between runs on a busy machine: five rounds (ROUNDS=n for another number), each one Rust run
and one run of each Python way, every run a fresh process, interleaved so that a slow spell
hits both; each figure is the median of its runs (all printed), and the ratio divides medians.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import lendkit

CHILD = sys.argv.index("--child") if "--child" in sys.argv else None
ARGS = [a for i, a in enumerate(sys.argv[1:], 1) if not a.startswith("--") and (CHILD is None or i != CHILD + 1)]
LIFECYCLES, MEMBERS, BOOKS = (int(ARGS[i]) if len(ARGS) > i else d for i, d in enumerate((20000, 200, 100)))
BATCH = 500


def saga(mode: str) -> dict:
    lib = lendkit.Library.in_memory(background=False)
    librarian = lendkit.Librarian("bench")
    copies = LIFECYCLES // BOOKS + 2
    for b in range(BOOKS):
        lib.register_book(f"b-{b}", f"Book {b}", copies, 1, actor=librarian)
    for m in range(MEMBERS):
        lib.join_member(f"m-{m}", f"Member {m}", actor=librarian)
        lib.top_up(f"m-{m}", LIFECYCLES // MEMBERS + 2, actor=librarian)
    lib.settle()
    head = lib.head()
    started = time.perf_counter()
    for done in range(0, LIFECYCLES, BATCH):
        ids = [(f"{mode}-{i}", f"m-{i % MEMBERS}", f"b-{i % BOOKS}") for i in range(done, min(done + BATCH, LIFECYCLES))]
        if mode == "batch":
            steps = [
                [{"command": "reserve_book", "actor": lendkit.Member(m), "book_id": b, "member_id": m, "rental_id": r} for r, m, b in ids],
                None,
                [{"command": "start_loan", "actor": lendkit.Member(m), "rental_id": r} for r, m, _ in ids],
                [{"command": "return_book", "actor": lendkit.Member(m), "rental_id": r} for r, m, _ in ids],
            ]
            for step in steps:
                if step is None:
                    lib.settle()
                    continue
                for answer in lib.execute_batch(step, events=False):
                    if isinstance(answer, lendkit.LendkitError):
                        raise answer
        else:
            for r, m, b in ids:
                lib.reserve_book(b, m, rental_id=r, actor=lendkit.Member(m))
            lib.settle()
            for r, m, _ in ids:
                lib.start_loan(r, actor=lendkit.Member(m))
            for r, m, _ in ids:
                lib.return_book(r, actor=lendkit.Member(m))
        lib.settle()
    secs = time.perf_counter() - started
    events = lib.head() - head
    lib.close()
    return {"lifecycles_per_s": LIFECYCLES / secs, "events_per_s": events / secs}


def rust() -> float:
    binary = os.environ.get("LENDKIT_BIN") or str(Path(__file__).resolve().parents[3] / "target" / "release" / "lendkit")
    out = subprocess.run(
        [binary, "bench", "--saga-only", "--json", "--lifecycles", str(LIFECYCLES), "--members", str(MEMBERS), "--books", str(BOOKS)],
        check=True,
        capture_output=True,
    )
    return json.loads(out.stdout)["saga_memory"]["lifecycles_per_s"]


def median(xs: list) -> float:
    return sorted(xs)[len(xs) // 2]


def shown(xs: list) -> str:
    return ", ".join(f"{x:.0f}" for x in xs)


def python(mode: str) -> dict:
    """One run of `mode` in a fresh Python process, as the Rust bench runs in a fresh process."""
    args = [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(LIFECYCLES), str(MEMBERS), str(BOOKS)]
    return json.loads(subprocess.run(args, check=True, capture_output=True).stdout)


def main() -> None:
    if CHILD is not None:
        print(json.dumps(saga(sys.argv[CHILD + 1])))
        return
    rounds = int(os.environ.get("ROUNDS", "5"))
    modes = (("sequential", "one call per command"), ("batch", "execute_batch per step"))
    runs: dict = {"rust": [], "sequential": [], "batch": []}
    for _ in range(rounds):
        runs["rust"].append(rust())
        for mode, _label in modes:
            runs[mode].append(python(mode)["lifecycles_per_s"])
    rust_rate = median(runs["rust"])
    report: dict = {"rust_lifecycles_per_s": rust_rate, "rust_runs": runs["rust"]}
    print(f"saga in Rust, same run (median of {rounds}):  {rust_rate:>8.0f} lifecycles/s  ({shown(runs['rust'])})")
    for mode, label in modes:
        rate = median(runs[mode])
        report[mode] = {"lifecycles_per_s": rate, "ratio": rate / rust_rate, "runs": runs[mode]}
        print(f"saga through Python, {label:<22} {rate:>8.0f} lifecycles/s  Python / Rust {rate / rust_rate:.2f}  ({shown(runs[mode])})")
    if "--json" in sys.argv:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
