//! The demo shop: its schema and data (`sql/demo.sql`), its database roles, and loading them
//! into a cluster. What each role may do upstream is documented at the top of the SQL file.

use crate::{Cluster, SandboxError};

/// The demo schema, data, roles and grants.
pub const DEMO_SQL: &str = include_str!("../sql/demo.sql");

/// The database the demo schema is loaded into.
pub const DEMO_DATABASE: &str = "shop";

/// An empty database owned by `pgbench_user`, for `pgbench -i`.
pub const BENCH_DATABASE: &str = "bench";

/// A PostgreSQL login role the demo creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoUser {
    pub name: &'static str,
    pub purpose: &'static str,
}

/// Every demo login role. `load_demo` lets pgward's certificate log in as each of them.
pub const DEMO_USERS: &[DemoUser] = &[
    DemoUser {
        name: "app_readonly",
        purpose: "SELECT on the shop's tables and view",
    },
    DemoUser {
        name: "app_support",
        purpose: "read the shop, update orders.status and orders.note",
    },
    DemoUser {
        name: "app_rw",
        purpose: "the application: DML on the shop's tables, EXECUTE place_order",
    },
    DemoUser {
        name: "migrator",
        purpose: "owns the shop's objects (DDL)",
    },
    DemoUser {
        name: "pgbench_user",
        purpose: "owns the bench database",
    },
    DemoUser {
        name: "pgward_catalog",
        purpose: "pgward's catalog reader: metadata only, no table privileges",
    },
];

impl Cluster {
    /// Creates the `shop` database with the demo schema and roles, the `bench` database,
    /// and the pg_ident lines that let pgward's certificate log in as each demo role.
    /// Does nothing if `shop` already exists.
    pub fn load_demo(&self) -> Result<(), SandboxError> {
        let exists = self.psql_admin(&format!(
            "SELECT 1 FROM pg_database WHERE datname = '{DEMO_DATABASE}'"
        ))?;
        if exists == "1" {
            return Ok(());
        }
        self.psql_admin(&format!("CREATE DATABASE {DEMO_DATABASE}"))?;
        self.psql_admin_in(DEMO_DATABASE, DEMO_SQL)?;
        self.psql_admin(&format!(
            "CREATE DATABASE {BENCH_DATABASE} OWNER pgbench_user"
        ))?;
        let names: Vec<&str> = DEMO_USERS.iter().map(|u| u.name).collect();
        self.allow_proxy_logins(&names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_user_is_created_by_the_sql() {
        for user in DEMO_USERS {
            let create = format!("CREATE ROLE {} LOGIN;", user.name);
            assert!(DEMO_SQL.contains(&create), "{create} missing from demo.sql");
        }
        let created = DEMO_SQL.matches("CREATE ROLE ").count();
        assert_eq!(
            created,
            DEMO_USERS.len(),
            "demo.sql creates a role DEMO_USERS lacks"
        );
    }
}
