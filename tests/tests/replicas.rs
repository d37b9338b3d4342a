//! Several `switchboard serve` replicas on one Redis, driven as the 8x8 platform drives them
//! from behind a load balancer: every webhook of a call may reach any replica.
//!
//! Each virtual call follows a scripted [`Route`] through the restaurant flow. Every answer is
//! checked by the protocol validator (`Call::accept`) and against the script (the node named by
//! its `clientActionId`, its `seq`, its actions); at the end the record each call left in Redis
//! is read directly and must match the script exactly: version and `seq` equal to the number of
//! steps (no step applied twice, none lost), the path, the counters, the variables, and the
//! event ids remembered in the order they were sent.
//!
//! # Layout
//! * 2,000 calls, each webhook to a random replica (`Balancer`), 200 calls in flight; then every
//!   replica's admin API and the replicas' flow reports added up are checked too.
//! * The same with one replica SIGKILLed a third of the way through: what it cannot answer is
//!   sent to another, as a load balancer does after a connection error.
//! * Redis killed and restarted empty mid-call: live calls go on, `/readyz` says 503 then 200,
//!   the queued state is written again, summaries taken meanwhile are not lost.
//! * The fault suite, each fault for 3 s under load against one replica (`play_through_a_fault`):
//!   Redis frozen (SIGSTOP, SIGCONT; and `CLIENT PAUSE`); the link to Redis slowed to 50-200 ms
//!   round trips, cut (connections closed, new ones refused) and blackholed (nothing delivered,
//!   nothing closed), through a [`Proxy`]; Redis SIGKILLed and restarted with its AOF
//!   (`appendfsync always`); a Redis Cluster (3 masters, 3 replicas) failing over by
//!   `CLUSTER FAILOVER` and by a master SIGKILLed; a Sentinel group (a master, its replica, a
//!   sentinel; `redis+sentinel://`) failing over by `SENTINEL FAILOVER` and by its master
//!   SIGKILLed, the replica following the new master. Every webhook answered 200, new calls
//!   included; the replica back to healthy by itself; every call's record afterwards exactly as
//!   scripted (and, after a Sentinel failover, on the new master).
//! * A Sentinel failover the old master hides (it still takes writes): followed by the store's
//!   once-a-second check, with no outage. Bad Sentinel URLs refused at start; a master name the
//!   sentinels do not know leaves the replica not ready.
//! * One event posted to two replicas (at once, or one after the other): identical answers.
//! * A late event on a replica whose actor is behind: the session's latest answer.
//! * Redis commands per warm webhook, from `INFO commandstats`: at most one.
//!
//! The tests start their own redis-server on a spare port (`RedisServer`) and kill it, and their
//! replicas, when they end.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use Input::{Keys, Silence, Start, Transfer};
use switchboard_runtime::Record;
use switchboard_tests::{
    Answer, Balancer, Call, Proxy, RedisConnection, RedisServer, Replicas, Resp, Server,
    decode_stored, state_key, uuid,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const RESTAURANT: &str = "+6568888888";
const ADMIN: &str = "t0k";
const PREFIX: &str = "replicas";

/// Calls of the load tests.
const CALLS: usize = 2_000;
/// Calls in flight at once.
const IN_FLIGHT: usize = 200;

/// What the caller does at one step.
#[derive(Debug, Clone, Copy)]
enum Input {
    /// The call arrives (`CALL_RECEIVED`).
    Start,
    /// Keys pressed.
    Keys(&'static str),
    /// Nothing pressed.
    Silence,
    /// The transfer ended with this SIP code.
    Transfer(u16),
}

/// One webhook of a route and the answer it must get.
#[derive(Debug)]
struct Step {
    input: Input,
    /// The node the answer's `clientActionId` names.
    node: &'static str,
    /// The answer's actions.
    actions: &'static [&'static str],
    /// The session's path after this step.
    path: &'static [&'static str],
}

/// A scripted call, and the state it must leave behind.
#[derive(Debug)]
struct Route {
    name: &'static str,
    steps: &'static [Step],
    /// Where the session is after the last step.
    node: &'static str,
    invalid: u8,
    no_input: u8,
    attempts: u8,
    guests: Option<&'static str>,
}

const fn step(
    input: Input,
    node: &'static str,
    actions: &'static [&'static str],
    path: &'static [&'static str],
) -> Step {
    Step {
        input,
        node,
        actions,
        path,
    }
}

const fn route(name: &'static str, node: &'static str, steps: &'static [Step]) -> Route {
    Route {
        name,
        steps,
        node,
        invalid: 0,
        no_input: 0,
        attempts: 0,
        guests: None,
    }
}

const CAPTURE: &[&str] = &["sayAndCapture"];
const RETRY: &[&str] = &["say", "sayAndCapture"];
const GOODBYE: &[&str] = &["say", "say", "hangup"];
const MAIN: &[&str] = &["main"];
const RESERVATIONS: &[&str] = &["main", "reservations"];
const BACK_TO_MAIN: &[&str] = &["main", "reservations", "main"];
const TRANSFERRED: &[&str] = &["main", "reservations", "main", "connect"];
const BOOKING: &[&str] = &["main", "reservations", "booking_size"];
const MANAGE: &[&str] = &["main", "reservations", "manage"];
const WANDERED: &[&str] = &["main", "reservations", "manage", "reservations"];

const WELCOME: Step = step(Start, "main", CAPTURE, MAIN);
const TO_RESERVATIONS: Step = step(Keys("1"), "reservations", CAPTURE, RESERVATIONS);

/// Every route the load tests play, chosen per call.
static ROUTES: &[Route] = &[
    route(
        "hours",
        "main",
        &[
            WELCOME,
            step(Keys("3"), "main", GOODBYE, &["main", "hours", "goodbye"]),
        ],
    ),
    route(
        "reservations, back, transfer answered",
        "connect",
        &[
            WELCOME,
            TO_RESERVATIONS,
            step(Keys("9"), "main", CAPTURE, BACK_TO_MAIN),
            step(Keys("2"), "connect", &["makeCall"], TRANSFERRED),
            step(Transfer(200), "connect", &["hangup"], TRANSFERRED),
        ],
    ),
    route(
        "reservations, back, transfer busy",
        "connect",
        &[
            WELCOME,
            TO_RESERVATIONS,
            step(Keys("9"), "main", CAPTURE, BACK_TO_MAIN),
            step(Keys("2"), "connect", &["makeCall"], TRANSFERRED),
            step(
                Transfer(486),
                "connect",
                GOODBYE,
                &[
                    "main",
                    "reservations",
                    "main",
                    "connect",
                    "sorry",
                    "goodbye",
                ],
            ),
        ],
    ),
    route(
        "wrong keys until on_fail",
        "main",
        &[
            WELCOME,
            step(Keys("7"), "main", RETRY, MAIN),
            step(Keys("7"), "main", RETRY, MAIN),
            step(Keys("8"), "main", &["say", "hangup"], &["main", "goodbye"]),
        ],
    ),
    route(
        "silence until on_fail",
        "main",
        &[
            WELCOME,
            step(Silence, "main", RETRY, MAIN),
            step(Silence, "main", &["say", "hangup"], &["main", "goodbye"]),
        ],
    ),
    Route {
        guests: Some("4"),
        ..route(
            "booking after a wrong size",
            "connect",
            &[
                WELCOME,
                TO_RESERVATIONS,
                step(Keys("1"), "booking_size", CAPTURE, BOOKING),
                step(Keys("25"), "booking_size", RETRY, BOOKING),
                step(
                    Keys("4"),
                    "connect",
                    &["say", "makeCall"],
                    &[
                        "main",
                        "reservations",
                        "booking_size",
                        "booking_confirm",
                        "connect",
                    ],
                ),
                step(
                    Transfer(200),
                    "connect",
                    &["hangup"],
                    &[
                        "main",
                        "reservations",
                        "booking_size",
                        "booking_confirm",
                        "connect",
                    ],
                ),
            ],
        )
    },
    route(
        "promo, then hours",
        "main",
        &[
            WELCOME,
            step(
                Keys("4"),
                "main",
                &["playFile", "sayAndCapture"],
                &["main", "promo", "main"],
            ),
            step(
                Keys("3"),
                "main",
                GOODBYE,
                &["main", "promo", "main", "hours", "goodbye"],
            ),
        ],
    ),
    route(
        "cancel a booking",
        "manage",
        &[
            WELCOME,
            TO_RESERVATIONS,
            step(Keys("2"), "manage", CAPTURE, MANAGE),
            step(
                Keys("2"),
                "manage",
                GOODBYE,
                &[
                    "main",
                    "reservations",
                    "manage",
                    "cancel_confirm",
                    "goodbye",
                ],
            ),
        ],
    ),
    Route {
        invalid: 1,
        ..route(
            "wandering, still on the line",
            "reservations",
            &[
                WELCOME,
                step(Keys("7"), "main", RETRY, MAIN),
                step(Silence, "main", RETRY, MAIN),
                TO_RESERVATIONS,
                step(Keys("0"), "reservations", RETRY, RESERVATIONS),
                step(Keys("2"), "manage", CAPTURE, MANAGE),
                step(Keys("9"), "reservations", CAPTURE, WANDERED),
                step(Keys("3"), "reservations", RETRY, WANDERED),
            ],
        )
    },
    Route {
        invalid: 1,
        no_input: 1,
        ..route(
            "a wrong key and a silence, still on the line",
            "main",
            &[
                WELCOME,
                step(Keys("7"), "main", RETRY, MAIN),
                step(Silence, "main", RETRY, MAIN),
            ],
        )
    },
    Route {
        attempts: 1,
        ..route(
            "a wrong booking size, still on the line",
            "booking_size",
            &[
                WELCOME,
                TO_RESERVATIONS,
                step(Keys("1"), "booking_size", CAPTURE, BOOKING),
                step(Keys("25"), "booking_size", RETRY, BOOKING),
            ],
        )
    },
];

/// A call in progress along its route.
#[derive(Debug)]
struct Played {
    call: Call,
    route: &'static Route,
    /// The event ids sent, one per step taken.
    events: Vec<String>,
}

impl Played {
    fn new(route: &'static Route) -> Self {
        Self {
            call: Call::new(RESTAURANT),
            route,
            events: Vec::new(),
        }
    }

    fn steps_taken(&self) -> usize {
        self.events.len()
    }

    /// The body of the next step, with a fresh event id (remembered).
    fn next_body(&mut self) -> Vec<u8> {
        let event = uuid();
        let call = &self.call;
        let body = match self.route.steps[self.events.len()].input {
            Start => call.call_action("CALL_RECEIVED", &event, None, None, None),
            Keys(keys) => call.completed_as(&event, Some(keys), None),
            Silence => call.completed_as(&event, None, None),
            Transfer(code) => call.completed_as(&event, None, Some(code)),
        };
        self.events.push(event);
        body
    }

    /// Checks the answer to the step just sent against the script.
    fn check(&self, answer: &Answer) {
        let index = self.events.len() - 1;
        let expected = &self.route.steps[index];
        let context = format!(
            "session {} ({}), step {} ({:?})",
            self.call.session, self.route.name, index, expected.input
        );
        let id = answer.action_id().unwrap_or_default();
        let parts: Vec<&str> = id.split(':').collect();
        assert_eq!(parts.len(), 4, "{context}: clientActionId {id:?}");
        assert_eq!(parts[0], "restaurant", "{context}: clientActionId {id:?}");
        assert_eq!(parts[2], expected.node, "{context}: clientActionId {id:?}");
        assert_eq!(
            parts[3],
            (index + 1).to_string(),
            "{context}: clientActionId {id:?} (seq)"
        );
        assert_eq!(answer.actions(), expected.actions, "{context}");
    }

    /// Checks the record stored in Redis after `steps` steps of the route.
    fn check_stored(&self, record: &Record, steps: usize) {
        let context = format!("session {} ({})", self.call.session, self.route.name);
        let state = &record.state;
        let expected = &self.route.steps[steps - 1];
        assert_eq!(record.version, steps as u64, "{context}: version");
        assert_eq!(state.seq as usize, steps, "{context}: seq");
        let path: Vec<&str> = state.path.iter().map(String::as_str).collect();
        assert_eq!(path, expected.path, "{context}: path");
        let events: Vec<&str> = record.events.iter().map(String::as_str).collect();
        assert_eq!(
            events,
            self.events[..steps],
            "{context}: the events remembered must be the events sent, each once, in order"
        );
        if steps == self.route.steps.len() {
            let route = self.route;
            assert_eq!(state.node, route.node, "{context}: node");
            assert_eq!(
                (state.invalid, state.no_input, state.attempts),
                (route.invalid, route.no_input, route.attempts),
                "{context}: the counters (invalid, no_input, attempts)"
            );
            assert_eq!(
                state.vars.get("guests").map(String::as_str),
                route.guests,
                "{context}: vars"
            );
        }
    }

    /// Plays the next step through the balancer.
    async fn advance(&mut self, balancer: &Balancer) {
        let body = self.next_body();
        let (_, reply) = balancer.webhook(body).await;
        let answer = self.call.accept(reply);
        self.check(&answer);
    }

    /// Plays the next step on one replica, which must answer it.
    async fn advance_on(&mut self, balancer: &Balancer, replica: usize) {
        let body = self.next_body();
        let reply = balancer
            .send_to(replica, body.into())
            .await
            .unwrap_or_else(|| panic!("replica {replica} cannot be reached"));
        let answer = self.call.accept(reply);
        self.check(&answer);
    }
}

/// `n` replicas on `redis`.
fn replicas(redis: &RedisServer, n: usize) -> Replicas {
    replicas_on(&redis.url(), n)
}

/// `n` replicas on the Redis at `url` (through a proxy, or a cluster).
fn replicas_on(url: &str, n: usize) -> Replicas {
    Replicas::start(
        n,
        url,
        PREFIX,
        &["--admin-token", ADMIN, "--shards", "2"],
        &[],
    )
}

/// The record stored for `session`, read from Redis directly.
fn stored(con: &mut RedisConnection, session: &str) -> Option<Record> {
    switchboard_tests::stored(con, PREFIX, session)
}

/// Checks what every call left in Redis after `steps(call)` steps.
fn check_all_stored(redis: &impl Storage, played: &[Played], steps: impl Fn(&Played) -> usize) {
    let records = redis.records(played.iter().map(|p| p.call.session.as_str()));
    let mut behind = 0;
    for (call, record) in played.iter().zip(records) {
        let record = record.unwrap_or_else(|| {
            panic!(
                "session {} ({}): nothing stored in Redis",
                call.call.session, call.route.name
            )
        });
        let steps = steps(call);
        if redis.may_lose_the_last_write() && steps > 1 && record.version + 1 == steps as u64 {
            // Exactly the script but its last write: a consistent state, one step back.
            call.check_stored(&record, steps - 1);
            behind += 1;
            continue;
        }
        call.check_stored(&record, steps);
    }
    if behind > 0 {
        println!(
            "{behind} of {} sessions stored one write behind: their last write was acknowledged by the old master and not replicated before the promotion (their live actors hold it and write it over at their next step)",
            played.len()
        );
    }
    assert!(
        behind * 20 <= played.len(),
        "{behind} of {} sessions lost their last write: more than the moment of a failover explains",
        played.len()
    );
}

/// Every replica's admin API shows each call's latest state, whether the replica holds a
/// live actor for it (perhaps one another replica has since moved past) or not.
async fn check_admin_views(servers: &[Server], played: impl Iterator<Item = &Played>) {
    for call in played {
        let steps = call.route.steps.len();
        for (i, server) in servers.iter().enumerate() {
            let reply = server
                .http()
                .get(&format!("/v1/sessions/{}", call.call.session), Some(ADMIN))
                .await;
            assert_eq!(
                reply.status,
                200,
                "{}",
                String::from_utf8_lossy(&reply.body)
            );
            let view = reply.json();
            let path: Vec<&str> = view["state"]["path"]
                .as_array()
                .expect("a path")
                .iter()
                .filter_map(|node| node.as_str())
                .collect();
            assert_eq!(
                (
                    view["version"].as_u64(),
                    view["state"]["seq"].as_u64(),
                    path
                ),
                (
                    Some(steps as u64),
                    Some(steps as u64),
                    call.route.steps[steps - 1].path.to_vec()
                ),
                "session {} ({}): the admin API of replica {i} (live: {}) shows another state",
                call.call.session,
                call.route.name,
                view["live"]
            );
        }
    }
}

/// The replicas' flow reports, added up, count each call once: started, ended, each node
/// visited as often as the paths say, and each call's exit at the node it ended at.
async fn check_flow_reports(servers: &[Server], played: &[Played]) {
    use std::collections::BTreeMap;
    let (mut started, mut ended) = (0, 0);
    let mut visits: BTreeMap<String, u64> = BTreeMap::new();
    let mut exits: BTreeMap<String, u64> = BTreeMap::new();
    for server in servers {
        let reply = server
            .http()
            .get("/v1/flows/restaurant/report", Some(ADMIN))
            .await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let report = reply.json();
        started += report["sessions_started"]
            .as_u64()
            .expect("sessions_started");
        ended += report["sessions_ended"].as_u64().expect("sessions_ended");
        for node in report["nodes"].as_array().expect("nodes") {
            let name = node["node"].as_str().expect("a node name").to_owned();
            *visits.entry(name.clone()).or_default() += node["visits"].as_u64().unwrap_or(0);
            *exits.entry(name).or_default() += node["exits"].as_u64().unwrap_or(0);
        }
    }
    let mut expected_visits: BTreeMap<String, u64> = BTreeMap::new();
    let mut expected_exits: BTreeMap<String, u64> = BTreeMap::new();
    for call in played {
        for node in call.route.steps[call.route.steps.len() - 1].path {
            *expected_visits.entry((*node).to_owned()).or_default() += 1;
        }
        // A call ends where it waits, or, if the flow hung up, at the last node it went through.
        let last = &call.route.steps[call.route.steps.len() - 1];
        let ended_at = match (last.actions.last(), last.path.last()) {
            (Some(&"hangup"), Some(node)) => node,
            _ => call.route.node,
        };
        *expected_exits.entry(ended_at.to_owned()).or_default() += 1;
    }
    let nonzero = |m: BTreeMap<String, u64>| -> BTreeMap<String, u64> {
        m.into_iter().filter(|(_, n)| *n > 0).collect()
    };
    assert_eq!((started, ended), (played.len() as u64, played.len() as u64));
    assert_eq!(nonzero(visits), expected_visits, "visits per node");
    assert_eq!(nonzero(exits), expected_exits, "exits per node");
}

fn keys_stored(redis: &RedisServer) -> i64 {
    match redis.command(&["DBSIZE"]) {
        Resp::Integer(n) => n,
        other => panic!("DBSIZE answered {other:?}"),
    }
}

/// Sends every call's session summary; afterwards Redis holds nothing.
async fn end_all(balancer: &Balancer, redis: &impl Storage, played: &[Played]) {
    for call in played {
        let (_, reply) = balancer.webhook(call.call.summary("COMPLETED")).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    assert_eq!(redis.keys(), 0, "every summary deletes its session's state");
}

/// Plays `CALLS` calls, each on a route chosen per call, every webhook through the balancer,
/// at most `IN_FLIGHT` calls at once. `answered` counts the webhooks answered.
async fn play_all(balancer: &Arc<Balancer>, answered: &Arc<AtomicUsize>) -> Vec<Played> {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for i in 0..CALLS {
        let permit = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (balancer, answered) = (Arc::clone(balancer), Arc::clone(answered));
        tasks.spawn(async move {
            let mut played = Played::new(&ROUTES[i % ROUTES.len()]);
            while played.steps_taken() < played.route.steps.len() {
                played.advance(&balancer).await;
                answered.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
            played
        });
    }
    let mut played = Vec::with_capacity(CALLS);
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(call) => played.push(call),
            Err(err) => std::panic::resume_unwind(err.into_panic()),
        }
    }
    played
}

fn webhooks_of(played: &[Played]) -> usize {
    played.iter().map(|p| p.route.steps.len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_serve_2000_calls_whichever_replica_each_webhook_reaches() {
    let started = Instant::now();
    let redis = RedisServer::start();
    let servers = replicas(&redis, 3);
    let balancer = Arc::new(Balancer::new(&servers.iter().collect::<Vec<_>>()));
    let answered = Arc::new(AtomicUsize::new(0));

    let played = play_all(&balancer, &answered).await;

    assert_eq!(played.len(), CALLS);
    assert_eq!(answered.load(Ordering::Relaxed), webhooks_of(&played));
    assert_eq!(
        balancer.connection_retries.load(Ordering::Relaxed),
        0,
        "no replica died, so no webhook failed to connect"
    );
    for i in 0..servers.len() {
        assert!(
            balancer.served(i) > CALLS as u64 / 2,
            "replica {i} served only {} webhooks: the balancer did not spread them",
            balancer.served(i)
        );
    }
    check_all_stored(&redis, &played, |p| p.route.steps.len());
    check_admin_views(&servers, played.iter().step_by(7)).await;
    end_all(&balancer, &redis, &played).await;
    check_flow_reports(&servers, &played).await;
    eprintln!(
        "{CALLS} calls, {} webhooks over 3 replicas in {:.1?} ({} answers 503 retried)",
        webhooks_of(&played),
        started.elapsed(),
        balancer.unavailable_retries.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_run_loses_and_repeats_no_step() {
    let started = Instant::now();
    let redis = RedisServer::start();
    let mut servers = replicas(&redis, 3);
    let balancer = Arc::new(Balancer::new(&servers.iter().collect::<Vec<_>>()));
    let answered = Arc::new(AtomicUsize::new(0));

    let run = tokio::spawn({
        let (balancer, answered) = (Arc::clone(&balancer), Arc::clone(&answered));
        async move { play_all(&balancer, &answered).await }
    });
    // Kill replica 0 a third of the way through, with webhooks in flight on it.
    let third = (0..CALLS)
        .map(|i| ROUTES[i % ROUTES.len()].steps.len())
        .sum::<usize>()
        / 3;
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.load(Ordering::Relaxed) < third {
        assert!(
            Instant::now() < deadline,
            "fewer than {third} webhooks answered in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let served_before = balancer.served(0);
    servers[0].signal("KILL");
    let killed_at = answered.load(Ordering::Relaxed);
    let played = match run.await {
        Ok(played) => played,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    };
    assert!(
        servers[0].wait_exit(Duration::from_secs(5)).is_some(),
        "replica 0 survived SIGKILL"
    );

    assert_eq!(played.len(), CALLS, "every call finished its route");
    assert!(served_before > 0, "replica 0 served nothing before it died");
    assert!(
        !balancer.is_alive(0),
        "no webhook found replica 0 dead: it was killed too late to matter"
    );
    assert!(balancer.is_alive(1) && balancer.is_alive(2));
    let retried = balancer.connection_retries.load(Ordering::Relaxed);
    assert!(retried > 0);
    // Version, seq, path and the event ids of every call match its script: a webhook the
    // dead replica applied before dying was answered from the stored record when retried,
    // not applied again.
    check_all_stored(&redis, &played, |p| p.route.steps.len());
    // The survivors answered from the stored record the retries of webhooks the dead replica
    // had applied before it died (duplicates arise from nothing else here).
    let mut repeated = 0.0;
    for server in &servers[1..] {
        repeated += metric(
            server,
            "switchboard_webhook_duration_seconds_count",
            "outcome=\"duplicate\"",
        )
        .await;
    }
    end_all(&balancer, &redis, &played).await;
    eprintln!(
        "{CALLS} calls, {} webhooks; replica 0 killed after {killed_at} answers ({served_before} \
         of them its own); {retried} webhooks retried on another replica after a connection \
         error ({repeated} of them already applied, answered from Redis), {} after a 503; \
         {:.1?}",
        webhooks_of(&played),
        balancer.unavailable_retries.load(Ordering::Relaxed),
        started.elapsed()
    );
}

/// The sum of the samples of metric `name` whose labels contain `label`, as a replica's
/// `/metrics` shows them; fails if there is none.
async fn metric(server: &Server, name: &str, label: &str) -> f64 {
    let reply = server.http().get("/metrics", None).await;
    assert_eq!(reply.status, 200);
    let text = String::from_utf8_lossy(&reply.body);
    let samples: Vec<f64> = text
        .lines()
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let labels = series.strip_prefix(name)?;
            let matches = labels.is_empty() || (labels.starts_with('{') && labels.contains(label));
            matches.then(|| value.parse().ok()).flatten()
        })
        .collect();
    assert!(
        !samples.is_empty(),
        "no sample of {name} {label} in:\n{text}"
    );
    samples.iter().sum()
}

/// Polls `/readyz` on every replica until each answers `status`, for at most `within`.
async fn wait_ready(servers: &[Server], status: u16, within: Duration) {
    let deadline = Instant::now() + within;
    for (i, server) in servers.iter().enumerate() {
        loop {
            let reply = server.http().get("/readyz", None).await;
            if reply.status == status {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replica {i}: /readyz answered {} instead of {status} for {within:?}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Calls of the Redis restart test, with the replica each one sticks to while Redis is away.
const STICKY_CALLS: usize = 300;
/// Calls of that test that end while Redis is away.
const ENDED_CALLS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_mid_run_live_calls_go_on_and_are_stored_again() {
    let started = Instant::now();
    let mut redis = RedisServer::start();
    let servers = replicas(&redis, 3);
    let balancer = Arc::new(Balancer::new(&servers.iter().collect::<Vec<_>>()));
    // Routes long enough to have steps before, during and after the outage.
    let long: Vec<&'static Route> = ROUTES.iter().filter(|r| r.steps.len() >= 4).collect();
    let home = |i: usize| i % 3;

    // Before: two steps of every call on its home replica, which keeps a live actor.
    let mut played: Vec<Played> = (0..STICKY_CALLS)
        .map(|i| Played::new(long[i % long.len()]))
        .collect();
    for (i, call) in played.iter_mut().enumerate() {
        call.advance_on(&balancer, home(i)).await;
        call.advance_on(&balancer, home(i)).await;
    }
    check_all_stored(&redis, &played, |_| 2);
    // Calls that hang up while Redis is away, their last step stored before it left.
    let mut hanging_up: Vec<Played> = (0..ENDED_CALLS)
        .map(|i| Played::new(long[i % long.len()]))
        .collect();
    for (i, call) in hanging_up.iter_mut().enumerate() {
        call.advance_on(&balancer, home(i)).await;
        call.advance_on(&balancer, home(i)).await;
    }

    // Redis dies: every replica reports not ready.
    redis.kill();
    wait_ready(&servers, 503, Duration::from_secs(5)).await;

    // A summary reaching the replica that holds the session's actor is taken: the delete is
    // queued until Redis returns.
    for (i, call) in hanging_up.iter().enumerate() {
        let reply = balancer
            .send_to(home(i), call.call.summary("COMPLETED").into())
            .await
            .unwrap();
        assert_eq!(
            reply.status,
            200,
            "the summary of session {}, live on replica {}, while Redis is away: {}",
            call.call.session,
            home(i),
            String::from_utf8_lossy(&reply.body)
        );
    }

    // Calls with a live actor go on, up to one step before the end, answered from memory.
    let mut tasks = JoinSet::new();
    for (i, mut call) in played.into_iter().enumerate() {
        let balancer = Arc::clone(&balancer);
        tasks.spawn(async move {
            while call.steps_taken() < call.route.steps.len() - 1 {
                call.advance_on(&balancer, home(i)).await;
            }
            (i, call)
        });
    }
    let mut played: Vec<Option<Played>> = (0..STICKY_CALLS).map(|_| None).collect();
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok((i, call)) => played[i] = Some(call),
            Err(err) => std::panic::resume_unwind(err.into_panic()),
        }
    }
    let mut played: Vec<Played> = played.into_iter().map(Option::unwrap).collect();

    // A session no replica holds (its earlier steps were served before this replica set,
    // say) is resumed from the clientActionId it echoes, from memory, and can end; and a new
    // call starts from memory. Both are queued and settled when Redis returns.
    let template = played[0].call.action_id.clone().expect("an answered call");
    let mut stranger = Call::new(RESTAURANT);
    stranger.action_id = Some(template);
    let reply = balancer
        .send_to(1, stranger.completed(None, None).into())
        .await
        .unwrap();
    assert_eq!(
        reply.status,
        200,
        "resumed while Redis is away: {}",
        String::from_utf8_lossy(&reply.body)
    );
    let mut new_call = Call::new(RESTAURANT);
    let reply = balancer
        .send_to(2, new_call.received().into())
        .await
        .unwrap();
    assert_eq!(
        reply.status,
        200,
        "a new call while Redis is away: {}",
        String::from_utf8_lossy(&reply.body)
    );
    new_call.accept(reply);
    for (replica, call) in [(1, &stranger), (2, &new_call)] {
        let reply = balancer
            .send_to(replica, call.summary("COMPLETED").into())
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
    }

    // Redis comes back, empty, on the same port: ready again, and every queued write lands.
    redis.restart();
    wait_ready(&servers, 200, Duration::from_secs(10)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut con = redis.connect();
    for call in &played {
        let expected = call.steps_taken() as u64;
        loop {
            match stored(&mut con, &call.call.session) {
                Some(record) if record.version == expected => {
                    call.check_stored(&record, call.steps_taken());
                    break;
                }
                other => assert!(
                    Instant::now() < deadline,
                    "session {} ({}): not stored again at version {expected} within 10 s of \
                     Redis returning; stored: {:?}",
                    call.call.session,
                    call.route.name,
                    other.map(|r| r.version)
                ),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for (i, server) in servers.iter().enumerate() {
        let dropped = metric(server, "switchboard_store_writes_dropped_total", "").await;
        let pending = metric(server, "switchboard_store_pending_writes", "").await;
        assert_eq!(
            (dropped, pending),
            (0.0, 0.0),
            "replica {i}: queued writes dropped, pending"
        );
    }

    assert_eq!(
        keys_stored(&redis),
        STICKY_CALLS as i64,
        "only the calls still on the line are stored"
    );

    // The rest of every call, on any replica: they read the state the home replicas stored.
    for call in &mut played {
        while call.steps_taken() < call.route.steps.len() {
            call.advance(&balancer).await;
        }
    }
    check_all_stored(&redis, &played, |p| p.route.steps.len());
    end_all(&balancer, &redis, &played).await;
    eprintln!(
        "{STICKY_CALLS} calls across a Redis restart in {:.1?}",
        started.elapsed()
    );
}

/// Calls of the duplicate test.
const DUPLICATED_CALLS: usize = 200;

/// Calls in flight at once in the fault tests.
const FREEZE_IN_FLIGHT: usize = 32;
/// How long each fault lasts, and how long the load goes on after it.
const FAULT: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_second_redis_freeze_under_load_answers_every_webhook_and_loses_no_step() {
    let mut redis = RedisServer::start();
    let servers = replicas(&redis, 1);
    play_through_a_fault(
        "SIGSTOP",
        &mut redis,
        &servers[0],
        Seen::Outage,
        |redis| redis.pause(),
        |redis| redis.resume(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_second_client_pause_under_load_answers_every_webhook_and_loses_no_step() {
    // CLIENT PAUSE ALL: Redis runs but answers no client for 3 s, then resumes by itself.
    let mut redis = RedisServer::start();
    let servers = replicas(&redis, 1);
    play_through_a_fault(
        "CLIENT PAUSE",
        &mut redis,
        &servers[0],
        Seen::Outage,
        |redis| {
            assert_eq!(
                redis.command(&["CLIENT", "PAUSE", "3000", "ALL"]),
                Resp::Simple("OK".to_owned())
            );
        },
        |_| {},
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_link_to_redis_under_load_answers_every_webhook_and_loses_no_step() {
    // 25 to 100 ms each way between the replica and Redis: 50 to 200 ms a round trip, under the
    // command timeout (1 s), so Redis stays reachable and every command just takes longer.
    let mut redis = RedisServer::start();
    let proxy = Proxy::start(redis.port());
    let servers = replicas_on(&proxy.url(), 1);
    let each_way = Duration::from_millis(25)..=Duration::from_millis(100);
    play_through_a_fault(
        "50-200 ms round trips",
        &mut redis,
        &servers[0],
        Seen::Either,
        |_| {
            proxy.set_latency(each_way.clone(), each_way.clone());
            // The link is slow now: a PING through it takes at least the shortest round trip.
            let mut con = RedisConnection::open(proxy.port()).expect("the proxy accepts");
            let sent = Instant::now();
            assert_eq!(con.command(&["PING"]), Resp::Simple("PONG".to_owned()));
            assert!(
                sent.elapsed() >= Duration::from_millis(50),
                "{:?}",
                sent.elapsed()
            );
        },
        |_| {
            proxy.set_latency(
                Duration::ZERO..=Duration::ZERO,
                Duration::ZERO..=Duration::ZERO,
            )
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_to_redis_cut_for_three_seconds_under_load_answers_every_webhook_and_loses_no_step()
{
    // The replica's connections to Redis are closed and new ones refused, while Redis itself
    // runs on: the replica finds it unreachable at once, and returns to healthy by itself.
    let mut redis = RedisServer::start();
    let proxy = Proxy::start(redis.port());
    let servers = replicas_on(&proxy.url(), 1);
    play_through_a_fault(
        "link cut",
        &mut redis,
        &servers[0],
        Seen::Outage,
        |_| proxy.cut(),
        |_| proxy.restore(),
    )
    .await;
    assert!(proxy.accepted() > 1, "the replica connected again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_to_redis_blackholed_for_three_seconds_under_load_answers_every_webhook_and_loses_no_step()
 {
    // A partition: nothing gets through either way, nothing is closed, and what was held is
    // delivered when it heals (late answers to commands the replica gave up on after the
    // command timeout, writes applied late that it must recognise as its own).
    let mut redis = RedisServer::start();
    let proxy = Proxy::start(redis.port());
    let servers = replicas_on(&proxy.url(), 1);
    play_through_a_fault(
        "link blackholed",
        &mut redis,
        &servers[0],
        Seen::Outage,
        |_| proxy.blackhole(),
        |_| proxy.restore(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_with_its_aof_under_load_keeps_every_state_and_loses_no_step() {
    // Every write fsynced before Redis answers it: what a replica was told is durable is.
    let mut redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let servers = replicas(&redis, 1);
    // What was stored when Redis was killed, to find it again when it is back.
    let before = std::sync::Mutex::new(Vec::new());
    let played = play_through_a_fault(
        "killed, restarted with its AOF",
        &mut redis,
        &servers[0],
        Seen::Outage,
        |redis| {
            *before.lock().unwrap() = versions(redis);
            redis.kill();
        },
        |redis| {
            redis.restart();
            let after: std::collections::HashMap<String, u64> =
                versions(redis).into_iter().collect();
            let before = before.lock().unwrap();
            for (key, version) in before.iter() {
                let found = after.get(key).copied();
                assert!(
                    found >= Some(*version),
                    "{key}: version {version} was stored before the kill; after the restart: \
                     {found:?}"
                );
            }
            eprintln!(
                "redis restarted with its AOF: the {} sessions stored before the kill are all \
                 back",
                before.len()
            );
        },
    )
    .await;
    // Calls that had finished before the kill wrote nothing after it: their records (checked
    // by the run) came back from the AOF alone.
    assert!(!before.lock().unwrap().is_empty(), "{} calls", played.len());
}

/// Every session key stored and its version.
fn versions(redis: &RedisServer) -> Vec<(String, u64)> {
    let mut con = redis.connect();
    // A restarted Redis answers LOADING until it has read its AOF.
    let deadline = Instant::now() + Duration::from_secs(10);
    let keys = loop {
        match con.command(&["KEYS", &format!("{PREFIX}:*")]) {
            Resp::Array(Some(keys)) => break keys,
            Resp::Error(e) if e.starts_with("LOADING") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => panic!("KEYS answered {other:?}"),
        }
    };
    keys.into_iter()
        .filter_map(|key| match key {
            Resp::Bulk(Some(key)) => String::from_utf8(key).ok(),
            _ => None,
        })
        .filter_map(|key| match con.command(&["HGET", &key, "v"]) {
            Resp::Bulk(Some(v)) => {
                let v = String::from_utf8_lossy(&v).parse().ok()?;
                Some((key, v))
            }
            _ => None,
        })
        .collect()
}

/// How a replica must see a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Redis unreachable (logged), then reachable and healthy again by itself.
    Outage,
    /// Either way: a slower Redis still answering within the command timeout, or a cluster
    /// failing over, whose redirections the client follows, should not be an outage, but a
    /// command caught at the wrong moment can make one. If there is one, the replica must
    /// recover from it by itself.
    Either,
}

/// Where a fault test reads what was stored: one server, or the nodes of a cluster.
trait Storage {
    /// The records of `sessions` (`None`: nothing stored), in order.
    fn records<'a>(&self, sessions: impl Iterator<Item = &'a str>) -> Vec<Option<Record>>;
    /// How many keys are stored.
    fn keys(&self) -> i64;
    /// Whether a failover of this storage may lose a session's last acknowledged write: the
    /// old master acknowledged it in the moment before it stopped taking writes and had not
    /// sent it to the replica promoted (asynchronous replication). The store writes over such a
    /// loss at the session's next write; a session whose lost write was its last one is found
    /// one write behind.
    fn may_lose_the_last_write(&self) -> bool {
        false
    }
}

impl Storage for RedisServer {
    fn records<'a>(&self, sessions: impl Iterator<Item = &'a str>) -> Vec<Option<Record>> {
        let mut con = self.connect();
        sessions.map(|s| stored(&mut con, s)).collect()
    }

    fn keys(&self) -> i64 {
        keys_stored(self)
    }
}

/// Plays whole calls against one replica, `server` (on `redis`, perhaps through a proxy), new
/// ones starting throughout; once the load is under way, `fault` holds for 3 s, then `heal`,
/// and the load goes on 3 s more. Asserts that every webhook was answered 200 (the non-2xx
/// count is printed), that the replica saw the fault as `seen` says and did not panic, that
/// nothing is left queued or was dropped, and that every call's record is exactly its script
/// (no step lost or applied twice); then ends every call. `fault` and `heal` may block.
async fn play_through_a_fault<R: Storage>(
    what: &str,
    redis: &mut R,
    server: &Server,
    seen: Seen,
    fault: impl FnOnce(&mut R),
    heal: impl FnOnce(&mut R),
) -> Vec<Played> {
    let balancer = Arc::new(Balancer::new(&[server]));
    let answered = Arc::new(AtomicUsize::new(0));
    let non_2xx = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // Whole calls, new ones starting until `stop`, each webhook to the one replica; a reply
    // that is not 200 is counted (and then fails `accept`).
    let load = {
        let (balancer, answered, non_2xx, stop) = (
            Arc::clone(&balancer),
            Arc::clone(&answered),
            Arc::clone(&non_2xx),
            Arc::clone(&stop),
        );
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(FREEZE_IN_FLIGHT));
            let mut tasks = JoinSet::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let permit = Arc::clone(&slots)
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let (balancer, answered, non_2xx) = (
                    Arc::clone(&balancer),
                    Arc::clone(&answered),
                    Arc::clone(&non_2xx),
                );
                tasks.spawn(async move {
                    let mut played = Played::new(&ROUTES[i % ROUTES.len()]);
                    while played.steps_taken() < played.route.steps.len() {
                        let body = played.next_body();
                        let reply = balancer
                            .send_to(0, body.into())
                            .await
                            .expect("the replica answers");
                        if reply.status != 200 {
                            non_2xx.fetch_add(1, Ordering::Relaxed);
                        }
                        let answer = played.call.accept(reply);
                        played.check(&answer);
                        answered.fetch_add(1, Ordering::Relaxed);
                        // A caller's pause between prompts: keeps the calls spread over the run.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    drop(permit);
                    played
                });
            }
            let mut played = Vec::new();
            while let Some(result) = tasks.join_next().await {
                match result {
                    Ok(call) => played.push(call),
                    Err(err) => std::panic::resume_unwind(err.into_panic()),
                }
            }
            played
        })
    };

    // The fault once the load is under way, for 3 s, then the heal; new calls go on starting
    // for 3 s more (the recovery happens under load too).
    while answered.load(Ordering::Relaxed) < 300 {
        assert!(!load.is_finished(), "the load ended early");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::task::block_in_place(|| fault(redis));
    let before = answered.load(Ordering::Relaxed);
    tokio::time::sleep(FAULT).await;
    let during = answered.load(Ordering::Relaxed) - before;
    tokio::task::block_in_place(|| heal(redis));
    tokio::time::sleep(FAULT).await;
    stop.store(true, Ordering::Relaxed);

    let played = match load.await {
        Ok(played) => played,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    };
    let total = answered.load(Ordering::Relaxed);
    let non_2xx = non_2xx.load(Ordering::Relaxed);
    eprintln!(
        "redis {what}: {} calls, {total} webhooks, {during} answered during the 3 s fault, \
         {non_2xx} non-2xx",
        played.len()
    );
    assert_eq!(non_2xx, 0, "webhooks answered other than 200");
    assert_eq!(total, webhooks_of(&played));
    assert!(during > 0, "the load went on during the fault");

    if seen == Seen::Outage {
        assert!(
            server.wait_for_log("Redis is unreachable", Duration::from_secs(10)),
            "the outage is logged"
        );
    }
    let timeouts = metric(server, "switchboard_redis_errors_total", "kind=\"timeout\"").await;
    let errors = metric(server, "switchboard_redis_errors_total", "").await;
    eprintln!("redis {what}: {errors} failed Redis commands, {timeouts} of them timed out");
    if server
        .log()
        .iter()
        .any(|line| line.contains("Redis is unreachable"))
    {
        // The replica recovered by itself.
        assert!(
            server.wait_for_log("healthy", Duration::from_secs(30)),
            "the recovery is logged: {:?}",
            server.log()
        );
        wait_ready(std::slice::from_ref(server), 200, Duration::from_secs(10)).await;
        let mut phases = Vec::new();
        for phase in ["detection", "unreachable", "recovery"] {
            let label = format!("phase=\"{phase}\"");
            let sum = metric(server, "switchboard_redis_outage_phase_seconds_sum", &label).await;
            let count = metric(
                server,
                "switchboard_redis_outage_phase_seconds_count",
                &label,
            )
            .await;
            phases.push(format!("{phase} {:.0} ms in {count}", sum * 1000.0));
        }
        eprintln!("redis {what}: outage phases {}", phases.join(", "));
    } else {
        eprintln!("redis {what}: no outage seen");
    }
    assert_eq!(
        metric(server, "switchboard_store_pending_writes", "").await,
        0.0
    );
    assert_eq!(
        metric(server, "switchboard_store_writes_dropped_total", "").await,
        0.0,
        "no queued write was given up on"
    );
    assert_eq!(
        metric(server, "switchboard_redis_unreachable", "").await,
        0.0
    );
    assert!(
        !server.log().iter().any(|line| line.contains("panicked")),
        "the replica panicked: {:?}",
        server.log()
    );

    // No step lost or applied twice: each call's record is its script, version and seq equal
    // to its steps, its events each once, in order.
    check_all_stored(redis, &played, Played::steps_taken);
    end_all(&balancer, redis, &played).await;
    played
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_posted_to_two_replicas_gets_byte_identical_answers() {
    let redis = RedisServer::start();
    let servers = replicas(&redis, 3);
    let balancer = Arc::new(Balancer::new(&servers.iter().collect::<Vec<_>>()));
    let mut tasks = JoinSet::new();
    for i in 0..DUPLICATED_CALLS {
        let balancer = Arc::clone(&balancer);
        tasks.spawn(async move {
            let mut played = Played::new(&ROUTES[i % ROUTES.len()]);
            while played.steps_taken() < played.route.steps.len() {
                let body = bytes::Bytes::from(played.next_body());
                let step = played.steps_taken();
                // Two different replicas, rotating; at the same time or one after the other,
                // alternating (so half the calls also start on two replicas at once).
                let (a, b) = ((i + step) % 3, (i + step + 1) % 3);
                let (first, second) = if (i + step) % 2 == 1 {
                    tokio::join!(balancer.send_to(a, body.clone()), balancer.send_to(b, body))
                } else {
                    let first = balancer.send_to(a, body.clone()).await;
                    (first, balancer.send_to(b, body).await)
                };
                let (first, second) = (first.unwrap(), second.unwrap());
                assert_eq!(
                    first.body, second.body,
                    "session {} step {step}: replicas {a} and {b} answered the same event \
                     differently",
                    played.call.session
                );
                let answer = played.call.accept(first);
                assert_eq!(second.status, 200);
                played.check(&answer);
            }
            played
        });
    }
    let mut played = Vec::with_capacity(DUPLICATED_CALLS);
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(call) => played.push(call),
            Err(err) => std::panic::resume_unwind(err.into_panic()),
        }
    }
    // Each event applied once: version and seq equal the steps, each event id remembered once.
    check_all_stored(&redis, &played, |p| p.route.steps.len());
    end_all(&balancer, &redis, &played).await;
}

/// Calls of the round-trip test, and the warm webhooks each sends.
const WARM_CALLS: usize = 60;
const WARM_STEPS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_webhook_costs_at_most_one_redis_round_trip() {
    let redis = RedisServer::start();
    let servers = replicas(&redis, 3);
    let balancer = Arc::new(Balancer::new(&servers.iter().collect::<Vec<_>>()));
    // Every call starts on its home replica, whose actor then holds its record (warm).
    let mut calls = Vec::with_capacity(WARM_CALLS);
    for i in 0..WARM_CALLS {
        let mut call = Call::new(RESTAURANT);
        let reply = balancer
            .send_to(i % 3, call.received().into())
            .await
            .unwrap();
        call.accept(reply);
        calls.push(call);
    }

    let before = redis.command_calls();
    // Each warm webhook advances the call (4: the offer, then the main menu again), and is
    // then delivered a second time (a duplicate: answered from the actor's record).
    let mut tasks = JoinSet::new();
    for (i, mut call) in calls.into_iter().enumerate() {
        let balancer = Arc::clone(&balancer);
        tasks.spawn(async move {
            for _ in 0..WARM_STEPS {
                let body = bytes::Bytes::from(call.completed_as(&uuid(), Some("4"), None));
                let first = balancer.send_to(i % 3, body.clone()).await.unwrap();
                let again = balancer.send_to(i % 3, body).await.unwrap();
                assert_eq!(first.body, again.body);
                let answer = call.accept(first);
                assert_eq!(answer.actions(), ["playFile", "sayAndCapture"]);
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        if let Err(err) = result {
            std::panic::resume_unwind(err.into_panic());
        }
    }
    let after = redis.command_calls();

    // Commands the replicas sent: everything but what the commit script runs inside Redis
    // (HMGET, HSET, PEXPIRE; its HGET only on a duplicate or a conflict, counted here to err
    // on the side of too many), this test's own INFO, and what opening a connection sends
    // (each replica thread opens its own connection on first use, which may fall inside the
    // window: that is not a webhook's round trip).
    let delta =
        |name: &str| after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
    let sent: u64 = after
        .keys()
        .filter(|name| {
            !matches!(
                name.as_str(),
                "hmget"
                    | "hset"
                    | "pexpire"
                    | "info"
                    | "ping"
                    | "hello"
                    | "client|setinfo"
                    | "select"
            )
        })
        .map(|name| delta(name))
        .sum();
    let advancing = (WARM_CALLS * WARM_STEPS) as u64;
    let webhooks = 2 * advancing;
    eprintln!(
        "Redis round trips: {sent} commands for {advancing} advancing warm webhooks ({:.2} each; \
         EVALSHA {}), {:.2} per webhook with their {advancing} duplicates; the script ran {} \
         HMGET, {} HSET, {} PEXPIRE inside Redis",
        sent as f64 / advancing as f64,
        delta("evalsha"),
        sent as f64 / webhooks as f64,
        delta("hmget"),
        delta("hset"),
        delta("pexpire"),
    );
    assert_eq!(
        delta("evalsha"),
        advancing,
        "one EVALSHA per advancing webhook"
    );
    assert!(
        sent <= advancing,
        "{sent} commands for {advancing} advancing warm webhooks: more than one round trip each \
         ({:?} before, {:?} after)",
        before,
        after
    );
}

/// Calls of the late-event test.
const LATE_CALLS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_event_gets_the_latest_answer_on_every_replica() {
    let redis = RedisServer::start();
    let servers = replicas(&redis, 3);
    let balancer = Balancer::new(&servers.iter().collect::<Vec<_>>());
    let route = ROUTES
        .iter()
        .find(|r| r.name == "cancel a booking")
        .expect("the route exists");
    for i in 0..LATE_CALLS {
        // Replica a answers the first two steps, replica b the third: a's actor is behind.
        let (a, b) = (i % 3, (i + 1) % 3);
        let mut played = Played::new(route);
        played.advance_on(&balancer, a).await;
        let first = played.call.action_id.clone();
        played.advance_on(&balancer, a).await;
        played.advance_on(&balancer, b).await;
        let latest = played.call.action_id.clone();
        // A delivery delayed past later ones (its own event id, echoing the first answer) is
        // stale: every replica answers it with the session's latest answer, and nothing moves.
        let late = played.call.call_action(
            "ACTION_COMPLETED",
            &uuid(),
            Some("1"),
            None,
            first.as_deref(),
        );
        for replica in 0..3 {
            let reply = balancer
                .send_to(replica, late.clone().into())
                .await
                .unwrap();
            let answer = played.call.accept(reply);
            assert_eq!(
                answer.action_id(),
                latest,
                "session {}: replica {replica} (a: {a}, b: {b}) answered a late event with an \
                 older answer",
                played.call.session
            );
        }
        let record = stored(&mut redis.connect(), &played.call.session).unwrap();
        played.check_stored(&record, 3);
    }
}

/// A Redis Cluster started by a test: three masters, each with one replica, every slot served;
/// a node that misses its peers for a second is failed over.
#[derive(Debug)]
struct Cluster {
    nodes: Vec<RedisServer>,
}

/// A node's part in the cluster (`ROLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Master,
    /// A replica of the master on this port.
    Replica(u16),
}

/// `server`'s role (`ROLE`), if it answers.
fn role_of(server: &RedisServer) -> Option<Role> {
    let mut con = RedisConnection::open(server.port()).ok()?;
    let Resp::Array(Some(role)) = con.try_command(&["ROLE"]).ok()? else {
        return None;
    };
    match role.as_slice() {
        [Resp::Bulk(Some(kind)), ..] if kind == b"master" => Some(Role::Master),
        [Resp::Bulk(Some(kind)), _, Resp::Integer(port), ..] if kind == b"slave" => {
            Some(Role::Replica(u16::try_from(*port).ok()?))
        }
        _ => None,
    }
}

impl Cluster {
    fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                ])
            })
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs (it comes with redis-server)");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = Self { nodes };
        cluster.wait_until("every slot is served and every replica in sync", |c| {
            (0..c.nodes.len()).all(|i| c.is_ok(i) && c.in_sync(i))
        });
        cluster
    }

    /// Every node, as seeds: the replicas find the masters from them.
    fn url(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn info(&self, i: usize, args: &[&str]) -> Option<String> {
        let mut con = RedisConnection::open(self.nodes[i].port()).ok()?;
        match con.try_command(args).ok()? {
            Resp::Bulk(Some(text)) => Some(String::from_utf8_lossy(&text).into_owned()),
            _ => None,
        }
    }

    /// Whether node `i` answers and sees every slot served.
    fn is_ok(&self, i: usize) -> bool {
        self.info(i, &["CLUSTER", "INFO"])
            .is_some_and(|info| info.contains("cluster_state:ok"))
    }

    /// Whether node `i` is a master, or a replica whose link to its master is up.
    fn in_sync(&self, i: usize) -> bool {
        match self.role(i) {
            Some(Role::Master) => true,
            Some(Role::Replica(_)) => self
                .info(i, &["INFO", "replication"])
                .is_some_and(|info| info.contains("master_link_status:up")),
            None => false,
        }
    }

    /// Node `i`'s role, if it answers.
    fn role(&self, i: usize) -> Option<Role> {
        role_of(&self.nodes[i])
    }

    /// A master and its replica, as node indices.
    fn pair(&self) -> (usize, usize) {
        (0..self.nodes.len())
            .find_map(|replica| match self.role(replica) {
                Some(Role::Replica(port)) => {
                    let master = self.nodes.iter().position(|n| n.port() == port)?;
                    Some((master, replica))
                }
                _ => None,
            })
            .expect("the cluster has a replica")
    }

    fn wait_until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "the cluster: not within 20 s: {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `replica` has taken over from `master` and every node that answers sees
    /// every slot served.
    fn wait_taken_over(&self, master: usize, replica: usize) {
        let started = Instant::now();
        self.wait_until("the replica took over", |c| {
            c.role(replica) == Some(Role::Master)
                && c.role(master) != Some(Role::Master)
                && (0..c.nodes.len()).all(|i| c.role(i).is_none() || c.is_ok(i))
        });
        eprintln!(
            "cluster: node {} (port {}) had taken over {:.1?} after the failover began (at most)",
            replica,
            self.nodes[replica].port(),
            started.elapsed() + FAULT
        );
    }

    /// The nodes that answer, as masters.
    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.role(i) == Some(Role::Master))
            .collect()
    }
}

impl Storage for Cluster {
    fn records<'a>(&self, sessions: impl Iterator<Item = &'a str>) -> Vec<Option<Record>> {
        let mut masters: Vec<RedisConnection> = self
            .masters()
            .into_iter()
            .map(|i| self.nodes[i].connect())
            .collect();
        sessions
            .map(|session| {
                let key = state_key(PREFIX, session);
                // The master of the key's slot answers; the others redirect (MOVED).
                masters
                    .iter_mut()
                    .map(|con| con.command(&["HMGET", &key, "v", "r", "ids"]))
                    .find(|reply| !matches!(reply, Resp::Error(e) if e.starts_with("MOVED")))
                    .map(|reply| decode_stored(&key, reply))
                    .unwrap_or_else(|| panic!("{key}: every master redirects it"))
            })
            .collect()
    }

    fn keys(&self) -> i64 {
        self.masters()
            .into_iter()
            .map(|i| keys_stored(&self.nodes[i]))
            .sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_failover_to_a_replica_under_load_answers_every_webhook_and_loses_no_step() {
    // CLUSTER FAILOVER on a replica: it catches up with its master, which stops taking writes,
    // and takes its slots over; the replica's cluster client follows the redirections.
    let mut cluster = Cluster::start();
    let servers = replicas_on(&cluster.url(), 1);
    let (master, replica) = cluster.pair();
    play_through_a_fault(
        "cluster failover",
        &mut cluster,
        &servers[0],
        Seen::Either,
        |cluster| {
            let mut con = cluster.nodes[replica].connect();
            assert_eq!(
                con.command(&["CLUSTER", "FAILOVER"]),
                Resp::Simple("OK".to_owned())
            );
        },
        |cluster| cluster.wait_taken_over(master, replica),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_killed_under_load_fails_over_and_loses_no_step() {
    // SIGKILL a master: its slots are unserved until the other masters agree it failed (after
    // the node timeout, 1 s) and its replica is elected; the replica of Switchboard is cut off
    // from those slots meanwhile and serves their calls from memory.
    let mut cluster = Cluster::start();
    let servers = replicas_on(&cluster.url(), 1);
    let (master, replica) = cluster.pair();
    play_through_a_fault(
        "cluster master killed",
        &mut cluster,
        &servers[0],
        Seen::Outage,
        |cluster| cluster.nodes[master].kill(),
        |cluster| cluster.wait_taken_over(master, replica),
    )
    .await;
}

/// The name the sentinel monitors the master by.
const MASTER_NAME: &str = "mymaster";

/// A Sentinel group started by a test: a master (node 0 at the start), its replica (node 1),
/// and one sentinel watching them (quorum 1), which fails the master over once it has missed
/// it for a second.
#[derive(Debug)]
struct SentinelGroup {
    nodes: Vec<RedisServer>,
    sentinel: RedisServer,
    /// A port nothing listens on, given as the first sentinel of the URL: an unreachable
    /// sentinel is skipped.
    dead_sentinel: u16,
    /// `user:password@` of the URL, if the nodes have an ACL user for Switchboard.
    credentials: &'static str,
}

/// An ACL user of both nodes (the default user stays open, for the test's own reads).
const ACL_USER: &[&str] = &["--user", "app", "on", ">s3cret", "~*", "&*", "+@all"];

impl SentinelGroup {
    /// The master started with `master_args`, its replica in sync, and the sentinel aware of
    /// both.
    /// With `acl`, both nodes have the ACL user `app` (password `s3cret`), which the URL
    /// names.
    fn start(master_args: &[&str], acl: bool) -> Self {
        let acl_args = if acl { ACL_USER } else { &[] };
        let master = RedisServer::start_with(&[master_args, acl_args].concat());
        let replica = RedisServer::start_replica_of(&master, acl_args);
        let sentinel = RedisServer::start_sentinel(&format!(
            "sentinel monitor {MASTER_NAME} 127.0.0.1 {port} 1\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 5000\n",
            port = master.port()
        ));
        let group = Self {
            nodes: vec![master, replica],
            sentinel,
            dead_sentinel: switchboard_tests::spare_port(),
            credentials: if acl { "app:s3cret@" } else { "" },
        };
        group.wait_until("the replica is in sync and the sentinel knows it", |g| {
            g.nodes[1]
                .connect()
                .try_command(&["INFO", "replication"])
                .is_ok_and(|info| {
                    matches!(info, Resp::Bulk(Some(text))
                        if String::from_utf8_lossy(&text).contains("master_link_status:up"))
                })
                && g.sentinel_knows_replica()
        });
        group
    }

    /// `redis+sentinel://`, the ACL user's credentials if any, the unreachable sentinel
    /// first, then the real one.
    fn url(&self) -> String {
        format!(
            "redis+sentinel://{}127.0.0.1:{},127.0.0.1:{}/{MASTER_NAME}",
            self.credentials,
            self.dead_sentinel,
            self.sentinel.port()
        )
    }

    /// Whether the sentinel lists the replica, up (it can fail over to it).
    fn sentinel_knows_replica(&self) -> bool {
        let Ok(Resp::Array(Some(replicas))) =
            self.sentinel
                .connect()
                .try_command(&["SENTINEL", "REPLICAS", MASTER_NAME])
        else {
            return false;
        };
        replicas.iter().any(|replica| {
            let Resp::Array(Some(fields)) = replica else {
                return false;
            };
            let text: Vec<String> = fields
                .iter()
                .map(|f| match f {
                    Resp::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
                    other => format!("{other:?}"),
                })
                .collect();
            let field = |name: &str| {
                text.iter()
                    .position(|f| f == name)
                    .and_then(|at| text.get(at + 1))
            };
            field("port") == Some(&self.nodes[1].port().to_string())
                && field("flags").is_some_and(|flags| !flags.contains("down"))
                && field("master-link-status").is_some_and(|s| s == "ok")
        })
    }

    /// The port of the master the sentinel names.
    fn named_master(&self) -> Option<u16> {
        let mut con = RedisConnection::open(self.sentinel.port()).ok()?;
        let Resp::Array(Some(address)) = con
            .try_command(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME])
            .ok()?
        else {
            return None;
        };
        match address.as_slice() {
            [_, Resp::Bulk(Some(port))] => String::from_utf8_lossy(port).parse().ok(),
            _ => None,
        }
    }

    /// The node the sentinel names, if it is a master.
    fn master(&self) -> Option<usize> {
        let port = self.named_master()?;
        let node = self.nodes.iter().position(|n| n.port() == port)?;
        (role_of(&self.nodes[node]) == Some(Role::Master)).then_some(node)
    }

    fn wait_until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "the Sentinel group: not within 30 s: {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the sentinel names the replica, and it is a master. (The old master, if it
    /// lives, is turned into a replica only when the sentinel next looks at it, seconds later;
    /// meanwhile it still says it is a master.)
    fn wait_failed_over(&self) {
        let started = Instant::now();
        self.wait_until("the replica took over", |g| g.master() == Some(1));
        eprintln!(
            "sentinel: node 1 (port {}) had taken over {:.1?} after the failover began (at most)",
            self.nodes[1].port(),
            started.elapsed() + FAULT
        );
    }
}

impl Storage for SentinelGroup {
    fn records<'a>(&self, sessions: impl Iterator<Item = &'a str>) -> Vec<Option<Record>> {
        let master = self.master().expect("the sentinel names a master");
        let mut con = self.nodes[master].connect();
        sessions.map(|s| stored(&mut con, s)).collect()
    }

    fn keys(&self) -> i64 {
        keys_stored(&self.nodes[self.master().expect("the sentinel names a master")])
    }

    fn may_lose_the_last_write(&self) -> bool {
        true
    }
}

/// After a Sentinel failover: the replica logged the master it started with and the change to
/// the new one (addresses, no password), and a call begun now is stored on the new master.
async fn check_follows_the_new_master(group: &SentinelGroup, server: &Server) {
    let (old, new) = (group.nodes[0].port(), group.nodes[1].port());
    let lost = server
        .log()
        .iter()
        .filter(|l| l.contains("Redis holds an older state"))
        .count();
    eprintln!("sentinel: {lost} sessions written over a state Redis had lost");
    assert!(
        server.wait_for_log("Redis master named by Sentinel", Duration::from_secs(1)),
        "the first master is logged: {:?}",
        server.log()
    );
    let log = server.log();
    let named = log
        .iter()
        .find(|l| l.contains("Redis master named by Sentinel"))
        .expect("logged");
    assert!(named.contains(&format!("127.0.0.1:{old}")), "{named}");
    let changed = log
        .iter()
        .find(|l| l.contains("Redis master changed"))
        .unwrap_or_else(|| panic!("the change of master is logged: {log:?}"));
    assert!(
        changed.contains(&format!("127.0.0.1:{new}")) && changed.contains(&format!("{old}")),
        "{changed}"
    );
    assert_eq!(group.master(), Some(1), "node 1 is the master now");

    // Writes land on the new master.
    let balancer = Balancer::new(&[server]);
    let mut played = Played::new(&ROUTES[0]);
    played.advance_on(&balancer, 0).await;
    let record = stored(&mut group.nodes[1].connect(), &played.call.session)
        .expect("the new call's state is on the new master");
    played.check_stored(&record, 1);
    let (_, reply) = balancer.webhook(played.call.summary("COMPLETED")).await;
    assert_eq!(reply.status, 200);

    if !group.credentials.is_empty() {
        // Switchboard talks to the new master as the URL's ACL user, and never logs its
        // password.
        let Resp::Bulk(Some(clients)) = group.nodes[1].command(&["CLIENT", "LIST"]) else {
            panic!("CLIENT LIST answered no text");
        };
        assert!(
            String::from_utf8_lossy(&clients).contains("user=app"),
            "no client of the new master is the ACL user app: {}",
            String::from_utf8_lossy(&clients)
        );
        let log = server.log();
        assert!(
            !log.iter().any(|line| line.contains("s3cret")),
            "the password is logged: {log:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_under_load_follows_the_new_master_and_loses_no_step() {
    // SENTINEL FAILOVER: the sentinel promotes the replica (REPLICAOF NO ONE) and, a moment
    // later, names it; it turns the old master into a replica only seconds after that. The
    // master is run as the store's documentation asks for a failover that loses no write,
    // min-replicas-to-write 1: it refuses writes (NOREPLICAS, Redis away for the store) from
    // the moment its replica leaves it, so nothing is written to it after the promotion.
    let mut group = SentinelGroup::start(
        &[
            "--min-replicas-to-write",
            "1",
            "--min-replicas-max-lag",
            "10",
        ],
        false,
    );
    let servers = replicas_on(&group.url(), 1);
    play_through_a_fault(
        "sentinel failover",
        &mut group,
        &servers[0],
        Seen::Outage,
        |group| {
            assert_eq!(
                group
                    .sentinel
                    .command(&["SENTINEL", "FAILOVER", MASTER_NAME]),
                Resp::Simple("OK".to_owned())
            );
        },
        |group| group.wait_failed_over(),
    )
    .await;
    check_follows_the_new_master(&group, &servers[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_master_killed_under_load_fails_over_and_loses_no_step() {
    // SIGKILL the master: the sentinel names no master once it has missed it for a second (it
    // flags it down), then promotes the replica and names it; the replica of Switchboard
    // serves from memory meanwhile, asking the sentinels at each probe. Switchboard logs in
    // as an ACL user of the nodes.
    let mut group = SentinelGroup::start(&[], true);
    let servers = replicas_on(&group.url(), 1);
    play_through_a_fault(
        "sentinel master killed",
        &mut group,
        &servers[0],
        Seen::Outage,
        |group| group.nodes[0].kill(),
        |group| group.wait_failed_over(),
    )
    .await;
    check_follows_the_new_master(&group, &servers[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_the_old_master_hides_is_followed_without_an_outage() {
    // Without min-replicas-to-write the old master goes on taking writes after the promotion,
    // until the sentinel turns it into a replica (8 s or more later): no command fails, and
    // only the store's once-a-second check of the sentinels finds the new master. No load
    // here, so nothing is written to the old master meanwhile.
    let group = SentinelGroup::start(&[], false);
    let servers = replicas_on(&group.url(), 1);
    wait_ready(&servers, 200, Duration::from_secs(10)).await;
    let balancer = Balancer::new(&[&servers[0]]);
    let mut before = Played::new(&ROUTES[0]);
    before.advance_on(&balancer, 0).await;
    assert!(
        stored(&mut group.nodes[0].connect(), &before.call.session).is_some(),
        "the first call is stored on the first master"
    );

    assert_eq!(
        group
            .sentinel
            .command(&["SENTINEL", "FAILOVER", MASTER_NAME]),
        Resp::Simple("OK".to_owned())
    );
    tokio::task::block_in_place(|| group.wait_failed_over());
    assert!(
        servers[0].wait_for_log("Redis master changed", Duration::from_secs(10)),
        "the replica follows the new master: {:?}",
        servers[0].log()
    );
    let log = servers[0].log();
    let changed = log
        .iter()
        .position(|l| l.contains("Redis master changed"))
        .expect("logged");
    assert!(
        !log[..changed]
            .iter()
            .any(|l| l.contains("Redis is unreachable")),
        "no outage before the change was found: {log:?}"
    );
    eprintln!(
        "sentinel: the old master says it is {:?} when the change is found",
        role_of(&group.nodes[0])
    );

    // Writes land on the new master; the call begun before goes on there.
    let mut after = Played::new(&ROUTES[0]);
    after.advance_on(&balancer, 0).await;
    let record = stored(&mut group.nodes[1].connect(), &after.call.session)
        .expect("the call begun after the failover is stored on the new master");
    after.check_stored(&record, 1);
    before.advance_on(&balancer, 0).await;
    let record = stored(&mut group.nodes[1].connect(), &before.call.session)
        .expect("the call begun before the failover is stored on the new master");
    before.check_stored(&record, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_sentinel_url_is_refused_at_start_and_an_unknown_master_is_not_ready() {
    // Mistakes in the URL: refused at start (exit 2), in a sentence, the password masked.
    for (url, problem) in [
        (
            "rediss+sentinel://:pw0rd@127.0.0.1:26379/mymaster",
            "not supported",
        ),
        ("redis+sentinel://:pw0rd@127.0.0.1:26379", "names no master"),
        (
            "redis+sentinel://127.0.0.1:26379/mymaster/zero",
            "not a number",
        ),
        ("redis+sentinel://127.0.0.1:notaport/mymaster", "malformed"),
    ] {
        let (code, _, stderr) = switchboard_tests::run(&["serve", "--redis", url], &[]);
        assert_eq!(code, Some(2), "{url}: {stderr}");
        assert!(stderr.contains(problem), "{url}: {stderr}");
        assert!(!stderr.contains("pw0rd"), "{url}: {stderr}");
        assert!(!stderr.contains("panicked"), "{url}: {stderr}");
    }

    // A master name the sentinels do not know: the replica starts, is not ready, and says why.
    let group = SentinelGroup::start(&[], false);
    let url = format!(
        "redis+sentinel://127.0.0.1:{}/no-such-master",
        group.sentinel.port()
    );
    let servers = replicas_on(&url, 1);
    assert!(
        servers[0].wait_for_log("Redis is unreachable", Duration::from_secs(10)),
        "{:?}",
        servers[0].log()
    );
    let reply = servers[0].http().get("/readyz", None).await;
    assert_eq!(
        reply.status,
        503,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(
        servers[0]
            .log()
            .iter()
            .any(|l| l.contains("no-such-master") && l.contains("not found")),
        "the log names the master and the sentinels' answer: {:?}",
        servers[0].log()
    );
}
