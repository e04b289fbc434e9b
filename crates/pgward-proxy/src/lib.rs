//! pgward-proxy: listener, client TLS and authentication, upstream mutual TLS, the
//! relay and its enforcement gate, cancel, limits and reload.
//!
//! Never forwards a statement upstream without a `Permit` (see `gate`); never panics
//! on anything a client or the network sends.

pub mod auth;
pub mod cancel;
pub mod catalog;
pub mod config;
pub mod conn;
pub mod deps;
pub mod encoding;
pub mod enforce;
pub mod error;
pub mod frame;
pub mod gate;
pub mod handshake;
pub mod jwks;
pub mod jwt;
pub mod limits;
pub mod observe;
pub mod pinning;
pub mod pool;
pub mod relay;
pub mod reload;
pub mod secret;
pub mod server;
pub mod session;
pub mod startup;
pub mod tls;
pub mod upstream;
pub mod users;

pub use config::Config;
pub use deps::Deps;
pub use server::run;
