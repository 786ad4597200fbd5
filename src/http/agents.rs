//! `/api/v1/agents`: discovery, my agents, register, detail, update, status, delete.

use crate::{
    auth::{OptionalCaller, UserAuth},
    error::ApiError,
    http::PageQuery,
    http::{body::Body, origin},
};
use actix_web::{HttpRequest, HttpResponse, web};
use actors::{
    Hub, catalog,
    catalog::{AgentInput, AgentView},
    discovery,
    validate::Paged,
};
use entities::agents;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

fn page_of(hub: &Hub, page: Paged<agents::Model>, viewer: Option<Uuid>) -> Paged<AgentView> {
    Paged {
        data: page
            .data
            .into_iter()
            .map(|a| catalog::view(hub, a, viewer))
            .collect(),
        page: page.page,
        limit: page.limit,
        total: page.total,
    }
}

async fn list(
    hub: web::Data<Hub>,
    caller: OptionalCaller,
    query: web::Query<discovery::Query>,
) -> Result<HttpResponse, ApiError> {
    let page = discovery::search(&hub, query.into_inner()).await?;
    let viewer = caller.0.map(|c| c.user_id);
    Ok(HttpResponse::Ok().json(page_of(&hub, page, viewer)))
}

async fn mine(
    auth: UserAuth,
    hub: web::Data<Hub>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let page = catalog::mine(&hub, auth.user_id, page).await?;
    Ok(HttpResponse::Ok().json(page_of(&hub, page, Some(auth.user_id))))
}

async fn create(
    req: HttpRequest,
    auth: UserAuth,
    hub: web::Data<Hub>,
    Body(input): Body<AgentInput>,
) -> Result<HttpResponse, ApiError> {
    let created = catalog::create(&hub, &origin(&req), auth.user_id, input).await?;
    let masked = created.key.masked();
    Ok(HttpResponse::Created().json(json!({
        "agent": catalog::view(&hub, created.agent, Some(auth.user_id)),
        "apiKey": created.key.key,
        "maskedKey": masked,
    })))
}

async fn detail(
    hub: web::Data<Hub>,
    caller: OptionalCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let viewer = caller.0.map(|c| c.user_id);
    let agent = catalog::find_visible(&hub, &path, viewer).await?;
    Ok(HttpResponse::Ok().json(catalog::view(&hub, agent, viewer)))
}

async fn update(
    req: HttpRequest,
    auth: UserAuth,
    hub: web::Data<Hub>,
    path: web::Path<String>,
    Body(input): Body<AgentInput>,
) -> Result<HttpResponse, ApiError> {
    let agent = catalog::update(&hub, &origin(&req), auth.user_id, &path, input).await?;
    Ok(HttpResponse::Ok().json(catalog::view(&hub, agent, Some(auth.user_id))))
}

#[derive(Debug, Deserialize)]
struct StatusIn {
    status: Option<String>,
}

async fn set_status(
    req: HttpRequest,
    auth: UserAuth,
    hub: web::Data<Hub>,
    path: web::Path<String>,
    Body(input): Body<StatusIn>,
) -> Result<HttpResponse, ApiError> {
    let agent = catalog::set_status(&hub, &origin(&req), auth.user_id, &path, input.status).await?;
    Ok(HttpResponse::Ok().json(catalog::view(&hub, agent, Some(auth.user_id))))
}

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
        return Ok(HttpResponse::Ok().json(json!({
            "agentId": agent.id, "tools": tools, "source": "live",
        })));
    }
    if agent.delivery_mode.is_some() {
        // Task agents have one implicit tool, whether or not they are connected.
        return Ok(HttpResponse::Ok().json(json!({
            "agentId": agent.id, "tools": [actors::conn::task_tool()], "source": "live",
        })));
    }
    Ok(HttpResponse::Ok().json(json!({
        "agentId": agent.id,
        "tools": agent.tools.unwrap_or_else(|| json!([])),
        "source": "cache",
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestCallIn {
    tool_name: Option<String>,
    arguments: Option<serde_json::Value>,
}

/// Calls a tool of one's own agent without billing.
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
