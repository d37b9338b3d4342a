//! A campaign on a clock the test moves: a calling window that closes mid-campaign holds the
//! remaining rows until it reopens, with no sleeping for the hours in between. The server is
//! built in this process (so its clock can be injected) and serves on a real socket; the 8x8
//! side is the real `switchboard-loadgen emulate` process.

mod common;

use chrono::NaiveTime;
use common::{ManualClock, at, build, created, policy, serve, wait_finished, wait_for_calls};
use switchboard_outbound::list;
use switchboard_outbound::schedule::{Policy, Window};
use switchboard_tests::Emulator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_window_holds_dialling_until_it_reopens() {
    let port = Emulator::reserve_port();
    // Monday 16:59:57 in Singapore: three seconds of calling left today.
    let clock = ManualClock::at("2026-03-02T08:59:57Z");
    let app = build(port, clock.clone());
    let webhook = serve(&app).await;
    let emulator = Emulator::start(
        port,
        &webhook,
        &["--transfer-mix", "answered=1", "--script", "1"],
    );

    let csv: String = std::iter::once("number,name\n".to_owned())
        .chain((0..5).map(|i| format!("+659100000{i},Patient {i}\n")))
        .collect();
    let rows = list::parse(&csv, None).unwrap();
    let policy = Policy {
        window: Some(Window {
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
            days: Vec::new(),
        }),
        ..policy(1.0, 5)
    };
    let id = app
        .campaigns
        .start("reminder".to_owned(), None, rows, policy)
        .await
        .unwrap();

    // One call per second of the clock, while the window is open.
    wait_for_calls(&emulator, 1);
    for (now, calls) in [("2026-03-02T08:59:58Z", 2), ("2026-03-02T08:59:59Z", 3)] {
        clock.set(now);
        app.campaigns.wake_all();
        wait_for_calls(&emulator, calls);
    }
    // 17:00: closed. The campaign waits for Tuesday 09:00 Singapore time (01:00 UTC).
    clock.set("2026-03-02T09:00:00Z");
    app.campaigns.wake_all();
    let view = app.campaigns.view(&id).await.unwrap().unwrap();
    assert_eq!(view.progress.pending, 2, "{view:?}");
    assert_eq!(view.next_dial, Some(at("2026-03-03T01:00:00Z")), "{view:?}");
    clock.set("2026-03-03T00:59:59Z");
    app.campaigns.wake_all();
    let view = app.campaigns.view(&id).await.unwrap().unwrap();
    assert_eq!(view.next_dial, Some(at("2026-03-03T01:00:00Z")), "{view:?}");
    assert_eq!(
        created(&emulator).len(),
        3,
        "nobody is called while the window is closed"
    );

    // Reopened: the last two rows.
    clock.set("2026-03-03T01:00:00Z");
    app.campaigns.wake_all();
    wait_for_calls(&emulator, 4);
    clock.set("2026-03-03T01:00:01Z");
    app.campaigns.wake_all();
    wait_for_calls(&emulator, 5);
    let dialled = created(&emulator);
    let want: Vec<String> = (0..5).map(|i| format!("659100000{i}")).collect();
    assert_eq!(dialled, want, "each row once, in list order");

    // The last summary finishes the campaign.
    let view = wait_finished(&app, &id).await;
    assert!(view.finished, "{view:?}");
    assert_eq!(
        view.progress.outcomes.get("COMPLETED"),
        Some(&5),
        "{view:?}"
    );
}
