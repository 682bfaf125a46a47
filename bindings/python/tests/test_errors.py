"""Errors: every code of the catalogue maps to its class, and real failures carry their code."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Callable, Dict, Tuple, Type

import pytest

import lendkit
from lendkit import _native, errors

from conftest import LIBRARIAN, member, stock

DOC = (Path(__file__).parent / "../../../docs/errors.md").resolve()


def doc_catalogue() -> Dict[str, Tuple[str, bool]]:
    """docs/errors.md: code -> (family, retryable)."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*`([A-Z_]+)`\s*\|[^|]*\|\s*([^|]*?)\s*\|\s*(\w+)\s*\|\s*$", line)
        if m:
            rows[m.group(1)] = (m.group(3), m.group(2).lower().startswith("yes"))
    return rows


def literal(entries: Dict[str, Tuple[str, bool]]) -> str:
    """The CATALOGUE literal that errors.py should contain."""
    lines = []
    for code, (family, retryable) in entries.items():
        cls = "PaymentDeclinedError" if code == "PAYMENT_DECLINED" else errors.FAMILIES[family].__name__
        lines.append(f'    "{code}": ({cls}, {retryable}),')
    return "CATALOGUE = {\n" + "\n".join(lines) + "\n}"


def test_the_python_catalogue_matches_the_rust_core() -> None:
    rust = {code: (family, retryable) for code, family, retryable in _native.error_codes()}
    python = {code: (cls.family, retryable) for code, (cls, retryable) in errors.CATALOGUE.items()}
    assert python == rust, (
        "lendkit/errors.py has drifted from the core's ErrorCode; replace CATALOGUE in "
        "bindings/python/python/lendkit/errors.py with:\n" + literal(rust)
    )
    assert list(python) == list(rust), "keep CATALOGUE in the core's order:\n" + literal(rust)


def test_every_code_in_docs_maps_to_a_class_of_its_family() -> None:
    doc = doc_catalogue()
    assert len(doc) >= 20, f"could not read the table in {DOC}"
    missing = sorted(set(doc) - set(errors.CODES))
    assert not missing, f"docs/errors.md lists {missing}, which lendkit.errors.CATALOGUE lacks:\n" + literal(doc)
    for code, (family, retryable) in doc.items():
        cls = lendkit.CODES[code]
        assert issubclass(cls, lendkit.LendkitError)
        assert cls.family == family, f"{code}: docs say family {family}, lendkit.errors says {cls.family}"
        assert errors.CATALOGUE[code][1] == retryable, f"{code}: docs say retryable={retryable}"
        err = cls("message", code)
        assert err.code == code and err.retryable == retryable and str(err) == "message"


def test_one_exported_class_per_family() -> None:
    families = {code_family for _, code_family, _ in _native.error_codes()}
    assert set(errors.FAMILIES) == families
    for family, cls in errors.FAMILIES.items():
        assert cls.__name__ == f"{family}Error"
        assert getattr(lendkit, cls.__name__) is cls
    assert issubclass(lendkit.InvalidInputError, ValueError)
    assert issubclass(lendkit.PaymentDeclinedError, lendkit.PaymentError)


def test_errors_pickle_and_default_their_codes() -> None:
    declined = lendkit.PaymentDeclinedError("card expired")
    assert declined.code == "PAYMENT_DECLINED" and not declined.retryable
    again = pickle.loads(pickle.dumps(lendkit.NotFoundError("book b-9 not found", "BOOK_NOT_FOUND")))
    assert isinstance(again, lendkit.NotFoundError) and again.code == "BOOK_NOT_FOUND"
    assert repr(again) == "NotFoundError('book b-9 not found', code='BOOK_NOT_FOUND')"
    with pytest.raises(TypeError, match="needs a code"):
        lendkit.NotFoundError("no code")


@pytest.mark.parametrize(
    "call, cls, code",
    [
        (lambda lib: lib.member_page("m-9"), lendkit.NotFoundError, "MEMBER_NOT_FOUND"),
        (lambda lib: lib.reserve_book("b-9", "m-1", actor=member("m-1")), lendkit.NotFoundError, "BOOK_NOT_FOUND"),
        (lambda lib: lib.start_loan("r-9", actor=member("m-1")), lendkit.NotFoundError, "RENTAL_NOT_FOUND"),
        (lambda lib: lib.replay_dead_letter("x@1"), lendkit.NotFoundError, "DEAD_LETTER_NOT_FOUND"),
        (lambda lib: lib.register_book("b-1", "Again", 1, 10, actor=LIBRARIAN), lendkit.ConflictError, "BOOK_EXISTS"),
        (lambda lib: lib.join_member("m-1", "Again", actor=LIBRARIAN), lendkit.ConflictError, "MEMBER_EXISTS"),
        (lambda lib: lib.register_book("b-2", "T", 1, 10, actor=member("m-1")), lendkit.UnauthorizedError, "UNAUTHORIZED"),
        (lambda lib: lib.register_book("", "T", 1, 10, actor=LIBRARIAN), lendkit.InvalidInputError, "INVALID_INPUT"),
        (lambda lib: lib.register_book("b-2", "T", 0, 10, actor=LIBRARIAN), lendkit.InvalidInputError, "INVALID_INPUT"),
        (lambda lib: lib.pause("nobody"), lendkit.InvalidInputError, "INVALID_INPUT"),
        (lambda lib: lib.set_payment_outage(True), lendkit.InvalidInputError, "INVALID_INPUT"),
    ],
)
def test_real_failures_raise_their_class_and_code(
    lib: lendkit.Library, call: Callable[[lendkit.Library], object], cls: Type[lendkit.LendkitError], code: str
) -> None:
    stock(lib)
    head = lib.head()
    with pytest.raises(cls) as caught:
        call(lib)
    assert caught.value.code == code
    assert isinstance(caught.value, lendkit.LendkitError)
    assert caught.value.message and code not in caught.value.message
    assert lib.head() == head, "a failed call stored nothing"


def test_rule_and_payment_failures(lib: lendkit.Library) -> None:
    stock(lib, fee=60, members=2)
    r = lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-1")
    assert r.rental_id == "r-1"
    with pytest.raises(lendkit.PaymentError) as poor:
        lib.reserve_book("b-1", "m-1", actor=member("m-1"))
    assert poor.value.code == "INSUFFICIENT_POINTS" and not poor.value.retryable
    assert "top up" in str(poor.value)
    with pytest.raises(lendkit.UnauthorizedError) as other:
        lib.cancel_rental("r-1", actor=member("m-2"))
    assert other.value.code == "NOT_RENTAL_OWNER"
    with pytest.raises(lendkit.RuleViolationError) as early:
        lib.return_book("r-1", actor=member("m-1"))
    assert early.value.code == "INVALID_TRANSITION"
    with pytest.raises(lendkit.ConflictError) as taken:
        lib.reserve_book("b-1", "m-2", actor=member("m-2"), rental_id="r-1")
    assert taken.value.code == "RENTAL_EXISTS"


def test_storage_errors_on_open(tmp_path: Path) -> None:
    plain = tmp_path / "notes.txt"
    plain.write_text("not a library")
    with pytest.raises(lendkit.StorageError) as caught:
        lendkit.Library.open(plain)
    assert caught.value.code == "NOT_A_LIBRARY"
    with lendkit.Library.open(tmp_path / "lib.db"):
        with pytest.raises(lendkit.StorageError) as locked:
            lendkit.Library.open(tmp_path / "lib.db")
        assert locked.value.code == "LIBRARY_LOCKED" and locked.value.retryable


def test_a_storage_error_from_the_os_keeps_it_as_its_cause(tmp_path: Path) -> None:
    # A library inside a plain file: the operating system refuses (ENOTDIR), and the StorageError
    # says so in its message and carries the OSError as __cause__, as Python's own I/O does.
    plain = tmp_path / "notes.txt"
    plain.write_text("not a folder")
    with pytest.raises(lendkit.StorageError) as caught:
        lendkit.Library.open(plain / "lib.db")
    assert caught.value.code == "STORAGE", caught.value
    cause = caught.value.__cause__
    assert isinstance(cause, NotADirectoryError), repr(cause)
    assert cause.errno == 20
    assert str(cause.strerror) in str(caught.value)


def test_wrong_python_types_raise_builtin_errors(lib: lendkit.Library) -> None:
    # Fields of a command are checked by the core: InvalidInputError (code INVALID_INPUT), naming the field.
    with pytest.raises(lendkit.InvalidInputError, match="copies must be a whole number"):
        lib.register_book("b-1", "T", "two", 10, actor=LIBRARIAN)  # type: ignore[arg-type]
    with pytest.raises(lendkit.InvalidInputError, match="copies is -1"):
        lib.register_book("b-1", "T", -1, 10, actor=LIBRARIAN)
    with pytest.raises(TypeError, match="actor must be a lendkit.Librarian or a lendkit.Member, not str"):
        lib.register_book("b-1", "T", 1, 10, actor="librarian:lib-1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="actor"):
        lib.register_book("b-1", "T", 1, 10)  # type: ignore[call-arg]
    # A missing required field is the core's InvalidInputError (a ValueError), naming it.
    with pytest.raises(ValueError, match="book_id"):
        lib.register_book(None, "T", 1, 10, actor=LIBRARIAN)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="command_id"):
        lib.register_book("b-1", "T", 1, 10, actor=LIBRARIAN, command_id=5)  # type: ignore[arg-type]
    with pytest.raises(lendkit.InvalidInputError):
        lendkit.Librarian("")
    with pytest.raises(ValueError, match="durability"):
        lendkit.Library.in_memory(durability="sometimes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="durability"):
        lendkit.Library.in_memory(durability=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock must be a lendkit.ManualClock"):
        lendkit.Library.in_memory(clock=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="payment must be an object with charge"):
        lendkit.Library.in_memory(payment=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="notifier must be a callable"):
        lendkit.Library.in_memory(notifier=42)  # type: ignore[arg-type]
    with pytest.raises(lendkit.InvalidInputError, match="no policy named"):
        lendkit.Library.in_memory(workers={"nobody": 2})
    with pytest.raises(ValueError, match="timeout"):
        lib.settle(timeout=-1)
