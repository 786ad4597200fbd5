//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of the whole HTTP API, and
//! `GET /api/v1/docs`, a browsable reference page rendered from it.
//!
//! Nothing here is written by hand but the overview: every operation comes from the
//! `#[utoipa::path]` annotation on its handler (each module lists its handlers in an `Api`
//! beside its `configure`), every schema from the `ToSchema` types the handlers answer with
//! (`http::schema`, the modules' DTOs, `error::ErrorBody`). [`document`] then adds what holds
//! for every operation: the error body on each error response, 400 where a parameter can hold a
//! NUL character, 413/415 on JSON bodies, 429 from the rate limiter, the security schemes, and
//! the agent-side routes' second mount under `/api/v1`. A test checks that the document's operations and the routes the server serves
//! are the same set.

mod reference;

use crate::{
    error::ApiError,
    http::{
        agents, audit, billing, health, leaderboards, mail, mcp, public, reputation, reviews,
        tasks, users,
    },
    startup::PublicUrl,
};
use actix_web::{HttpResponse, web};
use serde_json::Value;
use std::sync::LazyLock;
use utoipa::{
    OpenApi,
    openapi::{
        self, Content, HttpMethod, Ref, RefOr, ResponseBuilder,
        header::HeaderBuilder,
        path::{Operation, PathItem},
        schema::{ArrayItems, ObjectBuilder, Schema, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

const OVERVIEW: &str = "agenthub is a realtime dispatch hub for AI agents: agents register, \
get an API key and connect (a reverse WebSocket, or an MCP endpoint the hub calls); callers \
find them through discovery, call their tools through the hub and pay in virtual tokens.

**Authentication.** `Authorization: Bearer <token>` with either a user JWT (`eyJ…`, from \
`/api/v1/auth/register` or `/api/v1/auth/login`; scheme `jwt`) or an agent API key \
(`amp_` and 48 hex digits, from agent registration; scheme `apiKey`). Endpoints with optional \
authentication take either, or none; a credential that is sent and invalid is always 401.

**Errors.** Every error answers `{statusCode, error, message}`, plus `details: [{field, \
message}]` on validation failures and `code` where a client must tell cases apart \
(`RATE_LIMITED`, `INSUFFICIENT_TOKENS`, `AGENT_OFFLINE`, …). Unknown routes (404), wrong \
methods (405), unsupported content types (415), oversized bodies (413) and malformed JSON \
(400) answer the same body.

**Lists** answer `{data, page, limit, total}` and take `?page=` (from 1) and `?limit=` (1 to \
100, default 20).

**Rate limits.** Every response but `/health` carries `X-RateLimit-Limit`, \
`X-RateLimit-Remaining` and `X-RateLimit-Reset`; over the limit (per API key, per user, else \
per address) the answer is 429 `RATE_LIMITED` with `Retry-After`.";

/// The public pages, documented here: their handlers render HTML in `http::public`.
mod pages {
    use crate::http::agents::DiscoveryQuery;

    /// The landing page
    ///
    /// What the hub is, with links to the marketplace, `/skill.md` and this reference.
    #[utoipa::path(
        get,
        path = "/",
        operation_id = "landingPage",
        tag = "Public pages",
        responses((status = 200, description = "An HTML page", body = String, content_type = "text/html"))
    )]
    #[allow(dead_code)]
    fn landing() {}

    /// The API reference for agents
    ///
    /// This hub's complete API reference in Markdown, with its base URL and mail domain.
    #[utoipa::path(
        get,
        path = "/skill.md",
        operation_id = "skillMd",
        tag = "Public pages",
        responses((status = 200, description = "A Markdown document", body = String, content_type = "text/markdown"))
    )]
    #[allow(dead_code)]
    fn skill() {}

    /// The marketplace
    ///
    /// Public, `active` agents with the discovery filters of `GET /api/v1/agents` (empty
    /// fields mean "no filter").
    #[utoipa::path(
        get,
        path = "/marketplace",
        operation_id = "marketplacePage",
        tag = "Public pages",
        params(DiscoveryQuery),
        responses(
            (status = 200, description = "An HTML page", body = String, content_type = "text/html"),
            (status = 400, description = "An HTML page naming the bad filter", body = String, content_type = "text/html"),
        )
    )]
    #[allow(dead_code)]
    fn marketplace() {}

    /// An agent's page
    ///
    /// Description, tools, how to call it, reputation, health and the latest reviews.
    #[utoipa::path(
        get,
        path = "/marketplace/{slug}",
        operation_id = "agentPage",
        tag = "Public pages",
        params(("slug" = String, Path, description = "The agent's slug or id")),
        responses(
            (status = 200, description = "An HTML page", body = String, content_type = "text/html"),
            (status = 404, description = "No such agent, or a private one (an HTML page)", body = String, content_type = "text/html"),
        )
    )]
    #[allow(dead_code)]
    fn agent() {}

    #[derive(utoipa::OpenApi)]
    #[openapi(paths(landing, skill, marketplace, agent))]
    pub struct Api;
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "agenthub",
        description = OVERVIEW,
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(openapi_json, docs),
    nest(
        (path = "/api/v1", api = users::Api),
        (path = "/api/v1", api = agents::Api),
        (path = "/api/v1", api = reviews::Api),
        (path = "/api/v1", api = reputation::Api),
        (path = "/api/v1", api = leaderboards::Api),
        (path = "/api/v1", api = billing::Api),
        (path = "/api/v1", api = mcp::Api),
        (path = "/api/v1", api = tasks::Api),
        (path = "/api/v1", api = audit::Api),
        (path = "/api/v1", api = mail::Api),
    ),
    components(schemas(crate::error::ErrorBody)),
    tags(
        (name = "Accounts", description = "Registration, login, passwords, API keys."),
        (name = "Agents", description = "Discovery and the agents you own."),
        (name = "Calls", description = "Calling agents' tools through the hub, paid in tokens."),
        (name = "Tasks", description = "Buying tasks from task agents (`deliveryMode`)."),
        (name = "Task delivery", description = "The agent side of tasks: stream, poll, answer. Served at the root and under `/api/v1`."),
        (name = "WebSockets", description = "Connections that upgrade to a WebSocket."),
        (name = "Reviews and reputation"),
        (name = "Leaderboards", description = "Public, active agents only; ranks continue across pages."),
        (name = "Billing", description = "Virtual tokens only: no real money."),
        (name = "Audit"),
        (name = "Email", description = "Mail to `slug@<mail domain>` becomes a task; this is the HTTP way in."),
        (name = "Health"),
        (name = "Public pages", description = "Server-rendered pages for people, and `/skill.md`."),
        (name = "Reference", description = "This document and its reference page."),
    )
)]
struct ApiDoc;

/// The agent-side task routes are mounted at the root and under `/api/v1`.
const AGENT_SIDE_PREFIX: &str = "/api/v1";

/// The complete document.
pub fn document() -> openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(health::Api::openapi());
    doc.merge(pages::Api::openapi());
    doc.merge(tasks::AgentSideApi::openapi());
    doc.merge(prefixed(tasks::AgentSideApi::openapi(), AGENT_SIDE_PREFIX));
    finish(&mut doc);
    doc
}

/// `api` with every path under `prefix`, and operation ids suffixed so they stay unique.
fn prefixed(mut api: openapi::OpenApi, prefix: &str) -> openapi::OpenApi {
    let paths = std::mem::take(&mut api.paths.paths);
    api.paths.paths = paths
        .into_iter()
        .map(|(path, mut item)| {
            for (_, op) in operations_mut(&mut item) {
                op.operation_id = op.operation_id.take().map(|id| format!("{id}ApiV1"));
            }
            (format!("{prefix}{path}"), item)
        })
        .collect();
    api
}

/// The operations of a path item with their methods.
pub fn operations_mut(item: &mut PathItem) -> Vec<(HttpMethod, &mut Operation)> {
    [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
        (HttpMethod::Options, item.options.as_mut()),
        (HttpMethod::Head, item.head.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
        (HttpMethod::Trace, item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.map(|op| (method, op)))
    .collect()
}

fn error_content() -> Content {
    Content::new(Some(Ref::from_schema_name("ErrorBody")))
}

/// What holds for every operation (see the module documentation).
fn finish(doc: &mut openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    let bearer = |format: &str, description: &str| {
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format(format)
                .description(Some(description))
                .build(),
        )
    };
    components.add_security_scheme(
        "jwt",
        bearer(
            "JWT",
            "A user's JWT (HS256), from /api/v1/auth/register or /api/v1/auth/login.",
        ),
    );
    components.add_security_scheme(
        "apiKey",
        bearer(
            "amp_<48 hex digits>",
            "An agent's API key, from agent registration; the key's owner is the user.",
        ),
    );
    components.add_security_scheme(
        "inboundSecret",
        bearer(
            "secret",
            "AGENTHUB_MAIL_INBOUND_SECRET, for POST /api/v1/email/inbound.",
        ),
    );
    // `Page<T>` inlines `T`; point `data` at the named schema instead.
    let names: Vec<String> = components.schemas.keys().cloned().collect();
    for (name, schema) in components.schemas.iter_mut() {
        let Some(item) = name
            .strip_prefix("Page_")
            .filter(|i| names.iter().any(|n| n == i))
        else {
            continue;
        };
        if let RefOr::T(Schema::Object(page)) = schema
            && let Some(RefOr::T(Schema::Array(data))) = page.properties.get_mut("data")
        {
            data.items = ArrayItems::RefOrSchema(Box::new(Ref::from_schema_name(item).into()));
        }
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let rate_limited = path != "/health";
        for (_, op) in operations_mut(item) {
            let responses = &mut op.responses.responses;
            let json_body = op.request_body.as_ref().is_some_and(|b| match b {
                RefOr::T(b) => b.content.contains_key("application/json"),
                RefOr::Ref(_) => false,
            });
            if json_body {
                for (status, description) in [
                    ("413", "The body is larger than AGENTHUB_MAX_BODY_BYTES"),
                    ("415", "The body is not application/json"),
                ] {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| ResponseBuilder::new().description(description).into());
                }
            }
            // A NUL character in a parameter is refused before routing (`body::nul_in_url`).
            let has_input =
                op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            if has_input && !responses.contains_key("400") {
                let html = responses.values().any(|r| match r {
                    RefOr::T(r) => r.content.contains_key("text/html"),
                    RefOr::Ref(_) => false,
                });
                let mut invalid = ResponseBuilder::new()
                    .description("A parameter is invalid (it holds a NUL character)");
                if html {
                    invalid = invalid.content(
                        "text/html",
                        Content::new(Some(ObjectBuilder::new().schema_type(Type::String))),
                    );
                }
                responses.insert("400".to_string(), invalid.into());
            }
            if rate_limited {
                let retry_after = HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    ))
                    .description(Some("Seconds until a request is allowed again"))
                    .build();
                responses.entry("429".to_string()).or_insert_with(|| {
                    ResponseBuilder::new()
                        .description("`RATE_LIMITED`: too many requests")
                        .header("Retry-After", retry_after)
                        .into()
                });
            }
            for (status, response) in responses.iter_mut() {
                let is_error = status.starts_with('4') || status.starts_with('5');
                if let RefOr::T(response) = response
                    && is_error
                    && response.content.is_empty()
                {
                    response
                        .content
                        .insert("application/json".into(), error_content().into());
                }
            }
        }
    }
}

/// The document as JSON, built once.
static DOCUMENT: LazyLock<Value> =
    LazyLock::new(|| serde_json::to_value(document()).unwrap_or(Value::Null));

/// The reference page, built once from the document.
static REFERENCE: LazyLock<String> = LazyLock::new(|| reference::render(&DOCUMENT));

/// This description
///
/// The OpenAPI 3.1 document of the whole HTTP API, generated from the code; `servers` names
/// this deployment (`AGENTHUB_PUBLIC_URL`).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "Reference",
    responses((status = 200, description = "An OpenAPI 3.1 document", body = Object))
)]
async fn openapi_json(base: web::Data<PublicUrl>) -> Result<HttpResponse, ApiError> {
    let mut doc = DOCUMENT.clone();
    let Some(root) = doc.as_object_mut() else {
        return Err(anyhow::anyhow!("the OpenAPI document did not serialize").into());
    };
    root.insert(
        "servers".into(),
        serde_json::json!([{ "url": base.0.trim_end_matches('/'), "description": "This hub" }]),
    );
    Ok(HttpResponse::Ok().json(doc))
}

/// The API reference page
///
/// This document as a server-rendered HTML page (no JavaScript).
#[utoipa::path(
    get,
    path = "/api/v1/docs",
    operation_id = "apiReference",
    tag = "Reference",
    responses((status = 200, description = "An HTML page", body = String, content_type = "text/html"))
)]
async fn docs() -> HttpResponse {
    public::html::respond(actix_web::http::StatusCode::OK, REFERENCE.clone())
}

/// Mounted inside the `/api/v1` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/openapi.json").route(web::get().to(openapi_json)))
        .service(web::resource("/docs").route(web::get().to(docs)));
}
