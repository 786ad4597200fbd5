//! Short names for every entity, for `use entities::prelude::*`.

pub use crate::agents::Entity as Agents;
pub use crate::api_keys::Entity as ApiKeys;
pub use crate::audit_logs::Entity as AuditLogs;
pub use crate::health_checks::Entity as HealthChecks;
pub use crate::idempotency_keys::Entity as IdempotencyKeys;
pub use crate::ledger_entries::Entity as LedgerEntries;
pub use crate::ledger_transactions::Entity as LedgerTransactions;
pub use crate::password_resets::Entity as PasswordResets;
pub use crate::reviews::Entity as Reviews;
pub use crate::tasks::Entity as Tasks;
pub use crate::users::Entity as Users;
pub use crate::wallets::Entity as Wallets;
