//! The group-commit writer (`actors::writer`): many concurrent jobs share transactions, each
//! caller learns its result only once its writes are committed, and a failing job leaves
//! nothing behind while the jobs batched with it still commit. Runs on a SQLite file, or on a
//! fresh PostgreSQL database under `scripts/test --postgres`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use actors::{HubError, db, writer::Writer};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use std::sync::atomic::Ordering;

async fn database(dir: &std::path::Path) -> DatabaseConnection {
    let url = match std::env::var("AGENTHUB_TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => {
            db::create_database(&server, "agenthub_t_").await.unwrap()
        }
        _ => format!("sqlite://{}?mode=rwc", dir.join("writer.db").display()),
    };
    let conn = db::connect(&url).await.unwrap();
    conn.execute_unprepared("CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
        .await
        .unwrap();
    conn
}

async fn ids(conn: &DatabaseConnection) -> Vec<i64> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT id FROM notes ORDER BY id",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<i64>("", "id").unwrap())
        .collect()
}

/// A job that inserts note `id`, then fails if `fail`.
async fn note(writer: &Writer, id: i64, fail: bool) -> Result<i64, HubError> {
    writer
        .run(move |txn| {
            Box::pin(async move {
                txn.execute_raw(Statement::from_sql_and_values(
                    txn.get_database_backend(),
                    match txn.get_database_backend() {
                        sea_orm::DbBackend::Postgres => {
                            "INSERT INTO notes (id, body) VALUES ($1, $2)"
                        }
                        _ => "INSERT INTO notes (id, body) VALUES (?, ?)",
                    },
                    [id.into(), format!("note {id}").into()],
                ))
                .await?;
                if fail {
                    return Err(HubError::Conflict(format!("note {id} refused")));
                }
                Ok(id)
            })
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_jobs_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let conn = database(dir.path()).await;
    let writer = Writer::start(conn.clone());

    let results =
        futures_util::future::join_all((1..=200).map(|id| note(&writer, id, false))).await;

    for (id, result) in (1..=200).zip(&results) {
        assert_eq!(result.as_ref().unwrap(), &id, "job {id}");
    }
    assert_eq!(ids(&conn).await, (1..=200).collect::<Vec<_>>());
    let stats = writer.stats();
    let commits = stats.commits.load(Ordering::Relaxed);
    assert_eq!(stats.committed_jobs.load(Ordering::Relaxed), 200);
    assert_eq!(stats.split_batches.load(Ordering::Relaxed), 0);
    assert!(
        commits < 50,
        "{commits} commits for 200 concurrent jobs: not grouped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_leaves_nothing_and_its_batch_still_commits() {
    let dir = tempfile::tempdir().unwrap();
    let conn = database(dir.path()).await;
    let writer = Writer::start(conn.clone());
    let fails = |id: i64| id % 7 == 0;

    let results =
        futures_util::future::join_all((1..=100).map(|id| note(&writer, id, fails(id)))).await;

    for (id, result) in (1..=100).zip(&results) {
        if fails(id) {
            assert!(
                matches!(result, Err(HubError::Conflict(m)) if *m == format!("note {id} refused")),
                "job {id} must get its own error, got {result:?}"
            );
        } else {
            assert_eq!(result.as_ref().unwrap(), &id, "job {id}");
        }
    }
    let expected: Vec<i64> = (1..=100).filter(|id| !fails(*id)).collect();
    assert_eq!(
        ids(&conn).await,
        expected,
        "exactly the jobs that succeeded are stored"
    );
    let stats = writer.stats();
    assert_eq!(
        stats.committed_jobs.load(Ordering::Relaxed),
        expected.len() as u64
    );
    assert!(stats.split_batches.load(Ordering::Relaxed) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_is_only_delivered_after_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let conn = database(dir.path()).await;
    let writer = Writer::start(conn.clone());
    for id in 1..=20 {
        note(&writer, id * 2, false).await.unwrap();
        // Another connection of the pool sees it at once: it was committed before we heard.
        assert!(ids(&conn).await.contains(&(id * 2)));
    }
    assert!(matches!(
        note(&writer, 7, true).await,
        Err(HubError::Conflict(_))
    ));
    assert!(!ids(&conn).await.contains(&7));
}
