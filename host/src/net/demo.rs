//! `serve --demo`: a two-tab call page built on the JavaScript client SDK
//! (`clients/js`), and the dev tokens it signs in with. Off by default, so
//! a server answers 404 outside `/ws` as PROTOCOL.md says; on, anyone who
//! reaches the page gets a token, which is why it is for development only.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Response};
use serde_json::json;

use super::server::{Body, method_not_allowed};
use crate::plugins::unix_millis;
use crate::token::{self, Claims};

/// The page, its script, and the SDK it imports, built into the binary so
/// `--demo` works from a copied executable. `dist/switchboard.js` is the
/// SDK's committed build; the SDK's tests fail when it is stale.
const FILES: [(&str, &str, &str); 3] = [
    (
        "/demo",
        "text/html; charset=utf-8",
        include_str!("../../../clients/js/demo/index.html"),
    ),
    (
        "/demo/call.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../clients/js/demo/call.js"),
    ),
    (
        "/demo/switchboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../clients/js/dist/switchboard.js"),
    ),
];

const TOKEN_PATH: &str = "/demo/token";
/// Long enough for a demo call; a reload fetches a fresh one.
const TOKEN_TTL_SECS: u64 = 3600;

/// What `--demo` adds to the HTTP side.
pub(crate) struct Demo {
    /// Signs the tokens; the `auth-jwt` plugin verifies them with it.
    secret: String,
}

impl Demo {
    pub(crate) fn new(secret: String) -> Demo {
        Demo { secret }
    }

    /// The answer to a request for `path`, or `None` when the demo has
    /// nothing there.
    pub(crate) fn respond(&self, method: &Method, path: &str) -> Option<Response<Body>> {
        let file = FILES.iter().find(|(at, ..)| *at == path);
        if file.is_none() && path != TOKEN_PATH {
            return None;
        }
        if method != Method::GET {
            return Some(method_not_allowed());
        }
        Some(match file {
            Some((_, content_type, body)) => ok(content_type, Bytes::from_static(body.as_bytes())),
            None => self.token(),
        })
    }

    /// A fresh token for a made-up user, good for any room.
    fn token(&self) -> Response<Body> {
        let user = format!("guest-{:06x}", rand::random::<u32>() & 0xff_ffff);
        let claims = Claims {
            user: &user,
            room: None,
            role: None,
            ttl_secs: TOKEN_TTL_SECS,
        };
        let token = token::mint(self.secret.as_bytes(), &claims, unix_millis() / 1000);
        let body = json!({ "token": token, "user": user }).to_string();
        let mut response = ok("application/json", Bytes::from(body));
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

fn ok(content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
