//! `/api/v1/agents`: discovery, my agents, register, detail, update, status, delete.

use crate::{
    auth::{OptionalCaller, UserAuth},
    error::ApiError,
    http::PageQuery,
    http::schema::{self, Agent, Page},
    http::{body::Body, mcp::CallOutcome, origin},
};
use actix_web::{HttpRequest, HttpResponse, web};
use actors::{
    Hub, catalog,
    catalog::{AgentInput, PricingInput},
    discovery,
    validate::Paged,
};
use entities::agents;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

/// The routes of this module, for the OpenAPI document (paths relative to `/api/v1`).
#[derive(OpenApi)]
#[openapi(paths(
    list, mine, create, detail, update, set_status, delete, tools, test_call
))]
pub struct Api;

fn page_of(hub: &Hub, page: Paged<agents::Model>, viewer: Option<Uuid>) -> Page<Agent> {
    Page {
        data: page
            .data
            .into_iter()
            .map(|a| catalog::view(hub, a, viewer).into())
            .collect(),
        page: page.page,
        limit: page.limit,
        total: page.total,
    }
}

/// The discovery filters (`GET /agents` and the `/marketplace` page), as sent: strings, so a
/// bad value is a field error naming the parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DiscoveryQuery {
    /// Words to find in the name or the description (at most 200 characters).
    #[param(max_length = 200)]
    search: Option<String>,
    #[param(schema_with = schema::category)]
    category: Option<String>,
    /// Comma-separated tags; an agent must have all of them.
    tags: Option<String>,
    #[param(schema_with = schema::pricing_model)]
    pricing_model: Option<String>,
    /// Highest price per call.
    #[param(value_type = Option<u64>)]
    max_price: Option<String>,
    /// Lowest reputation score (0–100).
    #[param(value_type = Option<f64>, minimum = 0, maximum = 100)]
    min_reputation: Option<String>,
    /// `true`: connected agents only.
    #[param(value_type = Option<bool>)]
    online: Option<String>,
    /// Order (default `newest`).
    #[param(schema_with = schema::sort)]
    sort: Option<String>,
    /// The page, from 1.
    #[param(value_type = Option<u64>, minimum = 1)]
    page: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

impl From<DiscoveryQuery> for discovery::Query {
    fn from(q: DiscoveryQuery) -> Self {
        let DiscoveryQuery {
            search,
            category,
            tags,
            pricing_model,
            max_price,
            min_reputation,
            online,
            sort,
            page,
            limit,
        } = q;
        Self {
            search,
            category,
            tags,
            pricing_model,
            max_price,
            min_reputation,
            online,
            sort,
            page,
            limit,
        }
    }
}

/// Discover agents
///
/// Public, `active` agents, filtered, sorted and paginated.
#[utoipa::path(
    get,
    path = "/agents",
    operation_id = "listAgents",
    tag = "Agents",
    params(DiscoveryQuery),
    security((), ("jwt" = []), ("apiKey" = [])),
    responses(
        (status = 200, description = "One page of agents", body = Page<Agent>),
        (status = 400, description = "A filter is invalid"),
        (status = 401, description = "A credential was sent and is invalid"),
    )
)]
async fn list(
    hub: web::Data<Hub>,
    caller: OptionalCaller,
    query: web::Query<DiscoveryQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    // Other bad values are reported by the search, all at once.
    let mut errors = actors::validate::Errors::new();
    let page = discovery::page_params(&mut errors, &query.page, &query.limit);
    if errors.is_empty() {
        crate::http::bounded(page)?;
    }
    let page = discovery::search(&hub, query.into()).await?;
    let viewer = caller.0.map(|c| c.user_id);
    Ok(HttpResponse::Ok().json(page_of(&hub, page, viewer)))
}

/// Your agents
///
/// Every agent you own, whatever its visibility and status.
#[utoipa::path(
    get,
    path = "/agents/my",
    operation_id = "myAgents",
    tag = "Agents",
    params(PageQuery),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "One page of your agents", body = Page<Agent>),
        (status = 400, description = "page or limit is invalid"),
        (status = 401, description = "No valid JWT"),
    )
)]
async fn mine(
    auth: UserAuth,
    hub: web::Data<Hub>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let page = catalog::mine(&hub, auth.user_id, page).await?;
    Ok(HttpResponse::Ok().json(page_of(&hub, page, Some(auth.user_id))))
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PricingInput)]
pub struct PricingBody {
    #[schema(schema_with = schema::pricing_model)]
    model: Option<String>,
    /// Required for `per-call`; must be 0 (or absent) for `free`.
    #[schema(value_type = i64, minimum = 0, maximum = 1_000_000, required = false)]
    price_per_call: Option<i64>,
}

/// An agent's fields. On registration `name` is required (and `slug` is made from it when
/// absent); on update every field is optional and an absent one is unchanged. Give at most one
/// of `connectionMode` (MCP agents; `websocket` when neither is given) and `deliveryMode` (task
/// agents). `mcpEndpoint` is required for `http` and `hybrid`, `endpoint` for `push`; both must
/// be `https://` (or `http://` on loopback).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AgentInput)]
pub struct AgentBody {
    #[schema(value_type = String, min_length = 1, max_length = 100, required = false)]
    name: Option<String>,
    /// `a-z`, `0-9` and single hyphens, starting and ending with a letter or digit.
    #[schema(value_type = String, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", min_length = 3, max_length = 64, required = false)]
    slug: Option<String>,
    #[schema(value_type = String, min_length = 1, max_length = 32, required = false)]
    version: Option<String>,
    #[schema(value_type = String, max_length = 5000, required = false)]
    description: Option<String>,
    #[schema(value_type = String, format = "uri", required = false)]
    mcp_endpoint: Option<String>,
    #[schema(schema_with = schema::connection_mode)]
    connection_mode: Option<String>,
    #[schema(schema_with = schema::delivery_mode)]
    delivery_mode: Option<String>,
    /// The webhook of a `push` agent.
    #[schema(value_type = String, format = "uri", required = false)]
    endpoint: Option<String>,
    #[schema(schema_with = schema::visibility)]
    visibility: Option<String>,
    #[schema(value_type = PricingBody, required = false)]
    pricing: Option<PricingBody>,
    /// At most 20, each 1–32 characters; stored lower-cased and de-duplicated.
    #[schema(value_type = Vec<String>, max_items = 20, required = false)]
    tags: Option<Vec<String>>,
    #[schema(schema_with = schema::category)]
    category: Option<String>,
}

impl From<AgentBody> for AgentInput {
    fn from(b: AgentBody) -> Self {
        let AgentBody {
            name,
            slug,
            version,
            description,
            mcp_endpoint,
            connection_mode,
            delivery_mode,
            endpoint,
            visibility,
            pricing,
            tags,
            category,
        } = b;
        Self {
            name,
            slug,
            version,
            description,
            mcp_endpoint,
            connection_mode,
            delivery_mode,
            endpoint,
            visibility,
            pricing: pricing.map(|p| {
                let PricingBody {
                    model,
                    price_per_call,
                } = p;
                PricingInput {
                    model,
                    price_per_call,
                }
            }),
            tags,
            category,
        }
    }
}

/// A registered agent and its API key (shown once).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreatedAgent {
    agent: Agent,
    /// `amp_` and 48 hex digits: the agent's credential. Shown only here.
    api_key: String,
    masked_key: String,
}

/// Register an agent
#[utoipa::path(
    post,
    path = "/agents",
    operation_id = "createAgent",
    tag = "Agents",
    security(("jwt" = [])),
    request_body = AgentBody,
    responses(
        (status = 201, description = "Registered", body = CreatedAgent),
        (status = 400, description = "A field is missing or invalid"),
        (status = 401, description = "No valid JWT"),
        (status = 409, description = "The slug is taken"),
    )
)]
async fn create(
    req: HttpRequest,
    auth: UserAuth,
    hub: web::Data<Hub>,
    Body(input): Body<AgentBody>,
) -> Result<HttpResponse, ApiError> {
    let created = catalog::create(&hub, &origin(&req), auth.user_id, input.into()).await?;
    let masked_key = created.key.masked();
    Ok(HttpResponse::Created().json(CreatedAgent {
        agent: catalog::view(&hub, created.agent, Some(auth.user_id)).into(),
        api_key: created.key.key,
        masked_key,
    }))
}

/// An agent
///
/// By slug or id. Private agents are 404 except to their owner.
#[utoipa::path(
    get,
    path = "/agents/{slugOrId}",
    operation_id = "getAgent",
    tag = "Agents",
    params(("slugOrId" = String, Path, description = "The agent's slug or id (PATCH and DELETE need the id)")),
    security((), ("jwt" = []), ("apiKey" = [])),
    responses(
        (status = 200, description = "The agent", body = Agent),
        (status = 401, description = "A credential was sent and is invalid"),
        (status = 404, description = "No such agent, or someone else's private agent"),
    )
)]
async fn detail(
    hub: web::Data<Hub>,
    caller: OptionalCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let viewer = caller.0.map(|c| c.user_id);
    let agent = catalog::find_visible(&hub, &path, viewer).await?;
    Ok(HttpResponse::Ok().json(Agent::from(catalog::view(&hub, agent, viewer))))
}

/// Update your agent
///
/// Only the fields sent change.
#[utoipa::path(
    patch,
    path = "/agents/{slugOrId}",
    operation_id = "updateAgent",
    tag = "Agents",
    params(("slugOrId" = String, Path, description = "The agent's id")),
    security(("jwt" = [])),
    request_body = AgentBody,
    responses(
        (status = 200, description = "The updated agent", body = Agent),
        (status = 400, description = "A field is invalid"),
        (status = 401, description = "No valid JWT"),
        (status = 403, description = "Someone else's agent"),
        (status = 404, description = "No such agent (or someone else's private agent)"),
        (status = 409, description = "The new slug is taken"),
    )
)]
async fn update(
    req: HttpRequest,
    auth: UserAuth,
    hub: web::Data<Hub>,
    path: web::Path<String>,
    Body(input): Body<AgentBody>,
) -> Result<HttpResponse, ApiError> {
    let agent = catalog::update(&hub, &origin(&req), auth.user_id, &path, input.into()).await?;
    Ok(HttpResponse::Ok().json(Agent::from(catalog::view(&hub, agent, Some(auth.user_id)))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = AgentStatusInput)]
struct StatusIn {
    /// A non-`active` agent takes no calls (503 `AGENT_UNAVAILABLE`).
    #[schema(schema_with = schema::agent_status, required = true)]
    status: Option<String>,
}

/// Set your agent's status
#[utoipa::path(
    patch,
    path = "/agents/{agentId}/status",
    operation_id = "setAgentStatus",
    tag = "Agents",
    params(("agentId" = Uuid, Path, description = "The agent's id")),
    security(("jwt" = [])),
    request_body = StatusIn,
    responses(
        (status = 200, description = "The updated agent", body = Agent),
        (status = 400, description = "status is missing or invalid"),
        (status = 401, description = "No valid JWT"),
        (status = 403, description = "Someone else's agent"),
        (status = 404, description = "No such agent (or someone else's private agent)"),
    )
)]
async fn set_status(
    req: HttpRequest,
    auth: UserAuth,
    hub: web::Data<Hub>,
    path: web::Path<String>,
    Body(input): Body<StatusIn>,
) -> Result<HttpResponse, ApiError> {
    let agent = catalog::set_status(&hub, &origin(&req), auth.user_id, &path, input.status).await?;
    Ok(HttpResponse::Ok().json(Agent::from(catalog::view(&hub, agent, Some(auth.user_id)))))
}

/// Delete your agent
///
/// The agent and its key go; ledger rows that name it stay.
#[utoipa::path(
    delete,
    path = "/agents/{slugOrId}",
    operation_id = "deleteAgent",
    tag = "Agents",
    params(("slugOrId" = String, Path, description = "The agent's id")),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid JWT"),
        (status = 403, description = "Someone else's agent"),
        (status = 404, description = "No such agent (or someone else's private agent)"),
    )
)]
async fn delete(
    req: HttpRequest,
    auth: UserAuth,
    hub: web::Data<Hub>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    catalog::delete(&hub, &origin(&req), auth.user_id, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// How long `GET /agents/{id}/tools` waits for a connected agent's live answer.
const TOOLS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// An agent's tools and where the list came from.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Tools {
    agent_id: Uuid,
    /// MCP tool definitions (`{name, description, inputSchema}`).
    #[schema(value_type = Vec<Object>)]
    tools: Value,
    /// `live`: asked from the connected agent now; `cache`: the list last seen.
    #[schema(schema_with = tools_source)]
    source: &'static str,
}

fn tools_source() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    schema::string_enum(&["live", "cache"], false)
}

/// An agent's tools
///
/// Asked live from a connected agent (10 s at most), else the list last seen.
#[utoipa::path(
    get,
    path = "/agents/{agentId}/tools",
    operation_id = "agentTools",
    tag = "Agents",
    params(("agentId" = String, Path, description = "The agent's slug or id")),
    security((), ("jwt" = []), ("apiKey" = [])),
    responses(
        (status = 200, description = "The tools", body = Tools),
        (status = 401, description = "A credential was sent and is invalid"),
        (status = 404, description = "No such agent, or someone else's private agent"),
    )
)]
async fn tools(
    hub: web::Data<Hub>,
    caller: OptionalCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let viewer = caller.0.map(|c| c.user_id);
    let agent = catalog::find_visible(&hub, &path, viewer).await?;
    if let Some(conn) = actors::gateway::route(&hub, &agent)
        && let Ok(rx) = conn.list_tools().await
        && let Ok(Ok(Ok(tools))) = tokio::time::timeout(TOOLS_TIMEOUT, rx).await
    {
        return Ok(HttpResponse::Ok().json(Tools {
            agent_id: agent.id,
            tools,
            source: "live",
        }));
    }
    if agent.delivery_mode.is_some() {
        // Task agents have one implicit tool, whether or not they are connected.
        return Ok(HttpResponse::Ok().json(Tools {
            agent_id: agent.id,
            tools: json!([actors::conn::task_tool()]),
            source: "live",
        }));
    }
    Ok(HttpResponse::Ok().json(Tools {
        agent_id: agent.id,
        tools: agent.tools.unwrap_or_else(|| json!([])),
        source: "cache",
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = TestCallInput)]
struct TestCallIn {
    #[schema(value_type = String, required = true)]
    tool_name: Option<String>,
    /// The tool's arguments (an object).
    #[schema(value_type = Object, required = false)]
    arguments: Option<Value>,
}

/// Test-call your agent's tool
///
/// For the agent's owner: the call goes through the hub like `/mcp/call`, never billed and
/// not counted in the agent's statistics.
#[utoipa::path(
    post,
    path = "/agents/{agentId}/test-call",
    operation_id = "testCall",
    tag = "Calls",
    params(("agentId" = Uuid, Path, description = "The agent's id")),
    security(("jwt" = []), ("apiKey" = [])),
    request_body = TestCallIn,
    responses(
        (status = 200, description = "The call completed", body = CallOutcome),
        (status = 400, description = "A field is missing or invalid"),
        (status = 401, description = "No (valid) credential"),
        (status = 403, description = "Someone else's agent"),
        (status = 404, description = "No such agent (or someone else's private agent)"),
        (status = 409, description = "`IDEMPOTENCY_CONFLICT`"),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: the files are too large"),
        (status = 502, description = "The agent failed (nothing charged)", body = CallOutcome),
        (status = 503, description = "`AGENT_UNAVAILABLE` (not active) or `AGENT_OFFLINE` (not connected)"),
        (status = 504, description = "The agent did not answer in time (nothing charged)", body = CallOutcome),
    )
)]
async fn test_call(
    caller: OptionalCaller,
    hub: web::Data<Hub>,
    path: web::Path<String>,
    Body(input): Body<TestCallIn>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller.0.ok_or_else(|| {
        ApiError::unauthorized("Missing credentials: send Authorization: Bearer <token>")
    })?;
    let agent = catalog::find_owned(&hub, &path, caller.user_id).await?;
    let request = actors::gateway::CallRequest {
        payer_id: caller.user_id,
        caller_agent_id: caller.agent_id,
        buyer: actors::accounts::find(&hub, caller.user_id).await?.username,
        target: Some(agent.id.to_string()),
        tool_name: input.tool_name,
        arguments: input.arguments,
        request_id: None,
        max_cost: None,
        source: "test",
        billed: false,
        wait: true,
    };
    let task = actors::gateway::call(&hub.into_inner(), request).await?;
    let (status, body) = crate::http::mcp::call_body(&task);
    Ok(HttpResponse::build(status).json(body))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/agents")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(web::resource("/agents/my").route(web::get().to(mine)))
    .service(web::resource("/agents/{agentId}/status").route(web::patch().to(set_status)))
    .service(web::resource("/agents/{agentId}/tools").route(web::get().to(tools)))
    .service(web::resource("/agents/{agentId}/test-call").route(web::post().to(test_call)))
    .service(
        web::resource("/agents/{slugOrId}")
            .route(web::get().to(detail))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    );
}
