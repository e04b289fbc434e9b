//! The throwaway PostgreSQL cluster behind `pgward dev` and the integration tests: finds the
//! server binaries, makes a dev CA and certificates, runs initdb (as the `postgres` OS user
//! when we are root), starts the server with TLS on and client-certificate authentication as
//! the only way in, loads the demo schema, and removes it all again.
//!
//! It must never open a way into the cluster other than `hostssl ... cert`: no trust, no
//! password, no local socket logins.

mod binaries;
mod certs;
mod cluster;
mod conf;
mod demo;
mod error;
mod hba;
mod pgward_files;
mod psql;
mod runas;

pub use binaries::PgBinaries;
pub use certs::{CertPair, DevCa};
pub use cluster::{Cluster, ClusterOptions, DEFAULT_MAX_CONNECTIONS, PROXY_CN};
pub use demo::{DemoUser, BENCH_DATABASE, DEMO_DATABASE, DEMO_SQL, DEMO_USERS};
pub use error::SandboxError;
pub use hba::PasswordMethod;
pub use pgward_files::{demo_logins, DevAuth, DevLogin, PgwardFiles};
pub use psql::{conninfo_pair, run_psql, PsqlOutput};
