//! Writes held back to the end of a group transaction (`actors::later`): concurrent opens and
//! settles share transactions and still leave every row, every ledger entry and every
//! counter, and a `requestId` two jobs of one batch both insert fails only the second, as
//! `Raced`, with nothing of it left. SQLite file, or PostgreSQL under `scripts/test --postgres`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use actors::{
    Hub, HubConfig, ledger,
    task::{self, NewTask, OpenError, Outcome},
};
use entities::{agents, idempotency_keys, ledger_entries, tasks};
use futures_util::future::join_all;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;
use uuid::Uuid;

const PRICE: i64 = 5;

fn new_task(payer: Uuid, agent: &agents::Model, request_id: &str) -> NewTask {
    NewTask {
        payer_id: payer,
        caller_agent_id: None,
        agent: agent.clone(),
        source: "mcp",
        buyer: "payer".into(),
        tool_name: "echo".into(),
        arguments: json!({ "text": request_id }),
        request_id: request_id.into(),
        fingerprint: format!("fp-{request_id}"),
        price: PRICE,
        deadline: Duration::from_secs(60),
        retry_of: None,
        queued: true,
    }
}

/// Runs `work` (concurrent writer jobs) while the database's writer turn is held for a
/// moment, so that its jobs queue up and meet in one batch, as they do under load. (On
/// PostgreSQL the writer runs on this test's one-thread runtime and cannot start before the
/// jobs are all queued anyway.)
async fn queued_together<T>(hub: &Hub, work: impl std::future::Future<Output = T>) -> T {
    let turn = actors::db::begin_write(&hub.db).await.unwrap();
    let release = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        turn.rollback().await.unwrap();
    };
    futures_util::future::join(work, release).await.0
}

async fn balance(hub: &Hub, user: Uuid) -> (i64, i64) {
    let b = ledger::balance(&hub.db, user).await.unwrap();
    (b.balance, b.reserved)
}

async fn assert_balanced(hub: &Hub) {
    let report = ledger::check(&hub.db).await.unwrap();
    assert!(report.is_balanced(), "{:?}", report.problems);
}

#[actix_rt::test]
async fn concurrent_opens_and_settles_share_commits_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _clock) = common::hub(dir.path(), 1, HubConfig::default()).await;
    let payer = common::user(&hub, 0, 1000).await;
    let owner = common::user(&hub, 1, 1000).await;
    let agent = common::agent(&hub, 0, owner, PRICE, None, Some("poll")).await;
    let stats = hub.writer.stats();
    let commits_before = stats.commits.load(Ordering::SeqCst);

    let opened = queued_together(
        &hub,
        join_all((0..60).map(|i| task::open(&hub, new_task(payer, &agent, &format!("r{i}"))))),
    )
    .await
    .into_iter()
    .map(|r| r.ok().expect("every open succeeds"))
    .collect::<Vec<_>>();
    let commits = stats.commits.load(Ordering::SeqCst) - commits_before;
    assert!(commits < 60, "60 opens took {commits} commits: none shared");
    assert_eq!(balance(&hub, payer).await, (1000 - 60 * PRICE, 60 * PRICE));
    assert_eq!(tasks::Entity::find().count(&hub.db).await.unwrap(), 60);
    assert_eq!(
        idempotency_keys::Entity::find()
            .count(&hub.db)
            .await
            .unwrap(),
        60
    );
    for t in &opened {
        let stored = task::find(&hub, t.id).await.unwrap();
        assert_eq!(stored.status, "queued");
        assert_eq!(stored.reserve_tx, t.reserve_tx);
    }
    assert_balanced(&hub).await;

    // Half succeed, half fail; all at once, as task actors settle (from the task they hold,
    // final states held back and written by one statement).
    let settled = queued_together(
        &hub,
        join_all(opened.iter().enumerate().map(|(i, t)| {
            let outcome = if i % 2 == 0 {
                Outcome::Completed(json!({ "ok": i }))
            } else {
                Outcome::Failed("no".into())
            };
            task::settle_known(&hub, t.clone(), outcome)
        })),
    )
    .await;
    for (i, result) in settled.into_iter().enumerate() {
        let answered = result.unwrap();
        let stored = task::find(&hub, opened[i].id).await.unwrap();
        assert_eq!(stored, answered, "the answer is the task as stored");
        if i % 2 == 0 {
            assert_eq!(stored.status, "completed");
            assert_eq!(stored.result, Some(json!({ "ok": i })));
        } else {
            assert_eq!(stored.status, "failed");
            assert_eq!(stored.error.as_deref(), Some("no"));
        }
        assert!(stored.settle_tx.is_some() && stored.completed_at.is_some());
        assert!(stored.duration_ms.is_some());
    }
    assert_eq!(balance(&hub, payer).await, (1000 - 30 * PRICE, 0));
    assert_eq!(balance(&hub, owner).await, (1000 + 30 * PRICE, 0));
    let stored = agents::Entity::find_by_id(agent.id)
        .one(&hub.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            stored.total_calls,
            stored.completed_calls,
            stored.failed_calls,
            stored.tokens_earned
        ),
        (60, 30, 30, 30 * PRICE)
    );
    assert!(stored.reputation_score.is_some());
    // reserve (2 entries) for each, then charge or release (2 entries) for each.
    let entries = ledger_entries::Entity::find().count(&hub.db).await.unwrap();
    assert_eq!(entries, 2 * 2 /* grants */ + 60 * 2 + 60 * 2);
    assert_balanced(&hub).await;
}

#[actix_rt::test]
async fn a_request_id_raced_inside_one_batch_fails_only_the_later_job() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _clock) = common::hub(dir.path(), 2, HubConfig::default()).await;
    let payer = common::user(&hub, 0, 1000).await;
    let owner = common::user(&hub, 1, 1000).await;
    let agent = common::agent(&hub, 0, owner, PRICE, None, Some("poll")).await;
    let splits_before = hub.writer.stats().split_batches.load(Ordering::SeqCst);

    for round in 0..5 {
        let rid = format!("same-{round}");
        // Ten opens of one requestId and ten of distinct ones, interleaved, all at once.
        let results = queued_together(
            &hub,
            join_all((0..20).map(|i| {
                let id = if i % 2 == 0 {
                    rid.clone()
                } else {
                    format!("other-{round}-{i}")
                };
                task::open(&hub, new_task(payer, &agent, &id))
            })),
        )
        .await;
        let mut won = 0;
        for (i, result) in results.into_iter().enumerate() {
            match (i % 2 == 0, result) {
                (true, Ok(_)) => won += 1,
                (true, Err(OpenError::Raced)) => {}
                (true, Err(OpenError::Hub(e))) => panic!("the same requestId failed with {e:?}"),
                (false, r) => assert!(r.is_ok(), "a distinct requestId failed"),
            }
        }
        assert_eq!(won, 1, "exactly one open of {rid} wins");
        let stored = tasks::Entity::find()
            .filter(tasks::Column::RequestId.eq(&rid))
            .count(&hub.db)
            .await
            .unwrap();
        assert_eq!(stored, 1, "the losers left no task row");
    }
    // The twenty of a round queue up behind the held turn, so every round has a batch where
    // two opens of the same requestId meet, which fails at the flush and is split.
    let splits = hub.writer.stats().split_batches.load(Ordering::SeqCst) - splits_before;
    assert!(
        splits >= 5,
        "{splits} split batches: the race never met the held-back insert"
    );
    // 5 winners and 5 × 10 distinct opens hold their price, nothing else.
    assert_eq!(balance(&hub, payer).await, (1000 - 55 * PRICE, 55 * PRICE));
    assert_balanced(&hub).await;
}

#[actix_rt::test]
async fn a_wallet_moved_twice_in_one_batch_is_checked_in_memory_and_never_overdrawn() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _clock) = common::hub(dir.path(), 3, HubConfig::default()).await;
    let payer = common::user(&hub, 0, 12).await;
    let owner = common::user(&hub, 1, 0).await;
    let agent = common::agent(&hub, 0, owner, PRICE, None, Some("poll")).await;

    // Five opens at 5 tokens against 12, queued together: in their batch the first moves the
    // wallet inline and the others are checked against its state in memory.
    let results = queued_together(
        &hub,
        join_all((0..5).map(|i| task::open(&hub, new_task(payer, &agent, &format!("r{i}"))))),
    )
    .await;
    let mut opened = Vec::new();
    let mut refused = 0;
    for result in results {
        match result {
            Ok(task) => opened.push(task),
            Err(OpenError::Hub(e)) => {
                assert!(format!("{e:?}").contains("INSUFFICIENT_TOKENS"), "{e:?}");
                refused += 1;
            }
            Err(OpenError::Raced) => panic!("distinct requestIds raced"),
        }
    }
    assert_eq!((opened.len(), refused), (2, 3));
    assert_eq!(balance(&hub, payer).await, (2, 10));

    // Settle both in one batch: the payer's wallet moves twice more, the owner's twice.
    join_all(
        opened
            .iter()
            .map(|t| task::settle(&hub, t.id, Outcome::Completed(json!({})))),
    )
    .await
    .into_iter()
    .for_each(|r| assert!(r.is_ok(), "{r:?}"));
    assert_eq!(balance(&hub, payer).await, (2, 0));
    assert_eq!(balance(&hub, owner).await, (10, 0));
    // Each entry carries the exact running balance, as if the movements ran one by one.
    let owner_after: Vec<i64> = ledger_entries::Entity::find()
        .filter(ledger_entries::Column::WalletId.eq(owner))
        .all(&hub.db)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.amount > 0)
        .map(|e| e.available_after)
        .collect();
    assert_eq!(owner_after, vec![5, 10]);
    assert_balanced(&hub).await;
}

#[actix_rt::test]
async fn a_task_settled_twice_in_one_batch_moves_its_tokens_once() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _clock) = common::hub(dir.path(), 4, HubConfig::default()).await;
    let payer = common::user(&hub, 0, 100).await;
    let owner = common::user(&hub, 1, 0).await;
    let agent = common::agent(&hub, 0, owner, PRICE, None, Some("poll")).await;
    let t = task::open(&hub, new_task(payer, &agent, "twice"))
        .await
        .ok()
        .unwrap();
    let other = task::open(&hub, new_task(payer, &agent, "other"))
        .await
        .ok()
        .unwrap();

    // A result and a failure of the same task, and another task's result, in one batch.
    let (first, second, third) = queued_together(&hub, async {
        tokio::join!(
            task::settle_known(&hub, t.clone(), Outcome::Completed(json!({ "n": 1 }))),
            task::settle_known(&hub, t.clone(), Outcome::Failed("late".into())),
            task::settle_known(&hub, other.clone(), Outcome::Completed(json!({ "n": 2 }))),
        )
    })
    .await;
    let (first, second, third) = (first.unwrap(), second.unwrap(), third.unwrap());
    // Both answers are the one stored outcome, whichever it was.
    assert_eq!(first, second);
    assert_eq!(task::find(&hub, t.id).await.unwrap(), first);
    assert_eq!(third.status, "completed");
    let paid = if first.status == "completed" { 2 } else { 1 };
    assert_eq!(balance(&hub, owner).await, (paid * PRICE, 0));
    assert_eq!(balance(&hub, payer).await, (100 - paid * PRICE, 0));
    // And a stale copy of a settled task, batched with a live one, settles nothing more
    // (with a third call still open, so the payer has reserved tokens it could wrongly take).
    let pending = task::open(&hub, new_task(payer, &agent, "pending"))
        .await
        .ok()
        .unwrap();
    let third_task = task::open(&hub, new_task(payer, &agent, "third"))
        .await
        .ok()
        .unwrap();
    let (again, live) = queued_together(&hub, async {
        tokio::join!(
            task::settle_known(&hub, t.clone(), Outcome::Timeout),
            task::settle_known(&hub, third_task.clone(), Outcome::Failed("no".into())),
        )
    })
    .await;
    assert_eq!(again.unwrap(), first);
    assert_eq!(live.unwrap().status, "failed");
    assert_eq!(
        balance(&hub, payer).await,
        (100 - paid * PRICE - PRICE, PRICE)
    );
    assert_eq!(task::find(&hub, pending.id).await.unwrap().status, "queued");
    assert_eq!(balance(&hub, owner).await, (paid * PRICE, 0));
    let stored = agents::Entity::find_by_id(agent.id)
        .one(&hub.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.total_calls, 3, "each task is counted once");
    assert_balanced(&hub).await;
}
