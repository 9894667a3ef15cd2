//! The end-to-end suite: the real `switchboard` binary, real plugins, real
//! sockets. One test binary with a module per PROTOCOL.md section or
//! concern, so the suite links once.

mod admin;
mod auth;
mod backpressure;
mod cluster;
mod custom_events;
mod demo;
mod envelope;
mod example_plugins;
mod host_parity;
mod hostile;
mod hot_swap;
mod js_rooms;
mod lifecycle;
mod limits;
mod metrics;
mod plugin_check;
mod plugin_faults;
mod plugin_output;
mod recording;
mod resume;
mod rollout;
mod rooms;
mod sandbox;
mod signaling;
mod soak;
mod transport;
