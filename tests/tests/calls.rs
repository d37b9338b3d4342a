//! Whole calls over HTTP through each bundled flow, against the real binary. Every answer is
//! checked by the protocol validator (in `Call::send`); the route is checked by the node each
//! answer names and by what the caller hears.

use std::collections::HashSet;

use switchboard_tests::{Call, Server};

const RESTAURANT: &str = "+6568888888";
const SUPPORT: &str = "+6568880001";
const BANK: &str = "+6568889999";
const ADMIN: &str = "t0k";

fn server() -> Server {
    Server::start(&["--admin-token", ADMIN])
}

#[tokio::test]
async fn restaurant_happy_path_books_a_table_and_transfers() {
    let server = server();
    let http = server.http();
    let mut call = Call::new(RESTAURANT);

    let welcome = call.start(&http).await;
    assert_eq!(welcome.actions(), ["sayAndCapture"]);
    assert_eq!(welcome.node().as_deref(), Some("main"));
    assert!(welcome.spoken().starts_with("Welcome to ABC Restaurant."));

    let reservations = call.press(&http, Some("1")).await;
    assert_eq!(reservations.node().as_deref(), Some("reservations"));

    let size = call.press(&http, Some("1")).await;
    assert_eq!(size.node().as_deref(), Some("booking_size"));

    // Four guests: the capture stores it, the confirmation is said, and the caller is
    // transferred, all in one callflow.
    let confirm = call.press(&http, Some("4")).await;
    assert_eq!(confirm.actions(), ["say", "makeCall"]);
    assert!(
        confirm.spoken().contains("A table for 4."),
        "{}",
        confirm.spoken()
    );
    let make_call = confirm.params("makeCall").unwrap();
    assert_eq!(make_call["destination"], "+6531589338");
    assert_eq!(make_call["source"], RESTAURANT);

    // The transfer was answered and has ended: the flow hangs up.
    let after = call.transfer_result(&http, 200).await;
    assert_eq!(after.actions().last().map(String::as_str), Some("hangup"));
    call.end(&http, "COMPLETED").await;

    // The session is gone from this node after its summary.
    let gone = http
        .get(&format!("/v1/sessions/{}", call.session), Some(ADMIN))
        .await;
    assert_eq!(gone.status, 404);
}

#[tokio::test]
async fn previous_menu_and_hours_batch_into_one_callflow() {
    let server = server();
    let http = server.http();
    let mut call = Call::new(RESTAURANT);
    call.start(&http).await;
    assert_eq!(
        call.press(&http, Some("1")).await.node().as_deref(),
        Some("reservations")
    );
    // 9 = back to the main menu, without the flow naming it.
    let back = call.press(&http, Some("9")).await;
    assert_eq!(back.node().as_deref(), Some("main"));
    // 3 = hours, then goodbye, then hang up: three nodes, one round trip.
    let hours = call.press(&http, Some("3")).await;
    assert_eq!(hours.actions(), ["say", "say", "hangup"]);
    assert!(
        hours
            .spoken()
            .starts_with("We are open 9AM to 9PM every day.")
    );
    assert!(hours.spoken().ends_with("Thank you for calling. Goodbye."));

    // The admin API shows the path the caller took and the variables.
    let view = http
        .get(&format!("/v1/sessions/{}", call.session), Some(ADMIN))
        .await;
    assert_eq!(view.status, 200, "{}", String::from_utf8_lossy(&view.body));
    let view = view.json();
    let path: Vec<&str> = view["state"]["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(path, ["main", "reservations", "main", "hours", "goodbye"]);
    assert_eq!(view["state"]["flow"], "restaurant");
    assert_eq!(view["live"], true);
}

#[tokio::test]
async fn wrong_keys_run_out_the_invalid_counter() {
    let server = server();
    let http = server.http();
    let mut call = Call::new(RESTAURANT);
    call.start(&http).await;
    for attempt in 1..=2 {
        let retry = call.press(&http, Some("7")).await;
        assert_eq!(
            retry.actions(),
            ["say", "sayAndCapture"],
            "attempt {attempt}"
        );
        assert!(
            retry
                .spoken()
                .starts_with("Sorry, that is not a valid choice.")
        );
        // From the second attempt on, the shorter reprompt is used.
        assert!(retry.spoken().contains("To book press 1, representative 2"));
        assert_eq!(retry.node().as_deref(), Some("main"));
    }
    // The third wrong key (max_invalid: 3) goes to on_fail: goodbye.
    let fail = call.press(&http, Some("8")).await;
    assert_eq!(fail.actions().last().map(String::as_str), Some("hangup"));
    assert!(fail.spoken().contains("Thank you for calling. Goodbye."));
}

#[tokio::test]
async fn silence_runs_out_the_no_input_counter() {
    let server = server();
    let http = server.http();
    let mut call = Call::new(RESTAURANT);
    call.start(&http).await;
    let first = call.press(&http, None).await;
    assert_eq!(first.node().as_deref(), Some("main"));
    assert!(
        first
            .spoken()
            .starts_with("Sorry, I did not hear anything.")
    );
    assert_eq!(
        first.actions().last().map(String::as_str),
        Some("sayAndCapture")
    );
    // max_no_input: 2.
    let out = call.press(&http, None).await;
    assert_eq!(out.actions().last().map(String::as_str), Some("hangup"));
}

#[tokio::test]
async fn a_busy_transfer_apologises_and_an_unanswered_one_too() {
    let server = server();
    let http = server.http();
    for sip in [486, 480] {
        let mut call = Call::new(RESTAURANT);
        call.start(&http).await;
        let transfer = call.press(&http, Some("2")).await;
        assert_eq!(transfer.actions(), ["makeCall"]);
        assert_eq!(transfer.node().as_deref(), Some("connect"));
        let sorry = call.transfer_result(&http, sip).await;
        assert_eq!(sorry.actions(), ["say", "say", "hangup"], "sip {sip}");
        assert!(sorry.spoken().starts_with("Everyone is busy right now."));
    }
}

#[tokio::test]
async fn duplicate_and_stale_deliveries_get_the_same_answer_without_advancing() {
    let server = server();
    let http = server.http();
    let mut call = Call::new(RESTAURANT);
    let welcome = call.start(&http).await;

    // The platform retries the very same event (same eventId): identical bytes.
    let press = call.call_action(
        "ACTION_COMPLETED",
        "evt-dup-1",
        Some("1"),
        None,
        welcome.action_id().as_deref(),
    );
    let first = call.send(&http, press.clone()).await;
    let again = call.send(&http, press).await;
    assert_eq!(first.body, again.body);
    assert_eq!(first.node().as_deref(), Some("reservations"));

    // A late delivery of an older step (new eventId, stale clientActionId): the last answer
    // again, and the state does not move.
    let stale = call.call_action(
        "ACTION_COMPLETED",
        "evt-late-2",
        Some("2"),
        None,
        welcome.action_id().as_deref(),
    );
    let repeated = call.send(&http, stale).await;
    assert_eq!(repeated.body, first.body);

    // The session is still at reservations: 2 means "manage" there.
    call.action_id = first.action_id();
    let manage = call.press(&http, Some("2")).await;
    assert_eq!(manage.node().as_deref(), Some("manage"));
}

/// A server whose clock starts at `time` (`clock_start`), so business hours are pinned.
fn server_at(time: &str) -> Server {
    Server::start_with_env(
        &["--admin-token", ADMIN],
        &[("SWITCHBOARD_CLOCK_START", time)],
    )
}

#[tokio::test]
async fn support_routes_by_business_hours() {
    // Monday 5 January 2026, 11:00 in Singapore: open.
    let open = server_at("2026-01-05T11:00:00+08:00");
    let http = open.http();
    let mut call = Call::from("+6591234567", SUPPORT);
    let first = call.start(&http).await;
    assert_eq!(first.node().as_deref(), Some("main"), "{}", first.spoken());
    assert!(first.spoken().starts_with("Welcome to Acme support."));
    // A partner caller (+6591...) gets the priority lane for technical support.
    let tech = call.press(&http, Some("1")).await;
    assert!(
        tech.spoken()
            .contains("As a partner you are first in line.")
    );
    assert_eq!(
        tech.params("makeCall").unwrap()["destination"],
        "+6531580001"
    );
    let busy = call.transfer_result(&http, 486).await;
    assert!(busy.spoken().starts_with("All our agents are busy."));

    // The same Monday at 21:00 in Singapore (13:00 UTC): closed.
    let closed = server_at("2026-01-05T13:00:00Z");
    let http = closed.http();
    let mut call = Call::from("+6591234567", SUPPORT);
    let first = call.start(&http).await;
    assert_eq!(
        first.actions().last().map(String::as_str),
        Some("hangup"),
        "{}",
        first.spoken()
    );
    assert!(
        first.spoken().contains("We are closed now."),
        "{}",
        first.spoken()
    );
}

#[tokio::test]
async fn bank_captures_an_account_number_with_retries() {
    let server = server();
    let http = server.http();
    let mut call = Call::new(BANK);
    let prompt = call.start(&http).await;
    assert_eq!(prompt.actions(), ["say", "sayAndCapture"]);
    let capture = prompt.params("sayAndCapture").unwrap();
    assert_eq!(capture["minDigits"], 8);
    assert_eq!(capture["maxDigits"], 8);

    // Too short: refused and asked again.
    let retry = call.press(&http, Some("1234")).await;
    assert!(
        retry
            .spoken()
            .starts_with("Sorry, an account number has exactly 8 digits.")
    );
    assert_eq!(retry.node().as_deref(), Some("account"));

    // Eight digits: read back for confirmation.
    let confirm = call.press(&http, Some("12345678")).await;
    assert_eq!(confirm.node().as_deref(), Some("confirm"));
    assert!(
        confirm.spoken().contains("1 2 3 4 5 6 7 8"),
        "{}",
        confirm.spoken()
    );

    let view = http
        .get(&format!("/v1/sessions/{}", call.session), Some(ADMIN))
        .await
        .json();
    assert_eq!(view["state"]["vars"]["account"], "12345678");
}

#[tokio::test]
async fn an_unknown_number_gets_the_fallback_and_never_a_5xx() {
    let server = server();
    let http = server.http();
    let mut call = Call::new("+6500000000");
    let fallback = call.start(&http).await;
    assert_eq!(fallback.actions(), ["say", "hangup"]);
    assert!(fallback.spoken().contains("not in service"));
}

#[tokio::test]
async fn a_restarted_server_resumes_a_call_from_its_client_action_id() {
    let mut call = Call::new(RESTAURANT);
    let action_id = {
        let server = server();
        let http = server.http();
        call.start(&http).await;
        call.press(&http, Some("1")).await;
        call.action_id.clone()
    };
    // A new process on the in-memory store knows nothing of the session.
    let server = server();
    let http = server.http();
    assert!(action_id.as_deref().unwrap().contains(":reservations:"));
    let resumed = call.press(&http, Some("2")).await;
    assert_eq!(resumed.node().as_deref(), Some("manage"));

    // An id that names nothing we know: an apology and a hang-up, not an error.
    let mut lost = Call::new(RESTAURANT);
    lost.action_id = Some("somebody-else:1".to_owned());
    let apology = lost.press(&http, Some("1")).await;
    assert_eq!(apology.actions(), ["say", "hangup"]);
}

#[tokio::test]
async fn two_hundred_calls_in_parallel_each_follow_their_own_route() {
    let server = server();
    let http = server.http();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            let mut call = Call::new(RESTAURANT);
            call.start(&http).await;
            // Even calls ask for the hours, odd ones go to reservations then back.
            if i % 2 == 0 {
                let end = call.press(&http, Some("3")).await;
                assert_eq!(end.actions(), ["say", "say", "hangup"]);
            } else {
                assert_eq!(
                    call.press(&http, Some("1")).await.node().as_deref(),
                    Some("reservations")
                );
                assert_eq!(
                    call.press(&http, Some("9")).await.node().as_deref(),
                    Some("main")
                );
                assert_eq!(
                    call.press(&http, Some("2")).await.node().as_deref(),
                    Some("connect")
                );
            }
            call.end(&http, "COMPLETED").await;
            call.session
        }));
    }
    let mut sessions = HashSet::new();
    for task in tasks {
        sessions.insert(task.await.expect("the call completes"));
    }
    assert_eq!(sessions.len(), 200);
    let live = http.get("/v1/sessions", Some(ADMIN)).await.json();
    assert_eq!(live["count"], 0, "every summarised session is freed");
}
