//! The admin half of the console, minus the pages: the types the admin pages exchange with the
//! server, and their server functions (fixed paths `/api/<name>`). Every function checks the
//! caller's role on the server first ([`crate::context::require_role`]), before looking at its
//! input; every state-changing one also records a console event and, when posted by a plain
//! form (no wasm yet), answers with a redirect back to its page carrying `?notice=` or
//! `?error=`.
//!
//! Who may call what ([`ADMIN`], [`AUDIT_READERS`]) is the table `server/tests/access.rs` walks.
//! Server only: [`server`] holds the bodies.

#[cfg(feature = "ssr")]
pub mod server;
pub mod ui;

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::ApiError;

/// Roles allowed on the admin pages and functions (guardrails, features, accounts).
#[cfg(feature = "ssr")]
pub const ADMIN: &[crate::accounts::Role] = &[crate::accounts::Role::Admin];
/// Roles allowed to read the audit page.
#[cfg(feature = "ssr")]
pub const AUDIT_READERS: &[crate::accounts::Role] =
    &[crate::accounts::Role::Admin, crate::accounts::Role::Soc];

/// The 31 PII entity types of Bedrock guardrails, in the editor's order.
pub const PII_TYPES: [&str; 31] = [
    "ADDRESS",
    "AGE",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "CA_HEALTH_NUMBER",
    "CA_SOCIAL_INSURANCE_NUMBER",
    "CREDIT_DEBIT_CARD_CVV",
    "CREDIT_DEBIT_CARD_EXPIRY",
    "CREDIT_DEBIT_CARD_NUMBER",
    "DRIVER_ID",
    "EMAIL",
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    "IP_ADDRESS",
    "LICENSE_PLATE",
    "MAC_ADDRESS",
    "NAME",
    "PASSWORD",
    "PHONE",
    "PIN",
    "SWIFT_CODE",
    "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
    "UK_NATIONAL_INSURANCE_NUMBER",
    "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER",
    "URL",
    "USERNAME",
    "US_BANK_ACCOUNT_NUMBER",
    "US_BANK_ROUTING_NUMBER",
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER",
    "US_PASSPORT_NUMBER",
    "US_SOCIAL_SECURITY_NUMBER",
    "VEHICLE_IDENTIFICATION_NUMBER",
];

/// Content filter categories, in the editor's order.
pub const FILTER_TYPES: [&str; 6] = [
    "SEXUAL",
    "VIOLENCE",
    "HATE",
    "INSULTS",
    "MISCONDUCT",
    "PROMPT_ATTACK",
];
/// Filter strengths.
pub const STRENGTHS: [&str; 4] = ["NONE", "LOW", "MEDIUM", "HIGH"];
/// Per-direction actions of PII entities and regexes.
pub const PII_ACTIONS: [&str; 3] = ["NONE", "ANONYMIZE", "BLOCK"];
/// Roles an account can have.
pub const ROLES: [&str; 3] = ["admin", "soc", "viewer"];

// ---------------------------------------------------------------------------------------------
// Accounts

/// One console account as the accounts page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRow {
    pub name: String,
    pub role: String,
    pub disabled: bool,
    pub created_ms: i64,
    pub sessions: u64,
}

/// Every console account.
#[server(prefix = "/api", endpoint = "admin_accounts")]
pub async fn admin_accounts() -> Result<Vec<AccountRow>, ApiError> {
    server::accounts().await
}

/// The audit event of a change that gave someone the `soc` role's access ("soc role granted
/// by X to Y"); the audit page highlights it.
pub const SOC_GRANT_EVENT: &str = "account.soc_grant";

/// A change granting `soc` that waits for a second admin
/// (`console.soc_grant_requires_second_admin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingGrantRow {
    pub id: i64,
    /// What the change does ("role changed to soc", …).
    pub change: String,
    pub target: String,
    pub requested_by: String,
    pub requested_ms: i64,
}

// The four account changes below answer `true` when the change grants `soc` and now waits for
// another admin's approval instead of being applied.

/// Create an account with a role and an initial password (12+ characters).
#[server(prefix = "/api", endpoint = "admin_create_account")]
pub async fn admin_create_account(
    name: String,
    role: String,
    password: String,
) -> Result<bool, ApiError> {
    server::create_account(name, role, password).await
}

/// Change an account's role.
#[server(prefix = "/api", endpoint = "admin_set_role")]
pub async fn admin_set_role(name: String, role: String) -> Result<bool, ApiError> {
    server::set_role(name, role).await
}

/// Disable (`disabled = "true"`, ending its sessions) or re-enable an account.
#[server(prefix = "/api", endpoint = "admin_set_disabled")]
pub async fn admin_set_disabled(name: String, disabled: String) -> Result<bool, ApiError> {
    server::set_disabled(name, disabled).await
}

/// Set a new password for an account (ending its sessions).
#[server(prefix = "/api", endpoint = "admin_reset_password")]
pub async fn admin_reset_password(name: String, password: String) -> Result<bool, ApiError> {
    server::reset_password(name, password).await
}

/// Changes granting `soc` that wait for approval, oldest first.
#[server(prefix = "/api", endpoint = "admin_pending_grants")]
pub async fn admin_pending_grants() -> Result<Vec<PendingGrantRow>, ApiError> {
    server::pending_grants().await
}

/// Approve and apply a pending change; refused to its requester and to its target.
#[server(prefix = "/api", endpoint = "admin_approve_grant")]
pub async fn admin_approve_grant(id: String) -> Result<(), ApiError> {
    server::approve_grant(id).await
}

/// Drop a pending change (any admin, its requester included).
#[server(prefix = "/api", endpoint = "admin_reject_grant")]
pub async fn admin_reject_grant(id: String) -> Result<(), ApiError> {
    server::reject_grant(id).await
}

// ---------------------------------------------------------------------------------------------
// Audit

/// One line of the audit page: a console event or a vault opening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub at_ms: i64,
    pub actor: String,
    pub kind: String,
    pub target: String,
    pub detail: String,
    pub client: String,
}

/// The audit page's filters (all optional; `range` is `1h`, `24h`, `7d`, `30d` or `all`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub actor: String,
    pub kind: String,
    pub range: String,
}

/// What the audit page shows for a filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    /// Actors seen, for the filter's suggestions.
    pub actors: Vec<String>,
    pub truncated: bool,
}

/// Console events and vault openings matching `filter`, newest first.
#[server(prefix = "/api", endpoint = "admin_audit")]
pub async fn admin_audit(filter: AuditFilter) -> Result<AuditPage, ApiError> {
    server::audit(filter).await
}

// ---------------------------------------------------------------------------------------------
// Features

/// Throttle limits as the features page shows and edits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub requests_per_minute: u64,
    pub burst: u64,
    pub tokens_per_minute: u64,
    pub tokens_per_day: u64,
}

/// One feature with its bindings, limits and live usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureRow {
    pub name: String,
    pub clients: Vec<String>,
    /// The pinned (default) model alias, then the others it may use.
    pub models: Vec<String>,
    /// Every configured alias (the choices for the pin).
    pub all_models: Vec<String>,
    pub guardrail: String,
    pub guardrail_name: String,
    pub guardrail_version: String,
    /// The guardrail's numbered versions (the choices for the pin).
    pub versions: Vec<String>,
    pub limits: Limits,
    /// Tokens used in the rolling minute and today (UTC).
    pub tokens_minute: u64,
    pub tokens_day: u64,
    /// Requests in the last minute (from the audit store).
    pub requests_minute: u64,
    /// Whether the console overrides the configuration file.
    pub overridden: bool,
}

/// Every feature.
#[server(prefix = "/api", endpoint = "admin_features")]
pub async fn admin_features() -> Result<Vec<FeatureRow>, ApiError> {
    server::features().await
}

/// Change a feature's pinned model, pinned guardrail version and throttle limits. Takes effect
/// on the gateway's next request.
#[server(prefix = "/api", endpoint = "admin_save_feature")]
pub async fn admin_save_feature(
    feature: String,
    model: String,
    guardrail_version: String,
    requests_per_minute: String,
    burst: String,
    tokens_per_minute: String,
    tokens_per_day: String,
) -> Result<(), ApiError> {
    server::save_feature(
        feature,
        model,
        guardrail_version,
        [
            requests_per_minute,
            burst,
            tokens_per_minute,
            tokens_per_day,
        ],
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Guardrails

/// One guardrail in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardrailSummary {
    pub id: String,
    pub name: String,
    pub description: String,
    pub updated_at: String,
    pub versions: Vec<String>,
    /// `feature → version` pins.
    pub pinned_by: Vec<(String, String)>,
    pub draft_differs: bool,
}

/// Every guardrail in the registry.
#[server(prefix = "/api", endpoint = "admin_guardrails")]
pub async fn admin_guardrails() -> Result<Vec<GuardrailSummary>, ApiError> {
    server::guardrails().await
}

/// Create a guardrail named `name` (letters, digits, `-`, `_`); its DRAFT starts as a copy of
/// the default policy. Returns the new id (a plain form is redirected to its page).
#[server(prefix = "/api", endpoint = "admin_create_guardrail")]
pub async fn admin_create_guardrail(
    name: String,
    #[server(default)] description: String,
) -> Result<String, ApiError> {
    server::create_guardrail(name, description).await
}

/// Delete a guardrail and all its versions; `confirm` must repeat its id. Refused while a
/// feature pins any of its versions (configuration or console override).
#[server(prefix = "/api", endpoint = "admin_delete_guardrail")]
pub async fn admin_delete_guardrail(
    id: String,
    #[server(default)] confirm: String,
) -> Result<(), ApiError> {
    server::delete_guardrail(id, confirm).await
}

/// A denied topic in the editor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRow {
    pub name: String,
    pub definition: String,
    pub examples: Vec<String>,
}

/// A PII entity's per-direction actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PiiRow {
    pub entity: String,
    pub input: String,
    pub output: String,
}

/// A custom regex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegexRow {
    pub name: String,
    pub pattern: String,
    pub input: String,
    pub output: String,
}

/// A content filter's strengths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRow {
    pub kind: String,
    pub input: String,
    pub output: String,
}

/// One version of a guardrail as the editor and the read-only view show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardrailDoc {
    pub id: String,
    pub version: String,
    pub name: String,
    pub description: String,
    pub blocked_input: String,
    pub blocked_output: String,
    pub topics: Vec<TopicRow>,
    /// Every PII type, `NONE`/`NONE` when not configured.
    pub pii: Vec<PiiRow>,
    pub regexes: Vec<RegexRow>,
    pub words: Vec<String>,
    pub profanity: bool,
    /// Every filter type, `NONE` when not configured.
    pub filters: Vec<FilterRow>,
    pub updated_at: String,
}

/// A guardrail page: the chosen version and the list of versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardrailDetail {
    pub doc: GuardrailDoc,
    pub versions: Vec<String>,
    pub pinned_by: Vec<(String, String)>,
}

/// A guardrail at `version` (`DRAFT` or a number).
#[server(prefix = "/api", endpoint = "admin_guardrail")]
pub async fn admin_guardrail(id: String, version: String) -> Result<GuardrailDetail, ApiError> {
    server::guardrail(id, version).await
}

/// Save the DRAFT from the editor's form. Maps are keyed by row index (topics, regexes) or by
/// type (PII, filters); checkboxes and empty sections may be missing.
#[server(prefix = "/api", endpoint = "admin_save_draft")]
// `allow`, not `expect`: the macro copies this onto generated items where it does not fire.
#[allow(clippy::too_many_arguments, reason = "one argument per form section")]
pub async fn admin_save_draft(
    id: String,
    #[server(default)] description: String,
    blocked_input: String,
    blocked_output: String,
    #[server(default)] topic_name: BTreeMap<String, String>,
    #[server(default)] topic_definition: BTreeMap<String, String>,
    #[server(default)] topic_examples: BTreeMap<String, String>,
    #[server(default)] pii_in: BTreeMap<String, String>,
    #[server(default)] pii_out: BTreeMap<String, String>,
    #[server(default)] regex_name: BTreeMap<String, String>,
    #[server(default)] regex_pattern: BTreeMap<String, String>,
    #[server(default)] regex_in: BTreeMap<String, String>,
    #[server(default)] regex_out: BTreeMap<String, String>,
    #[server(default)] words: String,
    #[server(default)] profanity: String,
    #[server(default)] filter_in: BTreeMap<String, String>,
    #[server(default)] filter_out: BTreeMap<String, String>,
) -> Result<(), ApiError> {
    let form = server::DraftForm {
        description,
        blocked_input,
        blocked_output,
        topic_name,
        topic_definition,
        topic_examples,
        pii_in,
        pii_out,
        regex_name,
        regex_pattern,
        regex_in,
        regex_out,
        words,
        profanity: !profanity.is_empty(),
        filter_in,
        filter_out,
    };
    server::save_draft(id, form).await
}

/// Snapshot the DRAFT as the next numbered version.
#[server(prefix = "/api", endpoint = "admin_create_version")]
pub async fn admin_create_version(
    id: String,
    #[server(default)] description: String,
) -> Result<String, ApiError> {
    server::create_version(id, description).await
}

/// Whether a custom regex compiles in the engine (the editor checks as you type).
#[server(prefix = "/api", endpoint = "admin_check_regex")]
pub async fn admin_check_regex(pattern: String) -> Result<(), ApiError> {
    server::check_regex(pattern).await
}

/// A matched span in the test pane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// `pii`, `regex`, `word`, `profanity`, `topic`, `filter`.
    pub policy: String,
    /// The entity type, regex name, topic or filter category.
    pub label: String,
    /// `ANONYMIZED`, `BLOCKED` or `NONE` (detected only).
    pub action: String,
    /// The matched text (empty for topics and filters, which judge the whole text).
    pub matched: String,
}

/// A piece of the tested text: plain, or covered by a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub text: String,
    /// Index into `findings` when highlighted.
    pub finding: Option<usize>,
}

/// What applying a version to sample text did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResult {
    /// `NONE` or `GUARDRAIL_INTERVENED`.
    pub action: String,
    pub blocked: bool,
    /// What the model or the user would get.
    pub output: String,
    pub segments: Vec<Segment>,
    pub findings: Vec<Finding>,
}

/// Apply a version of a guardrail to `text` as `source` (`INPUT` or `OUTPUT`).
#[server(prefix = "/api", endpoint = "admin_test_guardrail")]
pub async fn admin_test_guardrail(
    id: String,
    version: String,
    source: String,
    text: String,
) -> Result<TestResult, ApiError> {
    server::test_guardrail(id, version, source, text).await
}

/// One line of a side-by-side diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffLine {
    pub left: Option<String>,
    pub right: Option<String>,
    /// `same`, `changed`, `added` (right only), `removed` (left only).
    pub kind: String,
}

/// Two versions of a guardrail, side by side (their policy documents, line by line).
#[server(prefix = "/api", endpoint = "admin_guardrail_diff")]
pub async fn admin_guardrail_diff(
    id: String,
    left: String,
    right: String,
) -> Result<Vec<DiffLine>, ApiError> {
    server::diff(id, left, right).await
}
