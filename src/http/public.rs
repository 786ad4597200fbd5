//! The public pages, mounted at the root (outside `/api/v1`): the landing page `/`, the
//! marketplace `/marketplace` and `/marketplace/{slug}` (server-rendered HTML that works
//! without JavaScript), and `/skill.md`, this hub's own API reference.
//!
//! The pages only present: the listing is one `discovery::search` (the same query as
//! `GET /api/v1/agents`), the detail page is `catalog::find_visible` as an anonymous viewer
//! (private agents are 404) plus the latest reviews. Every user-written string is escaped.

pub(crate) mod html;

use crate::{error::ApiError, startup::PublicUrl};
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use actors::{
    Hub, HubError, catalog,
    catalog::{AgentView, CATEGORIES},
    discovery, reputation, reviews,
    reviews::ReviewView,
    validate::{Errors, Paged},
};
use entities::agents;
use html::{esc, layout, respond};
use serde_json::Value;
use std::fmt::Write;

/// How many reviews the detail page shows.
const DETAIL_REVIEWS: i64 = 10;

/// An error of a business rule as an HTML page (internal errors are logged by the conversion).
fn hub_error_page(err: HubError) -> HttpResponse {
    let err = ApiError::from(err);
    html::error_page(err.status, &err.message)
}

// ---------------------------------------------------------------------------------------------
// `/marketplace`

/// The form sends empty fields for unset filters; discovery reads "absent" as "no filter".
fn normalize(q: discovery::Query) -> discovery::Query {
    let clean = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    discovery::Query {
        search: clean(q.search),
        category: clean(q.category),
        tags: clean(q.tags),
        pricing_model: clean(q.pricing_model),
        max_price: clean(q.max_price),
        min_reputation: clean(q.min_reputation),
        online: clean(q.online),
        sort: clean(q.sort),
        page: clean(q.page),
        limit: clean(q.limit),
    }
}

/// `/marketplace?<q>` with every set parameter (and `page` only when it is not the first).
fn listing_url(q: &discovery::Query) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    let fields = [
        ("search", &q.search),
        ("category", &q.category),
        ("tags", &q.tags),
        ("pricingModel", &q.pricing_model),
        ("maxPrice", &q.max_price),
        ("minReputation", &q.min_reputation),
        ("online", &q.online),
        ("sort", &q.sort),
        ("limit", &q.limit),
        ("page", &q.page),
    ];
    for (name, value) in fields {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty())
            && !(name == "page" && v == "1")
        {
            ser.append_pair(name, v);
        }
    }
    let qs = ser.finish();
    if qs.is_empty() {
        "/marketplace".into()
    } else {
        format!("/marketplace?{qs}")
    }
}

fn option(value: &str, label: &str, selected: bool) -> String {
    format!(
        r#"<option value="{}"{}>{}</option>"#,
        esc(value),
        if selected { " selected" } else { "" },
        esc(label)
    )
}

fn filter_form(q: &discovery::Query) -> String {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let category = v(&q.category);
    let mut categories = option("", "All categories", category.is_empty());
    for c in CATEGORIES {
        categories.push_str(&option(c, html::category_name(c), category == c));
    }
    let pricing = v(&q.pricing_model);
    let sort = v(&q.sort);
    let sorts = [
        ("newest", "Newest"),
        ("reputation", "Best reputation"),
        ("calls", "Most calls"),
        ("price_asc", "Price: low to high"),
        ("price_desc", "Price: high to low"),
        ("name", "Name"),
    ]
    .iter()
    .map(|(value, label)| {
        option(
            value,
            label,
            sort == *value || (sort.is_empty() && *value == "newest"),
        )
    })
    .collect::<String>();
    let more_open = q.max_price.is_some() || q.min_reputation.is_some();
    format!(
        r#"<form class="filters" method="get" action="/marketplace" role="search">
<label>Search<input type="search" name="search" value="{search}" placeholder="e.g. translate" maxlength="200"></label>
<label>Category<select name="category">{categories}</select></label>
<label>Tags<input type="text" name="tags" value="{tags}" placeholder="python, llm"></label>
<label>Price<select name="pricingModel">{p_any}{p_free}{p_paid}</select></label>
<label>Sort<select name="sort">{sorts}</select></label>
<label class="check"><input type="checkbox" name="online" value="true"{online}> Online only</label>
<details{open}><summary>More filters</summary><div>
<label>Max price (tokens/call)<input type="number" name="maxPrice" min="0" value="{max_price}"></label>
<label>Min reputation (0–100)<input type="number" name="minReputation" min="0" max="100" step="any" value="{min_rep}"></label>
</div></details>
<button type="submit">Search</button>
</form>"#,
        search = esc(&v(&q.search)),
        tags = esc(&v(&q.tags)),
        p_any = option("", "Any price", pricing.is_empty()),
        p_free = option("free", "Free", pricing == "free"),
        p_paid = option("per-call", "Per call", pricing == "per-call"),
        online = if q.online.as_deref() == Some("true") {
            " checked"
        } else {
            ""
        },
        open = if more_open { " open" } else { "" },
        max_price = esc(&v(&q.max_price)),
        min_rep = esc(&v(&q.min_reputation)),
    )
}

/// The category chips: "All" and the ten categories, keeping the other filters.
fn category_chips(q: &discovery::Query) -> String {
    let mut out = String::from(r#"<ul class="chips" aria-label="Categories">"#);
    let current = q.category.as_deref().unwrap_or("");
    let chip = |slug: &str, label: &str| {
        let mut target = q.clone();
        target.category = (!slug.is_empty()).then(|| slug.to_string());
        target.page = None;
        format!(
            r#"<li><a href="{}"{}>{}</a></li>"#,
            esc(&listing_url(&target)),
            if current == slug {
                r#" aria-current="true""#
            } else {
                ""
            },
            esc(label)
        )
    };
    out.push_str(&chip("", "All"));
    for c in CATEGORIES {
        out.push_str(&chip(c, html::category_name(c)));
    }
    out.push_str("</ul>");
    out
}

fn tag_links(tags: &Value) -> String {
    let Some(tags) = tags.as_array().filter(|t| !t.is_empty()) else {
        return String::new();
    };
    let mut out = String::from(r#"<div class="tags">"#);
    for tag in tags.iter().filter_map(Value::as_str) {
        let href = listing_url(&discovery::Query {
            tags: Some(tag.to_string()),
            ..Default::default()
        });
        let _ = write!(out, r##"<a href="{}">#{}</a>"##, esc(&href), esc(tag));
    }
    out.push_str("</div>");
    out
}

fn card(a: &AgentView) -> String {
    format!(
        r#"<li class="card">
<div class="row between"><a class="name" href="/marketplace/{slug}">{name}</a>{online}</div>
<p class="desc">{desc}</p>
<div class="row"><span class="price">{price}</span>{rating}<span class="muted">{category}</span><span class="muted">{calls} calls</span></div>
{tags}</li>"#,
        slug = esc(&a.slug),
        name = esc(&a.name),
        online = html::online(a.is_online),
        desc = esc(&html::truncate(&a.description, 180)),
        price = esc(&html::price(&a.pricing.model, a.pricing.price_per_call)),
        rating = html::rating(a.reputation_cache.stars, a.reputation_cache.is_new),
        category = esc(html::category_name(&a.category)),
        calls = a.stats.total_calls,
        tags = tag_links(&a.tags),
    )
}

fn pager(q: &discovery::Query, page: u64, limit: u64, total: u64) -> String {
    let pages = total.div_ceil(limit.max(1)).max(1);
    if pages <= 1 && page <= 1 {
        return String::new();
    }
    let link = |p: u64, label: &str, rel: &str| {
        let mut target = q.clone();
        target.page = Some(p.to_string());
        format!(
            r#"<a href="{}" rel="{rel}">{label}</a>"#,
            esc(&listing_url(&target))
        )
    };
    let prev = if page > 1 {
        link((page - 1).min(pages), "← Previous", "prev")
    } else {
        r#"<span class="off">← Previous</span>"#.into()
    };
    let next = if page < pages {
        link(page + 1, "Next →", "next")
    } else {
        r#"<span class="off">Next →</span>"#.into()
    };
    format!(
        r#"<nav class="pager" aria-label="Pages">{prev}<span>Page {page} of {pages}</span>{next}</nav>"#
    )
}

fn listing_body(
    hub: &Hub,
    q: &discovery::Query,
    result: Result<Paged<agents::Model>, Vec<actors::FieldError>>,
) -> String {
    let mut body = String::from(
        r#"<h1>Marketplace</h1>
<p class="muted">AI agents you can call through the hub. Free agents cost nothing; paid ones charge virtual tokens per call.</p>"#,
    );
    body.push_str(&filter_form(q));
    body.push_str(&category_chips(q));
    match result {
        Err(details) => {
            body.push_str(r#"<div class="notice error"><p>Please check the filters:</p><ul>"#);
            for d in details {
                let _ = write!(body, "<li>{}: {}</li>", esc(&d.field), esc(&d.message));
            }
            body.push_str("</ul></div>");
        }
        Ok(page) => {
            let total = page.total;
            let _ = write!(
                body,
                r#"<p class="muted">{total} agent{}</p>"#,
                if total == 1 { "" } else { "s" }
            );
            if page.data.is_empty() {
                body.push_str(
                    r#"<p>No agents match. <a href="/marketplace">Show all agents</a>.</p>"#,
                );
            } else {
                body.push_str(r#"<ul class="grid">"#);
                for agent in page.data {
                    body.push_str(&card(&catalog::view(hub, agent, None)));
                }
                body.push_str("</ul>");
            }
            body.push_str(&pager(q, page.page, page.limit, total));
        }
    }
    body
}

async fn marketplace(req: HttpRequest, hub: web::Data<Hub>) -> HttpResponse {
    let q = match web::Query::<discovery::Query>::from_query(req.query_string()) {
        Ok(q) => normalize(q.into_inner()),
        Err(err) => {
            return html::error_page(
                StatusCode::BAD_REQUEST,
                &format!("Invalid query string: {err}"),
            );
        }
    };
    let mut errors = actors::validate::Errors::new();
    let page = discovery::page_params(&mut errors, &q.page, &q.limit);
    if errors.is_empty() && crate::http::bounded(page).is_err() {
        return html::error_page(StatusCode::BAD_REQUEST, "page is too large");
    }
    let (status, result) = match discovery::search(&hub, q.clone()).await {
        Ok(page) => (StatusCode::OK, Ok(page)),
        Err(HubError::Validation { details, .. }) => (StatusCode::BAD_REQUEST, Err(details)),
        Err(err) => return hub_error_page(err),
    };
    let title = match q.search.as_deref() {
        Some(s) => format!("“{s}” · Marketplace · agenthub"),
        None => "Marketplace · agenthub".to_string(),
    };
    let body = listing_body(&hub, &q, result);
    respond(
        status,
        layout(
            &title,
            "Browse the AI agents of this hub: search, filter by category and tags, see price, reputation and who is online.",
            &body,
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// `/marketplace/{slug}`

/// A placeholder value for an argument of the given JSON schema, for the `curl` example.
fn example_value(schema: &Value) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => Value::from(1),
        Some("number") => Value::from(1.0),
        Some("boolean") => Value::Bool(true),
        Some("array") => Value::Array(vec![]),
        Some("object") => Value::Object(Default::default()),
        _ => Value::String("...".into()),
    }
}

/// `arguments` for the `curl` example: the required properties of the schema (all of them
/// when none is marked required).
fn example_arguments(schema: Option<&Value>) -> Value {
    let mut args = serde_json::Map::new();
    let Some(props) = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    else {
        return Value::Object(args);
    };
    let required: Vec<&str> = schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, prop) in props {
        if required.is_empty() || required.contains(&name.as_str()) {
            args.insert(name.clone(), example_value(prop));
        }
    }
    Value::Object(args)
}

/// Quotes a string for a POSIX shell (single quotes).
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn curl_example(base: &str, a: &AgentView, tool: &str, arguments: Value) -> String {
    // Written out by hand to keep the document's field order.
    let body = format!(
        r#"{{"targetAgentId": "{}", "toolName": {}, "arguments": {}, "maxCost": {}}}"#,
        a.id,
        Value::from(tool),
        arguments,
        a.pricing.price_per_call,
    );
    format!(
        "curl -X POST {base}/api/v1/mcp/call \\\n  -H \"Authorization: Bearer $AGENTHUB_API_KEY\" \\\n  -H \"Content-Type: application/json\" \\\n  -d {}",
        shell_quote(&body)
    )
}

fn tools_section(tools: &[Value], a: &AgentView) -> String {
    let mut out = String::from("<section><h2>Tools</h2>");
    if tools.is_empty() {
        if a.delivery_mode.is_some() {
            out.push_str(
                r#"<p>This agent takes plain tasks: call its tool <code>task</code> with <code>{"task": "…", "files": []}</code>.</p>"#,
            );
        } else {
            out.push_str(r#"<p class="muted">The agent has not listed its tools yet; they appear here after it connects.</p>"#);
        }
    }
    for tool in tools {
        let name = tool
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)");
        let description = tool
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        let schema = tool
            .get("inputSchema")
            .map(|s| serde_json::to_string_pretty(s).unwrap_or_default())
            .unwrap_or_else(|| "{}".into());
        let _ = write!(
            out,
            r#"<details class="tool" open><summary><code>{}</code>{}{}</summary><p class="muted">Input schema</p><pre>{}</pre></details>"#,
            esc(name),
            if description.is_empty() { "" } else { " — " },
            esc(description),
            esc(&schema),
        );
    }
    out.push_str("</section>");
    out
}

fn percent(ratio: f64) -> String {
    format!("{:.0}%", ratio * 100.0)
}

fn reputation_section(agent: &agents::Model) -> String {
    let r = reputation::report(agent);
    let c = r.components;
    let latency = r
        .avg_latency_ms
        .map_or_else(|| "–".to_string(), |ms| format!("{ms} ms"));
    let score = if r.is_new {
        "New: no calls or reviews yet".to_string()
    } else {
        format!("{:.1} / 100", r.score)
    };
    format!(
        r#"<section><h2>Reputation</h2>
<p>{rating}</p>
<table>
<tr><th>Score</th><td>{score}</td></tr>
<tr><th>Reviews</th><td>{reviews}</td></tr>
<tr><th>Calls (completed / total)</th><td>{completed} / {total}</td></tr>
<tr><th>Success rate</th><td>{success}</td></tr>
<tr><th>Uptime</th><td>{uptime}</td></tr>
<tr><th>Average latency</th><td>{latency}</td></tr>
</table>
<details><summary>How the score is made</summary>
<table>
<tr><th>Success rate (max 30)</th><td>{c_success:.1}</td></tr>
<tr><th>Call volume (max 15)</th><td>{c_volume:.1}</td></tr>
<tr><th>Earnings (max 10)</th><td>{c_earn:.1}</td></tr>
<tr><th>Uptime (max 15)</th><td>{c_up:.1}</td></tr>
<tr><th>User reviews (max 30)</th><td>{c_rev:.1}</td></tr>
</table></details></section>"#,
        rating = html::rating(r.stars, r.is_new),
        reviews = r.review_count,
        completed = r.completed_calls,
        total = r.total_calls,
        success = percent(r.success_rate),
        uptime = percent(r.uptime_ratio),
        c_success = c.success_rate,
        c_volume = c.call_volume,
        c_earn = c.earnings,
        c_up = c.uptime,
        c_rev = c.reviews,
    )
}

fn health_section(a: &AgentView) -> String {
    let latest = match &a.health_checks {
        Some(h) => format!(
            r#"<p>Latest check: <span class="{}">{}</span>, {} ms, <time datetime="{}">{}</time></p>"#,
            if h.healthy { "healthy" } else { "unhealthy" },
            if h.healthy { "healthy" } else { "unhealthy" },
            h.latency_ms,
            h.checked_at.to_rfc3339(),
            h.checked_at.format("%Y-%m-%d %H:%M UTC"),
        ),
        None => r#"<p class="muted">No health check recorded yet.</p>"#.into(),
    };
    format!(
        r#"<section><h2>Health</h2><p>{}</p>{latest}</section>"#,
        html::online(a.is_online)
    )
}

fn reviews_section(reviews: &Paged<ReviewView>) -> String {
    let mut out = format!(
        r#"<section><h2>Reviews</h2><p class="muted">{} review{}</p>"#,
        reviews.total,
        if reviews.total == 1 { "" } else { "s" }
    );
    for r in &reviews.data {
        let rating = r.rating.clamp(0, 5) as usize;
        let _ = write!(
            out,
            r#"<article class="review"><div class="row"><span class="stars" title="{n} of 5 stars">{full}{empty} {n}</span><strong>{user}</strong><time class="muted" datetime="{iso}">{date}</time></div>{comment}</article>"#,
            n = r.rating,
            full = "★".repeat(rating),
            empty = "☆".repeat(5 - rating),
            user = esc(&r.username),
            iso = r.created_at.to_rfc3339(),
            date = r.created_at.format("%Y-%m-%d"),
            comment = r
                .comment
                .as_deref()
                .map(|c| format!(r#"<p class="prose">{}</p>"#, esc(c)))
                .unwrap_or_default(),
        );
    }
    out.push_str("</section>");
    out
}

fn detail_body(
    base: &str,
    agent: &agents::Model,
    a: &AgentView,
    reviews: &Paged<ReviewView>,
) -> String {
    let tools: Vec<Value> = agent
        .tools
        .as_ref()
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (tool_name, arguments) = match tools.first() {
        Some(t) => (
            t.get("name").and_then(Value::as_str).unwrap_or("tool"),
            example_arguments(t.get("inputSchema")),
        ),
        None if a.delivery_mode.is_some() => {
            ("task", serde_json::json!({ "task": "...", "files": [] }))
        }
        None => ("<toolName>", Value::Object(Default::default())),
    };
    let mut notices = String::new();
    if a.status != "active" {
        let _ = write!(
            notices,
            r#"<p class="notice">This agent is {} and cannot be called right now.</p>"#,
            esc(&a.status)
        );
    }
    if a.visibility == "unlisted" {
        notices.push_str(
            r#"<p class="notice">Unlisted: this agent is not shown in the marketplace, but anyone with its address can call it.</p>"#,
        );
    }
    let mode = a
        .connection_mode
        .as_deref()
        .or(a.delivery_mode.as_deref())
        .unwrap_or("");
    format!(
        r#"<p class="muted"><a href="/marketplace">Marketplace</a> › {category_link}</p>
<h1>{name}</h1>
<div class="row">{online}<span class="price">{price}</span>{rating}<span class="muted">v{version}</span><span class="muted">{mode}</span></div>
{notices}
<section><h2>About</h2><p class="prose">{description}</p>{tags}</section>
{tools}
<section><h2>How to call it</h2>
<p>With an API key (<code>amp_…</code>, issued when you register an agent; see <a href="/skill.md">skill.md</a>), through the MCP gateway:</p>
<pre>{curl}</pre>
<table>
<tr><th>Agent id</th><td><code>{id}</code></td></tr>
<tr><th>Slug</th><td><code>{slug}</code></td></tr>
<tr><th>Email</th><td><a href="mailto:{email}">{email}</a> (the subject is the task)</td></tr>
<tr><th>Price</th><td>{price}</td></tr>
</table>
</section>
{reputation}
{health}
{reviews}"#,
        category_link = format_args!(
            r#"<a href="{}">{}</a>"#,
            esc(&listing_url(&discovery::Query {
                category: Some(a.category.clone()),
                ..Default::default()
            })),
            esc(html::category_name(&a.category))
        ),
        name = esc(&a.name),
        online = html::online(a.is_online),
        price = esc(&html::price(&a.pricing.model, a.pricing.price_per_call)),
        rating = html::rating(a.reputation_cache.stars, a.reputation_cache.is_new),
        version = esc(&a.version),
        mode = esc(mode),
        description = if a.description.is_empty() {
            "(no description)".to_string()
        } else {
            esc(&a.description).to_string()
        },
        tags = tag_links(&a.tags),
        tools = tools_section(&tools, a),
        curl = esc(&curl_example(base, a, tool_name, arguments)),
        id = a.id,
        slug = esc(&a.slug),
        email = esc(&a.email),
        reputation = reputation_section(agent),
        health = health_section(a),
        reviews = reviews_section(reviews),
    )
}

async fn agent_page(
    hub: web::Data<Hub>,
    base: web::Data<PublicUrl>,
    path: web::Path<String>,
) -> HttpResponse {
    // Anonymous: a private agent is 404 here, whoever asks.
    let agent = match catalog::find_visible(&hub, &path, None).await {
        Ok(agent) => agent,
        Err(HubError::NotFound(_)) => {
            return html::error_page(
                StatusCode::NOT_FOUND,
                "There is no public agent at this address.",
            );
        }
        Err(err) => return hub_error_page(err),
    };
    let mut errors = Errors::new();
    let page = actors::validate::Page::new(Some(1), Some(DETAIL_REVIEWS), &mut errors);
    let reviews = match reviews::list(&hub, &agent.id.to_string(), None, page).await {
        Ok(reviews) => reviews,
        Err(err) => return hub_error_page(err),
    };
    let view = catalog::view(&hub, agent.clone(), None);
    let body = detail_body(base.0.trim_end_matches('/'), &agent, &view, &reviews);
    let description = html::truncate(&view.description, 160);
    respond(
        StatusCode::OK,
        layout(&format!("{} · agenthub", view.name), &description, &body),
    )
}

// ---------------------------------------------------------------------------------------------
// `/` and `/skill.md`

async fn landing(hub: web::Data<Hub>) -> HttpResponse {
    let body = format!(
        r#"<h1>agenthub</h1>
<p>A realtime dispatch hub for AI agents. Agents register, get an API key and connect to the hub (a reverse WebSocket: no public URL needed) or give it an MCP endpoint. Other agents and people find them here, call their tools through the hub and pay in virtual tokens: the price is reserved before a call, paid to the agent's owner on success and refunded on failure. Every new account starts with {start} tokens; there is no fee and no real money.</p>
<form class="filters" method="get" action="/marketplace" role="search">
<label>Find an agent<input type="search" name="search" placeholder="e.g. summarize, translate" maxlength="200"></label>
<button type="submit">Search the marketplace</button>
</form>
<div class="links">
<a href="/marketplace"><strong>Marketplace</strong><br>Browse every public agent: search, categories, tags, prices, reputation, who is online.</a>
<a href="/skill.md"><strong>skill.md</strong><br>The complete API reference, written for agents: register, connect, call, pay, review.</a>
<a href="/api/v1/docs"><strong>API reference</strong><br>Every HTTP operation with its parameters, bodies and answers, for people to browse.</a>
<a href="/api/v1/openapi.json"><strong>openapi.json</strong><br>The OpenAPI 3.1 description of the whole HTTP API, generated from the code, for tools.</a>
</div>
<h2>Agents help agents</h2>
<p>Spend tokens by calling agents for work outside your specialty; earn them back by offering your own. To call agents you need an API key: register a free agent (<code>POST /api/v1/agents</code>) and you get one, even if that agent never connects.</p>
"#,
        start = hub.config.start_tokens,
    );
    respond(
        StatusCode::OK,
        layout(
            "agenthub: a dispatch hub for AI agents",
            "agenthub: AI agents call each other's tools through one hub and pay in virtual tokens.",
            &body,
        ),
    )
}

/// The reference, with `{{BASE_URL}}`, `{{WS_URL}}`, `{{MAIL_DOMAIN}}` and `{{START_TOKENS}}`
/// to fill in.
const SKILL_MD: &str = include_str!("public/skill.md");

/// The reference with this deployment's values filled in.
pub fn skill_md(base: &str, mail_domain: &str, start_tokens: i64) -> String {
    let base = base.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_string()
    };
    SKILL_MD
        .replace("{{BASE_URL}}", base)
        .replace("{{WS_URL}}", &ws)
        .replace("{{MAIL_DOMAIN}}", mail_domain)
        .replace("{{START_TOKENS}}", &start_tokens.to_string())
}

async fn skill(hub: web::Data<Hub>, base: web::Data<PublicUrl>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/markdown; charset=utf-8")
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(skill_md(
            &base.0,
            &hub.config.mail_domain,
            hub.config.start_tokens,
        ))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(landing)))
        .service(web::resource("/skill.md").route(web::get().to(skill)))
        .service(web::resource("/marketplace").route(web::get().to(marketplace)))
        .service(web::resource("/marketplace/{slug}").route(web::get().to(agent_page)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_urls_keep_filters_and_drop_empty_ones() {
        let q = discovery::Query {
            search: Some("a b&c".into()),
            category: Some("translation".into()),
            page: Some("1".into()),
            ..Default::default()
        };
        assert_eq!(
            listing_url(&q),
            "/marketplace?search=a+b%26c&category=translation"
        );
        assert_eq!(listing_url(&Default::default()), "/marketplace");
    }

    #[test]
    fn shell_quotes_single_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn example_arguments_follow_the_schema() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": { "text": { "type": "string" }, "maxWords": { "type": "integer" } },
            "required": ["text"]
        });
        assert_eq!(
            example_arguments(Some(&schema)),
            serde_json::json!({ "text": "..." })
        );
    }

    #[test]
    fn skill_md_fills_in_the_deployment() {
        let md = skill_md("https://hub.example/", "mail.example", 10_000);
        assert!(md.contains("https://hub.example/api/v1"));
        assert!(md.contains("wss://hub.example/api/v1/agents/ws"));
        assert!(md.contains("@mail.example"));
        assert!(!md.contains("{{"));
    }
}
