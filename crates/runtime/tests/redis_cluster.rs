//! `RedisStore` on a Redis Cluster of three masters (started by the test on loopback): sessions
//! spread over the slots, two runtimes share them, the script runs on every node.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use redis::Commands;
use switchboard_runtime::redis_store::{RedisConfig, RedisStore};
use switchboard_runtime::store::Commit;
use switchboard_runtime::{Answer, MemoryStore, Record, SessionStore};

const BOOKING: [&str; 3] = ["1", "1", "4"];

/// Three cluster-enabled nodes joined by `redis-cli --cluster create`, with every slot served.
fn cluster() -> Vec<RedisServer> {
    let nodes: Vec<RedisServer> = (0..3)
        .map(|_| {
            RedisServer::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ])
        })
        .collect();
    let output = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli runs (it comes with redis-server)");
    assert!(
        output.status.success(),
        "redis-cli --cluster create failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    for node in &nodes {
        loop {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query(&mut node.connection())
                .unwrap();
            if info.contains("cluster_state:ok") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not become ok: {info}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    nodes
}

async fn reference() -> Vec<Answer> {
    let single = replica(MemoryStore::new(Duration::from_secs(60)));
    let mut answers = vec![single.call_action(received("ref", "e0")).await.unwrap()];
    for (i, keys) in BOOKING.iter().enumerate() {
        let event = completed(
            "ref",
            &format!("e{}", i + 1),
            answers.last().unwrap(),
            Some(keys),
        );
        answers.push(single.call_action(event).await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runtimes_share_sessions_over_a_three_node_cluster() {
    const CALLS: usize = 24;
    let nodes = cluster();
    let expected = reference().await;
    let list = nodes
        .iter()
        .map(RedisServer::url)
        .collect::<Vec<_>>()
        .join(",");
    // Several nodes imply cluster mode; so does the redis+cluster:// scheme with one seed.
    let one = RedisStore::new(RedisConfig::new(list)).unwrap();
    let seed = format!("redis+cluster://127.0.0.1:{}", nodes[1].port);
    let two = RedisStore::new(RedisConfig::new(seed)).unwrap();
    one.ping().await.expect("the cluster answers");
    let replicas = [replica(one.clone()), replica(two)];

    let mut last: Vec<Answer> = Vec::new();
    for call in 0..CALLS {
        let s = format!("cluster-{call}");
        let answer = replicas[call % 2]
            .call_action(received(&s, &format!("{s}-e0")))
            .await
            .unwrap();
        assert_eq!(answer.body, expected[0].body);
        last.push(answer);
    }
    for (n, keys) in BOOKING.iter().enumerate() {
        for (call, previous) in last.iter_mut().enumerate() {
            let s = format!("cluster-{call}");
            let event = completed(&s, &format!("{s}-e{}", n + 1), previous, Some(keys));
            // Each step on the other replica than the last: every step rehydrates or adopts.
            let answer = replicas[(call + n + 1) % 2]
                .call_action(event)
                .await
                .unwrap();
            assert_eq!(answer.body, expected[n + 1].body, "{s} step {}", n + 1);
            *previous = answer;
        }
    }

    let sizes: Vec<u64> = nodes
        .iter()
        .map(|n| redis::cmd("DBSIZE").query(&mut n.connection()).unwrap())
        .collect();
    assert_eq!(
        sizes.iter().sum::<u64>(),
        CALLS as u64,
        "one key per session: {sizes:?}"
    );
    assert!(
        sizes.iter().filter(|&&n| n > 0).count() >= 2,
        "sessions should spread over the nodes: {sizes:?}"
    );
    for call in 0..CALLS {
        let s = format!("cluster-{call}");
        let owner = nodes
            .iter()
            .find(|n| {
                // The other nodes answer MOVED.
                matches!(
                    n.connection().exists::<_, bool>(one.state_key(&s)),
                    Ok(true)
                )
            })
            .expect("the session's key is on some node");
        let version: u64 = owner.connection().hget(one.state_key(&s), "v").unwrap();
        assert_eq!(version, 4);
    }

    // Compare-and-set on the cluster: a second first write loses to the stored one.
    let stored = one.load("cluster-0").await.unwrap().expect("stored");
    let rival = Record {
        version: 1,
        ..stored.clone()
    };
    assert_eq!(
        one.commit("cluster-0", None, &rival, "").await.unwrap(),
        Commit::Conflict(Some(Box::new(stored)))
    );

    for call in 0..CALLS {
        replicas[call % 2]
            .end(summary(&format!("cluster-{call}")))
            .await
            .unwrap();
    }
    let left: u64 = nodes
        .iter()
        .map(|n| {
            redis::cmd("DBSIZE")
                .query::<u64>(&mut n.connection())
                .unwrap()
        })
        .sum();
    assert_eq!(left, 0);
}
