//! `/api/v1/auth/*`: register, login, me, change-password, password reset, regenerate-api-key.

use crate::{
    auth::{UserAuth, jwt::JwtKeys},
    email::mailer::{Mailer, mask},
    error::ApiError,
    http::{body::Body, origin},
    startup::PublicUrl,
};
use actix_web::{HttpRequest, HttpResponse, web};
use actors::{Hub, accounts, catalog};
use entities::users;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: uuid::Uuid,
    pub email: String,
    pub username: String,
    pub display_name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<users::Model> for UserView {
    fn from(u: users::Model) -> Self {
        Self {
            id: u.id,
            email: u.email,
            username: u.username,
            display_name: u.display_name,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterIn {
    email: Option<String>,
    username: Option<String>,
    password: Option<String>,
    display_name: Option<String>,
}

async fn register(
    req: HttpRequest,
    hub: web::Data<Hub>,
    jwt: web::Data<JwtKeys>,
    Body(input): Body<RegisterIn>,
) -> Result<HttpResponse, ApiError> {
    let registration = accounts::Registration {
        email: input.email,
        username: input.username,
        password: input.password,
        display_name: input.display_name,
    };
    let user = accounts::register(&hub, &origin(&req), registration).await?;
    let token = jwt.issue(user.id, hub.env.now())?;
    Ok(HttpResponse::Created().json(json!({
        "user": UserView::from(user),
        "accessToken": token,
        "bonus": { "tokensGranted": hub.config.start_tokens },
    })))
}

#[derive(Debug, Deserialize)]
struct LoginIn {
    email: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

async fn login(
    req: HttpRequest,
    hub: web::Data<Hub>,
    jwt: web::Data<JwtKeys>,
    Body(input): Body<LoginIn>,
) -> Result<HttpResponse, ApiError> {
    let identifier = input.email.or(input.username);
    let user = accounts::login(&hub, &origin(&req), identifier, input.password).await?;
    let token = jwt.issue(user.id, hub.env.now())?;
    Ok(HttpResponse::Ok().json(json!({ "user": UserView::from(user), "accessToken": token })))
}

async fn me(auth: UserAuth, hub: web::Data<Hub>) -> Result<HttpResponse, ApiError> {
    let user = accounts::find(&hub, auth.user_id).await?;
    Ok(HttpResponse::Ok().json(UserView::from(user)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangePasswordIn {
    current_password: Option<String>,
    new_password: Option<String>,
}

async fn change_password(
    req: HttpRequest,
    auth: UserAuth,
    hub: web::Data<Hub>,
    Body(input): Body<ChangePasswordIn>,
) -> Result<HttpResponse, ApiError> {
    accounts::change_password(
        &hub,
        &origin(&req),
        auth.user_id,
        input.current_password,
        input.new_password,
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "message": "Password changed" })))
}

#[derive(Debug, Deserialize)]
struct ResetRequestIn {
    email: Option<String>,
}

async fn reset_request(
    req: HttpRequest,
    hub: web::Data<Hub>,
    mailer: web::Data<Mailer>,
    public_url: web::Data<PublicUrl>,
    Body(input): Body<ResetRequestIn>,
) -> Result<HttpResponse, ApiError> {
    if let Some((user, token)) = accounts::request_reset(&hub, &origin(&req), input.email).await? {
        // Sent in the background: the answer must not reveal, by its timing, that the account
        // exists.
        let mailer = mailer.into_inner();
        let message = reset_mail(&hub, &public_url.0, &user, &token);
        actix_web::rt::spawn(send_logged(mailer, message, user.email));
    }
    Ok(HttpResponse::Ok().json(json!({
        "message": "If an account exists for that address, a password reset email has been sent"
    })))
}

fn reset_mail(
    hub: &Hub,
    public_url: &str,
    user: &users::Model,
    token: &str,
) -> anyhow::Result<lettre::Message> {
    let from = format!("agenthub <noreply@{}>", hub.config.mail_domain);
    let body = format!(
        "Hello {name},\n\nsomeone asked to reset the password of your agenthub account \
         ({username}).\n\nReset token: {token}\n\nOpen {public_url}/reset-password?token={token}\n\
         or send POST {public_url}/api/v1/auth/reset-password/confirm with\n\
         {{\"token\": \"{token}\", \"newPassword\": \"...\"}}\n\n\
         The token is valid for {ttl} minutes and works once. If you did not ask for this, \
         ignore this message: your password stays as it is.\n",
        name = user.display_name,
        username = user.username,
        ttl = accounts::RESET_TTL_MINUTES,
    );
    Ok(lettre::Message::builder()
        .from(from.parse()?)
        .to(user.email.parse()?)
        .subject("Reset your agenthub password")
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(body)?)
}

async fn send_logged(mailer: Arc<Mailer>, message: anyhow::Result<lettre::Message>, to: String) {
    let result = match message {
        Ok(message) => mailer.send(message).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(()) => tracing::info!(to = %mask(&to), "password reset mail sent"),
        Err(err) => tracing::error!(to = %mask(&to), error = ?err, "password reset mail failed"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResetConfirmIn {
    token: Option<String>,
    new_password: Option<String>,
}

async fn reset_confirm(
    req: HttpRequest,
    hub: web::Data<Hub>,
    Body(input): Body<ResetConfirmIn>,
) -> Result<HttpResponse, ApiError> {
    accounts::confirm_reset(&hub, &origin(&req), input.token, input.new_password).await?;
    Ok(HttpResponse::Ok().json(json!({ "message": "Password has been reset" })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegenerateIn {
    agent_id: Option<String>,
}

async fn regenerate_api_key(
    req: HttpRequest,
    auth: UserAuth,
    hub: web::Data<Hub>,
    Body(input): Body<RegenerateIn>,
) -> Result<HttpResponse, ApiError> {
    let (agent, key) =
        catalog::regenerate_key(&hub, &origin(&req), auth.user_id, input.agent_id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "apiKey": key.key,
        "maskedKey": key.masked(),
        "agentId": agent.id,
    })))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/register").route(web::post().to(register)))
        .service(web::resource("/auth/login").route(web::post().to(login)))
        .service(web::resource("/auth/me").route(web::get().to(me)))
        .service(web::resource("/auth/change-password").route(web::post().to(change_password)))
        .service(web::resource("/auth/reset-password/request").route(web::post().to(reset_request)))
        .service(web::resource("/auth/reset-password/confirm").route(web::post().to(reset_confirm)))
        .service(
            web::resource("/auth/regenerate-api-key").route(web::post().to(regenerate_api_key)),
        );
}
