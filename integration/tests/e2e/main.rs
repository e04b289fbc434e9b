//! The end-to-end suites, linked into one test binary: one link instead of one per file
//! (the CI machine's disk and time), and one sandbox PostgreSQL shared by every suite.
//!
//! `telemetry.rs` and `observability.rs` stay binaries of their own: each installs the
//! process-global tracing subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attacks;
mod auth;
mod differential;
mod direct;
mod drivers;
mod enforce;
mod hostile;
mod jwks_https;
mod jwt;
mod limits;
mod load;
mod pool;
mod relay;
mod rotation;
mod upstream_auth;
