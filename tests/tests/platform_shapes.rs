//! Every webhook shape the 8x8 platform has been seen to send, through the real binary: the
//! caller's digits in each of their three places, the `DTMF_RECEIVED` form of a completion
//! (also on a replica that has never seen the session), status events with any content, and
//! every spelling of a session summary, each answered 200 and counted in `/metrics`. Bad input
//! in the same fields is still a 4xx naming the field.

use std::collections::HashMap;

use serde_json::{Value, json};
use switchboard_tests::{Call, Http, RedisServer, Server, uuid};

const RESTAURANT: &str = "+6568888888";

/// A `CALL_ACTION` body of `call` with `callStatus` `status`, its payload edited by `edit`.
fn call_action(call: &Call, status: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let body = call.call_action(status, &uuid(), None, None, call.action_id.as_deref());
    let mut body: Value = serde_json::from_slice(&body).unwrap();
    edit(&mut body["payload"]);
    serde_json::to_vec(&body).unwrap()
}

/// Where the platform puts the caller's digits.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// `payload.eventData.dtmf`: the documented form.
    EventDataDtmf,
    /// `payload.eventData` as the digit string itself: the older v2 form.
    EventDataString,
    /// `payload.dtmf`: the `DTMF_RECEIVED` form, read by 8x8's sample backend.
    PayloadDtmf,
}

/// An `ACTION_COMPLETED` echoing the last `clientActionId`, with `digits` at `place` only.
fn pressed_at(call: &Call, place: Place, digits: &str) -> Vec<u8> {
    call_action(call, "ACTION_COMPLETED", |payload| match place {
        Place::EventDataDtmf => payload["eventData"] = json!({ "dtmf": digits }),
        Place::EventDataString => payload["eventData"] = json!(digits),
        Place::PayloadDtmf => {
            payload.as_object_mut().unwrap().remove("eventData");
            payload["dtmf"] = json!(digits);
        }
    })
}

/// A `DTMF_RECEIVED` as the older page shows it: digits at `payload.dtmf`, no
/// `clientActionId`, no `eventData`.
fn dtmf_received(call: &Call, digits: &str) -> Vec<u8> {
    call_action(call, "DTMF_RECEIVED", |payload| {
        let payload = payload.as_object_mut().unwrap();
        payload.remove("clientActionId");
        payload.remove("eventData");
        payload.insert("dtmf".to_owned(), json!(digits));
    })
}

#[tokio::test]
async fn digits_in_each_of_their_three_places_reach_the_menu_option() {
    let server = Server::start(&[]);
    let http = server.http();
    for place in [
        Place::EventDataDtmf,
        Place::EventDataString,
        Place::PayloadDtmf,
    ] {
        let mut call = Call::new(RESTAURANT);
        call.start(&http).await;
        // 1 = reservations; 3 = hours, then goodbye.
        let reservations = call.send(&http, pressed_at(&call, place, "1")).await;
        assert_eq!(
            reservations.node().as_deref(),
            Some("reservations"),
            "{place:?}"
        );
        let mut call = Call::new(RESTAURANT);
        call.start(&http).await;
        let hours = call.send(&http, pressed_at(&call, place, "3")).await;
        assert!(
            hours
                .spoken()
                .starts_with("We are open 9AM to 9PM every day."),
            "{place:?}: {}",
            hours.spoken()
        );
    }
}

#[tokio::test]
async fn event_data_digits_take_precedence_over_payload_digits() {
    let server = Server::start(&[]);
    let http = server.http();
    let mut call = Call::new(RESTAURANT);
    call.start(&http).await;
    let body = call_action(&call, "ACTION_COMPLETED", |payload| {
        payload["eventData"] = json!({ "dtmf": "1" });
        payload["dtmf"] = json!("3");
    });
    assert_eq!(
        call.send(&http, body).await.node().as_deref(),
        Some("reservations")
    );
    // A null eventData.dtmf holds no digits: payload.dtmf is read.
    let mut call = Call::new(RESTAURANT);
    call.start(&http).await;
    let body = call_action(&call, "ACTION_COMPLETED", |payload| {
        payload["eventData"] = json!({ "dtmf": null });
        payload["dtmf"] = json!("1");
    });
    assert_eq!(
        call.send(&http, body).await.node().as_deref(),
        Some("reservations")
    );
}

#[tokio::test]
async fn dtmf_received_continues_the_call() {
    let server = Server::start(&[]);
    let http = server.http();
    let mut call = Call::new(RESTAURANT);
    call.start(&http).await;
    let reservations = call.send(&http, dtmf_received(&call, "1")).await;
    assert_eq!(reservations.node().as_deref(), Some("reservations"));
    // The call goes on with ordinary completions echoing the new clientActionId.
    assert_eq!(
        call.press(&http, Some("1")).await.node().as_deref(),
        Some("booking_size")
    );
    // And with DTMF_RECEIVED again: four guests, confirmed and transferred.
    let confirm = call.send(&http, dtmf_received(&call, "4")).await;
    assert_eq!(confirm.actions(), ["say", "makeCall"]);
    assert!(
        confirm.spoken().contains("A table for 4."),
        "{}",
        confirm.spoken()
    );
}

#[tokio::test]
async fn dtmf_received_on_a_replica_that_never_saw_the_session_resumes_it_from_redis() {
    let redis = RedisServer::start();
    let url = redis.url();
    let prefix = format!("shapes-{}", &uuid()[..8]);
    let args = ["--redis", url.as_str(), "--redis-prefix", prefix.as_str()];
    let first = Server::start(&args);
    let second = Server::start(&args);

    let mut call = Call::new(RESTAURANT);
    call.start(&first.http()).await;
    // No clientActionId to resume from: the second replica reads the session from Redis.
    let reservations = call.send(&second.http(), dtmf_received(&call, "1")).await;
    assert_eq!(reservations.node().as_deref(), Some("reservations"));
    assert_eq!(
        call.press(&first.http(), Some("1")).await.node().as_deref(),
        Some("booking_size")
    );

    // A session stored nowhere: the flow's apology and a hangup, never a 4xx.
    let stranger = Call::new(RESTAURANT);
    let reply = second.http().webhook(dtmf_received(&stranger, "1")).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let actions: Vec<Value> = reply.json()["callflow"].as_array().unwrap().clone();
    assert_eq!(actions.last().unwrap()["action"], "hangup", "{actions:?}");
    assert!(
        actions[0]["params"]["text"]
            .as_str()
            .unwrap()
            .contains("sorry"),
        "{actions:?}"
    );
}

/// `name{labels} value` lines of `/metrics`, keyed by `name{labels}`.
async fn scrape(http: &Http) -> HashMap<String, f64> {
    let reply = http.get("/metrics", None).await;
    assert_eq!(reply.status, 200);
    std::str::from_utf8(&reply.body)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn ended(metrics: &HashMap<String, f64>, status: &str) -> f64 {
    let key =
        format!("switchboard_sessions_ended_total{{flow=\"restaurant\",status=\"{status}\"}}");
    *metrics
        .get(&key)
        .unwrap_or_else(|| panic!("{key} is not in /metrics"))
}

#[tokio::test]
async fn every_session_summary_variant_is_a_200_and_is_counted() {
    let server = Server::start(&[]);
    let http = server.http();
    let leg = |key_case: &str, status: &str, duration: Value| {
        json!({
            format!("{key_case}A"): {
                "callId": uuid(), "callDirection": "INBOUND", "callType": "PSTN",
                "source": "+6591110000", "destination": RESTAURANT,
                "sourceRefId": "null", "destinationRefId": "vn-acme-main",
                "callStatus": status, "callDuration": duration,
            },
            format!("{key_case}B"): {
                "callId": uuid(), "callStatus": "BUSY", "callDuration": 0,
                "sourceRefId": "vn-acme-main", "destinationRefId": "null",
            }
        })
    };
    // (sessionStatus as sent, the label it is counted under, details, errorDetails)
    let variants = [
        (
            "CANCELED",
            "CANCELED",
            leg("call", "CANCELED", json!(12)),
            None,
        ),
        (
            "CANCELLED",
            "CANCELED",
            leg("Call", "CANCELLED", json!("12")),
            None,
        ),
        (
            "COMPLETED_UNSUBSCRIBED",
            "COMPLETED_UNSUBSCRIBED",
            leg("call", "COMPLETED", json!(30)),
            None,
        ),
        (
            "COMPLETED_UNSUB_ERROR",
            "COMPLETED_UNSUB_ERROR",
            leg("Call", "COMPLETED", json!("30")),
            None,
        ),
        (
            "UNSUBSCRIBED_CONTACT",
            "UNSUBSCRIBED_CONTACT",
            json!({}),
            None,
        ),
        (
            "ERROR",
            "ERROR",
            leg("call", "ERROR", json!(3)),
            Some(json!({"errorMsg": "The call flow provided is invalid", "errorCode": -2003})),
        ),
        (
            "ERROR",
            "ERROR",
            leg("Call", "ERROR", json!("3")),
            Some(json!({"errorMsg": "The call flow provided is invalid", "errorCode": "-2003"})),
        ),
        (
            "SOMETHING_NEW",
            "OTHER",
            leg("call", "SOMETHING_ELSE", json!(1)),
            None,
        ),
    ];
    let mut expected: HashMap<&str, f64> = HashMap::new();
    for (status, label, details, error) in &variants {
        let mut call = Call::new(RESTAURANT);
        call.start(&http).await;
        let mut body: Value = serde_json::from_slice(&call.summary(status)).unwrap();
        body["payload"]["details"] = details.clone();
        body["payload"]["lastAction"] = json!("PLAY_TTS");
        if let Some(error) = error {
            body["payload"]["errorDetails"] = error.clone();
        }
        let reply = http.webhook(serde_json::to_vec(&body).unwrap()).await;
        assert_eq!(
            reply.status,
            200,
            "{status}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        *expected.entry(label).or_default() += 1.0;
    }
    let metrics = scrape(&http).await;
    for (label, count) in &expected {
        assert_eq!(ended(&metrics, label), *count, "status {label}");
    }
    assert_eq!(ended(&metrics, "COMPLETED"), 0.0);
}

#[tokio::test]
async fn call_status_events_are_acknowledged_whatever_they_carry() {
    let server = Server::start(&[]);
    let http = server.http();
    let statuses = [
        "CALL_INITIATED",
        "CALL_RECEIVED",
        "CALL_CONNECTED",
        "CALL_DISCONNECTED",
        "CALL_UPDATED",
        "DTMF_RECEIVED",
        "A_STATUS_FROM_THE_FUTURE",
    ];
    for status in statuses {
        let body = json!({
            "namespace": "VOICE",
            "eventType": "CALL_STATUS",
            "payload": {
                "eventId": uuid(), "callId": uuid(), "sessionId": uuid(),
                "callStatus": status, "dtmf": "5", "sipCode": "n/a",
                "callDuration": {"seconds": 3}, "timestamp": 1763630102,
                "additional": {"parameters": ["could", "be", "included"]},
            }
        });
        let reply = http.webhook(serde_json::to_vec(&body).unwrap()).await;
        assert_eq!(
            reply.status,
            200,
            "{status}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    let metrics = scrape(&http).await;
    assert_eq!(
        metrics["switchboard_status_events_total"],
        statuses.len() as f64
    );
}

#[tokio::test]
async fn malformed_digits_are_still_a_4xx_naming_the_field() {
    let server = Server::start(&[]);
    let http = server.http();
    let mut call = Call::new(RESTAURANT);
    call.start(&http).await;
    for (field, edit) in [
        ("payload.dtmf", json!({"dtmf": {"digits": "1"}})),
        ("payload.eventData", json!({"eventData": [1]})),
        ("payload.callStatus", json!({"callStatus": "DANCING"})),
    ] {
        let body = call_action(&call, "ACTION_COMPLETED", |payload| {
            for (k, v) in edit.as_object().unwrap() {
                payload[k] = v.clone();
            }
        });
        let reply = http.webhook(body).await;
        assert_eq!(reply.status, 400, "{field}");
        assert_eq!(reply.json()["error"]["field"], field, "{}", reply.json());
    }
}
