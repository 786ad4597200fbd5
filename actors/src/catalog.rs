//! The agent catalog: registration, reading, updating and deleting agents, and their keys.
//!
//! Visibility is decided here and only here: a private agent is "not found" to everyone but
//! its owner (`find_visible`), and changing someone else's agent is 403 when it is public or
//! unlisted, 404 when it is private (`find_owned`).

use crate::{
    Hub, audit,
    audit::{Event, Origin},
    db,
    error::{HubError, HubResult},
    keys, reputation,
    reputation::ReputationCache,
    url_guard,
    validate::{Errors, Page, Paged},
};
use chrono::{DateTime, Utc};
use entities::agents;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The document's ten category slugs.
pub const CATEGORIES: [&str; 10] = [
    "data-analysis",
    "code-generation",
    "content-writing",
    "image-processing",
    "research",
    "automation",
    "translation",
    "customer-support",
    "finance",
    "other",
];
pub const CONNECTION_MODES: [&str; 3] = ["websocket", "http", "hybrid"];
pub const DELIVERY_MODES: [&str; 3] = ["ws", "poll", "push"];
pub const VISIBILITIES: [&str; 3] = ["public", "unlisted", "private"];
pub const STATUSES: [&str; 3] = ["active", "inactive", "maintenance"];
pub const PRICING_MODELS: [&str; 2] = ["free", "per-call"];
/// Slugs that would shadow a route under `/agents/` or read as something else.
const RESERVED_SLUGS: [&str; 12] = [
    "my",
    "ws",
    "leaderboard",
    "new",
    "mine",
    "search",
    "admin",
    "api",
    "tools",
    "reviews",
    "mcp",
    "marketplace",
];
pub const MAX_PRICE: i64 = 1_000_000;
const MAX_TAGS: usize = 20;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PricingInput {
    pub model: Option<String>,
    pub price_per_call: Option<i64>,
}

/// The fields of an agent as a client sends them, for creation (`POST`) and partial update
/// (`PATCH`): a missing field is `None` ("unchanged" on update).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentInput {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub mcp_endpoint: Option<String>,
    pub connection_mode: Option<String>,
    pub delivery_mode: Option<String>,
    pub endpoint: Option<String>,
    pub visibility: Option<String>,
    pub pricing: Option<PricingInput>,
    pub tags: Option<Vec<String>>,
    pub category: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PricingView {
    pub model: String,
    pub price_per_call: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    pub healthy: bool,
    pub latency_ms: i64,
    pub checked_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsView {
    pub total_calls: i64,
    pub completed_calls: i64,
    pub failed_calls: i64,
    pub tokens_earned: i64,
}

/// An agent as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentView {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub slug: String,
    pub version: String,
    pub description: String,
    pub connection_mode: Option<String>,
    pub delivery_mode: Option<String>,
    pub mcp_endpoint: Option<String>,
    /// The push webhook: shown to the owner only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub visibility: String,
    pub status: String,
    pub pricing: PricingView,
    pub tags: serde_json::Value,
    pub category: String,
    pub is_online: bool,
    pub reputation_cache: ReputationCache,
    pub health_checks: Option<HealthView>,
    pub stats: StatsView,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Whether an agent counts as online: a live WebSocket (or poller), or for HTTP agents a
/// passing latest health check.
pub fn is_online(hub: &Hub, agent: &agents::Model) -> bool {
    hub.registry.is_connected(agent.id)
        || (matches!(agent.connection_mode.as_deref(), Some("http" | "hybrid"))
            && agent.last_check_healthy == Some(true))
}

pub fn view(hub: &Hub, agent: agents::Model, viewer: Option<Uuid>) -> AgentView {
    let is_owner = viewer == Some(agent.owner_id);
    let health_checks = match (agent.last_check_healthy, agent.last_check_at) {
        (Some(healthy), Some(checked_at)) => Some(HealthView {
            healthy,
            latency_ms: agent.last_check_latency_ms.unwrap_or(0),
            checked_at,
        }),
        _ => None,
    };
    AgentView {
        is_online: is_online(hub, &agent),
        reputation_cache: reputation::cache(&agent),
        email: format!("{}@{}", agent.slug, hub.config.mail_domain),
        health_checks,
        stats: StatsView {
            total_calls: agent.total_calls,
            completed_calls: agent.completed_calls,
            failed_calls: agent.failed_calls,
            tokens_earned: agent.tokens_earned,
        },
        id: agent.id,
        owner_id: agent.owner_id,
        name: agent.name,
        slug: agent.slug,
        version: agent.version,
        description: agent.description,
        connection_mode: agent.connection_mode,
        delivery_mode: agent.delivery_mode,
        mcp_endpoint: agent.mcp_endpoint,
        endpoint: if is_owner { agent.endpoint } else { None },
        visibility: agent.visibility,
        status: agent.status,
        pricing: PricingView {
            model: agent.pricing_model,
            price_per_call: agent.price_per_call,
        },
        tags: agent.tags,
        category: agent.category,
        created_at: agent.created_at,
        updated_at: agent.updated_at,
    }
}

/// Checks a slug: 3–64 characters of `a-z`, `0-9` and single hyphens, starting and ending with
/// a letter or digit; not a reserved word, not a UUID (which would be read as an id).
pub fn slug_problem(slug: &str) -> Option<&'static str> {
    let len = slug.len();
    if !(3..=64).contains(&len) {
        return Some("must be 3 to 64 characters");
    }
    if !slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("may contain only lowercase letters, digits and hyphens");
    }
    if slug.starts_with('-') || slug.ends_with('-') || slug.contains("--") {
        return Some("must start and end with a letter or digit, without double hyphens");
    }
    if RESERVED_SLUGS.contains(&slug) || Uuid::parse_str(slug).is_ok() {
        return Some("is reserved");
    }
    None
}

/// A slug made from a name: "My Awesome Agent!" → "my-awesome-agent".
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(64);
    slug.trim_end_matches('-').to_string()
}

fn normalize_tags(errors: &mut Errors, tags: Vec<String>) -> Vec<String> {
    if tags.len() > MAX_TAGS {
        errors.add("tags", format!("at most {MAX_TAGS} tags"));
    }
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        let tag = tag.trim().to_lowercase();
        if tag.is_empty() || tag.len() > 32 {
            errors.add("tags", "each tag must be 1 to 32 characters");
        } else if tag.contains(',') {
            errors.add("tags", "tags may not contain commas");
        } else if !out.contains(&tag) {
            out.push(tag);
        }
    }
    out
}

fn tags_index(tags: &[String]) -> String {
    if tags.is_empty() {
        String::new()
    } else {
        format!(",{},", tags.join(","))
    }
}

fn check_one_of(errors: &mut Errors, field: &str, value: &str, allowed: &[&str]) {
    if !allowed.contains(&value) {
        errors.add(field, format!("must be one of: {}", allowed.join(", ")));
    }
}

fn check_url(errors: &mut Errors, hub: &Hub, field: &str, url: &str) {
    if let Err(why) = url_guard::check_endpoint(url, hub.config.allow_private_urls) {
        errors.add(field, why);
    }
}

/// Validates an input against the agent it would produce (`current` for updates) and writes the
/// accepted values into `model`.
fn apply(
    hub: &Hub,
    errors: &mut Errors,
    input: AgentInput,
    model: &mut agents::Model,
    creating: bool,
) {
    if let Some(name) = input.name {
        let name = name.trim().to_string();
        errors.len("name", &name, 1, 100);
        model.name = name;
    } else if creating {
        errors.add("name", "is required");
    }
    if let Some(slug) = input.slug {
        let slug = slug.trim().to_string();
        if let Some(problem) = slug_problem(&slug) {
            errors.add("slug", problem);
        }
        model.slug = slug;
    } else if creating {
        model.slug = slugify(&model.name);
        if !model.name.is_empty() && slug_problem(&model.slug).is_some() {
            errors.add(
                "slug",
                "is required (no valid slug can be made from the name)",
            );
        }
    }
    if let Some(version) = input.version {
        errors.len("version", version.trim(), 1, 32);
        model.version = version.trim().to_string();
    }
    if let Some(description) = input.description {
        errors.len("description", &description, 0, 5000);
        model.description = description;
    }
    match (input.connection_mode, input.delivery_mode) {
        (Some(_), Some(_)) => errors.add(
            "deliveryMode",
            "give either connectionMode or deliveryMode, not both",
        ),
        (Some(mode), None) => {
            check_one_of(errors, "connectionMode", &mode, &CONNECTION_MODES);
            model.connection_mode = Some(mode);
            model.delivery_mode = None;
        }
        (None, Some(mode)) => {
            check_one_of(errors, "deliveryMode", &mode, &DELIVERY_MODES);
            model.delivery_mode = Some(mode);
            model.connection_mode = None;
        }
        (None, None) => {}
    }
    if let Some(url) = input.mcp_endpoint {
        let url = url.trim().to_string();
        check_url(errors, hub, "mcpEndpoint", &url);
        model.mcp_endpoint = Some(url);
    }
    if let Some(url) = input.endpoint {
        let url = url.trim().to_string();
        check_url(errors, hub, "endpoint", &url);
        model.endpoint = Some(url);
    }
    if matches!(model.connection_mode.as_deref(), Some("http" | "hybrid"))
        && model.mcp_endpoint.is_none()
    {
        errors.add("mcpEndpoint", "is required for http and hybrid agents");
    }
    if model.delivery_mode.as_deref() == Some("push") && model.endpoint.is_none() {
        errors.add("endpoint", "is required for push delivery");
    }
    if let Some(visibility) = input.visibility {
        check_one_of(errors, "visibility", &visibility, &VISIBILITIES);
        model.visibility = visibility;
    }
    if let Some(pricing) = input.pricing {
        let model_name = pricing.model.unwrap_or_else(|| model.pricing_model.clone());
        check_one_of(errors, "pricing.model", &model_name, &PRICING_MODELS);
        let price = match (model_name.as_str(), pricing.price_per_call) {
            ("free", Some(p)) if p != 0 => {
                errors.add("pricing.pricePerCall", "must be 0 for free agents");
                0
            }
            ("free", _) => 0,
            (_, None) => {
                errors.add("pricing.pricePerCall", "is required for per-call pricing");
                0
            }
            (_, Some(p)) if !(0..=MAX_PRICE).contains(&p) => {
                errors.add(
                    "pricing.pricePerCall",
                    format!("must be between 0 and {MAX_PRICE}"),
                );
                0
            }
            (_, Some(p)) => p,
        };
        model.pricing_model = model_name;
        model.price_per_call = price;
    }
    if let Some(tags) = input.tags {
        let tags = normalize_tags(errors, tags);
        model.tags_index = tags_index(&tags);
        model.tags = serde_json::json!(tags);
    }
    if let Some(category) = input.category {
        check_one_of(errors, "category", &category, &CATEGORIES);
        model.category = category;
    }
}

/// A new agent and the key to show once.
pub struct Created {
    pub agent: agents::Model,
    pub key: keys::NewKey,
}

pub async fn create(
    hub: &Hub,
    origin: &Origin,
    owner_id: Uuid,
    input: AgentInput,
) -> HubResult<Created> {
    let now = hub.env.now();
    let mut agent = agents::Model {
        id: hub.env.new_id(),
        owner_id,
        name: String::new(),
        slug: String::new(),
        version: "1.0.0".into(),
        description: String::new(),
        connection_mode: None,
        delivery_mode: None,
        mcp_endpoint: None,
        endpoint: None,
        visibility: "public".into(),
        status: "active".into(),
        pricing_model: "free".into(),
        price_per_call: 0,
        tags: serde_json::json!([]),
        tags_index: String::new(),
        category: "other".into(),
        tools: None,
        total_calls: 0,
        completed_calls: 0,
        failed_calls: 0,
        total_latency_ms: 0,
        tokens_earned: 0,
        reputation_score: None,
        review_count: 0,
        rating_sum: 0,
        checks_total: 0,
        checks_healthy: 0,
        last_check_healthy: None,
        last_check_latency_ms: None,
        last_check_at: None,
        created_at: now,
        updated_at: now,
    };
    let default_mode = input.connection_mode.is_none() && input.delivery_mode.is_none();
    let mut errors = Errors::new();
    apply(hub, &mut errors, input, &mut agent, true);
    if default_mode {
        agent.connection_mode = Some("websocket".into());
    }
    errors.finish()?;
    if slug_taken(hub, &agent.slug, None).await? {
        return Err(HubError::Conflict(format!(
            "Slug '{}' is already taken",
            agent.slug
        )));
    }
    let key = keys::generate(hub);
    let key_hash = keys::hash(&key).await?;
    let txn = db::begin_write(&hub.db).await?;
    if let Err(err) = agents::Entity::insert(agents::ActiveModel::from(agent.clone()))
        .exec(&txn)
        .await
    {
        return Err(conflict_or(err, &agent.slug));
    }
    keys::store(hub, &txn, agent.id, &key, key_hash).await?;
    audit::record(
        hub,
        &txn,
        origin,
        Event::new(owner_id, "agent.create")
            .target("agent", agent.id)
            .details(serde_json::json!({ "slug": agent.slug })),
    )
    .await?;
    txn.commit().await?;
    Ok(Created { agent, key })
}

fn conflict_or(err: sea_orm::DbErr, slug: &str) -> HubError {
    if db::is_unique_violation(&err) {
        HubError::Conflict(format!("Slug '{slug}' is already taken"))
    } else {
        err.into()
    }
}

async fn slug_taken(hub: &Hub, slug: &str, except: Option<Uuid>) -> HubResult<bool> {
    let mut q = agents::Entity::find().filter(agents::Column::Slug.eq(slug));
    if let Some(id) = except {
        q = q.filter(agents::Column::Id.ne(id));
    }
    Ok(q.count(&hub.db).await? > 0)
}

/// Finds an agent by id or slug as `viewer` may see it: private agents of others are 404.
pub async fn find_visible(
    hub: &Hub,
    slug_or_id: &str,
    viewer: Option<Uuid>,
) -> HubResult<agents::Model> {
    let q = match Uuid::parse_str(slug_or_id) {
        Ok(id) => agents::Entity::find_by_id(id),
        Err(_) => agents::Entity::find().filter(agents::Column::Slug.eq(slug_or_id)),
    };
    match q.one(&hub.db).await? {
        Some(agent) if agent.visibility != "private" || viewer == Some(agent.owner_id) => Ok(agent),
        _ => Err(HubError::not_found("Agent")),
    }
}

/// Finds an agent by id for its owner to change: 404 if absent (or private and not theirs),
/// 403 if it is someone else's public or unlisted agent.
pub async fn find_owned(hub: &Hub, agent_id: &str, user_id: Uuid) -> HubResult<agents::Model> {
    let id = Uuid::parse_str(agent_id).map_err(|_| HubError::not_found("Agent"))?;
    let agent = agents::Entity::find_by_id(id)
        .one(&hub.db)
        .await?
        .ok_or_else(|| HubError::not_found("Agent"))?;
    if agent.owner_id == user_id {
        Ok(agent)
    } else if agent.visibility == "private" {
        Err(HubError::not_found("Agent"))
    } else {
        Err(HubError::Forbidden("You do not own this agent".into()))
    }
}

pub async fn update(
    hub: &Hub,
    origin: &Origin,
    user_id: Uuid,
    agent_id: &str,
    input: AgentInput,
) -> HubResult<agents::Model> {
    let current = find_owned(hub, agent_id, user_id).await?;
    let mut agent = current.clone();
    let mut errors = Errors::new();
    apply(hub, &mut errors, input, &mut agent, false);
    errors.finish()?;
    if agent.slug != current.slug && slug_taken(hub, &agent.slug, Some(agent.id)).await? {
        return Err(HubError::Conflict(format!(
            "Slug '{}' is already taken",
            agent.slug
        )));
    }
    agent.updated_at = hub.env.now();
    let txn = db::begin_write(&hub.db).await?;
    let mut active = current.clone().into_active_model();
    set_changes(&mut active, &current, &agent);
    let agent = match active.update(&txn).await {
        Ok(agent) => agent,
        Err(err) => return Err(conflict_or(err, &agent.slug)),
    };
    audit::record(
        hub,
        &txn,
        origin,
        Event::new(user_id, "agent.update").target("agent", agent.id),
    )
    .await?;
    txn.commit().await?;
    Ok(agent)
}

/// Marks every changed editable column of `new` as set on `active`.
fn set_changes(active: &mut agents::ActiveModel, old: &agents::Model, new: &agents::Model) {
    macro_rules! changed {
        ($($field:ident),*) => {$(
            if old.$field != new.$field {
                active.$field = Set(new.$field.clone());
            }
        )*};
    }
    changed!(
        name,
        slug,
        version,
        description,
        connection_mode,
        delivery_mode,
        mcp_endpoint,
        endpoint,
        visibility,
        pricing_model,
        price_per_call,
        tags,
        tags_index,
        category
    );
    active.updated_at = Set(new.updated_at);
}

pub async fn set_status(
    hub: &Hub,
    origin: &Origin,
    user_id: Uuid,
    agent_id: &str,
    status: Option<String>,
) -> HubResult<agents::Model> {
    let mut errors = Errors::new();
    errors.required("status", &status);
    let status = status.unwrap_or_default();
    if errors.is_empty() {
        check_one_of(&mut errors, "status", &status, &STATUSES);
    }
    errors.finish()?;
    let agent = find_owned(hub, agent_id, user_id).await?;
    let mut active = agent.clone().into_active_model();
    active.status = Set(status.clone());
    active.updated_at = Set(hub.env.now());
    let txn = db::begin_write(&hub.db).await?;
    let agent = active.update(&txn).await?;
    audit::record(
        hub,
        &txn,
        origin,
        Event::new(user_id, "agent.status")
            .target("agent", agent.id)
            .details(serde_json::json!({ "status": status })),
    )
    .await?;
    txn.commit().await?;
    Ok(agent)
}

pub async fn delete(hub: &Hub, origin: &Origin, user_id: Uuid, agent_id: &str) -> HubResult<()> {
    let agent = find_owned(hub, agent_id, user_id).await?;
    let txn = db::begin_write(&hub.db).await?;
    agents::Entity::delete_by_id(agent.id).exec(&txn).await?;
    audit::record(
        hub,
        &txn,
        origin,
        Event::new(user_id, "agent.delete")
            .target("agent", agent.id)
            .details(serde_json::json!({ "slug": agent.slug })),
    )
    .await?;
    txn.commit().await?;
    hub.keys.evict_agent(agent.id);
    Ok(())
}

/// The owner's agents, every visibility and status, newest first.
pub async fn mine(hub: &Hub, user_id: Uuid, page: Page) -> HubResult<Paged<agents::Model>> {
    let q = agents::Entity::find()
        .filter(agents::Column::OwnerId.eq(user_id))
        .order_by_desc(agents::Column::CreatedAt)
        .order_by_desc(agents::Column::Id);
    let total = q.clone().count(&hub.db).await?;
    let data = q
        .offset(page.offset())
        .limit(page.limit)
        .all(&hub.db)
        .await?;
    Ok(Paged {
        data,
        page: page.page,
        limit: page.limit,
        total,
    })
}

/// Replaces an agent's key; the old key fails at once. `agent_id` may be omitted when the user
/// has exactly one agent.
pub async fn regenerate_key(
    hub: &Hub,
    origin: &Origin,
    user_id: Uuid,
    agent_id: Option<String>,
) -> HubResult<(agents::Model, keys::NewKey)> {
    let agent = match agent_id {
        Some(id) => find_owned(hub, &id, user_id).await?,
        None => {
            let mut owned = agents::Entity::find()
                .filter(agents::Column::OwnerId.eq(user_id))
                .limit(2)
                .all(&hub.db)
                .await?;
            match owned.len() {
                0 => return Err(HubError::not_found("Agent")),
                1 => owned.remove(0),
                _ => {
                    return Err(HubError::invalid_field(
                        "agentId",
                        "is required when you have more than one agent",
                    ));
                }
            }
        }
    };
    let key = keys::generate(hub);
    let key_hash = keys::hash(&key).await?;
    let txn = db::begin_write(&hub.db).await?;
    keys::store(hub, &txn, agent.id, &key, key_hash).await?;
    audit::record(
        hub,
        &txn,
        origin,
        Event::new(user_id, "agent.key_regenerate").target("agent", agent.id),
    )
    .await?;
    txn.commit().await?;
    hub.keys.evict_agent(agent.id);
    Ok((agent, key))
}

/// Remembers the tools an agent last listed.
pub async fn store_tools(hub: &Hub, agent_id: Uuid, tools: serde_json::Value) -> HubResult<()> {
    agents::Entity::update_many()
        .col_expr(
            agents::Column::Tools,
            sea_orm::sea_query::Expr::value(Some(tools)),
        )
        .filter(agents::Column::Id.eq(agent_id))
        .exec(&hub.db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug_problem("my-awesome-agent"), None);
        assert!(slug_problem("ab").is_some());
        assert!(slug_problem("My-Agent").is_some());
        assert!(slug_problem("-agent").is_some());
        assert!(slug_problem("a--b").is_some());
        assert!(slug_problem("my").is_some());
        assert!(slug_problem("leaderboard").is_some());
        assert!(slug_problem("0b9c7e8a-1d2e-4f3a-9b8c-7d6e5f4a3b2c").is_some());
        assert_eq!(slugify("My Awesome Agent!"), "my-awesome-agent");
    }
}
