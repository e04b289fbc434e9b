//! Lexing traps, identifiers and schema tricks: what PostgreSQL reads is what is checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common;
use common::*;

#[test]
fn quoted_and_unicode_identifiers() {
    has(
        "SELECT \"Id\", password FROM \"Mixed\"",
        &["select public.Mixed.Id", "select public.Mixed.password"],
    );
    err("SELECT id FROM \"Mixed\"", "column \"id\" does not exist");
    err("SELECT 1 FROM mixed", "relation \"mixed\" does not exist");
    err("SELECT 1 FROM Mixed", "relation \"mixed\" does not exist");
    // sqlparser alone reads this as `U & "p\0061ssword"`.
    exact(
        "SELECT U&\"p\\0061ssword\" FROM \"Mixed\"",
        &["select public.Mixed.password", "select any public.Mixed"],
    );
    has(
        "SELECT u&\"p\\0061ssword\" FROM \"Mixed\"",
        &["select public.Mixed.password"],
    );
    has(
        "SELECT U&\"p!0061ssword\" UESCAPE '!' FROM \"Mixed\"",
        &["select public.Mixed.password"],
    );
    has(
        "SELECT U&\"p!+000061ssword\" uescape '!' FROM \"Mixed\"",
        &["select public.Mixed.password"],
    );
    has(
        "SELECT U&\"\\0065mail\" FROM customers",
        &["select public.customers.email"],
    );
    has(
        "SELECT id FROM U&\"\\0063ustomers\"",
        &["select public.customers.id"],
    );
    has(
        "SELECT id FROM U&\"secr\\0065t\".customers",
        &["select secret.customers.id"],
    );
    has(
        "SELECT U&'\\0041' || email FROM customers",
        &["select public.customers.email"],
    );
    has(
        "SELECT U&'d!0061t!+000061' UESCAPE '!', email FROM customers",
        &["select public.customers.email"],
    );
    err(
        "SELECT U&\"\\0000\" FROM customers",
        "invalid Unicode escape",
    );
    err("SELECT U&\"\\00\" FROM customers", "invalid Unicode escape");
    err("SELECT U&\"\\D800\" FROM customers", "surrogate");
    err(
        "SELECT U&\"a\" UESCAPE '+' FROM customers",
        "escape character",
    );
    err(
        "SELECT U&\"a\" UESCAPE 'ab' FROM customers",
        "escape character",
    );
    err("SELECT \"\" FROM customers", "zero-length");
    // Identifiers are truncated to 63 bytes, as PostgreSQL does.
    let long = format!("email{}", "x".repeat(70));
    err(
        &format!("SELECT {long} FROM customers"),
        &format!("column \"{}\"", &long[..63]),
    );
}

#[test]
fn comments_hide_what_postgresql_hides() {
    exact(
        "SELECT id FROM customers -- , email",
        &["select public.customers.id", "select any public.customers"],
    );
    lacks(
        "SELECT id /*, email */ FROM customers",
        &["select public.customers.email"],
    );
    lacks(
        "SELECT id /* /* */ , email */ FROM customers",
        &["select public.customers.email"],
    );
    has(
        "SELECT id /* /* */ */ , email FROM customers",
        &["select public.customers.email"],
    );
    // PostgreSQL ends a -- comment at a carriage return too.
    has(
        "SELECT id --x\r, email FROM customers",
        &["select public.customers.email"],
    );
    has(
        "SELECT id -- /* not a block\n, email FROM customers",
        &["select public.customers.email"],
    );
    has(
        "SELECT /* -- */ email FROM customers",
        &["select public.customers.email"],
    );
    err("SELECT id /* unterminated FROM customers", "unterminated");
    err("SELECT id /* /* */ FROM customers", "unterminated");
}

#[test]
fn strings_hide_what_postgresql_hides() {
    // standard_conforming_strings=on: backslash is ordinary, the string is `a\`.
    has(
        "SELECT 'a\\', email FROM customers",
        &["select public.customers.email"],
    );
    // E'' strings: \' escapes the quote, so everything is inside the string.
    lacks(
        "SELECT E'a\\', email' FROM customers",
        &["select public.customers.email"],
    );
    has(
        "SELECT E'a\\\\', email FROM customers",
        &["select public.customers.email"],
    );
    lacks(
        "SELECT 'it''s, email' FROM customers",
        &["select public.customers.email"],
    );
    lacks(
        "SELECT $x$ $y$ , email $x$ FROM customers",
        &["select public.customers.email"],
    );
    has(
        "SELECT $x$a$x$, email FROM customers",
        &["select public.customers.email"],
    );
    lacks(
        "SELECT $$ ' $$, id FROM customers",
        &["select public.customers.email"],
    );
    has(
        "SELECT $$ ' $$, email FROM customers",
        &["select public.customers.email"],
    );
    has(
        "SELECT N'x', X'1F', B'0101', email FROM customers",
        &["select public.customers.email"],
    );
    err("SELECT 'abc FROM customers", "unterminated");
    err("SELECT $q$abc FROM customers", "unterminated dollar");
}

#[test]
fn lexer_disagreements_are_denied() {
    // sqlparser reads `-/*` differently from PostgreSQL (operator `-` then a comment).
    err("SELECT 1 -/* c */ 2", "lexer disagreement");
    err(
        "SELECT id -/* x */ 1, email FROM customers",
        "lexer disagreement",
    );
    // Numbers followed by letters: PostgreSQL 15+ rejects, older servers read an alias.
    err("SELECT 1email FROM customers", "trailing junk");
    err("SELECT 0x1F", "trailing junk");
    err("SELECT $1abc", "trailing junk");
    err("SELECT 1\0", "NUL");
}

#[test]
fn schema_and_search_path_tricks() {
    // Unqualified names use the pinned search_path (public), never the secret schema.
    err(
        "SELECT ssn FROM customers",
        "column \"ssn\" does not exist in public.customers",
    );
    has(
        "SELECT ssn FROM secret.customers",
        &["select secret.customers.ssn"],
    );
    has(
        "SELECT ssn FROM \"secret\".\"customers\"",
        &["select secret.customers.ssn"],
    );
    has(
        "SELECT ssn FROM SECRET.CUSTOMERS",
        &["select secret.customers.ssn"],
    );
    err("SELECT ssn FROM \"SECRET\".customers", "does not exist");
    has(
        "SELECT c.ssn FROM secret.customers c JOIN public.customers p ON p.id = c.id",
        &["select secret.customers.ssn", "select public.customers.id"],
    );
    has(
        "SELECT secret.customers.ssn FROM secret.customers",
        &["select secret.customers.ssn"],
    );
    err(
        "SELECT secret.customers.ssn FROM customers",
        "missing FROM-clause entry",
    );
    // pg_catalog is searched first, whatever the search_path.
    has(
        "SELECT relname FROM pg_class",
        &["select pg_catalog.pg_class.relname"],
    );
    has(
        "SELECT relname FROM \"pg_catalog\".pg_class",
        &["select pg_catalog.pg_class.relname"],
    );
    // set_config cannot sneak in a search_path change unnoticed.
    has(
        "SELECT set_config('search_path', 'secret', false)",
        &["call pg_catalog.set_config"],
    );
    has(
        "SELECT pg_catalog.set_config('role', 'admin', false)",
        &["call pg_catalog.set_config"],
    );
}
