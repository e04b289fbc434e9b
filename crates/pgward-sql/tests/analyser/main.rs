//! pgward-sql's integration tests, linked into one test binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod dml;
mod lexing;
mod pg_query_superset;
mod schema_file;
mod select;
mod shape;
mod statements;
