//! The three leaderboards: top this week (tokens earned in the last 7 days), richest (tokens
//! earned all time) and top rated (reputation score). Only public, active agents appear.
//!
//! Every board is one indexed query with LIMIT/OFFSET, so serving a page costs the same at any
//! number of agents: the richest and top-rated boards read `agents.tokens_earned` and
//! `agents.reputation_score` (kept by the engine at settlement and by reviews), the weekly board
//! sums the payees' `available` legs of `charge` transactions since a week ago, grouped by
//! agent. Ranks continue across pages (page 2 of 20 starts at 21); ties are broken by agent id
//! so pages never overlap.

use crate::{
    Hub,
    error::HubResult,
    reputation,
    validate::{Page, Paged},
};
use entities::{agents, ledger_entries, ledger_transactions};
use sea_orm::{
    ColumnTrait, EntityTrait, FromQueryResult, JoinType, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, RelationTrait,
    sea_query::{Alias, Expr, ExprTrait, Func},
};
use serde::Serialize;
use uuid::Uuid;

/// The agent of a leaderboard row.
#[derive(Debug, Clone, Serialize)]
pub struct AgentRef {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
}

/// A row of the weekly or richest board.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EarningsRow {
    pub rank: u64,
    pub agent: AgentRef,
    pub tokens_earned: i64,
    pub stars: Option<f64>,
}

/// A row of the top-rated board.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreRow {
    pub rank: u64,
    pub agent: AgentRef,
    pub score: f64,
    pub stars: Option<f64>,
}

/// How far back "this week" reaches.
const WEEK: chrono::Duration = chrono::Duration::days(7);

fn listed() -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(agents::Column::Visibility.eq("public"))
        .add(agents::Column::Status.eq("active"))
}

fn stars(score: Option<f64>) -> Option<f64> {
    score.map(reputation::stars)
}

fn rank(page: Page, i: usize) -> u64 {
    page.offset() + i as u64 + 1
}

#[derive(Debug, FromQueryResult)]
struct WeekRow {
    id: Uuid,
    slug: String,
    name: String,
    reputation_score: Option<f64>,
    earned: i64,
}

/// Agents by tokens earned in the last 7 days (agents that earned nothing are not listed).
pub async fn week(hub: &Hub, page: Page) -> HubResult<Paged<EarningsRow>> {
    use ledger_entries::Column as E;
    use ledger_transactions::Column as T;
    let since = hub.env.now() - WEEK;
    let earned = Func::cast_as(
        Expr::col((ledger_entries::Entity, E::Amount)).sum(),
        Alias::new("BIGINT"),
    );
    let base = ledger_entries::Entity::find()
        .join(
            JoinType::InnerJoin,
            ledger_entries::Relation::Transaction.def(),
        )
        .join(
            JoinType::InnerJoin,
            sea_orm::RelationDef::from(
                ledger_transactions::Entity::belongs_to(agents::Entity)
                    .from(T::AgentId)
                    .to(agents::Column::Id),
            ),
        )
        .filter(Expr::col((ledger_transactions::Entity, T::Kind)).eq("charge"))
        .filter(Expr::col((ledger_transactions::Entity, T::CreatedAt)).gte(since))
        .filter(Expr::col((ledger_entries::Entity, E::Bucket)).eq("available"))
        .filter(Expr::col((ledger_entries::Entity, E::Amount)).gt(0))
        .filter(listed());
    let total = base
        .clone()
        .select_only()
        .expr_as(
            Func::count_distinct(Expr::col((ledger_transactions::Entity, T::AgentId))),
            "n",
        )
        .into_tuple::<i64>()
        .one(&hub.db)
        .await?
        .unwrap_or(0);
    let rows = base
        .select_only()
        .column_as(agents::Column::Id, "id")
        .column_as(agents::Column::Slug, "slug")
        .column_as(agents::Column::Name, "name")
        .column_as(agents::Column::ReputationScore, "reputation_score")
        .expr_as(earned.clone(), "earned")
        .group_by(agents::Column::Id)
        .group_by(agents::Column::Slug)
        .group_by(agents::Column::Name)
        .group_by(agents::Column::ReputationScore)
        .order_by_desc(earned)
        .order_by_asc(agents::Column::Id)
        .offset(page.offset())
        .limit(page.limit)
        .into_model::<WeekRow>()
        .all(&hub.db)
        .await?;
    let data = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| EarningsRow {
            rank: rank(page, i),
            agent: AgentRef {
                id: r.id,
                slug: r.slug,
                name: r.name,
            },
            tokens_earned: r.earned,
            stars: stars(r.reputation_score),
        })
        .collect();
    Ok(Paged {
        data,
        page: page.page,
        limit: page.limit,
        total: u64::try_from(total).unwrap_or(0),
    })
}

/// Agents by tokens earned all time (agents that earned nothing are not listed).
pub async fn richest(hub: &Hub, page: Page) -> HubResult<Paged<EarningsRow>> {
    let q = agents::Entity::find()
        .filter(listed())
        .filter(agents::Column::TokensEarned.gt(0))
        .order_by_desc(agents::Column::TokensEarned)
        .order_by_asc(agents::Column::Id);
    let total = q.clone().count(&hub.db).await?;
    let rows = q
        .offset(page.offset())
        .limit(page.limit)
        .all(&hub.db)
        .await?;
    let data = rows
        .into_iter()
        .enumerate()
        .map(|(i, a)| EarningsRow {
            rank: rank(page, i),
            tokens_earned: a.tokens_earned,
            stars: stars(a.reputation_score),
            agent: AgentRef {
                id: a.id,
                slug: a.slug,
                name: a.name,
            },
        })
        .collect();
    Ok(Paged {
        data,
        page: page.page,
        limit: page.limit,
        total,
    })
}

/// Agents by reputation score; New agents (no score yet) are not listed.
pub async fn top_rated(hub: &Hub, page: Page) -> HubResult<Paged<ScoreRow>> {
    let q = agents::Entity::find()
        .filter(listed())
        .filter(agents::Column::ReputationScore.is_not_null())
        .order_by_desc(agents::Column::ReputationScore)
        .order_by_asc(agents::Column::Id);
    let total = q.clone().count(&hub.db).await?;
    let rows = q
        .offset(page.offset())
        .limit(page.limit)
        .all(&hub.db)
        .await?;
    let data = rows
        .into_iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let score = a.reputation_score?;
            Some(ScoreRow {
                rank: rank(page, i),
                score,
                stars: Some(reputation::stars(score)),
                agent: AgentRef {
                    id: a.id,
                    slug: a.slug,
                    name: a.name,
                },
            })
        })
        .collect();
    Ok(Paged {
        data,
        page: page.page,
        limit: page.limit,
        total,
    })
}
