//! `serve --demo`: the call page, its scripts and the dev tokens it signs
//! in with; and none of it without the flag (PROTOCOL.md: any path but
//! `/ws` is 404).

use std::path::Path;

use serde_json::json;
use switchboard_e2e::admin::Admin;
use switchboard_e2e::{Client, Server};

const PAGES: [&str; 4] = [
    "/demo",
    "/demo/call.js",
    "/demo/switchboard.js",
    "/demo/token",
];

/// A file of the JavaScript client as the repository holds it.
fn client_file(path: &str) -> Vec<u8> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../clients/js")
        .join(path);
    std::fs::read(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()))
}

#[tokio::test]
async fn without_the_flag_there_is_no_demo() {
    let server = Server::start_default().await;
    let http = Admin::new(server.addr(), None);
    for page in PAGES {
        assert_eq!(http.get(page).await.status, 404, "GET {page}");
    }
}

#[tokio::test]
async fn the_demo_serves_the_page_and_the_built_client() {
    let server = Server::builder("").arg("--demo").start().await;
    let http = Admin::new(server.addr(), None);
    for (page, file, content_type) in [
        ("/demo", "demo/index.html", "text/html; charset=utf-8"),
        (
            "/demo/call.js",
            "demo/call.js",
            "text/javascript; charset=utf-8",
        ),
        (
            "/demo/switchboard.js",
            "dist/switchboard.js",
            "text/javascript; charset=utf-8",
        ),
    ] {
        let response = http.get(page).await;
        assert_eq!(response.status, 200, "GET {page}: {response}");
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "GET {page}"
        );
        assert_eq!(response.body, client_file(file), "GET {page} is not {file}");
    }
    assert_eq!(http.post("/demo").await.status, 405);
    assert_eq!(http.get("/demo/other.js").await.status, 404);
    assert_eq!(http.get("/demo/").await.status, 404);
}

#[tokio::test]
async fn each_demo_token_signs_in_a_new_guest() {
    let server = Server::builder("").arg("--demo").start().await;
    let http = Admin::new(server.addr(), None);
    let mut users = Vec::new();
    for _ in 0..2 {
        let response = http.get("/demo/token").await;
        assert_eq!(response.status, 200, "{response}");
        assert_eq!(response.header("cache-control"), Some("no-store"));
        let issued = response.json();
        let user = issued["user"].as_str().expect("a user").to_owned();
        assert!(user.starts_with("guest-"), "{issued}");
        let mut client = Client::connect(&server).await;
        let answer = client.auth(json!({ "token": issued["token"] })).await;
        assert_eq!(answer["success"], true, "{answer}");
        assert_eq!(answer["userId"], user.as_str(), "{answer}");
        users.push(user);
    }
    assert_ne!(users[0], users[1], "two tabs are two guests");
}
