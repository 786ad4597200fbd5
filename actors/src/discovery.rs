//! Discovery (`GET /agents`): public, active agents filtered, sorted and paginated as the
//! marketplace document describes. Private and unlisted agents are never listed.

use crate::{
    Hub,
    catalog::{CATEGORIES, PRICING_MODELS},
    error::HubResult,
    validate::{Errors, Page, Paged},
};
use entities::agents;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, NullOrdering},
};
use serde::Deserialize;

pub const SORTS: [&str; 6] = [
    "newest",
    "reputation",
    "price_asc",
    "price_desc",
    "calls",
    "name",
];

/// The query string of `GET /agents`, as sent: every value is a string so that a wrong one
/// becomes a field error instead of a parse failure.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Query {
    pub search: Option<String>,
    pub category: Option<String>,
    pub tags: Option<String>,
    pub pricing_model: Option<String>,
    pub max_price: Option<String>,
    pub min_reputation: Option<String>,
    pub online: Option<String>,
    pub sort: Option<String>,
    pub page: Option<String>,
    pub limit: Option<String>,
}

/// Parses an optional integer query parameter.
pub fn int_param(errors: &mut Errors, field: &str, value: &Option<String>) -> Option<i64> {
    let v = value.as_deref()?.trim();
    match v.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.add(field, "must be an integer");
            None
        }
    }
}

/// `page` and `limit` from query strings.
pub fn page_params(errors: &mut Errors, page: &Option<String>, limit: &Option<String>) -> Page {
    let p = int_param(errors, "page", page);
    let l = int_param(errors, "limit", limit);
    Page::new(p, l, errors)
}

/// Escapes `%`, `_` and the escape character itself for a LIKE pattern.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn contains(col: agents::Column, needle: &str) -> sea_orm::sea_query::SimpleExpr {
    Expr::expr(Func::lower(Expr::col(col)))
        .like(LikeExpr::new(format!("%{}%", like_escape(needle))).escape('\\'))
}

pub async fn search(hub: &Hub, q: Query) -> HubResult<Paged<agents::Model>> {
    let mut errors = Errors::new();
    let page = page_params(&mut errors, &q.page, &q.limit);
    let mut cond = Condition::all()
        .add(agents::Column::Visibility.eq("public"))
        .add(agents::Column::Status.eq("active"));
    if let Some(search) = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if search.chars().count() > 200 {
            errors.add("search", "must be at most 200 characters");
        }
        let needle = search.to_lowercase();
        cond = cond.add(
            Condition::any()
                .add(contains(agents::Column::Name, &needle))
                .add(contains(agents::Column::Description, &needle)),
        );
    }
    if let Some(category) = q.category.as_deref().filter(|s| !s.is_empty()) {
        if !CATEGORIES.contains(&category) {
            errors.add(
                "category",
                format!("must be one of: {}", CATEGORIES.join(", ")),
            );
        }
        cond = cond.add(agents::Column::Category.eq(category));
    }
    if let Some(tags) = q.tags.as_deref() {
        for tag in tags
            .split(',')
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty())
        {
            cond = cond.add(
                Expr::col(agents::Column::TagsIndex)
                    .like(LikeExpr::new(format!("%,{},%", like_escape(&tag))).escape('\\')),
            );
        }
    }
    if let Some(model) = q.pricing_model.as_deref().filter(|s| !s.is_empty()) {
        if !PRICING_MODELS.contains(&model) {
            errors.add("pricingModel", "must be one of: free, per-call");
        }
        cond = cond.add(agents::Column::PricingModel.eq(model));
    }
    if let Some(max) = int_param(&mut errors, "maxPrice", &q.max_price) {
        if max < 0 {
            errors.add("maxPrice", "must not be negative");
        }
        cond = cond.add(agents::Column::PricePerCall.lte(max));
    }
    if let Some(min) = q
        .min_reputation
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match min.parse::<f64>() {
            Ok(min) if (0.0..=100.0).contains(&min) => {
                if min > 0.0 {
                    cond = cond.add(agents::Column::ReputationScore.gte(min));
                }
            }
            _ => errors.add("minReputation", "must be a number from 0 to 100"),
        }
    }
    match q.online.as_deref() {
        None | Some("") => {}
        Some(v @ ("true" | "false")) => {
            let online_ids = hub.registry.connected_ids();
            let online = Condition::any()
                .add(agents::Column::Id.is_in(online_ids))
                .add(
                    Condition::all()
                        .add(agents::Column::ConnectionMode.is_in(["http", "hybrid"]))
                        .add(agents::Column::LastCheckHealthy.eq(true)),
                );
            cond = cond.add(if v == "true" { online } else { online.not() });
        }
        Some(_) => errors.add("online", "must be true or false"),
    }
    let sort = q
        .sort
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or("newest");
    if !SORTS.contains(&sort) {
        errors.add("sort", format!("must be one of: {}", SORTS.join(", ")));
    }
    errors.finish()?;

    let base = agents::Entity::find().filter(cond);
    let total = base.clone().count(&hub.db).await?;
    let ordered = match sort {
        "reputation" => base.order_by_with_nulls(
            agents::Column::ReputationScore,
            Order::Desc,
            NullOrdering::Last,
        ),
        "price_asc" => base.order_by_asc(agents::Column::PricePerCall),
        "price_desc" => base.order_by_desc(agents::Column::PricePerCall),
        "calls" => base.order_by_desc(agents::Column::TotalCalls),
        "name" => base.order_by_asc(Func::lower(Expr::col(agents::Column::Name))),
        _ => base,
    }
    .order_by_desc(agents::Column::CreatedAt)
    .order_by_desc(agents::Column::Id);
    let data = ordered
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
