//! `/api/v1/auth/*`: register, login, me, change-password, password reset, regenerate-api-key.

use crate::{
    auth::{UserAuth, jwt::JwtKeys},
    email::mailer::{Mailer, mask},
    error::ApiError,
    http::{body::Body, origin, schema::Message},
    startup::PublicUrl,
};
use actix_web::{HttpRequest, HttpResponse, web};
use actors::{Hub, accounts, catalog};
use entities::users;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

/// The routes of this module, for the OpenAPI document (paths relative to `/api/v1`).
#[derive(OpenApi)]
#[openapi(paths(
    register,
    login,
    me,
    change_password,
    reset_request,
    reset_confirm,
    regenerate_api_key
))]
pub struct Api;

/// A user account.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = User)]
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RegisterRequest)]
struct RegisterIn {
    /// Stored lower-cased; disposable domains are refused.
    #[schema(value_type = String, format = Email, required = true)]
    email: Option<String>,
    /// Letters, digits, `_` and `-`; unique regardless of case.
    #[schema(value_type = String, required = true, pattern = "^[A-Za-z0-9_-]{3,32}$")]
    username: Option<String>,
    #[schema(value_type = String, required = true, min_length = 8, max_length = 128)]
    password: Option<String>,
    /// Defaults to the username.
    #[schema(value_type = String, min_length = 1, max_length = 100, required = false)]
    display_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Bonus {
    /// The tokens every new account starts with.
    tokens_granted: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Registered {
    user: UserView,
    /// A JWT (HS256) for `Authorization: Bearer`.
    access_token: String,
    bonus: Bonus,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct LoggedIn {
    user: UserView,
    /// A JWT (HS256) for `Authorization: Bearer`.
    access_token: String,
}

/// Register an account
///
/// Creates the account, grants the start tokens and answers a JWT.
#[utoipa::path(
    post,
    path = "/auth/register",
    operation_id = "register",
    tag = "Accounts",
    request_body = RegisterIn,
    responses(
        (status = 201, description = "Registered", body = Registered),
        (status = 400, description = "A field is missing or invalid"),
        (status = 409, description = "The email address or username is taken"),
    )
)]
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
    Ok(HttpResponse::Created().json(Registered {
        user: UserView::from(user),
        access_token: token,
        bonus: Bonus {
            tokens_granted: hub.config.start_tokens,
        },
    }))
}

/// Give `email` or `username`, and the password.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = LoginRequest)]
struct LoginIn {
    #[schema(value_type = String, required = false)]
    email: Option<String>,
    #[schema(value_type = String, required = false)]
    username: Option<String>,
    #[schema(value_type = String, required = true)]
    password: Option<String>,
}

/// Log in
///
/// With the email address or the username; answers a fresh JWT.
#[utoipa::path(
    post,
    path = "/auth/login",
    operation_id = "login",
    tag = "Accounts",
    request_body = LoginIn,
    responses(
        (status = 200, description = "Logged in", body = LoggedIn),
        (status = 400, description = "A field is missing"),
        (status = 401, description = "Wrong identifier or password"),
    )
)]
async fn login(
    req: HttpRequest,
    hub: web::Data<Hub>,
    jwt: web::Data<JwtKeys>,
    Body(input): Body<LoginIn>,
) -> Result<HttpResponse, ApiError> {
    let identifier = input.email.or(input.username);
    let user = accounts::login(&hub, &origin(&req), identifier, input.password).await?;
    let token = jwt.issue(user.id, hub.env.now())?;
    Ok(HttpResponse::Ok().json(LoggedIn {
        user: UserView::from(user),
        access_token: token,
    }))
}

/// Your profile
#[utoipa::path(
    get,
    path = "/auth/me",
    operation_id = "me",
    tag = "Accounts",
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The caller's account", body = UserView),
        (status = 401, description = "No valid JWT"),
        (status = 404, description = "The account no longer exists"),
    )
)]
async fn me(auth: UserAuth, hub: web::Data<Hub>) -> Result<HttpResponse, ApiError> {
    let user = accounts::find(&hub, auth.user_id).await?;
    Ok(HttpResponse::Ok().json(UserView::from(user)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ChangePasswordRequest)]
struct ChangePasswordIn {
    #[schema(value_type = String, required = true)]
    current_password: Option<String>,
    #[schema(value_type = String, required = true, min_length = 8, max_length = 128)]
    new_password: Option<String>,
}

/// Change your password
#[utoipa::path(
    post,
    path = "/auth/change-password",
    operation_id = "changePassword",
    tag = "Accounts",
    security(("jwt" = [])),
    request_body = ChangePasswordIn,
    responses(
        (status = 200, description = "Changed", body = Message),
        (status = 400, description = "A field is missing or invalid"),
        (status = 401, description = "No valid JWT, or the current password is wrong"),
        (status = 404, description = "The account no longer exists"),
    )
)]
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
    Ok(HttpResponse::Ok().json(Message::new("Password changed")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ResetRequest)]
struct ResetRequestIn {
    #[schema(value_type = String, format = Email, required = true)]
    email: Option<String>,
}

/// Ask for a password reset
///
/// Mails a single-use token (valid one hour) when the account exists; the answer is the same
/// either way.
#[utoipa::path(
    post,
    path = "/auth/reset-password/request",
    operation_id = "requestPasswordReset",
    tag = "Accounts",
    request_body = ResetRequestIn,
    responses(
        (status = 200, description = "Accepted (whether or not the account exists)", body = Message),
        (status = 400, description = "The email field is missing or invalid"),
    )
)]
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
    Ok(HttpResponse::Ok().json(Message::new(
        "If an account exists for that address, a password reset email has been sent",
    )))
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ResetConfirmRequest)]
struct ResetConfirmIn {
    /// The token from the mail.
    #[schema(value_type = String, required = true)]
    token: Option<String>,
    #[schema(value_type = String, required = true, min_length = 8, max_length = 128)]
    new_password: Option<String>,
}

/// Reset a password with a mailed token
#[utoipa::path(
    post,
    path = "/auth/reset-password/confirm",
    operation_id = "confirmPasswordReset",
    tag = "Accounts",
    request_body = ResetConfirmIn,
    responses(
        (status = 200, description = "The password is reset", body = Message),
        (status = 400, description = "A field is missing or invalid, or the token is unknown, used or expired"),
    )
)]
async fn reset_confirm(
    req: HttpRequest,
    hub: web::Data<Hub>,
    Body(input): Body<ResetConfirmIn>,
) -> Result<HttpResponse, ApiError> {
    accounts::confirm_reset(&hub, &origin(&req), input.token, input.new_password).await?;
    Ok(HttpResponse::Ok().json(Message::new("Password has been reset")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RegenerateKeyRequest)]
struct RegenerateIn {
    /// Required when you own more than one agent.
    #[schema(value_type = Uuid, required = false)]
    agent_id: Option<String>,
}

/// A new API key (shown once).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct NewKey {
    /// `amp_` and 48 hex digits.
    api_key: String,
    /// The key with its secret part hidden, for display.
    masked_key: String,
    agent_id: Uuid,
}

/// Regenerate an agent's API key
///
/// The old key stops working at once.
#[utoipa::path(
    post,
    path = "/auth/regenerate-api-key",
    operation_id = "regenerateApiKey",
    tag = "Accounts",
    security(("jwt" = [])),
    request_body = RegenerateIn,
    responses(
        (status = 200, description = "The new key", body = NewKey),
        (status = 400, description = "agentId is missing (you own several agents)"),
        (status = 401, description = "No valid JWT"),
        (status = 403, description = "Someone else's agent"),
        (status = 404, description = "No such agent (or someone else's private agent)"),
    )
)]
async fn regenerate_api_key(
    req: HttpRequest,
    auth: UserAuth,
    hub: web::Data<Hub>,
    Body(input): Body<RegenerateIn>,
) -> Result<HttpResponse, ApiError> {
    let (agent, key) =
        catalog::regenerate_key(&hub, &origin(&req), auth.user_id, input.agent_id).await?;
    let masked_key = key.masked();
    Ok(HttpResponse::Ok().json(NewKey {
        api_key: key.key,
        masked_key,
        agent_id: agent.id,
    }))
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
