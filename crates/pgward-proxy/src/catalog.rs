//! The upstream catalog, per database: schemas, relations (tables, partitions, views,
//! sequences, ...) with their columns, and function names by OID.
//!
//! Loaded over mutual TLS as `upstream.catalog_user` from pg_catalog (not
//! information_schema, which hides columns the catalog user has no privileges on). A
//! session waits only for the first load of its database; refreshes (on an interval and
//! after DDL) run in the background and swap the snapshot atomically.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use dashmap::DashMap;
use pgward_sql::{Catalog, RelKind};
use tokio::sync::Mutex;
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::{info, warn};

use crate::config::UpstreamConfig;

/// One loaded snapshot. `generation` is unique across all databases and loads, so a
/// decision cached against one snapshot is never reused against another.
pub struct LoadedCatalog {
    pub catalog: Catalog,
    pub generation: u64,
}

#[derive(Default)]
struct DbCatalog {
    current: ArcSwapOption<LoadedCatalog>,
    /// Serializes loads of one database.
    loading: Mutex<()>,
}

/// A session's view of its database's catalog: always the newest snapshot.
#[derive(Clone)]
pub struct CatalogHandle(Arc<DbCatalog>);

impl CatalogHandle {
    /// The current snapshot, borrowed for one decision: no reference count is touched
    /// (every session of a database shares the snapshot, so an `Arc` clone per statement
    /// would bounce one cache line between cores). Not to be held across an await.
    pub fn current(&self) -> arc_swap::Guard<Option<Arc<LoadedCatalog>>> {
        self.0.current.load()
    }
}

/// Catalogs of every database sessions have used.
pub struct CatalogStore {
    by_db: DashMap<String, Arc<DbCatalog>>,
    next_generation: AtomicU64,
    upstream: UpstreamConfig,
    /// Swapped on reload, so a rotated upstream client certificate reaches the catalog
    /// reader too.
    tls: arc_swap::ArcSwap<rustls::ClientConfig>,
}

const RELATIONS_SQL: &str = "\
SELECT n.nspname::text, c.relname::text, c.relkind::text,
       coalesce(array_agg(a.attname::text ORDER BY a.attnum)
                FILTER (WHERE a.attnum IS NOT NULL), '{}')
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_attribute a
         ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
 GROUP BY n.nspname, c.relname, c.relkind";

const SCHEMAS_SQL: &str = "SELECT nspname::text FROM pg_catalog.pg_namespace";

const FUNCTIONS_SQL: &str = "\
SELECT p.oid, n.nspname::text, p.proname::text
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace";

/// Why a catalog could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{0}")]
    Query(#[from] tokio_postgres::Error),
    #[error("unexpected relkind {relkind} for {schema}.{name}")]
    RelKind {
        relkind: String,
        schema: String,
        name: String,
    },
}

/// Reads schemas, relations (tables, partitioned tables, views, materialized views,
/// foreign tables, sequences) with their columns, and function names from pg_catalog
/// over an open connection. The one catalog reader: the proxy, `pgward check --dsn` and
/// the tests use it.
pub async fn read_catalog(client: &tokio_postgres::Client) -> Result<Catalog, CatalogError> {
    let mut catalog = Catalog::new();
    for row in client.query(SCHEMAS_SQL, &[]).await? {
        catalog.add_schema(row.try_get::<_, String>(0)?);
    }
    for row in client.query(RELATIONS_SQL, &[]).await? {
        let schema: String = row.try_get(0)?;
        let name: String = row.try_get(1)?;
        let relkind: String = row.try_get(2)?;
        let kind = match relkind.as_str() {
            "r" => RelKind::Table,
            "p" => RelKind::PartitionedTable,
            "v" => RelKind::View,
            "m" => RelKind::MaterializedView,
            "f" => RelKind::ForeignTable,
            "S" => RelKind::Sequence,
            _ => {
                return Err(CatalogError::RelKind {
                    relkind,
                    schema,
                    name,
                })
            }
        };
        catalog.add_relation(schema, name, kind, row.try_get::<_, Vec<String>>(3)?);
    }
    for row in client.query(FUNCTIONS_SQL, &[]).await? {
        let oid: u32 = row.try_get(0)?;
        catalog.add_function(
            oid,
            row.try_get::<_, String>(1)?,
            row.try_get::<_, String>(2)?,
        );
    }
    Ok(catalog)
}

impl CatalogStore {
    /// Uses `tls` for the catalog connections from now on (certificate rotation).
    pub fn set_tls(&self, tls: Arc<rustls::ClientConfig>) {
        self.tls.store(tls);
    }

    pub fn new(upstream: UpstreamConfig, tls: rustls::ClientConfig) -> Self {
        Self {
            by_db: DashMap::new(),
            next_generation: AtomicU64::new(1),
            upstream,
            tls: arc_swap::ArcSwap::from_pointee(tls),
        }
    }

    fn entry(&self, db: &str) -> Arc<DbCatalog> {
        self.by_db.entry(db.to_owned()).or_default().clone()
    }

    /// A cheap handle on `db`'s snapshots for a session (no map lookup per statement).
    pub fn handle(&self, db: &str) -> CatalogHandle {
        CatalogHandle(self.entry(db))
    }

    /// The current snapshot of `db`, if one was loaded.
    pub fn current(&self, db: &str) -> Option<Arc<LoadedCatalog>> {
        self.by_db.get(db).and_then(|e| e.current.load_full())
    }

    /// The snapshot of `db`, loading it first if there is none yet (bounded by the
    /// upstream connect timeout). `None` if it cannot be loaded: statements that need
    /// it are then denied. Cancel-safe.
    pub async fn get_or_load(&self, db: &str) -> Option<Arc<LoadedCatalog>> {
        let entry = self.entry(db);
        if let Some(c) = entry.current.load_full() {
            return Some(c);
        }
        let _guard = entry.loading.lock().await;
        if let Some(c) = entry.current.load_full() {
            return Some(c);
        }
        self.load_into(db, &entry).await;
        entry.current.load_full()
    }

    /// Reloads `db` in the background (after DDL, or on the refresh interval). The
    /// handle lets the session that ran the DDL wait for it before its next statement.
    pub fn refresh_in_background(self: &Arc<Self>, db: &str) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        let db = db.to_owned();
        tokio::spawn(async move {
            let entry = store.entry(&db);
            let _guard = entry.loading.lock().await;
            store.load_into(&db, &entry).await;
        })
    }

    /// Refreshes every known database, forever, every `every`.
    pub async fn refresh_loop(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let dbs: Vec<String> = self.by_db.iter().map(|e| e.key().clone()).collect();
            for db in dbs {
                drop(self.refresh_in_background(&db));
            }
        }
    }

    async fn load_into(&self, db: &str, entry: &DbCatalog) {
        let timeout = self.upstream.connect_timeout * 4;
        match tokio::time::timeout(timeout, self.load(db)).await {
            Ok(Ok(catalog)) => {
                let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
                info!(database = db, generation, "catalog loaded");
                entry.current.store(Some(Arc::new(LoadedCatalog {
                    catalog,
                    generation,
                })));
            }
            Ok(Err(e)) => warn!(database = db, error = %e, "catalog load failed"),
            Err(_) => warn!(database = db, "catalog load timed out"),
        }
    }

    async fn load(&self, db: &str) -> Result<Catalog, CatalogError> {
        let up = &self.upstream;
        let user = up.catalog_user.as_deref().unwrap_or("pgward_catalog");
        let mut config = tokio_postgres::Config::new();
        match up.host.parse::<IpAddr>() {
            // Verify the certificate against server_name, connect to the address.
            Ok(ip) => config.host(&up.server_name).hostaddr(ip),
            Err(_) => config.host(&up.host),
        };
        config
            .port(up.port)
            .user(user)
            .dbname(db)
            .application_name("pgward catalog")
            .connect_timeout(up.connect_timeout)
            .ssl_mode(tokio_postgres::config::SslMode::Require);
        if let Some(pw) = &up.password {
            config.password(pw.expose());
        }
        let (client, connection) = config
            .connect(MakeRustlsConnect::new((*self.tls.load_full()).clone()))
            .await?;
        let conn = tokio::spawn(connection);
        let catalog = read_catalog(&client).await;
        drop(client);
        let _ = conn.await;
        catalog
    }
}
