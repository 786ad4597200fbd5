//! Opening the database (SQLite file by default, PostgreSQL when the URL says so) and the few
//! helpers every module uses to write consistently on both.

use crate::later::{Later, MayHoldBack};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, ExecResult, QueryResult, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};
use std::time::Duration;

/// Opens the pool with SQLite's `synchronous=NORMAL` (see [`connect_with`]).
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, false).await
}

/// Opens the pool. For SQLite the file (and its directory) is created, WAL is on, foreign keys
/// are enforced and writers wait for each other for up to `busy_timeout` instead of failing.
/// `synchronous_full` makes every commit wait for the disk (`synchronous=FULL`): with the
/// default `NORMAL`, a commit survives a crash of the process but may be lost with the last
/// moments before a power failure.
pub async fn connect_with(url: &str, synchronous_full: bool) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        if let Some(dir) = sqlite_dir(url) {
            std::fs::create_dir_all(&dir)
                .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", dir.display())))?;
        }
        // A connection to a local file does not go stale; testing each one before use (sqlx's
        // default) cost a round trip to its worker thread per query and per transaction.
        opts.max_connections(8)
            .min_connections(1)
            .test_before_acquire(false)
            .map_sqlx_sqlite_opts(move |o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(if synchronous_full {
                        sea_orm::sqlx::sqlite::SqliteSynchronous::Full
                    } else {
                        sea_orm::sqlx::sqlite::SqliteSynchronous::Normal
                    })
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(30))
                    .create_if_missing(true)
            });
    } else {
        opts.max_connections(32).min_connections(1);
    }
    Database::connect(opts).await
}

/// The directory of a `sqlite://path/to/file.db?...` URL, if it has one.
fn sqlite_dir(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Into::into)
}

/// SQLite has one writer at a time. Writers that find the lock taken sleep in SQLite's busy
/// handler (1, 2, 5, 10 … 100 ms), which under load costs far more than the writes themselves
/// (measured: 200 mails/s with p50 34 ms). So the process's writers queue here instead, in
/// FIFO order, and each finds the lock free when it gets its turn.
static SQLITE_WRITER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A transaction that will write; on SQLite it holds the process's writer turn until it ends.
/// Use it like a `DatabaseTransaction` (`&txn` is a connection), then `commit` it.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _turn: Option<tokio::sync::MutexGuard<'static, ()>>,
    later: Option<Later>,
}

impl WriteTxn {
    /// From now on, the writes that can wait are held back until [`commit`](Self::commit)
    /// (see [`Later`]; the group-commit writer asks for this for batches of several jobs).
    pub fn hold_back(&mut self) {
        self.later.get_or_insert_with(Later::default);
    }

    /// Writes what was held back, then commits.
    pub async fn commit(mut self) -> Result<(), DbErr> {
        if let Some(later) = self.later.take() {
            later.flush(&self.txn).await?;
        }
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

impl MayHoldBack for WriteTxn {
    fn later(&self) -> Option<&Later> {
        self.later.as_ref()
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }
}

/// Begins a transaction that will write. On SQLite it waits for the process's writer turn,
/// then takes the write lock at `BEGIN` (`IMMEDIATE`), so a transaction never fails half-way
/// upgrading a read lock.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTxn, DbErr> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let turn = SQLITE_WRITER.lock().await;
            let txn = db
                .begin_with_options(TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..Default::default()
                })
                .await?;
            Ok(WriteTxn {
                txn,
                _turn: Some(turn),
                later: None,
            })
        }
        _ => Ok(WriteTxn {
            txn: db.begin().await?,
            _turn: None,
            later: None,
        }),
    }
}

/// Whether a database error is a unique-constraint violation (a taken slug, email, ...).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// Whether the database answers (for `GET /health`).
pub async fn ping(db: &DatabaseConnection) -> bool {
    use sea_orm::ConnectionTrait;
    db.execute_unprepared("SELECT 1").await.is_ok()
}

/// Creates a new, empty database `<prefix><uuid>` on the PostgreSQL server named by
/// `server_url` and returns its URL (tests and the benchmark start each run on a fresh one).
pub async fn create_database(server_url: &str, prefix: &str) -> Result<String, DbErr> {
    let name = format!("{prefix}{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(server_url).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    let _ = admin.close().await;
    let mut url = url::Url::parse(server_url)
        .map_err(|e| DbErr::Custom(format!("not a database URL: {e}")))?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}
