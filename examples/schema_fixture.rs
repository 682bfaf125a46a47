//! Prints one stored event of every type, in today's wire format, one JSON object per line.
//! `tests/fixtures/events-schema-1.jsonl` was made with it; `tests/schema.rs` checks that
//! lendkit keeps loading that file, so a payload change that would strand stored logs fails CI.
//!
//! Run: `cargo run --example schema_fixture > tests/fixtures/events-schema-N.jsonl`

use lendkit::adapters::{InMemoryEventBus, InMemoryEventStore, ManualClock};
use lendkit::{block_on, Actor, Command, CommandId, LibraryBuilder, Timestamp};
use std::sync::Arc;

fn main() -> Result<(), lendkit::Error> {
    block_on(async {
        let clock = Arc::new(ManualClock::new(Timestamp(1_767_225_600_000)));
        let lib = LibraryBuilder::new(
            Arc::new(InMemoryEventStore::new()),
            Arc::new(InMemoryEventBus::new()),
            clock.clone(),
        )
        .build()
        .await?;
        let (lib_1, kim, lee) = (
            Actor::librarian("lib-1"),
            Actor::member("m-1"),
            Actor::member("m-2"),
        );
        let mut n = 0;
        let mut run = |cmd: Command, actor: &Actor| {
            n += 1;
            let id = CommandId::new(format!("fixture-{n}"));
            let lib = &lib;
            let actor = actor.clone();
            async move { lib.execute_with_id(cmd, &actor, Some(id)).await }
        };
        let reserve = |rental: &str, member: &str, address: Option<&str>| Command::ReserveBook {
            wait: None,
            book_id: "b-1".into(),
            member_id: member.into(),
            rental_id: Some(rental.into()),
            delivery_address: address.map(str::to_owned),
        };
        run(
            Command::RegisterBook {
                book_id: "b-1".into(),
                title: "Refactoring".into(),
                author: Some("Martin Fowler".into()),
                copies: 1,
                fee: 20,
                item_type: None,
                branch: None,
            },
            &lib_1,
        )
        .await?;
        run(
            Command::AddCopies {
                book_id: "b-1".into(),
                copies: 1,
            },
            &lib_1,
        )
        .await?;
        run(
            Command::JoinMember {
                member_id: "m-1".into(),
                name: "Kim".into(),
                contact: Some("kim@example.org".into()),
                group: None,
            },
            &lib_1,
        )
        .await?;
        run(
            Command::JoinMember {
                member_id: "m-2".into(),
                name: "Lee".into(),
                contact: None,
                group: None,
            },
            &lib_1,
        )
        .await?;
        run(
            Command::TopUp {
                member_id: "m-1".into(),
                points: 50,
            },
            &lib_1,
        )
        .await?;
        run(reserve("r-1", "m-1", None), &kim).await?;
        lib.settle().await?;
        run(
            Command::StartLoan {
                rental_id: "r-1".into(),
                branch: None,
                override_reason: None,
            },
            &kim,
        )
        .await?;
        run(
            Command::RenewLoan {
                rental_id: "r-1".into(),
                override_reason: None,
            },
            &kim,
        )
        .await?;
        run(
            Command::ReturnBook {
                rental_id: "r-1".into(),
                returned_at: None,
            },
            &kim,
        )
        .await?;
        run(reserve("r-2", "m-2", Some("1 Sejong-daero, Seoul")), &lee).await?;
        lib.settle().await?;
        run(
            Command::CancelRental {
                rental_id: "r-2".into(),
                reason: None,
            },
            &lee,
        )
        .await?;
        lib.settle().await?;
        run(reserve("r-3", "m-2", Some("1 Sejong-daero, Seoul")), &lee).await?;
        run(reserve("r-4", "m-1", None), &kim).await?;
        run(reserve("r-5", "m-1", None), &kim).await?;
        lib.settle().await?;
        run(
            Command::MarkDelivered {
                rental_id: "r-3".into(),
            },
            &lib_1,
        )
        .await?;
        lib.settle().await?;
        // Circulation rules: loans with terms, the member's record, fees and blocks.
        run(
            Command::ChangeCirculationRules {
                rules: RULES.into(),
                format: None,
            },
            &lib_1,
        )
        .await?;
        run(
            Command::RegisterBook {
                book_id: "b-2".into(),
                title: "Refactoring".into(),
                copies: 2,
                fee: 10,
                author: None,
                item_type: Some("book".into()),
                branch: Some("main".into()),
            },
            &lib_1,
        )
        .await?;
        let reserve2 = |rental: &str| Command::ReserveBook {
            wait: None,
            book_id: "b-2".into(),
            member_id: "m-1".into(),
            rental_id: Some(rental.into()),
            delivery_address: None,
        };
        run(reserve2("r-6"), &kim).await?;
        run(reserve2("r-7"), &kim).await?;
        lib.settle().await?;
        let start = |rental: &str, reason: Option<&str>| Command::StartLoan {
            rental_id: rental.into(),
            branch: None,
            override_reason: reason.map(str::to_owned),
        };
        run(start("r-6", None), &kim).await?;
        clock.advance_days(30);
        run(
            Command::ReturnBook {
                rental_id: "r-6".into(),
                returned_at: None,
            },
            &kim,
        )
        .await?;
        run(
            Command::PayFees {
                member_id: "m-1".into(),
                amount: 2,
                paid_from: None,
            },
            &kim,
        )
        .await?;
        run(
            Command::WaiveFee {
                member_id: "m-1".into(),
                fee_id: "r-6:overdue".into(),
                reason: "first time".into(),
            },
            &lib_1,
        )
        .await?;
        run(
            Command::BlockMember {
                member_id: "m-1".into(),
                reason: "lost card".into(),
            },
            &lib_1,
        )
        .await?;
        run(start("r-7", Some("card found")), &lib_1).await?;
        run(
            Command::RenewLoan {
                rental_id: "r-7".into(),
                override_reason: Some("card found".into()),
            },
            &lib_1,
        )
        .await?;
        run(
            Command::UnblockMember {
                member_id: "m-1".into(),
            },
            &lib_1,
        )
        .await?;
        lib.settle().await?;
        // The clock-driven rules: a failed automatic renewal, an overdue loan, items aged to
        // lost and billed, and a lost item back in time, refunded.
        run(
            Command::ChangeCirculationRules {
                rules: CLOCK_RULES.into(),
                format: None,
            },
            &lib_1,
        )
        .await?;
        for (book, item_type) in [("b-3", "auto"), ("b-4", "book")] {
            run(
                Command::RegisterBook {
                    book_id: book.into(),
                    title: "Working Effectively with Legacy Code".into(),
                    copies: 1,
                    fee: 5,
                    author: None,
                    item_type: Some(item_type.into()),
                    branch: None,
                },
                &lib_1,
            )
            .await?;
        }
        for (rental, book) in [("r-8", "b-3"), ("r-9", "b-4")] {
            run(
                Command::ReserveBook {
                    wait: None,
                    book_id: book.into(),
                    member_id: "m-2".into(),
                    rental_id: Some(rental.into()),
                    delivery_address: None,
                },
                &lee,
            )
            .await?;
        }
        lib.settle().await?;
        run(start("r-8", None), &lee).await?;
        run(start("r-9", None), &lee).await?;
        clock.advance_days(3);
        lib.advance_to(lib.now()).await?;
        run(
            Command::PayFees {
                member_id: "m-2".into(),
                amount: 8,
                paid_from: None,
            },
            &lee,
        )
        .await?;
        run(
            Command::ReturnBook {
                rental_id: "r-9".into(),
                returned_at: None,
            },
            &lee,
        )
        .await?;
        lib.settle().await?;
        // Holds: a queue, a reorder, a cancel, a copy on the pickup shelf that expires, and
        // one collected.
        run(
            Command::RegisterBook {
                book_id: "b-h".into(),
                title: "Holds".into(),
                author: None,
                copies: 1,
                fee: 5,
                item_type: None,
                branch: None,
            },
            &lib_1,
        )
        .await?;
        run(
            Command::JoinMember {
                member_id: "m-3".into(),
                name: "Park".into(),
                contact: None,
                group: None,
            },
            &lib_1,
        )
        .await?;
        let hold = |member: &str, hold: &str| Command::PlaceHold {
            copy: None,
            book_id: "b-h".into(),
            member_id: member.into(),
            hold_id: Some(hold.into()),
            pickup_branch: None,
            not_needed_after: None,
        };
        run(
            Command::ReserveBook {
                wait: None,
                book_id: "b-h".into(),
                member_id: "m-1".into(),
                rental_id: Some("r-h".into()),
                delivery_address: None,
            },
            &kim,
        )
        .await?;
        lib.settle().await?;
        run(start("r-h", None), &kim).await?;
        run(hold("m-2", "h-1"), &lee).await?;
        run(hold("m-3", "h-2"), &lib_1).await?;
        lib.settle().await?;
        run(
            Command::ReorderQueue {
                book_id: "b-h".into(),
                hold_id: "h-2".into(),
                position: 1,
            },
            &lib_1,
        )
        .await?;
        run(
            Command::CancelHold {
                hold_id: "h-1".into(),
                reason: None,
            },
            &lee,
        )
        .await?;
        lib.settle().await?;
        run(
            Command::ReturnBook {
                rental_id: "r-h".into(),
                returned_at: None,
            },
            &kim,
        )
        .await?;
        lib.settle().await?;
        clock.advance_days(8);
        lib.advance_to(lib.now()).await?;
        lib.settle().await?;
        run(hold("m-2", "h-3"), &lee).await?;
        lib.settle().await?;
        run(
            Command::CollectHold {
                hold_id: "h-3".into(),
                branch: None,
                override_reason: None,
            },
            &lee,
        )
        .await?;
        lib.settle().await?;
        // A recall: a hold under a request policy that recalls shortens the open loan.
        run(
            Command::ChangeCirculationRules {
                rules: RECALL.into(),
                format: None,
            },
            &lib_1,
        )
        .await?;
        run(
            Command::RegisterBook {
                book_id: "b-r".into(),
                title: "Recalled".into(),
                author: None,
                copies: 1,
                fee: 5,
                item_type: None,
                branch: None,
            },
            &lib_1,
        )
        .await?;
        run(
            Command::ReserveBook {
                wait: None,
                book_id: "b-r".into(),
                member_id: "m-1".into(),
                rental_id: Some("r-r".into()),
                delivery_address: None,
            },
            &kim,
        )
        .await?;
        lib.settle().await?;
        run(start("r-r", None), &kim).await?;
        run(
            Command::PlaceHold {
                copy: None,
                book_id: "b-r".into(),
                member_id: "m-3".into(),
                hold_id: Some("h-r".into()),
                pickup_branch: None,
                not_needed_after: None,
            },
            &lib_1,
        )
        .await?;
        lib.settle().await?;
        // Numbered copies: a loan aged to lost marks its copy lost; a free copy is withdrawn.
        run(
            Command::ChangeCirculationRules {
                rules: CLOCK_RULES.into(),
                format: None,
            },
            &lib_1,
        )
        .await?;
        run(
            Command::RegisterBook {
                book_id: "b-w".into(),
                title: "Withdrawn".into(),
                author: None,
                copies: 2,
                fee: 5,
                item_type: None,
                branch: None,
            },
            &lib_1,
        )
        .await?;
        run(
            Command::JoinMember {
                member_id: "m-4".into(),
                name: "Jung".into(),
                contact: None,
                group: None,
            },
            &lib_1,
        )
        .await?;
        run(
            Command::ReserveBook {
                wait: None,
                book_id: "b-w".into(),
                member_id: "m-4".into(),
                rental_id: Some("r-w".into()),
                delivery_address: None,
            },
            &Actor::member("m-4"),
        )
        .await?;
        lib.settle().await?;
        run(start("r-w", None), &lib_1).await?;
        clock.advance_days(3);
        lib.advance_to(lib.now()).await?;
        lib.settle().await?;
        run(
            Command::WithdrawCopy {
                book_id: "b-w".into(),
                copy: 2,
            },
            &lib_1,
        )
        .await?;
        lib.settle().await?;
        for e in lib.events(1, usize::MAX).await? {
            println!("{}", e.to_json());
        }
        Ok(())
    })
}

/// The rules the fixture's second part runs under.
const RULES: &str = r#"
[policies.loan.standard]
period = "14 days"
max_renewals = 1
[policies.fine.daily]
points = 1
per = "day"
max_per_loan = 10
[policies.limits.default]
max_loans = 5
[policies.lost.standard]
aged_to_lost_after_days = 60
replacement_cost = 20
[calendars.main]
zone = "Asia/Seoul"
hours = { mon = "09:00-18:00", tue = "09:00-18:00", wed = "09:00-18:00", thu = "09:00-18:00", fri = "09:00-18:00", sat = "09:00-13:00" }
[[rules]]
loan = "standard"
fine = "daily"
limits = "default"
lost = "standard"
"#;

/// The rules the fixture's third part runs under: one-day loans, lost after a day.
const CLOCK_RULES: &str = r#"
[policies.loan.day]
period = "1 day"
[policies.loan.auto]
period = "1 day"
auto_renew = true
[policies.fine.none]
points = 0
per = "day"
[policies.limits.none]
[policies.lost.fast]
aged_to_lost_after_days = 1
replacement_cost = 3
processing_fee = 1
refund_window_days = 10
[[rules]]
loan = "day"
fine = "none"
limits = "none"
lost = "fast"
[[rules]]
item_type = "auto"
loan = "auto"
fine = "none"
limits = "none"
lost = "fast"
"#;

/// The rules of the fixture's last part: four-week loans that a hold recalls.
const RECALL: &str = r#"
[policies.loan.month]
period = "28 days"
[policies.fine.none]
points = 0
per = "day"
[policies.limits.none]
[policies.lost.standard]
aged_to_lost_after_days = 60
replacement_cost = 20
[policies.request.recall]
recall_days = 7
[[rules]]
loan = "month"
fine = "none"
limits = "none"
lost = "standard"
request = "recall"
"#;
