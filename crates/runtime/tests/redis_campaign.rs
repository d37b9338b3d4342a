//! The campaign store on a real redis-server: the lease is exclusive, renewable and lapses,
//! every write is fenced by it, the inbox keeps the first report of a ticket, and a canceled
//! campaign stays canceled.

mod common;

use std::time::Duration;

use common::*;
use redis::Commands;
use switchboard_runtime::campaign::{CampaignStore, CampaignWrite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_writes_and_a_lapsed_lease_passes_on() {
    let redis = RedisServer::start();
    let store = store(&redis.url());
    let lease = Duration::from_millis(300);
    assert!(
        store
            .create("c1", r#"{"flow":"x"}"#, "a", lease)
            .await
            .unwrap()
    );
    assert!(
        !store.create("c1", "{}", "b", lease).await.unwrap(),
        "ids are unique"
    );
    assert_eq!(store.active().await.unwrap(), ["c1"]);
    assert!(
        !store
            .acquire("nope", "a", Duration::from_secs(5))
            .await
            .unwrap(),
        "no lease on a campaign that does not exist"
    );

    let lease = Duration::from_millis(300);
    assert!(store.acquire("c1", "a", lease).await.unwrap());
    assert!(
        !store.acquire("c1", "b", lease).await.unwrap(),
        "a holds it"
    );
    assert!(
        store.acquire("c1", "a", lease).await.unwrap(),
        "a renews it"
    );
    let peek = store.peek("c1").await.unwrap().unwrap();
    assert!(peek.leased);

    let write = CampaignWrite {
        rows: vec![(0, "row 0 dialling".to_owned()), (7, "row 7".to_owned())],
        meta: "meta".to_owned(),
        ..CampaignWrite::default()
    };
    assert!(
        !store.write("c1", "b", &write).await.unwrap(),
        "b is fenced off"
    );
    assert!(store.load("c1").await.unwrap().unwrap().rows.is_empty());
    assert!(store.write("c1", "a", &write).await.unwrap());

    // a stalls past its lease; b takes over, and a can no longer write.
    tokio::time::sleep(lease * 2).await;
    assert!(!store.peek("c1").await.unwrap().unwrap().leased);
    assert!(store.acquire("c1", "b", lease).await.unwrap());
    let late = CampaignWrite {
        rows: vec![(1, "row 1 dialling".to_owned())],
        meta: "a's meta".to_owned(),
        ..CampaignWrite::default()
    };
    assert!(!store.write("c1", "a", &late).await.unwrap());
    let stored = store.load("c1").await.unwrap().unwrap();
    assert_eq!(stored.definition, r#"{"flow":"x"}"#);
    assert_eq!(stored.meta.as_deref(), Some("meta"));
    assert_eq!(
        stored.rows.into_iter().collect::<Vec<_>>(),
        [(0, "row 0 dialling".to_owned()), (7, "row 7".to_owned())]
    );

    // a's release does not free b's lease; b's does.
    store.release("c1", "a").await.unwrap();
    assert!(store.peek("c1").await.unwrap().unwrap().leased);
    store.release("c1", "b").await.unwrap();
    assert!(!store.peek("c1").await.unwrap().unwrap().leased);

    // The keys share the campaign's hash tag, with a TTL only on the lease.
    let mut con = redis.connection();
    let mut keys: Vec<String> = con.keys("switchboard:campaign:*").unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            "switchboard:campaign:{c1}:def",
            "switchboard:campaign:{c1}:meta",
            "switchboard:campaign:{c1}:rows",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_wait_in_the_inbox_until_the_holder_applies_them() {
    let redis = RedisServer::start();
    let store = store(&redis.url());
    assert!(
        !store.report("nope", "t", "r").await.unwrap(),
        "no such campaign"
    );
    store
        .create("c2", "{}", "a", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(store.report("c2", "cc2-r0-a1", "first").await.unwrap());
    assert!(store.report("c2", "cc2-r0-a1", "repeated").await.unwrap());
    assert!(store.report("c2", "cc2-r1-a1", "other").await.unwrap());
    assert!(store.peek("c2").await.unwrap().unwrap().reports);

    assert_eq!(
        store.set_control("c2", "paused").await.unwrap().as_deref(),
        Some("paused")
    );
    assert_eq!(
        store
            .set_control("c2", "canceled")
            .await
            .unwrap()
            .as_deref(),
        Some("canceled")
    );
    assert_eq!(
        store.set_control("c2", "running").await.unwrap().as_deref(),
        Some("canceled"),
        "a canceled campaign stays canceled"
    );
    assert_eq!(store.set_control("nope", "paused").await.unwrap(), None);

    let (control, reports) = store.inbox("c2").await.unwrap();
    assert_eq!(control.as_deref(), Some("canceled"));
    assert_eq!(reports["cc2-r0-a1"], "first");
    assert_eq!(reports.len(), 2);

    store
        .acquire("c2", "a", Duration::from_secs(5))
        .await
        .unwrap();
    let write = CampaignWrite {
        meta: "done".to_owned(),
        applied: vec!["cc2-r0-a1".to_owned()],
        finished: true,
        ..CampaignWrite::default()
    };
    assert!(store.write("c2", "a", &write).await.unwrap());
    let (_, reports) = store.inbox("c2").await.unwrap();
    assert_eq!(reports.keys().collect::<Vec<_>>(), ["cc2-r1-a1"]);
    assert!(
        store.active().await.unwrap().is_empty(),
        "a finished campaign is no longer active"
    );
    assert!(
        store.load("c2").await.unwrap().is_some(),
        "but is still there"
    );
}
