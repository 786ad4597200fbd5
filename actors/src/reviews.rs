//! Reviews of agents by the people who used them.
//!
//! Rules, all checked here: the reviewer completed at least one real (not test) call to the
//! agent as its payer; one review per user and agent (a second submission updates it); an
//! owner never reviews their own agent; `rating` is an integer from 1 to 5; `comment` has at
//! most 2,000 characters. Private agents are 404 to everyone but their owner, as everywhere.
//!
//! The agent's `review_count`, `rating_sum` and cached `reputation_score` change in the same
//! database transaction as the review, so they always agree with the `reviews` table.

use crate::{
    Hub, audit,
    audit::{Event, Origin},
    catalog, db,
    error::{HubError, HubResult},
    reputation,
    validate::{Errors, Page, Paged},
};
use chrono::{DateTime, Utc};
use entities::{agents, reviews, tasks, users};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

pub const MAX_COMMENT_CHARS: usize = 2000;

/// The body of `POST /agents/{agentId}/reviews`. `rating` is read as any JSON value so that a
/// string or a fraction becomes a field error naming `rating`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewInput {
    pub rating: Option<serde_json::Value>,
    pub comment: Option<String>,
}

/// A review as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewView {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub rating: i32,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view(review: reviews::Model, username: String) -> ReviewView {
    ReviewView {
        id: review.id,
        agent_id: review.agent_id,
        user_id: review.user_id,
        username,
        rating: review.rating,
        comment: review.comment,
        created_at: review.created_at,
        updated_at: review.updated_at,
    }
}

/// Whether a submission created a review or updated the user's existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Created,
    Updated,
}

/// Checks a submission: the rating (required, integer 1–5) and the comment (≤ 2,000
/// characters; blank means none).
fn validate(input: ReviewInput) -> HubResult<(i32, Option<String>)> {
    let mut errors = Errors::new();
    let rating = match input.rating {
        None | Some(serde_json::Value::Null) => {
            errors.add("rating", "is required");
            0
        }
        Some(value) => match value.as_i64() {
            Some(r) if (1..=5).contains(&r) => r as i32,
            _ => {
                errors.add("rating", "must be an integer from 1 to 5");
                0
            }
        },
    };
    let comment = input.comment.filter(|c| !c.trim().is_empty());
    if let Some(c) = &comment {
        errors.len("comment", c, 0, MAX_COMMENT_CHARS);
    }
    errors.finish()?;
    Ok((rating, comment))
}

/// Whether `user_id` completed a real (not test) call to `agent_id` as its payer.
async fn has_used<C: ConnectionTrait>(conn: &C, user_id: Uuid, agent_id: Uuid) -> HubResult<bool> {
    Ok(tasks::Entity::find()
        .filter(tasks::Column::PayerId.eq(user_id))
        .filter(tasks::Column::AgentId.eq(agent_id))
        .filter(tasks::Column::Status.eq("completed"))
        .filter(tasks::Column::Source.ne("test"))
        .count(conn)
        .await?
        > 0)
}

async fn find_review<C: ConnectionTrait>(
    conn: &C,
    agent_id: Uuid,
    user_id: Uuid,
) -> HubResult<Option<reviews::Model>> {
    Ok(reviews::Entity::find()
        .filter(reviews::Column::AgentId.eq(agent_id))
        .filter(reviews::Column::UserId.eq(user_id))
        .one(conn)
        .await?)
}

async fn username(hub: &Hub, user_id: Uuid) -> HubResult<String> {
    Ok(crate::accounts::find(hub, user_id).await?.username)
}

/// Applies a change of the agent's review totals (`count_delta` reviews, `sum_delta` stars)
/// and recomputes its stored score, inside the caller's transaction.
async fn adjust_agent<C: ConnectionTrait>(
    hub: &Hub,
    conn: &C,
    agent_id: Uuid,
    count_delta: i64,
    sum_delta: i64,
) -> HubResult<()> {
    // Lock the row (PostgreSQL; SQLite's write transaction already serialises writers) so the
    // counters and the score are computed from the same state.
    let agent = agents::Entity::find_by_id(agent_id)
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| HubError::not_found("Agent"))?;
    let mut next = agent.clone();
    next.review_count += count_delta;
    next.rating_sum += sum_delta;
    let mut active = agent.into_active_model();
    active.review_count = Set(next.review_count);
    active.rating_sum = Set(next.rating_sum);
    active.reputation_score = Set(reputation::stored_score(&reputation::Inputs::of(&next)));
    active.updated_at = Set(hub.env.now());
    active.update(conn).await?;
    Ok(())
}

/// Submits or updates the user's review of an agent.
pub async fn submit(
    hub: &Hub,
    origin: &Origin,
    user_id: Uuid,
    agent_id: &str,
    input: ReviewInput,
) -> HubResult<(Saved, ReviewView)> {
    let (rating, comment) = validate(input)?;
    let agent = catalog::find_visible(hub, agent_id, Some(user_id)).await?;
    if agent.owner_id == user_id {
        return Err(HubError::Forbidden(
            "You cannot review your own agent".into(),
        ));
    }
    if !has_used(&hub.db, user_id, agent.id).await? {
        return Err(HubError::Forbidden(
            "You can review an agent only after a completed call to it".into(),
        ));
    }
    let username = username(hub, user_id).await?;
    let now = hub.env.now();
    let txn = db::begin_write(&hub.db).await?;
    let (saved, review, sum_delta, count_delta) = match find_review(&txn, agent.id, user_id).await?
    {
        Some(existing) => {
            let delta = i64::from(rating - existing.rating);
            let mut active = existing.into_active_model();
            active.rating = Set(rating);
            active.comment = Set(comment);
            active.updated_at = Set(now);
            (Saved::Updated, active.update(&txn).await?, delta, 0)
        }
        None => {
            let review = reviews::Model {
                id: hub.env.new_id(),
                agent_id: agent.id,
                user_id,
                rating,
                comment,
                created_at: now,
                updated_at: now,
            };
            if let Err(err) = reviews::Entity::insert(reviews::ActiveModel::from(review.clone()))
                .exec(&txn)
                .await
            {
                // A concurrent first submission by the same user won the unique index.
                return Err(if db::is_unique_violation(&err) {
                    HubError::Conflict("Your review is being saved by another request".into())
                } else {
                    err.into()
                });
            }
            (Saved::Created, review, i64::from(rating), 1)
        }
    };
    adjust_agent(hub, &txn, agent.id, count_delta, sum_delta).await?;
    let action = match saved {
        Saved::Created => "review.create",
        Saved::Updated => "review.update",
    };
    audit::record(
        hub,
        &txn,
        origin,
        Event::new(user_id, action)
            .target("review", review.id)
            .details(serde_json::json!({ "agentId": agent.id, "rating": rating })),
    )
    .await?;
    txn.commit().await?;
    Ok((saved, view(review, username)))
}

/// Deletes the user's review of an agent; 404 when there is none.
pub async fn delete(hub: &Hub, origin: &Origin, user_id: Uuid, agent_id: &str) -> HubResult<()> {
    let agent = catalog::find_visible(hub, agent_id, Some(user_id)).await?;
    let txn = db::begin_write(&hub.db).await?;
    let review = find_review(&txn, agent.id, user_id)
        .await?
        .ok_or_else(|| HubError::not_found("Review"))?;
    reviews::Entity::delete_by_id(review.id).exec(&txn).await?;
    adjust_agent(hub, &txn, agent.id, -1, -i64::from(review.rating)).await?;
    audit::record(
        hub,
        &txn,
        origin,
        Event::new(user_id, "review.delete")
            .target("review", review.id)
            .details(serde_json::json!({ "agentId": agent.id })),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The user's own review of an agent; 404 when there is none.
pub async fn mine(hub: &Hub, user_id: Uuid, agent_id: &str) -> HubResult<ReviewView> {
    let agent = catalog::find_visible(hub, agent_id, Some(user_id)).await?;
    let review = find_review(&hub.db, agent.id, user_id)
        .await?
        .ok_or_else(|| HubError::not_found("Review"))?;
    Ok(view(review, username(hub, user_id).await?))
}

/// An agent's reviews, newest first.
pub async fn list(
    hub: &Hub,
    agent_id: &str,
    viewer: Option<Uuid>,
    page: Page,
) -> HubResult<Paged<ReviewView>> {
    let agent = catalog::find_visible(hub, agent_id, viewer).await?;
    let q = reviews::Entity::find()
        .filter(reviews::Column::AgentId.eq(agent.id))
        .order_by_desc(reviews::Column::CreatedAt)
        .order_by_desc(reviews::Column::Id);
    let total = q.clone().count(&hub.db).await?;
    let rows = q
        .offset(page.offset())
        .limit(page.limit)
        .all(&hub.db)
        .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.user_id).collect();
    let names: HashMap<Uuid, String> = if ids.is_empty() {
        HashMap::new()
    } else {
        users::Entity::find()
            .filter(users::Column::Id.is_in(ids))
            .all(&hub.db)
            .await?
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect()
    };
    let data = rows
        .into_iter()
        .map(|r| {
            let name = names.get(&r.user_id).cloned().unwrap_or_default();
            view(r, name)
        })
        .collect();
    Ok(Paged {
        data,
        page: page.page,
        limit: page.limit,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(rating: serde_json::Value, comment: Option<&str>) -> ReviewInput {
        ReviewInput {
            rating: Some(rating),
            comment: comment.map(str::to_string),
        }
    }

    #[test]
    fn ratings_are_integers_from_one_to_five() {
        for ok in [1, 3, 5] {
            assert!(validate(input(json!(ok), None)).is_ok());
        }
        for bad in [json!(0), json!(6), json!("x"), json!(3.5), json!(-1)] {
            assert!(validate(input(bad, None)).is_err());
        }
        assert!(validate(ReviewInput::default()).is_err());
    }

    #[test]
    fn comments_are_at_most_2000_characters() {
        let ok = "é".repeat(2000);
        assert!(validate(input(json!(4), Some(&ok))).is_ok());
        let long = "a".repeat(2001);
        assert!(validate(input(json!(4), Some(&long))).is_err());
    }
}
