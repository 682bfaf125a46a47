"""Host ports: a payment gateway and a notifier written in Python."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set

import pytest

import lendkit

from conftest import START_MS, member, stock


class Gateway:
    """A host payment gateway with its own ledger; `failing` makes it raise like a dead service."""

    def __init__(self) -> None:
        self.failing = False
        self.decline: Optional[str] = None
        self.charges: Dict[str, int] = {}
        self.refunds: List[str] = []
        self.calls = 0
        self.threads: Set[int] = set()

    def charge(self, member_id: str, amount: int, key: str) -> str:
        self.calls += 1
        self.threads.add(threading.get_ident())
        if self.failing:
            raise ConnectionError("payment service unreachable")
        if self.decline:
            raise lendkit.PaymentDeclinedError(self.decline)
        self.charges[key] = amount
        return f"host-{key}"

    def refund(self, key: str) -> None:
        self.calls += 1
        if self.failing:
            raise TimeoutError("payment service timed out")
        self.refunds.append(key)


def test_a_gateway_that_raises_opens_the_circuit_and_recovers() -> None:
    gateway = Gateway()
    clock = lendkit.ManualClock(START_MS)
    with lendkit.Library.in_memory(
        background=False,
        payment=gateway,
        clock=clock,
        breaker_failure_threshold=2,
        breaker_cool_down_ms=60_000,
        payment_timeout_ms=None,
    ) as lib:
        stock(lib, copies=5)
        gateway.failing = True
        for _ in range(2):
            with pytest.raises(lendkit.PaymentError) as failed:
                lib.reserve_book("b-1", "m-1", actor=member("m-1"))
            assert failed.value.code == "PAYMENT_UNAVAILABLE" and failed.value.retryable
            assert "ConnectionError: payment service unreachable" in str(failed.value)
        assert lib.payment_circuit() == "open"
        calls = gateway.calls
        with pytest.raises(lendkit.PaymentError) as fast:
            lib.reserve_book("b-1", "m-1", actor=member("m-1"))
        assert fast.value.code == "PAYMENT_UNAVAILABLE"
        assert fast.value.retry_after == pytest.approx(60.0)
        assert gateway.calls == calls, "an open circuit fails fast, without calling the gateway"
        gateway.failing = False
        clock.advance_ms(59_999)
        assert lib.payment_circuit() == "open"
        clock.advance_ms(1)
        assert lib.payment_circuit() == "half_open"
        r = lib.reserve_book("b-1", "m-1", actor=member("m-1"))
        assert lib.payment_circuit() == "closed"
        assert r.events[0].payload["payment_id"] == f"host-{r.rental_id}"
        assert gateway.charges == {r.rental_id: 30}
        lib.settle()
        assert lib.member_page("m-1").points == 100, "the host gateway, not the points, was charged"
        assert lib.member_page("m-1").rentals[0].status == "confirmed"
        lib.cancel_rental(r.rental_id or "", actor=member("m-1"))
        lib.settle()
        assert gateway.refunds == [r.rental_id]
        assert lib.member_page("m-1").rentals[0].payment_status == "refunded"


def test_a_refund_waits_out_a_failing_gateway() -> None:
    gateway = Gateway()
    clock = lendkit.ManualClock(START_MS)
    with lendkit.Library.in_memory(
        background=False, payment=gateway, clock=clock, breaker_failure_threshold=1,
        breaker_cool_down_ms=10_000, payment_timeout_ms=None, max_attempts=2,
    ) as lib:
        stock(lib)
        r = lib.reserve_book("b-1", "m-1", actor=member("m-1"))
        lib.settle()
        gateway.failing = True
        lib.cancel_rental(r.rental_id or "", actor=member("m-1"))
        for _ in range(5):
            lib.settle()
            clock.advance_ms(1_000)
        assert lib.payment_circuit() == "open" and gateway.refunds == []
        assert lib.dead_letters() == [], "money owed is never given up on"
        gateway.failing = False
        clock.advance_ms(10_000)
        lib.settle()
        assert gateway.refunds == [r.rental_id] and lib.payment_circuit() == "closed"


def test_a_declined_charge_does_not_open_the_circuit() -> None:
    gateway = Gateway()
    gateway.decline = "card expired"
    with lendkit.Library.in_memory(background=False, payment=gateway, breaker_failure_threshold=1) as lib:
        stock(lib)
        for _ in range(3):
            with pytest.raises(lendkit.PaymentDeclinedError) as declined:
                lib.reserve_book("b-1", "m-1", actor=member("m-1"))
            assert declined.value.code == "PAYMENT_DECLINED" and "card expired" in str(declined.value)
        assert lib.payment_circuit() == "closed"
        assert lib.events()[-1].type == "AccountOpened", "nothing was stored"


class NotAnError(BaseException):
    """Raised by a gateway: not even an ``Exception``."""


async def _pay_later() -> str:
    return "pay-async"


def _raise_not_an_error() -> object:
    raise NotAnError("not an Exception")


#: Answers a charge may not give: each is a failed charge (PAYMENT_UNAVAILABLE), not a payment.
BAD_CHARGE_ANSWERS: Dict[str, Callable[[], object]] = {
    "a number": lambda: 42,
    "a float": lambda: 4.2,
    "a bool": lambda: True,
    "an empty str": lambda: "",
    "bytes": lambda: b"pay-1",
    "a list": lambda: ["pay-1"],
    "a dict with a payment id": lambda: {"payment_id": "pay-1"},
    "a dict with a numeric payment id": lambda: {"paymentId": 42},
    "an object": object,
    "a coroutine (async def charge)": _pay_later,
    "a raised non-Exception": _raise_not_an_error,
}


@pytest.mark.parametrize("answer", list(BAD_CHARGE_ANSWERS.values()), ids=list(BAD_CHARGE_ANSWERS))
def test_a_charge_that_does_not_answer_with_a_payment_id_is_a_failed_charge(answer: Callable[[], object]) -> None:
    class Liar:
        def charge(self, member_id: str, amount: int, key: str) -> Any:
            return answer()

        def refund(self, key: str) -> None:
            pass

    with lendkit.Library.in_memory(
        background=False, payment=Liar(), breaker_failure_threshold=1, breaker_cool_down_ms=60_000
    ) as lib:
        stock(lib)
        head, points = lib.head(), lib.member_page("m-1").points
        with pytest.raises(lendkit.PaymentError) as failed:
            lib.reserve_book("b-1", "m-1", actor=member("m-1"))
        assert failed.value.code == "PAYMENT_UNAVAILABLE" and failed.value.retryable
        assert not isinstance(failed.value, lendkit.PaymentDeclinedError)
        lib.settle()
        assert lib.head() == head, "nothing was stored"
        assert lib.member_page("m-1").points == points
        assert lib.member_page("m-1").rentals == []
        assert lib.payment_circuit() == "open", "the breaker counted it as an outage"


def test_a_charge_answers_with_a_non_empty_str_or_none() -> None:
    answers: List[Optional[str]] = ["pay-1", None]

    class Honest:
        def charge(self, member_id: str, amount: int, key: str) -> Optional[str]:
            return answers.pop(0)

        def refund(self, key: str) -> None:
            pass

    with lendkit.Library.in_memory(background=False, payment=Honest()) as lib:
        stock(lib, copies=2)
        first = lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-1")
        second = lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-2")
        assert first.events[0].payload["payment_id"] == "pay-1"
        assert second.events[0].payload["payment_id"] == "r-2", "None: the key is the payment id"


def test_an_async_refund_never_ran_so_it_is_a_failed_refund() -> None:
    refunded: List[str] = []

    class HalfAsync:
        def charge(self, member_id: str, amount: int, key: str) -> str:
            return f"pay-{key}"

        async def refund(self, key: str) -> None:
            refunded.append(key)

    clock = lendkit.ManualClock(START_MS)
    with lendkit.Library.in_memory(
        background=False, payment=HalfAsync(), clock=clock, breaker_failure_threshold=1
    ) as lib:
        stock(lib)
        lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-1")
        lib.settle()
        lib.cancel_rental("r-1", actor=member("m-1"))
        lib.settle()
        assert refunded == []
        assert lib.member_page("m-1").rentals[0].payment_status == "charged", "not refunded"
        assert lib.payment_circuit() == "open"
        assert lib.dead_letters() == [], "money owed is never given up on"


def test_a_hanging_gateway_times_out() -> None:
    release = threading.Event()

    class Hanging:
        def charge(self, member_id: str, amount: int, key: str) -> None:
            release.wait(10)

        def refund(self, key: str) -> None:
            pass

    with lendkit.Library.in_memory(background=False, payment=Hanging(), payment_timeout_ms=100) as lib:
        stock(lib)
        started = time.monotonic()
        with pytest.raises(lendkit.PaymentError) as timed_out:
            lib.reserve_book("b-1", "m-1", actor=member("m-1"))
        assert timed_out.value.code == "PAYMENT_UNAVAILABLE" and "100 ms" in str(timed_out.value)
        assert time.monotonic() - started < 5
        release.set()


def test_fault_injection_switches_a_host_gateway_off() -> None:
    gateway = Gateway()
    with lendkit.Library.in_memory(background=False, payment=gateway, fault_injection=True) as lib:
        stock(lib)
        lib.set_payment_outage(True)
        with pytest.raises(lendkit.PaymentError, match="simulated outage"):
            lib.reserve_book("b-1", "m-1", actor=member("m-1"))
        assert gateway.calls == 0
        lib.set_payment_outage(False)
        lib.reserve_book("b-1", "m-1", actor=member("m-1"))
        assert gateway.calls == 1


def test_a_notifier_receives_every_notice() -> None:
    notices: List[lendkit.Notice] = []
    with lendkit.Library.in_memory(background=False, notifier=notices.append) as lib:
        stock(lib)
        r = lib.reserve_book("b-1", "m-1", actor=member("m-1"), rental_id="r-1")
        lib.settle()
        assert [n.kind for n in notices] == ["RentalReserved", "RentalConfirmed"]
        n = notices[1]
        assert (n.member_id, n.rental_id) == ("m-1", "r-1") and n.message
        assert n.event_id == [e.event_id for e in lib.events() if e.type == "RentalConfirmed"][0]
        assert n.to_dict()["kind"] == "RentalConfirmed" and "Notice(member_id='m-1'" in repr(n)
        assert r.rental_id == "r-1"


def test_a_raising_notifier_never_breaks_rentals() -> None:
    calls: List[str] = []

    def broken(notice: lendkit.Notice) -> None:
        calls.append(notice.kind)
        raise RuntimeError("the SMS provider is down")

    with lendkit.Library.in_memory(notifier=broken, retry_backoff_ms=1, max_attempts=2) as lib:
        stock(lib, copies=1, members=2)
        r = lib.reserve_book("b-1", "m-1", actor=member("m-1"))
        lib.settle(timeout=20)
        deadline = time.monotonic() + 20
        while not lib.dead_letters() and time.monotonic() < deadline:
            time.sleep(0.01)
            lib.settle(timeout=20)
        assert lib.member_page("m-1").rentals[0].status == "confirmed"
        assert calls, "the notifier was called"
        assert any("the SMS provider is down" in d.error for d in lib.dead_letters())
        lib.cancel_rental(r.rental_id or "", actor=member("m-1"))
        lib.settle(timeout=20)
        lib.reserve_book("b-1", "m-2", actor=member("m-2"))
        lib.settle(timeout=20)
        assert lib.member_page("m-1").points == 100
        assert lib.member_page("m-2").rentals[0].status == "confirmed"


def test_close_ends_a_reservation_waiting_on_a_charge_that_never_returns() -> None:
    started, release = threading.Event(), threading.Event()
    outcome: List[BaseException] = []

    class Stuck:
        def charge(self, member_id: str, amount: int, key: str) -> str:
            started.set()
            release.wait(60)
            return "too-late"

        def refund(self, key: str) -> None:
            pass

    lib = lendkit.Library.in_memory(payment=Stuck(), payment_timeout_ms=None)
    try:
        stock(lib)

        def reserve() -> None:
            try:
                lib.reserve_book("b-1", "m-1", actor=member("m-1"))
            except BaseException as e:  # noqa: BLE001 - the test inspects it
                outcome.append(e)

        caller = threading.Thread(target=reserve, daemon=True)
        caller.start()
        assert started.wait(10), "the gateway was called"
        began = time.monotonic()
        lib.close()
        assert time.monotonic() - began < 5, "close() does not wait for the gateway"
        caller.join(10)
        assert not caller.is_alive(), "reserve_book returned after close()"
        assert len(outcome) == 1 and isinstance(outcome[0], lendkit.StorageError)
        assert outcome[0].code == "LIBRARY_CLOSED" and not outcome[0].retryable
        with pytest.raises(lendkit.StorageError) as after:
            lib.reserve_book("b-1", "m-1", actor=member("m-1"))
        assert after.value.code == "LIBRARY_CLOSED"
    finally:
        release.set()
        lib.close()


def test_close_does_not_wait_for_a_notifier_that_never_returns() -> None:
    started, release = threading.Event(), threading.Event()

    def stuck(notice: lendkit.Notice) -> None:
        started.set()
        release.wait(60)

    lib = lendkit.Library.in_memory(notifier=stuck)
    try:
        stock(lib)
        lib.reserve_book("b-1", "m-1", actor=member("m-1"))
        assert started.wait(10), "the background runner called the notifier"
        closer = threading.Thread(target=lib.close, daemon=True)
        closer.start()
        closer.join(10)
        assert not closer.is_alive(), "close() returned while the notifier was still busy"
        assert lib.closed
    finally:
        release.set()
