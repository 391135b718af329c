//! The persistent usage ledger: the per-(provider, key, model) counters saved to SQLite off
//! the hot path (a write at every flush interval and at shutdown), loaded back at start so
//! selection continues from where it was; optionally one row per request, kept for a
//! retention period; and the refresh tokens OAuth credentials rotated (written at once).
//! Schema changes are numbered migrations (`rusqlite_migration`, which keeps the version in
//! `PRAGMA user_version`).

mod requests;
mod rows;
mod tenants;
mod tokens;

pub use requests::{RequestFilter, MAX_ROWS};
pub use tokens::LedgerVault;

use router_core::tenants::AccountRecord;
use router_core::UsageRecord;
use rusqlite::{params, Connection, OpenFlags};
use rusqlite_migration::{Migrations, SchemaVersion, M};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The schema, one migration per version; version N is reached by running the first N.
const MIGRATIONS: &[M<'static>] = &[
    // 1: counters per pair, and the request log.
    M::up(
        "CREATE TABLE usage (
        provider TEXT NOT NULL,
        key_fingerprint TEXT NOT NULL,
        model TEXT NOT NULL,
        key_id TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        total_tokens INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (provider, key_fingerprint, model)
    );
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        request_id TEXT NOT NULL,
        grp TEXT NOT NULL,
        provider TEXT,
        model TEXT,
        key_id TEXT,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        status INTEGER NOT NULL,
        latency_ms REAL NOT NULL
    );
    CREATE INDEX requests_at ON requests (at_ms);",
    ),
    // 2: prompt tokens read from and written to the providers' caches, billed apart.
    M::up(
        "ALTER TABLE usage ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE usage ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE requests ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE requests ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;",
    ),
    // 3: the named clients' and teams' budget windows and spend.
    M::up(tenants::SCHEMA),
    // 4: each request row's client, endpoint and cost.
    M::up(
        "ALTER TABLE requests ADD COLUMN client TEXT;
    ALTER TABLE requests ADD COLUMN endpoint TEXT NOT NULL DEFAULT '';
    ALTER TABLE requests ADD COLUMN picodollars INTEGER NOT NULL DEFAULT 0;",
    ),
    // 5: what the group's response cache did for each request row.
    M::up("ALTER TABLE requests ADD COLUMN cache TEXT;"),
    // 6: a key is named as everywhere else: `key` is its id (`provider#index`), `key_masked`
    // its masked form; each request row says what the client asked and how it went.
    M::up(
        "ALTER TABLE usage RENAME COLUMN key_id TO key_masked;
    ALTER TABLE usage ADD COLUMN key TEXT;
    ALTER TABLE requests RENAME COLUMN key_id TO key;
    ALTER TABLE requests ADD COLUMN requested_model TEXT;
    ALTER TABLE requests ADD COLUMN ttft_ms REAL;
    ALTER TABLE requests ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE requests ADD COLUMN stream INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE requests ADD COLUMN error TEXT;",
    ),
    // 7: the refresh tokens OAuth credentials rotated.
    M::up(tokens::SCHEMA),
];

/// Most request rows held while the ledger cannot be written; older ones are dropped first.
const MAX_PENDING_ROWS: usize = 100_000;

/// One request, for the request log. The names of what served it are shared with the
/// config's snapshot, so a row copies none of them.
#[derive(Debug, Clone)]
pub struct RequestRow {
    /// When it ended (Unix milliseconds).
    pub at_ms: i64,
    /// Its request id.
    pub request_id: String,
    /// The group asked for (`-` when none was resolved).
    pub group: Arc<str>,
    /// The model name the client sent, when it is known (a request refused before its body
    /// was read has none).
    pub requested_model: Option<Arc<str>>,
    /// Provider, model and key id that answered.
    pub provider: Option<Arc<str>>,
    /// Upstream model.
    pub model: Option<Arc<str>>,
    /// The key's id (`provider#index`).
    pub key: Option<Arc<str>>,
    /// Tokens charged.
    pub prompt_tokens: u64,
    /// Tokens charged.
    pub completion_tokens: u64,
    /// Prompt tokens read from the provider's cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the provider's cache.
    pub cache_write_tokens: u64,
    /// Status sent.
    pub status: u16,
    /// Time to the end of the response.
    pub latency_ms: f64,
    /// Time to the first byte of the body.
    pub ttft_ms: Option<f64>,
    /// Upstream attempts made.
    pub attempts: usize,
    /// Whether the answer was a stream.
    pub stream: bool,
    /// What the client was told, for a request the router refused or could not serve.
    pub error: Option<String>,
    /// The named client whose key it came with.
    pub client: Option<String>,
    /// `chat`, `messages`, `completions`, `embeddings`, `responses` or `count_tokens`.
    pub endpoint: &'static str,
    /// Its cost, in picodollars (millionths of a millionth of a dollar), from the price table.
    pub picodollars: u64,
    /// What its group's response cache did (`hit`, `miss`, `bypass`), if it has one.
    pub cache: Option<&'static str>,
}

/// An open ledger.
pub struct Ledger {
    path: PathBuf,
    conn: Mutex<Connection>,
    request_log: bool,
    retention: Duration,
    pending: Mutex<Vec<RequestRow>>,
}

fn db_error(path: &Path, e: rusqlite::Error) -> String {
    format!("usage ledger {}: {e}", path.display())
}

/// Brings `conn` to the latest schema; a ledger written by a newer llm-router is refused.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), String> {
    let migrations = Migrations::from_slice(MIGRATIONS);
    let failed = |e: rusqlite_migration::Error| format!("usage ledger {}: {e}", path.display());
    if let SchemaVersion::Outside(version) = migrations.current_version(conn).map_err(failed)? {
        return Err(format!(
            "usage ledger {}: schema version {version} is newer than this llm-router knows ({}); \
             use a newer llm-router or another ledger path",
            path.display(),
            MIGRATIONS.len()
        ));
    }
    migrations.to_latest(conn).map_err(failed)
}

/// Now, in Unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads the saved counters.
fn load(conn: &Connection, path: &Path) -> Result<Vec<UsageRecord>, String> {
    let mut stmt = conn
        .prepare(
            "SELECT provider, key_fingerprint, key_masked, model, prompt_tokens,
                    completion_tokens, total_tokens, requests, errors, cache_read_tokens,
                    cache_write_tokens, key
             FROM usage ORDER BY provider, model, key, key_masked",
        )
        .map_err(|e| db_error(path, e))?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let rows = stmt
        .query_map([], |r| {
            Ok(UsageRecord {
                provider: r.get(0)?,
                key_fingerprint: r.get(1)?,
                key_masked: r.get(2)?,
                key_id: r.get(11)?,
                model: r.get(3)?,
                prompt_tokens: n(r.get(4)?),
                completion_tokens: n(r.get(5)?),
                total_tokens: n(r.get(6)?),
                requests: n(r.get(7)?),
                errors: n(r.get(8)?),
                cache_read_tokens: n(r.get(9)?),
                cache_write_tokens: n(r.get(10)?),
                live: None,
            })
        })
        .map_err(|e| db_error(path, e))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| db_error(path, e))
}

impl Ledger {
    /// Opens (creating if needed) and migrates the ledger at `path`, and reads the counters
    /// saved in it.
    pub fn open(
        path: &Path,
        request_log: bool,
        retention: Duration,
    ) -> Result<(Self, Vec<UsageRecord>), String> {
        let mut conn = Connection::open(path).map_err(|e| db_error(path, e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| db_error(path, e))?;
        // WAL: a committed flush survives the process being killed.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| db_error(path, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| db_error(path, e))?;
        migrate(&mut conn, path)?;
        rows::prepare(&conn).map_err(|e| db_error(path, e))?;
        let saved = load(&conn, path)?;
        Ok((
            Self {
                path: path.to_path_buf(),
                conn: Mutex::new(conn),
                request_log,
                retention,
                pending: Mutex::new(Vec::new()),
            },
            saved,
        ))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it keeps one row per request.
    pub fn keeps_requests(&self) -> bool {
        self.request_log
    }

    /// Queues a request row (when the request log is on); written at the next flush.
    pub fn record(&self, row: RequestRow) {
        if self.request_log {
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(row);
        }
    }

    /// The named clients' and teams' accounts saved in it.
    pub fn tenants(&self) -> Result<Vec<AccountRecord>, String> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        tenants::load(&conn).map_err(|e| db_error(&self.path, e))
    }

    /// Writes the counters, the clients' and teams' accounts and the queued request rows in
    /// one transaction, and drops request rows older than the retention. Blocking: call it
    /// off the async threads.
    pub fn flush(&self, usage: &[UsageRecord], accounts: &[AccountRecord]) -> Result<(), String> {
        let rows = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let path = &self.path;
        let now_ms = now_ms();
        let write = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO usage (provider, key_fingerprint, model, key_masked,
                        prompt_tokens, completion_tokens, total_tokens, requests, errors,
                        updated_at_ms, cache_read_tokens, cache_write_tokens, key)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                     ON CONFLICT (provider, key_fingerprint, model) DO UPDATE SET
                        key_masked = excluded.key_masked,
                        key = coalesce(excluded.key, usage.key),
                        prompt_tokens = excluded.prompt_tokens,
                        completion_tokens = excluded.completion_tokens,
                        total_tokens = excluded.total_tokens, requests = excluded.requests,
                        errors = excluded.errors, updated_at_ms = excluded.updated_at_ms,
                        cache_read_tokens = excluded.cache_read_tokens,
                        cache_write_tokens = excluded.cache_write_tokens
                     WHERE usage.requests != excluded.requests
                        OR usage.total_tokens != excluded.total_tokens
                        OR usage.errors != excluded.errors
                        OR usage.key_masked != excluded.key_masked
                        OR usage.key IS NOT coalesce(excluded.key, usage.key)",
                )?;
                for u in usage {
                    upsert.execute(params![
                        u.provider,
                        u.key_fingerprint,
                        u.model,
                        u.key_masked,
                        as_i64(u.prompt_tokens),
                        as_i64(u.completion_tokens),
                        as_i64(u.total_tokens),
                        as_i64(u.requests),
                        as_i64(u.errors),
                        now_ms,
                        as_i64(u.cache_read_tokens),
                        as_i64(u.cache_write_tokens),
                        u.key_id,
                    ])?;
                }
                rows::write(&tx, &rows)?;
                tenants::write(&tx, accounts)?;
                let oldest = now_ms.saturating_sub(self.retention.as_millis() as i64);
                tx.execute("DELETE FROM requests WHERE at_ms < ?1", params![oldest])?;
            }
            tx.commit()
        };
        write(&mut conn).map_err(|e| {
            // The rows wait for the next flush (up to a bound, so a ledger that stays broken
            // cannot hold memory without end).
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let mut kept = rows;
            kept.append(&mut pending);
            let excess = kept.len().saturating_sub(MAX_PENDING_ROWS);
            kept.drain(..excess);
            *pending = kept;
            db_error(path, e)
        })
    }
}

/// Reads a ledger file without changing it (for `llm-router usage`).
pub fn read(path: &Path) -> Result<Vec<UsageRecord>, String> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| db_error(path, e))?;
    load(&conn, path)
}

/// Reads the clients' and teams' accounts of a ledger file without changing it (for
/// `llm-router usage --clients`); a ledger written before clients existed has none.
pub fn read_tenants(path: &Path) -> Result<Vec<AccountRecord>, String> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| db_error(path, e))?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| db_error(path, e))?;
    if version < 3 {
        return Ok(Vec::new());
    }
    tenants::load(&conn).map_err(|e| db_error(path, e))
}

#[cfg(test)]
mod tests;
