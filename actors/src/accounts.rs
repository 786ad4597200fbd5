//! Accounts: registration (with the start grant), login, password change and reset.
//!
//! Emails are stored lower-cased; usernames keep their spelling but are unique regardless of
//! case. Disposable-address domains are refused with `mailchecker`'s maintained list. Passwords
//! are Argon2id-hashed on the blocking pool (see `passwords`).

use crate::{
    Hub, audit,
    audit::{Event, Origin},
    db,
    error::{HubError, HubResult},
    ledger, passwords,
    validate::Errors,
};
use chrono::Duration;
use entities::{password_resets, users};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set, sea_query::Expr};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;
/// How long a password-reset token stays valid.
pub const RESET_TTL_MINUTES: i64 = 60;

/// The fields of a registration, as sent (missing ones are `None`).
#[derive(Debug, Default, Clone)]
pub struct Registration {
    pub email: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub display_name: Option<String>,
}

fn validate_email(errors: &mut Errors, email: &str) {
    if email.len() > 254 || !email_address::EmailAddress::is_valid(email) || !email.contains('.') {
        errors.add("email", "must be a valid email address");
    } else if !mailchecker::is_valid(email) {
        errors.add("email", "disposable email addresses are not allowed");
    }
}

fn validate_username(errors: &mut Errors, username: &str) {
    let n = username.chars().count();
    if !(3..=32).contains(&n) {
        errors.add("username", "must be 3 to 32 characters");
    } else if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        errors.add("username", "may contain only letters, digits, '_' and '-'");
    }
}

fn validate_password(errors: &mut Errors, field: &str, password: &str) {
    errors.len(field, password, PASSWORD_MIN, PASSWORD_MAX);
}

/// Creates a user, opens their wallet and grants the start tokens, all in one transaction.
pub async fn register(hub: &Hub, origin: &Origin, input: Registration) -> HubResult<users::Model> {
    let mut errors = Errors::new();
    errors.required("email", &input.email);
    errors.required("username", &input.username);
    errors.required("password", &input.password);
    let (email_given, username_given) = (input.email.is_some(), input.username.is_some());
    let email = input.email.unwrap_or_default().trim().to_lowercase();
    let username = input.username.unwrap_or_default().trim().to_string();
    let password = input.password.unwrap_or_default();
    if email_given {
        validate_email(&mut errors, &email);
    }
    if username_given {
        validate_username(&mut errors, &username);
    }
    if !password.is_empty() || errors.is_empty() {
        validate_password(&mut errors, "password", &password);
    }
    let display_name = match input.display_name.map(|d| d.trim().to_string()) {
        Some(d) => {
            errors.len("displayName", &d, 1, 100);
            d
        }
        None => username.clone(),
    };
    errors.finish()?;

    let username_key = username.to_lowercase();
    if users::Entity::find()
        .filter(users::Column::Email.eq(&email))
        .one(&hub.db)
        .await?
        .is_some()
    {
        return Err(HubError::Conflict("Email is already registered".into()));
    }
    if users::Entity::find()
        .filter(users::Column::UsernameKey.eq(&username_key))
        .one(&hub.db)
        .await?
        .is_some()
    {
        return Err(HubError::Conflict("Username is already taken".into()));
    }
    let password_hash = passwords::hash(password).await?;
    let now = hub.env.now();
    let user = users::Model {
        id: hub.env.new_id(),
        email,
        username,
        username_key,
        display_name,
        password_hash,
        created_at: now,
        updated_at: now,
    };
    let txn = db::begin_write(&hub.db).await?;
    let inserted = users::Entity::insert(users::ActiveModel::from(user.clone()))
        .exec(&txn)
        .await;
    if let Err(err) = inserted {
        return Err(if db::is_unique_violation(&err) {
            HubError::Conflict("Email or username is already taken".into())
        } else {
            err.into()
        });
    }
    ledger::open_wallet(hub, &txn, user.id).await?;
    ledger::grant(&hub.env, &txn, user.id, hub.config.start_tokens).await?;
    audit::record(
        hub,
        &txn,
        origin,
        Event::new(user.id, "user.register").target("user", user.id),
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

/// Checks credentials; `identifier` is the email or the username. Unknown users cost the same
/// Argon2 time as wrong passwords.
pub async fn login(
    hub: &Hub,
    origin: &Origin,
    identifier: Option<String>,
    password: Option<String>,
) -> HubResult<users::Model> {
    let mut errors = Errors::new();
    if identifier.as_deref().is_none_or(|s| s.trim().is_empty()) {
        errors.add("email", "is required");
    }
    if password.as_deref().is_none_or(str::is_empty) {
        errors.add("password", "is required");
    }
    errors.finish()?;
    let identifier = identifier.unwrap_or_default().trim().to_lowercase();
    let password = password.unwrap_or_default();
    let column = if identifier.contains('@') {
        users::Column::Email
    } else {
        users::Column::UsernameKey
    };
    let user = users::Entity::find()
        .filter(column.eq(&identifier))
        .one(&hub.db)
        .await?;
    let invalid = || HubError::Unauthorized("Invalid email or password".into());
    let Some(user) = user else {
        passwords::verify_dummy(password).await?;
        return Err(invalid());
    };
    if !passwords::verify(password, user.password_hash.clone()).await? {
        audit::record(
            hub,
            &hub.db,
            origin,
            Event::new(user.id, "user.login_failed"),
        )
        .await?;
        return Err(invalid());
    }
    audit::record(hub, &hub.db, origin, Event::new(user.id, "user.login")).await?;
    Ok(user)
}

pub async fn find(hub: &Hub, user_id: Uuid) -> HubResult<users::Model> {
    users::Entity::find_by_id(user_id)
        .one(&hub.db)
        .await?
        .ok_or_else(|| HubError::Unauthorized("User no longer exists".into()))
}

async fn set_password(hub: &Hub, user_id: Uuid, password: String) -> HubResult<()> {
    let hash = passwords::hash(password).await?;
    users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, Expr::value(hash))
        .col_expr(users::Column::UpdatedAt, Expr::value(hub.env.now()))
        .filter(users::Column::Id.eq(user_id))
        .exec(&hub.db)
        .await?;
    Ok(())
}

pub async fn change_password(
    hub: &Hub,
    origin: &Origin,
    user_id: Uuid,
    current: Option<String>,
    new: Option<String>,
) -> HubResult<()> {
    let mut errors = Errors::new();
    errors.required("currentPassword", &current);
    errors.required("newPassword", &new);
    if let Some(new) = &new {
        validate_password(&mut errors, "newPassword", new);
    }
    errors.finish()?;
    let user = find(hub, user_id).await?;
    if !passwords::verify(current.unwrap_or_default(), user.password_hash).await? {
        return Err(HubError::Unauthorized(
            "Current password is incorrect".into(),
        ));
    }
    set_password(hub, user_id, new.unwrap_or_default()).await?;
    audit::record(
        hub,
        &hub.db,
        origin,
        Event::new(user_id, "user.password_change"),
    )
    .await
}

fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Starts a password reset. Returns the user and the single-use token to mail, or `None` when
/// no account has that address (the caller answers the same either way).
pub async fn request_reset(
    hub: &Hub,
    origin: &Origin,
    email: Option<String>,
) -> HubResult<Option<(users::Model, String)>> {
    let mut errors = Errors::new();
    errors.required("email", &email);
    let email = email.unwrap_or_default().trim().to_lowercase();
    if !email.is_empty() && !email_address::EmailAddress::is_valid(&email) {
        errors.add("email", "must be a valid email address");
    }
    errors.finish()?;
    let Some(user) = users::Entity::find()
        .filter(users::Column::Email.eq(&email))
        .one(&hub.db)
        .await?
    else {
        return Ok(None);
    };
    let token = hub.env.random_hex(32);
    let now = hub.env.now();
    password_resets::Entity::insert(password_resets::ActiveModel {
        id: Set(hub.env.new_id()),
        user_id: Set(user.id),
        token_hash: Set(token_digest(&token)),
        expires_at: Set(now + Duration::minutes(RESET_TTL_MINUTES)),
        used_at: Set(None),
        created_at: Set(now),
    })
    .exec(&hub.db)
    .await?;
    audit::record(
        hub,
        &hub.db,
        origin,
        Event::new(user.id, "user.password_reset_request"),
    )
    .await?;
    Ok(Some((user, token)))
}

/// Completes a password reset with a token from the mail. The token works once.
pub async fn confirm_reset(
    hub: &Hub,
    origin: &Origin,
    token: Option<String>,
    new: Option<String>,
) -> HubResult<()> {
    let mut errors = Errors::new();
    errors.required("token", &token);
    errors.required("newPassword", &new);
    if let Some(new) = &new {
        validate_password(&mut errors, "newPassword", new);
    }
    errors.finish()?;
    let invalid = || HubError::BadRequest("Invalid or expired reset token".into());
    let digest = token_digest(token.unwrap_or_default().trim());
    let now = hub.env.now();
    let hash = passwords::hash(new.unwrap_or_default()).await?;
    let txn = db::begin_write(&hub.db).await?;
    let reset = password_resets::Entity::find()
        .filter(password_resets::Column::TokenHash.eq(digest))
        .one(&txn)
        .await?
        .ok_or_else(invalid)?;
    // Claim the token; the condition makes a concurrent second use fail.
    let claimed = password_resets::Entity::update_many()
        .col_expr(password_resets::Column::UsedAt, Expr::value(Some(now)))
        .filter(password_resets::Column::Id.eq(reset.id))
        .filter(password_resets::Column::UsedAt.is_null())
        .filter(password_resets::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        return Err(invalid());
    }
    users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, Expr::value(hash))
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(reset.user_id))
        .exec(&txn)
        .await?;
    audit::record(
        hub,
        &txn,
        origin,
        Event::new(reset.user_id, "user.password_reset"),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
