//! Pausing, resuming and cancelling a campaign, on a clock the test moves. The server is
//! built in this process (so its clock can be injected) and serves on a real socket; the 8x8
//! side is the real `switchboard-loadgen emulate` process.

mod common;

use common::{ManualClock, build, created, policy, serve, wait_finished, wait_for_calls};
use switchboard_outbound::list;
use switchboard_outbound::schedule::State;
use switchboard_server::campaign::Control;
use switchboard_tests::Emulator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_cancel() {
    let port = Emulator::reserve_port();
    let clock = ManualClock::at("2026-03-02T10:00:00Z");
    let app = build(port, clock.clone());
    let webhook = serve(&app).await;
    let emulator = Emulator::start(
        port,
        &webhook,
        &["--transfer-mix", "answered=1", "--script", "2"],
    );
    let csv: String = std::iter::once("number\n".to_owned())
        .chain((0..4).map(|i| format!("+659100000{i}\n")))
        .collect();
    let policy = policy(1.0, 4);
    let id = app
        .campaigns
        .start(
            "reminder".to_owned(),
            None,
            list::parse(&csv, None).unwrap(),
            policy,
        )
        .await
        .unwrap();
    wait_for_calls(&emulator, 1);

    assert!(app.campaigns.control(&id, Control::Pause).await.unwrap());
    clock.set("2026-03-02T10:00:05Z");
    app.campaigns.wake_all();
    let view = app.campaigns.view(&id).await.unwrap().unwrap();
    assert_eq!(view.state, State::Paused);
    assert_eq!(view.next_dial, None, "a paused campaign dials no one");

    assert!(app.campaigns.control(&id, Control::Resume).await.unwrap());
    wait_for_calls(&emulator, 2);
    assert!(app.campaigns.control(&id, Control::Cancel).await.unwrap());
    clock.set("2026-03-02T10:00:10Z");
    app.campaigns.wake_all();
    let view = app.campaigns.view(&id).await.unwrap().unwrap();
    assert_eq!(view.state, State::Canceled);
    assert_eq!(view.progress.outcomes.get("CANCELED"), Some(&2), "{view:?}");
    assert_eq!(created(&emulator).len(), 2);
    assert!(!app.campaigns.control("nope", Control::Pause).await.unwrap());

    // The two calls placed finish as they will: the callee pressed 2.
    let view = wait_finished(&app, &id).await;
    assert_eq!(
        view.progress.outcomes.get("COMPLETED"),
        Some(&2),
        "{view:?}"
    );
    let export = app.campaigns.export(&id).await.unwrap().unwrap();
    assert_eq!(export[0].result.digits.as_deref(), Some("2"));
    assert_eq!(export[0].result.node.as_deref(), Some("reschedule"));
}
