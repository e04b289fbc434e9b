//! pgward-policy's integration tests, linked into one test binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod cache;
mod decisions;
mod functions;
mod grants;
mod load;
mod property;
