//! A campaign call whose session summary never comes: after the policy's `call_deadline`, on
//! a clock the test moves, the row ends `TIMED_OUT` and its concurrency slot goes to the next
//! row. The server is built in this process (so its clock can be injected) and serves on a
//! real socket; the 8x8 side is the real `switchboard-loadgen emulate` process, sending the
//! calls' webhooks to a port where nothing listens, so no summary ever reaches the server.

mod common;

use std::time::Duration;

use common::{ManualClock, build, policy, wait_finished, wait_for_created};
use switchboard_outbound::list;
use switchboard_tests::Emulator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_a_summary_frees_its_slot_at_the_deadline() {
    let port = Emulator::reserve_port();
    let clock = ManualClock::at("2026-03-02T10:00:00Z");
    let app = build(port, clock.clone());
    // The webhooks go nowhere: the server never hears how the calls end.
    let nowhere = format!("http://127.0.0.1:{}", Emulator::reserve_port());
    let emulator = Emulator::start(port, &nowhere, &["--transfer-mix", "answered=1"]);
    let csv = "number\n+6591000000\n+6591000001\n";
    let policy = switchboard_outbound::schedule::Policy {
        call_deadline: Duration::from_secs(120),
        ..policy(10.0, 1)
    };
    let id = app
        .campaigns
        .start(
            "reminder".to_owned(),
            None,
            list::parse(csv, None).unwrap(),
            policy,
        )
        .await
        .unwrap();
    assert_eq!(wait_for_created(&emulator, 1), ["6591000000"]);

    // A second before the deadline: the first call still holds the only slot.
    clock.set("2026-03-02T10:01:59Z");
    app.campaigns.wake_all();
    let view = app.campaigns.view(&id).await.unwrap().unwrap();
    assert_eq!(
        (view.progress.dialling, view.progress.pending),
        (1, 1),
        "{view:?}"
    );

    // The deadline: the first row times out, and the second is dialled in its slot.
    clock.set("2026-03-02T10:02:00Z");
    app.campaigns.wake_all();
    assert_eq!(wait_for_created(&emulator, 2), ["6591000000", "6591000001"]);
    let export = app.campaigns.export(&id).await.unwrap().unwrap();
    assert_eq!(
        export[0].outcome.as_deref(),
        Some("TIMED_OUT"),
        "{export:?}"
    );
    assert_eq!(export[0].attempts, 1, "a timed-out call is not tried again");
    assert_eq!(export[0].result.sessions.len(), 1, "{export:?}");

    // The second times out two minutes after it was dialled; the campaign is over.
    clock.set("2026-03-02T10:04:00Z");
    app.campaigns.wake_all();
    let view = wait_finished(&app, &id).await;
    assert!(view.finished, "{view:?}");
    assert_eq!(
        view.progress.outcomes.get("TIMED_OUT"),
        Some(&2),
        "{view:?}"
    );
    assert_eq!(
        wait_for_created(&emulator, 2).len(),
        2,
        "nobody is called again"
    );
}
