"""Host ports: a payment gateway and a notifier written in Python."""

from __future__ import annotations

import threading
import time
from typing import Dict, List, Optional, Set

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


def test_a_charge_must_return_a_payment_id() -> None:
    class Odd:
        def charge(self, member_id: str, amount: int, key: str) -> int:
            return 42

        def refund(self, key: str) -> None:
            pass

    with lendkit.Library.in_memory(background=False, payment=Odd()) as lib:  # type: ignore[arg-type]
        stock(lib)
        with pytest.raises(lendkit.PaymentError, match="payment id"):
            lib.reserve_book("b-1", "m-1", actor=member("m-1"))


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
