//! Each subcommand against the native baseline, started in this process
//! on a free port: the generator and the baseline agree on the protocol.
//! Only counts are checked, never timings.

use std::sync::Arc;
use std::time::Duration;

use switchboard_baseline::Server;
use switchboard_bench::client::Connector;
use switchboard_bench::{churn, idle, relay, stampede};
use tokio::net::TcpListener;

const SECRET: &[u8] = b"test-secret";

/// The baseline's URL.
async fn start_baseline() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    tokio::spawn(Arc::new(Server::new(SECRET.to_vec())).accept(listener));
    url
}

async fn baseline() -> Arc<Connector> {
    Arc::new(
        Connector::new(&start_baseline().await, SECRET)
            .await
            .unwrap(),
    )
}

fn count(report: &switchboard_bench::Report, field: &str) -> u64 {
    report.json[field].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_windowed_and_paced_deliver_everything() {
    let connector = baseline().await;
    for rate in [None, Some(20.0)] {
        let args = relay::Args {
            rooms: 2,
            clients_per_room: 3,
            duration: Duration::from_millis(300),
            rate,
            window: 8,
            messages: None,
        };
        let report = relay::run(
            std::slice::from_ref(&connector),
            &args,
            &[std::process::id()],
        )
        .await
        .unwrap();
        assert_eq!(count(&report, "errors"), 0, "{}", report.json);
        assert_eq!(count(&report, "clients"), 6);
        assert!(count(&report, "delivered") > 0, "{}", report.json);
        assert_eq!(count(&report, "undelivered"), 0, "{}", report.json);
    }
}

/// A message count ends each client's sending well before the duration
/// does, with every message sent and delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_with_a_message_count_sends_exactly_that_many() {
    let connector = baseline().await;
    let args = relay::Args {
        rooms: 2,
        clients_per_room: 2,
        duration: Duration::from_secs(600),
        rate: None,
        window: 4,
        messages: Some(25),
    };
    let report = relay::run(std::slice::from_ref(&connector), &args, &[])
        .await
        .unwrap();
    assert_eq!(count(&report, "errors"), 0, "{}", report.json);
    assert_eq!(count(&report, "sent"), 4 * 25, "{}", report.json);
    assert_eq!(count(&report, "delivered"), 4 * 25, "{}", report.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_holds_every_client() {
    let connector = baseline().await;
    let args = idle::Args {
        clients: 10,
        first: 0,
        room_size: 4,
        hold: Duration::from_millis(50),
        procs: 1,
    };
    let report = idle::run(&connector, &args, std::process::id())
        .await
        .unwrap();
    assert_eq!(count(&report, "connected"), 10, "{}", report.json);
    assert_eq!(count(&report, "dropped_while_idle"), 0);
}

/// The binary itself, splitting its clients over two processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_over_several_processes_holds_every_client() {
    let url = start_baseline().await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-bench"))
        .args(["--url", &url, "idle", "--clients", "9", "--procs", "2"])
        .args(["--hold", "0.05", "--pid", &std::process::id().to_string()])
        .env(
            "SWITCHBOARD_JWT_SECRET",
            std::str::from_utf8(SECRET).unwrap(),
        )
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["connected"], 9, "{report}");
    assert_eq!(report["procs"], 2);
    assert_eq!(report["dropped_while_idle"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_completes_cycles_without_errors() {
    let connector = baseline().await;
    for (fresh_rooms, abrupt) in [(false, false), (true, true)] {
        let args = churn::Args {
            duration: Duration::from_millis(300),
            concurrency: 2,
            fresh_rooms,
            abrupt,
            cycles: None,
        };
        let report = churn::run(Arc::clone(&connector), &args, None)
            .await
            .unwrap();
        assert_eq!(count(&report, "errors"), 0, "{}", report.json);
        assert!(count(&report, "cycles") > 0, "{}", report.json);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stampede_joins_every_client_and_times_each() {
    let connector = baseline().await;
    let args = stampede::Args {
        clients: 50,
        room_size: 4,
    };
    let report = stampede::run(connector, &args, None).await.unwrap();
    assert_eq!(count(&report, "errors"), 0, "{}", report.json);
    assert_eq!(count(&report, "joined"), 50, "{}", report.json);
    let p99 = report.json["time_to_joined_us"]["p99"].as_u64().unwrap();
    assert!(p99 > 0, "{}", report.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_fails_setup_with_the_reason() {
    let wrong = Connector::new(&start_baseline().await, b"wrong")
        .await
        .unwrap();
    let args = relay::Args {
        rooms: 1,
        clients_per_room: 2,
        duration: Duration::from_millis(50),
        rate: None,
        window: 1,
        messages: None,
    };
    let error = relay::run(std::slice::from_ref(&wrong), &args, &[])
        .await
        .err()
        .unwrap();
    assert!(format!("{error:#}").contains("auth failed"), "{error:#}");
}
