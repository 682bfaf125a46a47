"""The smoke scenario scripts/cross.sh runs with every installed wheel (x86_64 in a clean venv,
aarch64 under qemu): open a library in a temporary folder, register a book, sign up a member,
reserve, settle, and read the rental back, then again after reopening the folder."""

import os
import platform
import sys
import tempfile

import lendkit

librarian, kim = lendkit.Librarian("lib-1"), lendkit.Member("m-1")
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "library.db")
    with lendkit.Library.open(path) as lib:
        lib.register_book("isbn-1", "Domain-Driven Design", copies=1, fee=30, actor=librarian)
        lib.join_member("m-1", "Kim", actor=librarian)
        lib.reserve_book("isbn-1", "m-1", rental_id="r-1", actor=kim)
        lib.settle()
    with lendkit.Library.open(path) as lib:
        page = lib.member_page("m-1")
        rentals = [(r.rental_id, r.book_id, r.status, r.payment_status, r.fee) for r in page.rentals]
        assert page.points == 70, page.points
        assert rentals == [("r-1", "isbn-1", "confirmed", "charged", 30)], rentals
        [book] = lib.book_list()
        assert (book.book_id, book.title) == ("isbn-1", "Domain-Driven Design"), book
print(
    f"smoke ok: lendkit {lendkit.__version__} on {platform.machine()}, Python {sys.version.split()[0]},"
    f" {os.path.basename(lendkit._native.__file__)}"
)
