//! Closing a library while a host port never answers: every call still waiting ends with
//! `LIBRARY_CLOSED`, nothing is stored, and closing itself never waits for the host.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_trait::async_trait;
use common::*;
use lendkit::error::{NotifyError, PaymentError};
use lendkit::ids::{MemberId, Points, RentalId};
use lendkit::ports::{ChargeRef, Notice, Notifier, PaymentGateway, PaymentReceipt};
use lendkit::{block_on, BreakerConfig, Command, Config, ErrorCode, Library, OpenLibrary};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// Long enough for any honest wait in these tests; a hang fails them instead of blocking the suite.
const PATIENCE: Duration = Duration::from_secs(10);

/// A payment gateway whose calls never answer; it reports each call as it starts.
struct Hung {
    charge_called: mpsc::SyncSender<()>,
    refund_hangs: bool,
}

#[async_trait]
impl PaymentGateway for Hung {
    async fn charge(
        &self,
        _: &MemberId,
        _: Points,
        key: &RentalId,
    ) -> Result<PaymentReceipt, PaymentError> {
        let _ = self.charge_called.try_send(());
        if key.as_str().starts_with("hang") {
            futures::future::pending::<()>().await;
        }
        Ok(PaymentReceipt {
            payment_id: format!("pay-{key}"),
        })
    }
    async fn refund(&self, _: &ChargeRef) -> Result<(), PaymentError> {
        if self.refund_hangs {
            futures::future::pending::<()>().await;
        }
        Ok(())
    }
}

/// A notifier that never answers; it reports each call as it starts.
struct Mute(mpsc::SyncSender<()>);

#[async_trait]
impl Notifier for Mute {
    async fn send(&self, _: &Notice) -> Result<(), NotifyError> {
        let _ = self.0.try_send(());
        futures::future::pending::<()>().await;
        Ok(())
    }
}

fn no_timeout() -> BreakerConfig {
    BreakerConfig {
        call_timeout: None,
        ..BreakerConfig::default()
    }
}

fn reserve_command(rental: &str) -> Command {
    Command::ReserveBook {
        wait: None,
        book_id: "b-1".into(),
        member_id: "m-1".into(),
        rental_id: Some(rental.into()),
        delivery_address: None,
    }
}

/// Runs `reserve_book` for rental `rental` on another thread; the receiver gets its result.
fn reserve_elsewhere(lib: &Arc<Library>, rental: &str) -> mpsc::Receiver<lendkit::Result<()>> {
    let (tx, rx) = mpsc::channel();
    let (lib, command) = (Arc::clone(lib), reserve_command(rental));
    std::thread::spawn(move || {
        let result = block_on(lib.execute(command, &lendkit::Actor::member("m-1")));
        let _ = tx.send(result.map(drop));
    });
    rx
}

#[test]
fn a_charge_that_never_answers_ends_with_library_closed_when_the_library_is_closed() {
    let h = Harness::new();
    let (called, charge_started) = mpsc::sync_channel(8);
    let lib = Arc::new(
        block_on(
            h.builder()
                .breaker(no_timeout())
                .payment(Arc::new(Hung {
                    charge_called: called,
                    refund_hangs: false,
                }))
                .build(),
        )
        .unwrap(),
    );
    register(&lib, "b-1", 1, 30);
    join(&lib, "m-1");
    let before = all_events(&lib).len();
    let pending = reserve_elsewhere(&lib, "hang-1");
    charge_started.recv_timeout(PATIENCE).unwrap();
    assert!(
        pending.recv_timeout(Duration::from_millis(100)).is_err(),
        "the charge is still waiting"
    );
    lib.close();
    assert!(lib.is_closed());
    let ended = pending
        .recv_timeout(PATIENCE)
        .expect("closing ends the wait on the gateway");
    assert_eq!(ended.unwrap_err().code(), ErrorCode::LibraryClosed);
    assert_eq!(all_events(&lib).len(), before, "nothing was stored");
    // Closed: new calls fail at once, the gateway is not called again.
    let again = run(&lib, reserve_command("r-2"), &lendkit::Actor::member("m-1"));
    assert_eq!(again.unwrap_err().code(), ErrorCode::LibraryClosed);
    assert!(charge_started.try_recv().is_err());
    assert_eq!(
        block_on(lib.settle()).unwrap_err().code(),
        ErrorCode::LibraryClosed
    );
    lib.close();
}

#[test]
fn a_refund_cut_short_by_closing_is_neither_counted_nor_dead_lettered() {
    let h = Harness::new();
    let (called, _charge_started) = mpsc::sync_channel(8);
    let lib = Arc::new(
        block_on(
            h.builder()
                .breaker(no_timeout())
                .max_attempts(1)
                .payment(Arc::new(Hung {
                    charge_called: called,
                    refund_hangs: true,
                }))
                .build(),
        )
        .unwrap(),
    );
    register(&lib, "b-1", 1, 30);
    join(&lib, "m-1");
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    settle(&lib);
    run(
        &lib,
        Command::CancelRental {
            rental_id: "r-1".into(),
            reason: None,
        },
        &lendkit::Actor::member("m-1"),
    )
    .unwrap();
    let (tx, settled) = mpsc::channel();
    let settling = Arc::clone(&lib);
    std::thread::spawn(move || {
        let _ = tx.send(block_on(settling.settle()));
    });
    assert!(
        settled.recv_timeout(Duration::from_millis(200)).is_err(),
        "settle waits on the refund"
    );
    lib.close();
    let ended = settled
        .recv_timeout(PATIENCE)
        .expect("closing ends the wait on the refund");
    assert_eq!(ended.unwrap_err().code(), ErrorCode::LibraryClosed);
    assert!(
        block_on(lib.dead_letters()).unwrap().is_empty(),
        "the refund is owed, not given up on"
    );
    assert_eq!(count(&all_events(&lib), "PaymentRefunded"), 0);
}

/// Runs `close` on another thread and fails if it has not returned within [`PATIENCE`].
fn close_in_time(lib: OpenLibrary) {
    let (tx, closed) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(lib.close());
    });
    closed
        .recv_timeout(PATIENCE)
        .expect("close() returned")
        .unwrap();
}

#[test]
fn an_open_library_closes_while_its_runner_waits_on_a_notifier_that_never_answers() {
    let (called, notified) = mpsc::sync_channel(64);
    let lib = OpenLibrary::in_memory(Config {
        notifier: Some(Arc::new(Mute(called))),
        ..Config::default()
    })
    .unwrap();
    register(&lib, "b-1", 1, 30);
    join(&lib, "m-1");
    reserve(&lib, "b-1", "m-1", "r-1").unwrap();
    notified
        .recv_timeout(PATIENCE)
        .expect("the runner calls the notifier");
    close_in_time(lib);
}

#[test]
fn an_open_library_closes_while_a_charge_never_answers_and_the_caller_gets_library_closed() {
    let (called, charge_started) = mpsc::sync_channel(8);
    let lib = OpenLibrary::in_memory(Config {
        breaker: no_timeout(),
        payment: Some(Arc::new(Hung {
            charge_called: called,
            refund_hangs: false,
        })),
        ..Config::default()
    })
    .unwrap();
    register(&lib, "b-1", 1, 30);
    join(&lib, "m-1");
    let core = Arc::clone(lib.library());
    let pending = reserve_elsewhere(&core, "hang-1");
    charge_started.recv_timeout(PATIENCE).unwrap();
    close_in_time(lib);
    let ended = pending
        .recv_timeout(PATIENCE)
        .expect("the caller was answered");
    assert_eq!(ended.unwrap_err().code(), ErrorCode::LibraryClosed);
    assert_eq!(
        count(&all_events(&core), "RentalReserved"),
        0,
        "no rental without a payment"
    );
}
