//! Sub-flows, A/B splits and prompts per language through the real binary, with the bundled
//! `clinic` flow and its `verify` sub-flow: over two replicas sharing a real Redis, in the
//! funnel of the admin API, and across a reload.

use std::path::{Path, PathBuf};

use switchboard_tests::{Answer, Call, RedisServer, Server, uuid};

const CLINIC: &str = "+6568880003";
const ADMIN: &str = "t0k";

fn flows_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../flows")
}

fn voice(answer: &Answer, action: &str) -> String {
    answer.params(action).unwrap()["voiceProfile"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn flow_of(answer: &Answer) -> String {
    answer
        .action_id()
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_spanish_call_verifies_in_the_subflow_across_two_replicas_and_is_transferred() {
    let redis = RedisServer::start();
    let url = redis.url();
    let prefix = format!("live-{}", uuid());
    let start = || {
        Server::start(&[
            "--redis",
            &url,
            "--redis-prefix",
            &prefix,
            "--admin-token",
            ADMIN,
        ])
    };
    let (a, b) = (start(), start());
    let (a, b) = (a.http(), b.http());
    let mut call = Call::new(CLINIC);

    let welcome = call.start(&a).await;
    assert_eq!(welcome.node().as_deref(), Some("choose_language"));
    assert!(
        welcome.spoken().contains("Para español"),
        "{}",
        welcome.spoken()
    );

    // Spanish, on the other replica: the greeting (one branch of the split) and the menu, in
    // Spanish and the Spanish voice.
    let menu = call.press(&b, Some("2")).await;
    assert_eq!(menu.node().as_deref(), Some("main"));
    let spoken = menu.spoken();
    assert!(
        spoken.starts_with("Gracias por llamar") || spoken.starts_with("Clínica Harbour."),
        "{spoken}"
    );
    assert!(spoken.contains("Para cambiar una cita"), "{spoken}");
    assert_eq!(voice(&menu, "say"), "es-ES-ElviraNeural");
    assert_eq!(voice(&menu, "sayAndCapture"), "es-ES-ElviraNeural");
    assert_eq!(menu.params("sayAndCapture").unwrap()["speed"], 0.95);

    // Into the sub-flow: its node, named with its flow, stored with the call stack in Redis
    // and picked up by the first replica.
    let patient = call.press(&a, Some("1")).await;
    assert_eq!(flow_of(&patient), "verify");
    assert_eq!(patient.node().as_deref(), Some("patient_id"));
    assert!(
        patient.spoken().contains("número de paciente"),
        "{}",
        patient.spoken()
    );
    let birth = call.press(&b, Some("123456")).await;
    assert_eq!(birth.node().as_deref(), Some("birth_date"));

    // Back in the caller: the branch on what the sub-flow set, then the transfer.
    let desk = call.press(&a, Some("31121980")).await;
    assert_eq!(flow_of(&desk), "clinic");
    assert_eq!(desk.node().as_deref(), Some("desk"));
    assert_eq!(desk.actions(), ["say", "makeCall"]);
    assert!(
        desk.spoken().contains("Le comunicamos"),
        "{}",
        desk.spoken()
    );
    assert_eq!(
        desk.params("makeCall").unwrap()["destination"],
        "+6531589338"
    );

    // The admin view of the session shows where it is and what it holds.
    let view = a
        .get(&format!("/v1/sessions/{}", call.session), Some(ADMIN))
        .await;
    assert_eq!(view.status, 200, "{}", String::from_utf8_lossy(&view.body));
    let text = String::from_utf8_lossy(&view.body).to_string();
    assert!(text.contains("\"verified\":\"yes\""), "{text}");
    call.transfer_result(&b, 200).await;
    call.end(&b, "COMPLETED").await;
}

#[tokio::test]
async fn split_branches_and_subflow_nodes_land_in_the_funnel() {
    let server = Server::start(&["--admin-token", ADMIN]);
    let http = server.http();
    const CALLS: u64 = 24;
    for _ in 0..CALLS {
        let mut call = Call::new(CLINIC);
        call.start(&http).await;
        call.press(&http, Some("1")).await;
        let patient = call.press(&http, Some("1")).await;
        assert_eq!(patient.node().as_deref(), Some("patient_id"));
        call.end(&http, "COMPLETED").await;
    }
    let report = http
        .get("/v1/flows/clinic/report", Some(ADMIN))
        .await
        .json();
    let visits = |report: &serde_json::Value, node: &str| {
        report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == node)
            .unwrap_or_else(|| panic!("no node {node} in {report}"))["visits"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(visits(&report, "greeting_test"), CALLS);
    let (long, short) = (
        visits(&report, "greeting_long"),
        visits(&report, "greeting_short"),
    );
    assert_eq!(long + short, CALLS, "{report}");
    // 50/50 over 24 random session ids: both branches are taken (all one way: 1 in 8 million).
    assert!(long > 0 && short > 0, "{long} / {short}");
    assert_eq!(visits(&report, "verify_patient"), CALLS);
    // The sub-flow's nodes count under the sub-flow, where the calls also ended.
    let verify = http
        .get("/v1/flows/verify/report", Some(ADMIN))
        .await
        .json();
    assert_eq!(visits(&verify, "patient_id"), CALLS, "{verify}");
    let exits = verify["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "patient_id")
        .unwrap()["exits"]
        .as_u64();
    assert_eq!(exits, Some(CALLS), "{verify}");
}

fn copy_flows(dir: &Path) {
    for name in ["clinic.yaml", "verify.yaml"] {
        std::fs::copy(flows_dir().join(name), dir.join(name)).unwrap();
    }
}

#[tokio::test]
async fn a_call_inside_a_subflow_finishes_on_its_versions_after_a_reload() {
    let dir = std::env::temp_dir().join(format!("switchboard-live-{}", uuid()));
    std::fs::create_dir_all(&dir).unwrap();
    copy_flows(&dir);
    let server = Server::start(&["--flows", dir.to_str().unwrap(), "--admin-token", ADMIN]);
    let http = server.http();
    let mut call = Call::new(CLINIC);
    call.start(&http).await;
    call.press(&http, Some("1")).await;
    let patient = call.press(&http, Some("1")).await;
    assert_eq!(patient.node().as_deref(), Some("patient_id"));

    // Both flows change: the sub-flow's next prompt and the caller's transfer target.
    let verify = std::fs::read_to_string(dir.join("verify.yaml"))
        .unwrap()
        .replace("Now enter your date of birth", "Your birthday, please");
    std::fs::write(dir.join("verify.yaml"), verify).unwrap();
    let clinic = std::fs::read_to_string(dir.join("clinic.yaml"))
        .unwrap()
        .replace("+6531589338", "+6531580000");
    std::fs::write(dir.join("clinic.yaml"), clinic).unwrap();
    let reload = http
        .send(
            "POST",
            "/v1/flows/reload",
            &[("authorization", "Bearer t0k")],
            "",
        )
        .await;
    assert_eq!(
        reload.status,
        200,
        "{}",
        String::from_utf8_lossy(&reload.body)
    );

    // A new call gets the new versions ...
    let mut fresh = Call::new(CLINIC);
    fresh.start(&http).await;
    fresh.press(&http, Some("1")).await;
    fresh.press(&http, Some("1")).await;
    let birth = fresh.press(&http, Some("123456")).await;
    assert!(
        birth.spoken().starts_with("Your birthday"),
        "{}",
        birth.spoken()
    );

    // ... and the call inside the sub-flow finishes on the versions it was on.
    let birth = call.press(&http, Some("123456")).await;
    assert!(
        birth.spoken().starts_with("Now enter your date of birth"),
        "{}",
        birth.spoken()
    );
    let desk = call.press(&http, Some("01021990")).await;
    assert_eq!(
        desk.params("makeCall").unwrap()["destination"],
        "+6531589338"
    );

    // A sub-flow call the new files break is refused with its file and line; the old flows
    // keep serving.
    let clinic = std::fs::read_to_string(dir.join("clinic.yaml"))
        .unwrap()
        .replace("start: patient_id", "start: patient");
    std::fs::write(dir.join("clinic.yaml"), clinic).unwrap();
    let broken = http
        .send(
            "POST",
            "/v1/flows/reload",
            &[("authorization", "Bearer t0k")],
            "",
        )
        .await;
    assert_eq!(broken.status, 422);
    let first = broken.json()["error"]["diagnostics"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        first.contains("clinic.yaml:") && first.contains("subflow starts at node 'patient'"),
        "{first}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
