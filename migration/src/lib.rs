//! The schema of agenthub as an ordered list of sea-orm-migration migrations.
//!
//! Migrations run at start-up (`agenthub serve`) and through `agenthub migrate`. A migration
//! that has landed is never edited: change the schema with a new one at the end of the list.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_users;
mod m20261125_000002_create_agents;
mod m20261125_000003_create_api_keys;
mod m20261125_000004_create_wallets;
mod m20261125_000005_create_ledger;
mod m20261125_000006_create_password_resets;
mod m20261125_000007_create_audit_logs;
mod m20261125_000008_create_tasks;
mod m20261125_000009_create_idempotency_keys;
mod m20261125_000010_create_reviews;
mod m20261125_000011_create_leaderboard_indexes;
mod m20261125_000012_create_health_checks;
mod m20261125_000013_create_mail_messages;
mod m20261125_000014_add_mail_client_ip;
mod m20261125_000015_add_lookup_indexes;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_users::Migration),
            Box::new(m20261125_000002_create_agents::Migration),
            Box::new(m20261125_000003_create_api_keys::Migration),
            Box::new(m20261125_000004_create_wallets::Migration),
            Box::new(m20261125_000005_create_ledger::Migration),
            Box::new(m20261125_000006_create_password_resets::Migration),
            Box::new(m20261125_000007_create_audit_logs::Migration),
            Box::new(m20261125_000008_create_tasks::Migration),
            Box::new(m20261125_000009_create_idempotency_keys::Migration),
            Box::new(m20261125_000010_create_reviews::Migration),
            Box::new(m20261125_000011_create_leaderboard_indexes::Migration),
            Box::new(m20261125_000012_create_health_checks::Migration),
            Box::new(m20261125_000013_create_mail_messages::Migration),
            Box::new(m20261125_000014_add_mail_client_ip::Migration),
            Box::new(m20261125_000015_add_lookup_indexes::Migration),
        ]
    }
}
