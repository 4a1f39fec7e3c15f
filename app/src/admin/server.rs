//! Server-side bodies of the admin server functions: role check first, then input validation
//! (bounded, with messages safe to show), then the work (account store, guardrail registry,
//! feature settings; blocking SQLite runs off the async threads), then a console event.
//! Guardrails go through the gateway's `GuardrailRegistry` (`AppState::guardrail_registry`):
//! the embedded registry, or Bedrock's control plane on `backend = "aws"`.
//!
//! The gateway's state ([`AppState`]) reaches these functions through Leptos context, provided
//! by the server next to [`Console`]; without it they answer [`ApiError::Unavailable`].
//!
//! Vault openings and per-feature request counts come from the gateway's `AuditStore` (SQLite
//! on the embedded default, CloudWatch Logs on AWS).

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use axum::http::request::Parts;
use gateway::config::ThrottleLimits;
use gateway::features::{FeatureOverride, FeatureSettingsError};
use gateway::guard::GuardrailRef;
use gateway::guard::policy::{
    BlockAction, ContentFilterConfig, ContentFilterType, ContentPolicy, GuardrailPolicy,
    ManagedWordListConfig, PiiAction, PiiEntityConfig, RegexConfig, SensitiveInformationPolicy,
    Strength, TopicConfig, TopicPolicy, WordConfig, WordPolicy, limits,
};
use gateway::guard::registry::{RegistryError, parse_identifier, parse_version};
use gateway::state::AppState;
use leptos::prelude::*;

use super::{
    ADMIN, AUDIT_READERS, AccountRow, AuditFilter, AuditPage, AuditRow, DiffLine, FILTER_TYPES,
    FeatureRow, FilterRow, Finding, GuardrailDetail, GuardrailDoc, GuardrailSummary, Limits,
    PII_TYPES, PendingGrantRow, PiiRow, RegexRow, SOC_GRANT_EVENT, Segment, TestResult, TopicRow,
};
use crate::accounts::events::{ConsoleEvent, EventFilter};
use crate::accounts::manage::SocGrant;
use crate::accounts::{AccountsError, Role, User};
use crate::api::ApiError;
use crate::context::{Console, client_ip, require_role};

/// The longest text the test pane guards.
pub const TEST_TEXT_MAX: usize = 10_000;
/// The most audit rows one page shows.
pub const AUDIT_ROWS_MAX: usize = 500;
/// The most bytes of all form fields of one draft (words included).
const DRAFT_FORM_MAX: usize = 2_000_000;

/// The gateway state provided for this request.
pub fn gateway_state() -> Result<AppState, ApiError> {
    use_context::<AppState>().ok_or_else(|| {
        tracing::error!("gateway state missing from the console context");
        ApiError::Unavailable
    })
}

fn parts() -> Option<Parts> {
    use_context::<Parts>()
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "{what} failed");
    ApiError::Unavailable
}

/// A caller mistake (400; the status is set where the error becomes the response, see
/// [`ApiError::status`]).
fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::Invalid(message.into())
}

/// An id that names nothing (404).
fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::NotFound(message.into())
}

fn from_accounts(e: AccountsError) -> ApiError {
    match e {
        AccountsError::InvalidUser(m) => invalid(m),
        other => unavailable("account store", other),
    }
}

fn from_registry(e: RegistryError) -> ApiError {
    match e {
        RegistryError::Validation(m) => invalid(m),
        RegistryError::NotFound(m) => not_found(m),
        RegistryError::Conflict(m) | RegistryError::InUse(m) | RegistryError::Quota(m) => {
            ApiError::Conflict(m)
        }
        RegistryError::Internal(m) => unavailable("guardrail registry", m),
    }
}

/// Run blocking work (SQLite, the guardrail compiler) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| unavailable("background task", e))?
}

/// Whether the request came from a plain HTML form (no wasm yet): it expects a redirect.
fn is_plain_form(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Percent-encode a query value.
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// After a state-changing function: a plain form gets a redirect back to `page` with
/// `notice` or the error's message (both safe to show, capped).
fn finish<T>(page: &str, result: Result<T, ApiError>, notice: &str) -> Result<T, ApiError> {
    if parts().is_some_and(|p| is_plain_form(&p.headers)) {
        let sep = if page.contains('?') { '&' } else { '?' };
        let target = match &result {
            Ok(_) => format!("{page}{sep}notice={}", query_escape(notice)),
            Err(e) => {
                let message: String = e.to_string().chars().take(300).collect();
                format!("{page}{sep}error={}", query_escape(&message))
            }
        };
        leptos_axum::redirect(&target);
    }
    result
}

async fn record(console: &Console, user: &User, kind: &str, target: &str, detail: String) {
    let client = parts().map(|p| client_ip(&p)).unwrap_or_default();
    let event = ConsoleEvent {
        at_ms: gateway::now_ms(),
        actor: user.name.clone(),
        kind: kind.to_string(),
        target: target.to_string(),
        detail,
        client,
    };
    if let Err(e) = console.accounts.record_event(event).await {
        tracing::error!(error = %e, kind, "console event not recorded");
    }
}

/// Record a console event for a sign-in, a refused sign-in or a sign-out.
pub async fn record_session_event(console: &Console, actor: &str, kind: &str, client: &str) {
    let event = ConsoleEvent {
        at_ms: gateway::now_ms(),
        actor: actor.chars().take(64).collect(),
        kind: kind.to_string(),
        target: String::new(),
        detail: String::new(),
        client: client.to_string(),
    };
    if let Err(e) = console.accounts.record_event(event).await {
        tracing::error!(error = %e, kind, "console event not recorded");
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts

const ACCOUNTS_PAGE: &str = "/admin/accounts";

fn parse_role(role: &str) -> Result<Role, ApiError> {
    Role::parse(role.trim()).ok_or_else(|| invalid("role must be admin, soc or viewer"))
}

pub async fn accounts() -> Result<Vec<AccountRow>, ApiError> {
    let (console, _) = require_role(ADMIN).await?;
    let list = console
        .accounts
        .accounts(gateway::now_ms())
        .await
        .map_err(from_accounts)?;
    Ok(list
        .into_iter()
        .map(|a| AccountRow {
            name: a.name,
            role: a.role.as_str().to_string(),
            disabled: a.disabled,
            created_ms: a.created_at_ms,
            sessions: a.sessions,
        })
        .collect())
}

/// Record the prominent event of a change that gave `target` the `soc` role's access: by
/// `user` alone, or requested by `requested_by` and approved by `user`.
async fn record_soc_grant(
    console: &Console,
    user: &User,
    target: &str,
    grant: SocGrant,
    requested_by: Option<&str>,
) {
    let detail = match requested_by {
        Some(by) => format!(
            "soc role granted by {by} to {target} ({}); approved by {}",
            grant.describe(),
            user.name
        ),
        None => format!(
            "soc role granted by {} to {target} ({})",
            user.name,
            grant.describe()
        ),
    };
    record(console, user, SOC_GRANT_EVENT, target, detail).await;
}

/// File `grant` on `target` for another admin's approval (the store refused to apply it).
async fn request_grant(
    console: &Console,
    user: &User,
    grant: SocGrant,
    target: &str,
    password: Option<&str>,
) -> Result<bool, ApiError> {
    let id = console
        .accounts
        .request_soc_grant(grant, target, password, &user.name, gateway::now_ms())
        .await
        .map_err(from_accounts)?;
    record(
        console,
        user,
        "account.soc_grant.requested",
        target,
        format!(
            "{} requested by {} (#{id}); waits for another admin's approval",
            grant.describe(),
            user.name
        ),
    )
    .await;
    Ok(true)
}

/// The plain form's notice: `done`, or that the change waits for approval.
fn grant_notice(result: &Result<bool, ApiError>, done: String) -> String {
    match result {
        Ok(true) => "This grants the soc role: it waits for another admin's approval.".into(),
        _ => done,
    }
}

pub async fn create_account(
    name: String,
    role: String,
    password: String,
) -> Result<bool, ApiError> {
    let (console, user) = require_role(ADMIN).await?;
    let name = name.trim().to_string();
    let result = async {
        let role = parse_role(&role)?;
        match console
            .accounts
            .create_user(&name, &password, role, gateway::now_ms())
            .await
        {
            Ok(()) => {}
            Err(AccountsError::NeedsApproval) => {
                return request_grant(&console, &user, SocGrant::Create, &name, Some(&password))
                    .await;
            }
            Err(AccountsError::Db(rusqlite::Error::SqliteFailure(f, _)))
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(invalid("a user with this name already exists"));
            }
            Err(other) => return Err(from_accounts(other)),
        }
        record(
            &console,
            &user,
            "account.create",
            &name,
            format!("created with role {}", role.as_str()),
        )
        .await;
        if role == Role::Soc {
            record_soc_grant(&console, &user, &name, SocGrant::Create, None).await;
        }
        Ok(false)
    }
    .await;
    let notice = grant_notice(&result, format!("Created {name}."));
    finish(ACCOUNTS_PAGE, result, &notice)
}

pub async fn set_role(name: String, role: String) -> Result<bool, ApiError> {
    let (console, user) = require_role(ADMIN).await?;
    let result = async {
        let role = parse_role(&role)?;
        let previous = match console.accounts.set_role(&name, role).await {
            Ok(previous) => previous,
            Err(AccountsError::NeedsApproval) => {
                return request_grant(&console, &user, SocGrant::Role, &name, None).await;
            }
            Err(other) => return Err(from_accounts(other)),
        };
        record(
            &console,
            &user,
            "account.role",
            &name,
            format!("role set to {}", role.as_str()),
        )
        .await;
        if role == Role::Soc && previous != Role::Soc {
            record_soc_grant(&console, &user, &name, SocGrant::Role, None).await;
        }
        Ok(false)
    }
    .await;
    let notice = grant_notice(&result, format!("Changed the role of {name}."));
    finish(ACCOUNTS_PAGE, result, &notice)
}

pub async fn set_disabled(name: String, disabled: String) -> Result<bool, ApiError> {
    let (console, user) = require_role(ADMIN).await?;
    let disabled = disabled == "true";
    let result = async {
        if disabled && name == user.name {
            return Err(invalid("you cannot disable your own account"));
        }
        let enabled_soc = match console.accounts.set_disabled(&name, disabled).await {
            Ok(enabled_soc) => enabled_soc,
            Err(AccountsError::NeedsApproval) => {
                return request_grant(&console, &user, SocGrant::Enable, &name, None).await;
            }
            Err(other) => return Err(from_accounts(other)),
        };
        let (kind, detail) = if disabled {
            ("account.disable", "disabled; sessions ended")
        } else {
            ("account.enable", "enabled")
        };
        record(&console, &user, kind, &name, detail.into()).await;
        if enabled_soc {
            record_soc_grant(&console, &user, &name, SocGrant::Enable, None).await;
        }
        Ok(false)
    }
    .await;
    let notice = if disabled {
        format!("Disabled {name}.")
    } else {
        format!("Enabled {name}.")
    };
    let notice = grant_notice(&result, notice);
    finish(ACCOUNTS_PAGE, result, &notice)
}

pub async fn reset_password(name: String, password: String) -> Result<bool, ApiError> {
    let (console, user) = require_role(ADMIN).await?;
    let result = async {
        let is_soc = match console.accounts.reset_password(&name, &password).await {
            Ok(is_soc) => is_soc,
            Err(AccountsError::NeedsApproval) => {
                return request_grant(&console, &user, SocGrant::Password, &name, Some(&password))
                    .await;
            }
            Err(other) => return Err(from_accounts(other)),
        };
        record(
            &console,
            &user,
            "account.password",
            &name,
            "password reset; sessions ended".into(),
        )
        .await;
        if is_soc {
            record_soc_grant(&console, &user, &name, SocGrant::Password, None).await;
        }
        Ok(false)
    }
    .await;
    let notice = grant_notice(&result, format!("Set a new password for {name}."));
    finish(ACCOUNTS_PAGE, result, &notice)
}

pub async fn pending_grants() -> Result<Vec<PendingGrantRow>, ApiError> {
    let (console, _) = require_role(ADMIN).await?;
    let list = console
        .accounts
        .pending_soc_grants()
        .await
        .map_err(from_accounts)?;
    Ok(list
        .into_iter()
        .map(|p| PendingGrantRow {
            id: p.id,
            change: p.grant.describe().to_string(),
            target: p.target,
            requested_by: p.requested_by,
            requested_ms: p.requested_at_ms,
        })
        .collect())
}

fn parse_grant_id(id: &str) -> Result<i64, ApiError> {
    id.trim()
        .parse::<i64>()
        .map_err(|_| invalid("there is no such pending change"))
}

pub async fn approve_grant(id: String) -> Result<(), ApiError> {
    let (console, user) = require_role(ADMIN).await?;
    let result = async {
        let id = parse_grant_id(&id)?;
        let approved = console
            .accounts
            .approve_soc_grant(id, &user.name, gateway::now_ms())
            .await
            .map_err(from_accounts)?;
        record_soc_grant(
            &console,
            &user,
            &approved.target,
            approved.grant,
            Some(&approved.requested_by),
        )
        .await;
        Ok(())
    }
    .await;
    finish(ACCOUNTS_PAGE, result, "Approved and applied.")
}

pub async fn reject_grant(id: String) -> Result<(), ApiError> {
    let (console, user) = require_role(ADMIN).await?;
    let result = async {
        let id = parse_grant_id(&id)?;
        let rejected = console
            .accounts
            .reject_soc_grant(id)
            .await
            .map_err(from_accounts)?;
        record(
            &console,
            &user,
            "account.soc_grant.rejected",
            &rejected.target,
            format!(
                "{} requested by {} (#{id}) rejected",
                rejected.grant.describe(),
                rejected.requested_by
            ),
        )
        .await;
        Ok(())
    }
    .await;
    finish(ACCOUNTS_PAGE, result, "Rejected.")
}

// ---------------------------------------------------------------------------------------------
// Audit

fn range_ms(range: &str) -> Option<i64> {
    match range {
        "1h" => Some(3_600_000),
        "24h" | "" => Some(86_400_000),
        "7d" => Some(7 * 86_400_000),
        "30d" => Some(30 * 86_400_000),
        _ => None,
    }
}

pub async fn audit(filter: AuditFilter) -> Result<AuditPage, ApiError> {
    let (console, _) = require_role(AUDIT_READERS).await?;
    let actor: String = filter.actor.trim().chars().take(64).collect();
    let kind: String = filter.kind.trim().chars().take(64).collect();
    let since_ms = match filter.range.as_str() {
        "all" => None,
        r => Some(gateway::now_ms() - range_ms(r).ok_or_else(|| invalid("unknown time range"))?),
    };
    let actor_opt = (!actor.is_empty()).then(|| actor.clone());
    let want_console = kind.is_empty() || kind != "vault.open";
    let want_vault = kind.is_empty() || kind == "vault." || kind == "vault.open";
    let mut rows = Vec::new();
    if want_console {
        let events = console
            .accounts
            .events(EventFilter {
                actor: actor_opt.clone(),
                kind: (!kind.is_empty()).then(|| kind.clone()),
                since_ms,
                until_ms: None,
                limit: AUDIT_ROWS_MAX + 1,
            })
            .await
            .map_err(from_accounts)?;
        rows.extend(events.into_iter().map(|e| AuditRow {
            at_ms: e.at_ms,
            actor: e.actor,
            kind: e.kind,
            target: e.target,
            detail: e.detail,
            client: e.client,
        }));
    }
    if want_vault {
        let opened = console
            .audit
            .access_log(&gateway::audit::AccessFilter {
                since_ms,
                actor: actor_opt.clone(),
                limit: AUDIT_ROWS_MAX + 1,
            })
            .await
            .map_err(|e| unavailable("audit store (accesses)", e))?;
        rows.extend(opened.into_iter().map(|a| AuditRow {
            at_ms: a.timestamp,
            actor: a.actor,
            kind: "vault.open".into(),
            target: a.request_id,
            detail: format!("reason: {}", a.reason),
            client: a.origin,
        }));
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.at_ms));
    let truncated = rows.len() > AUDIT_ROWS_MAX;
    rows.truncate(AUDIT_ROWS_MAX);
    let mut actors: Vec<String> = rows.iter().map(|r| r.actor.clone()).collect();
    actors.sort();
    actors.dedup();
    Ok(AuditPage {
        rows,
        actors,
        truncated,
    })
}

// ---------------------------------------------------------------------------------------------
// Features

const FEATURES_PAGE: &str = "/features";

async fn numbered_versions(state: &AppState, id: &str) -> Result<Vec<String>, ApiError> {
    state
        .guardrail_registry
        .versions(id)
        .await
        .map_err(from_registry)
}

pub async fn features() -> Result<Vec<FeatureRow>, ApiError> {
    require_role(ADMIN).await?;
    let state = gateway_state()?;
    let now = gateway::now_ms();
    let mut usage = BTreeMap::new();
    // Requests in the last minute per feature; a failing store shows zeros, not an error page.
    let requests_minute = state
        .audit
        .requests_by_feature(now - 60_000, now)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "per-feature request counts unavailable");
            BTreeMap::new()
        });
    // Each guardrail's name and numbered versions, asked once per guardrail.
    let mut guardrails: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for (name, base) in &state.config.features {
        usage.insert(name.clone(), state.throttle.usage(name, now).await);
        if !guardrails.contains_key(&base.guardrail) {
            let display = state
                .guardrail_registry
                .get(&base.guardrail, None)
                .await
                .map(|r| r.policy.name)
                .unwrap_or_default();
            let versions = numbered_versions(&state, &base.guardrail).await?;
            guardrails.insert(base.guardrail.clone(), (display, versions));
        }
    }
    blocking(move || {
        let mut rows = Vec::new();
        for (name, base) in &state.config.features {
            let f = state.features.effective(name, base);
            let (guardrail_name, versions) =
                guardrails.get(&f.guardrail).cloned().unwrap_or_default();
            let (tokens_minute, tokens_day) = usage.get(name).copied().unwrap_or((0, 0));
            rows.push(FeatureRow {
                name: name.clone(),
                clients: f.clients.clone(),
                models: f.models.clone(),
                all_models: state.config.models.keys().cloned().collect(),
                versions,
                guardrail: f.guardrail.clone(),
                guardrail_name,
                guardrail_version: f.guardrail_version.clone(),
                limits: Limits {
                    requests_per_minute: u64::from(f.throttle.requests_per_minute),
                    burst: u64::from(f.throttle.burst),
                    tokens_per_minute: f.throttle.tokens_per_minute,
                    tokens_per_day: f.throttle.tokens_per_day,
                },
                tokens_minute,
                tokens_day,
                requests_minute: requests_minute.get(name).copied().unwrap_or(0),
                overridden: state.features.get(name).is_some(),
            });
        }
        Ok(rows)
    })
    .await
}

fn parse_limit(field: &str, value: &str) -> Result<u64, ApiError> {
    let cleaned: String = value
        .trim()
        .chars()
        .filter(|c| !matches!(c, ',' | '_' | ' '))
        .collect();
    cleaned
        .parse::<u64>()
        .ok()
        .filter(|n| (1..=gateway::features::MAX_LIMIT).contains(n))
        .ok_or_else(|| invalid(format!("{field} must be a whole number of at least 1")))
}

pub async fn save_feature(
    feature: String,
    model: String,
    guardrail_version: String,
    limits: [String; 4],
) -> Result<(), ApiError> {
    let (console, user) = require_role(ADMIN).await?;
    let page = format!("{FEATURES_PAGE}#feature-{}", query_escape(&feature));
    let result = async {
        let state = gateway_state()?;
        let base = state
            .config
            .features
            .get(&feature)
            .ok_or_else(|| not_found("there is no such feature"))?;
        let [rpm, burst, tpm, tpd] = &limits;
        let rpm = parse_limit("requests per minute", rpm)?;
        let throttle = ThrottleLimits {
            requests_per_minute: u32::try_from(rpm)
                .map_err(|_| invalid("requests per minute is too large"))?,
            burst: u32::try_from(parse_limit("burst", burst)?)
                .map_err(|_| invalid("burst is too large"))?,
            tokens_per_minute: parse_limit("tokens per minute", tpm)?,
            tokens_per_day: parse_limit("tokens per day", tpd)?,
        };
        let before = state.features.effective(&feature, base);
        let change = FeatureOverride {
            model: Some(model.trim().to_string()),
            guardrail_version: Some(guardrail_version.trim().to_string()),
            throttle: Some(throttle),
        };
        let (st, name, actor) = (state.clone(), feature.clone(), user.name.clone());
        let after = blocking(move || {
            st.features
                .apply(
                    &st.config,
                    st.guardrail_registry.as_lookup(),
                    &name,
                    change,
                    &actor,
                    gateway::now_ms(),
                )
                .map_err(|e| match e {
                    FeatureSettingsError::Invalid(m) => invalid(m),
                    other => unavailable("feature settings", other),
                })
        })
        .await?;
        if before.guardrail_version != after.guardrail_version {
            record(
                &console,
                &user,
                "feature.binding",
                &feature,
                format!(
                    "guardrail {} version {} → {}",
                    after.guardrail, before.guardrail_version, after.guardrail_version
                ),
            )
            .await;
        }
        if before.models.first() != after.models.first() {
            record(
                &console,
                &user,
                "feature.model",
                &feature,
                format!(
                    "model {} → {}",
                    before.models.first().map_or("", String::as_str),
                    after.models.first().map_or("", String::as_str)
                ),
            )
            .await;
        }
        if before.throttle != after.throttle {
            let t = |l: &ThrottleLimits| {
                format!(
                    "{}/min burst {}, {} tok/min, {} tok/day",
                    l.requests_per_minute, l.burst, l.tokens_per_minute, l.tokens_per_day
                )
            };
            record(
                &console,
                &user,
                "feature.throttle",
                &feature,
                format!("{} → {}", t(&before.throttle), t(&after.throttle)),
            )
            .await;
        }
        Ok(())
    }
    .await;
    // On AWS each gateway instance re-reads the settings on its own schedule.
    let reach = match gateway_state().map(|s| (s.config.backend, s.config.features_refresh_secs)) {
        Ok((gateway::config::Backend::Aws, secs)) => {
            format!("every gateway instance applies it within {secs} s")
        }
        _ => "the gateway applies it now".to_string(),
    };
    finish(&page, result, &format!("Saved {feature}; {reach}."))
}

// ---------------------------------------------------------------------------------------------
// Guardrails

fn guardrail_id(id: &str) -> Result<String, ApiError> {
    parse_identifier(id.trim()).map_err(|_| invalid("not a guardrail id"))
}

fn pins(state: &AppState, id: &str) -> Vec<(String, String)> {
    state
        .config
        .features
        .iter()
        .map(|(name, f)| (name.clone(), state.features.effective(name, f)))
        .filter(|(_, f)| f.guardrail == id)
        .map(|(name, f)| (name, f.guardrail_version))
        .collect()
}

pub async fn guardrails() -> Result<Vec<GuardrailSummary>, ApiError> {
    require_role(ADMIN).await?;
    let state = gateway_state()?;
    let registry = &state.guardrail_registry;
    let list = registry.list().await.map_err(from_registry)?;
    let mut out = Vec::new();
    for r in list {
        let versions = numbered_versions(&state, &r.id).await?;
        let draft_differs = match versions.last() {
            Some(v) => {
                let draft = registry.get(&r.id, None).await;
                let latest = registry.get(&r.id, v.parse::<i64>().ok()).await;
                match (draft, latest) {
                    (Ok(d), Ok(l)) => d.policy != l.policy,
                    _ => true,
                }
            }
            None => true,
        };
        out.push(GuardrailSummary {
            pinned_by: pins(&state, &r.id),
            id: r.id,
            name: r.name,
            description: r.description.unwrap_or_default(),
            updated_at: r.updated_at,
            versions,
            draft_differs,
        });
    }
    Ok(out)
}

/// What a new guardrail starts as: a copy of the default policy under its own name, so the
/// admin edits a working DRAFT rather than an empty one.
fn new_policy(name: &str, description: &str) -> Result<GuardrailPolicy, ApiError> {
    let mut p = GuardrailPolicy::default_policy();
    p.name = name.to_string();
    p.description = (!description.is_empty()).then(|| description.to_string());
    p.validate().map_err(invalid)?;
    Ok(p)
}

pub async fn create_guardrail(name: String, description: String) -> Result<String, ApiError> {
    let (console, user) = require_role(ADMIN).await?;
    let result = async {
        let state = gateway_state()?;
        let name: String = name.trim().chars().take(limits::NAME_MAX + 1).collect();
        let description: String = description
            .trim()
            .chars()
            .take(limits::DESCRIPTION_MAX + 1)
            .collect();
        let policy = new_policy(&name, &description).map_err(|e| match e {
            ApiError::Invalid(m) => invalid(m.replace("name:", "name (letters, digits, - and _):")),
            other => other,
        })?;
        let created = state
            .guardrail_registry
            .create(&policy)
            .await
            .map_err(from_registry)?;
        record(
            &console,
            &user,
            "guardrail.create",
            &created.id,
            format!(
                "guardrail {name} created ({})",
                state.guardrail_registry.kind()
            ),
        )
        .await;
        Ok(created.id)
    }
    .await;
    let page = match &result {
        Ok(id) => format!("/guardrails/{}", query_escape(id)),
        Err(_) => "/guardrails".to_string(),
    };
    finish(
        &page,
        result,
        "Guardrail created; edit its DRAFT, then create a version.",
    )
}

pub async fn delete_guardrail(id: String, confirm: String) -> Result<(), ApiError> {
    let (console, user) = require_role(ADMIN).await?;
    let result = async {
        let state = gateway_state()?;
        let id = guardrail_id(&id)?;
        if confirm.trim() != id {
            return Err(invalid(
                "type the guardrail's id to confirm that it and all its versions are deleted",
            ));
        }
        let name = state
            .guardrail_registry
            .get(&id, None)
            .await
            .map(|r| r.policy.name)
            .map_err(from_registry)?;
        // Pinned by a feature (configuration or override): refused, naming the version.
        let pins = state.features.pins(&state.config);
        state
            .guardrail_registry
            .delete_unpinned(&id, None, &pins)
            .await
            .map_err(from_registry)?;
        record(
            &console,
            &user,
            "guardrail.delete",
            &id,
            format!("guardrail {name} and all its versions deleted"),
        )
        .await;
        Ok(())
    }
    .await;
    let page = match &result {
        Ok(()) => "/guardrails".to_string(),
        Err(_) => format!("/guardrails/{}", query_escape(id.trim())),
    };
    finish(&page, result, "Guardrail deleted.")
}

fn pii_action_str(a: PiiAction) -> &'static str {
    match a {
        PiiAction::Block => "BLOCK",
        PiiAction::Anonymize => "ANONYMIZE",
        PiiAction::None => "NONE",
    }
}

fn parse_pii_action(v: &str) -> Result<PiiAction, ApiError> {
    match v {
        "BLOCK" => Ok(PiiAction::Block),
        "ANONYMIZE" => Ok(PiiAction::Anonymize),
        "NONE" | "" => Ok(PiiAction::None),
        _ => Err(invalid("actions are NONE, ANONYMIZE or BLOCK")),
    }
}

fn parse_strength(v: &str) -> Result<Strength, ApiError> {
    match v {
        "NONE" | "" => Ok(Strength::None),
        "LOW" => Ok(Strength::Low),
        "MEDIUM" => Ok(Strength::Medium),
        "HIGH" => Ok(Strength::High),
        _ => Err(invalid("strengths are NONE, LOW, MEDIUM or HIGH")),
    }
}

/// The effective action of one direction: disabled → NONE.
fn direction(action: PiiAction, specific: Option<PiiAction>, enabled: Option<bool>) -> String {
    if enabled == Some(false) {
        return "NONE".into();
    }
    pii_action_str(specific.unwrap_or(action)).into()
}

/// A policy as the editor shows it.
pub fn to_doc(id: &str, version: &str, updated_at: &str, p: &GuardrailPolicy) -> GuardrailDoc {
    let sip = p
        .sensitive_information_policy_config
        .clone()
        .unwrap_or_default();
    let pii = PII_TYPES
        .iter()
        .map(|t| {
            let found = sip.pii_entities_config.iter().find(|e| e.entity_type == *t);
            match found {
                Some(e) => PiiRow {
                    entity: (*t).into(),
                    input: direction(e.action, e.input_action, e.input_enabled),
                    output: direction(e.action, e.output_action, e.output_enabled),
                },
                None => PiiRow {
                    entity: (*t).into(),
                    input: "NONE".into(),
                    output: "NONE".into(),
                },
            }
        })
        .collect();
    let regexes = sip
        .regexes_config
        .iter()
        .map(|r| RegexRow {
            name: r.name.clone(),
            pattern: r.pattern.clone(),
            input: direction(r.action, r.input_action, r.input_enabled),
            output: direction(r.action, r.output_action, r.output_enabled),
        })
        .collect();
    let topics = p
        .topic_policy_config
        .as_ref()
        .map(|t| {
            t.topics_config
                .iter()
                .map(|t| TopicRow {
                    name: t.name.clone(),
                    definition: t.definition.clone(),
                    examples: t.examples.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let words = p.word_policy_config.clone().unwrap_or_default();
    let filters_cfg = p.content_policy_config.clone().unwrap_or_default();
    let filters = ContentFilterType::ALL
        .iter()
        .map(|k| {
            let f = filters_cfg
                .filters_config
                .iter()
                .find(|f| f.filter_type == *k);
            FilterRow {
                kind: k.as_str().into(),
                input: f.map_or("NONE", |f| f.input_strength.as_str()).into(),
                output: f.map_or("NONE", |f| f.output_strength.as_str()).into(),
            }
        })
        .collect();
    GuardrailDoc {
        id: id.into(),
        version: version.into(),
        name: p.name.clone(),
        description: p.description.clone().unwrap_or_default(),
        blocked_input: p.blocked_input_messaging.clone(),
        blocked_output: p.blocked_outputs_messaging.clone(),
        topics,
        pii,
        regexes,
        words: words.words_config.iter().map(|w| w.text.clone()).collect(),
        profanity: words
            .managed_word_lists_config
            .iter()
            .any(|m| m.list_type == "PROFANITY"),
        filters,
        updated_at: updated_at.into(),
    }
}

pub async fn guardrail(id: String, version: String) -> Result<GuardrailDetail, ApiError> {
    require_role(ADMIN).await?;
    let state = gateway_state()?;
    let id = guardrail_id(&id)?;
    let number = parse_version(version.trim(), true).map_err(|_| invalid("not a version"))?;
    let record = state
        .guardrail_registry
        .get(&id, number)
        .await
        .map_err(from_registry)?;
    Ok(GuardrailDetail {
        doc: to_doc(&id, &record.version, &record.updated_at, &record.policy),
        versions: numbered_versions(&state, &id).await?,
        pinned_by: pins(&state, &id),
    })
}

/// The editor's form, field by field (see `admin_save_draft`).
#[derive(Debug, Default)]
pub struct DraftForm {
    pub description: String,
    pub blocked_input: String,
    pub blocked_output: String,
    pub topic_name: BTreeMap<String, String>,
    pub topic_definition: BTreeMap<String, String>,
    pub topic_examples: BTreeMap<String, String>,
    pub pii_in: BTreeMap<String, String>,
    pub pii_out: BTreeMap<String, String>,
    pub regex_name: BTreeMap<String, String>,
    pub regex_pattern: BTreeMap<String, String>,
    pub regex_in: BTreeMap<String, String>,
    pub regex_out: BTreeMap<String, String>,
    pub words: String,
    pub profanity: bool,
    pub filter_in: BTreeMap<String, String>,
    pub filter_out: BTreeMap<String, String>,
}

impl DraftForm {
    fn size(&self) -> usize {
        let maps = [
            &self.topic_name,
            &self.topic_definition,
            &self.topic_examples,
            &self.pii_in,
            &self.pii_out,
            &self.regex_name,
            &self.regex_pattern,
            &self.regex_in,
            &self.regex_out,
            &self.filter_in,
            &self.filter_out,
        ];
        maps.iter()
            .flat_map(|m| m.iter())
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
            + self.description.len()
            + self.blocked_input.len()
            + self.blocked_output.len()
            + self.words.len()
    }
}

/// Row keys in numeric order (`0`, `1`, …, `10`), whatever the map's string order.
fn row_keys(maps: &[&BTreeMap<String, String>]) -> Vec<String> {
    let mut keys: Vec<(u64, String)> = maps
        .iter()
        .flat_map(|m| m.keys())
        .filter_map(|k| k.parse::<u64>().ok().map(|n| (n, k.clone())))
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().map(|(_, k)| k).collect()
}

fn get<'a>(m: &'a BTreeMap<String, String>, k: &str) -> &'a str {
    m.get(k).map_or("", |v| v.trim())
}

/// The editor's fields applied to `base` (the current DRAFT: fields the editor does not show
/// are kept).
pub fn apply_form(base: &GuardrailPolicy, form: &DraftForm) -> Result<GuardrailPolicy, ApiError> {
    if form.size() > DRAFT_FORM_MAX {
        return Err(invalid("the draft is too large"));
    }
    let mut p = base.clone();
    let description = form.description.trim();
    p.description = (!description.is_empty()).then(|| description.to_string());
    p.blocked_input_messaging = form.blocked_input.trim().to_string();
    p.blocked_outputs_messaging = form.blocked_output.trim().to_string();

    let mut topics = Vec::new();
    for k in row_keys(&[
        &form.topic_name,
        &form.topic_definition,
        &form.topic_examples,
    ]) {
        let (name, definition) = (get(&form.topic_name, &k), get(&form.topic_definition, &k));
        let examples: Vec<String> = get(&form.topic_examples, &k)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if name.is_empty() && definition.is_empty() && examples.is_empty() {
            continue;
        }
        if name.is_empty() || definition.is_empty() {
            return Err(invalid("every denied topic needs a name and a definition"));
        }
        topics.push(TopicConfig {
            name: name.into(),
            definition: definition.into(),
            examples,
            topic_type: "DENY".into(),
            input_action: None,
            output_action: None,
            input_enabled: None,
            output_enabled: None,
        });
    }
    p.topic_policy_config = if topics.is_empty() {
        None
    } else {
        Some(TopicPolicy {
            topics_config: topics,
            tier_config: base
                .topic_policy_config
                .as_ref()
                .and_then(|t| t.tier_config.clone()),
        })
    };

    // Entities keep their stored form and order when the editor did not change them, so a
    // version diff shows only what the admin changed.
    let base_pii = base
        .sensitive_information_policy_config
        .as_ref()
        .map(|c| c.pii_entities_config.clone())
        .unwrap_or_default();
    let mut order: Vec<&str> = base_pii.iter().map(|e| e.entity_type.as_str()).collect();
    order.extend(
        PII_TYPES
            .iter()
            .filter(|t| !base_pii.iter().any(|e| e.entity_type == **t)),
    );
    let mut pii = Vec::new();
    for t in order {
        if !PII_TYPES.contains(&t) {
            return Err(invalid(format!("unknown PII entity type {t}")));
        }
        let input = parse_pii_action(get(&form.pii_in, t))?;
        let output = parse_pii_action(get(&form.pii_out, t))?;
        if let Some(e) = base_pii.iter().find(|e| e.entity_type == t) {
            let same_in =
                direction(e.action, e.input_action, e.input_enabled) == pii_action_str(input);
            let same_out =
                direction(e.action, e.output_action, e.output_enabled) == pii_action_str(output);
            if same_in && same_out {
                pii.push(e.clone());
                continue;
            }
        }
        if input == PiiAction::None && output == PiiAction::None {
            continue;
        }
        let action = if input == PiiAction::None {
            output
        } else {
            input
        };
        let uniform = input == output;
        pii.push(PiiEntityConfig {
            entity_type: t.into(),
            action,
            input_action: (!uniform).then_some(input),
            output_action: (!uniform).then_some(output),
            input_enabled: (input == PiiAction::None).then_some(false),
            output_enabled: (output == PiiAction::None).then_some(false),
        });
    }
    let mut regexes = Vec::new();
    for k in row_keys(&[&form.regex_name, &form.regex_pattern]) {
        let (name, pattern) = (get(&form.regex_name, &k), get(&form.regex_pattern, &k));
        if name.is_empty() && pattern.is_empty() {
            continue;
        }
        if name.is_empty() || pattern.is_empty() {
            return Err(invalid("every custom regex needs a name and a pattern"));
        }
        check_pattern(pattern)?;
        let input = parse_pii_action(get(&form.regex_in, &k))?;
        let output = parse_pii_action(get(&form.regex_out, &k))?;
        let action = if input == PiiAction::None {
            output
        } else {
            input
        };
        regexes.push(RegexConfig {
            name: name.into(),
            description: None,
            pattern: pattern.into(),
            action,
            input_action: Some(input),
            output_action: Some(output),
            input_enabled: Some(input != PiiAction::None),
            output_enabled: Some(output != PiiAction::None),
        });
    }
    p.sensitive_information_policy_config = if pii.is_empty() && regexes.is_empty() {
        None
    } else {
        Some(SensitiveInformationPolicy {
            pii_entities_config: pii,
            regexes_config: regexes,
        })
    };

    // Bulk paste: one word or phrase per line, or separated by commas.
    let mut words: Vec<String> = Vec::new();
    for w in form.words.split(['\n', ',']).map(str::trim) {
        if !w.is_empty() && !words.iter().any(|x| x.eq_ignore_ascii_case(w)) {
            words.push(w.to_string());
        }
    }
    if words.len() > limits::WORDS_MAX {
        return Err(invalid(format!("at most {} words", limits::WORDS_MAX)));
    }
    p.word_policy_config = if words.is_empty() && !form.profanity {
        None
    } else {
        Some(WordPolicy {
            words_config: words
                .into_iter()
                .map(|text| WordConfig {
                    text,
                    input_action: None,
                    output_action: None,
                    input_enabled: None,
                    output_enabled: None,
                })
                .collect(),
            managed_word_lists_config: if form.profanity {
                vec![ManagedWordListConfig {
                    list_type: "PROFANITY".into(),
                    input_action: None,
                    output_action: None,
                    input_enabled: None,
                    output_enabled: None,
                }]
            } else {
                Vec::new()
            },
        })
    };

    let mut filters = Vec::new();
    for (t, kind) in FILTER_TYPES.iter().zip(ContentFilterType::ALL) {
        let input = parse_strength(get(&form.filter_in, t))?;
        let output = parse_strength(get(&form.filter_out, t))?;
        if input == Strength::None && output == Strength::None {
            continue;
        }
        filters.push(ContentFilterConfig {
            filter_type: kind,
            input_strength: input,
            output_strength: output,
            input_modalities: None,
            output_modalities: None,
            input_action: Some(if input == Strength::None {
                BlockAction::None
            } else {
                BlockAction::Block
            }),
            output_action: Some(if output == Strength::None {
                BlockAction::None
            } else {
                BlockAction::Block
            }),
            input_enabled: None,
            output_enabled: None,
        });
    }
    p.content_policy_config = if filters.is_empty() {
        None
    } else {
        Some(ContentPolicy {
            filters_config: filters,
            tier_config: base
                .content_policy_config
                .as_ref()
                .and_then(|c| c.tier_config.clone()),
        })
    };
    p.validate().map_err(invalid)?;
    Ok(p)
}

/// Compile one regex the way the engine will (a policy with just that regex).
fn check_pattern(pattern: &str) -> Result<(), ApiError> {
    if pattern.len() > limits::REGEX_PATTERN_MAX {
        return Err(invalid(format!(
            "a pattern is at most {} characters",
            limits::REGEX_PATTERN_MAX
        )));
    }
    let mut p = GuardrailPolicy::default_policy();
    p.sensitive_information_policy_config = Some(SensitiveInformationPolicy {
        pii_entities_config: Vec::new(),
        regexes_config: vec![RegexConfig {
            name: "check".into(),
            description: None,
            pattern: pattern.into(),
            action: PiiAction::Anonymize,
            input_action: None,
            output_action: None,
            input_enabled: None,
            output_enabled: None,
        }],
    });
    p.validate().map_err(invalid)?;
    let policies = BTreeMap::from([("check".to_string(), p)]);
    gateway::guard::engine::EmbeddedGuardrails::new(&policies)
        .map(|_| ())
        .map_err(|e| invalid(format!("the pattern does not compile: {e}")))
}

pub async fn check_regex(pattern: String) -> Result<(), ApiError> {
    require_role(ADMIN).await?;
    blocking(move || check_pattern(pattern.trim())).await
}

pub async fn save_draft(id: String, form: DraftForm) -> Result<(), ApiError> {
    let (console, user) = require_role(ADMIN).await?;
    let page = format!("/guardrails/{}", query_escape(id.trim()));
    let result = async {
        let state = gateway_state()?;
        let id = guardrail_id(&id)?;
        let registry = &state.guardrail_registry;
        let current = registry.get(&id, None).await.map_err(from_registry)?;
        let before = current.policy.clone();
        let (next, summary) = blocking(move || {
            let next = apply_form(&current.policy, &form)?;
            let summary = change_summary(&current.policy, &next);
            Ok((next, summary))
        })
        .await?;
        if next != before {
            registry.update(&id, &next).await.map_err(from_registry)?;
        }
        record(&console, &user, "guardrail.edit", &id, summary).await;
        Ok(())
    }
    .await;
    finish(&page, result, "Draft saved.")
}

/// A short description of what changed between two policies, for the audit trail.
fn change_summary(before: &GuardrailPolicy, after: &GuardrailPolicy) -> String {
    let a = pretty_lines(before);
    let b = pretty_lines(after);
    let changed = diff_lines(&a, &b)
        .iter()
        .filter(|l| l.kind != "same")
        .count();
    format!("DRAFT edited ({changed} lines of the policy changed)")
}

pub async fn create_version(id: String, description: String) -> Result<String, ApiError> {
    let (console, user) = require_role(ADMIN).await?;
    let page = format!("/guardrails/{}", query_escape(id.trim()));
    let result = async {
        let state = gateway_state()?;
        let id = guardrail_id(&id)?;
        let description: String = description.trim().chars().take(200).collect();
        let version = state
            .guardrail_registry
            .create_version(&id, (!description.is_empty()).then_some(&*description))
            .await
            .map_err(from_registry)?;
        record(
            &console,
            &user,
            "guardrail.version",
            &id,
            format!("version {version} created from the DRAFT"),
        )
        .await;
        Ok(version)
    }
    .await;
    let notice = match &result {
        Ok(v) => format!("Created version {v}."),
        Err(_) => String::new(),
    };
    finish(&page, result, &notice)
}

fn finding_from(policy: &str, v: &serde_json::Value, label_key: &str) -> Finding {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    Finding {
        policy: policy.into(),
        label: s(label_key),
        action: s("action"),
        matched: s("match"),
    }
}

/// Split `text` into plain and highlighted segments by where each finding's match occurs.
pub fn segments(text: &str, findings: &[Finding]) -> Vec<Segment> {
    let mut spans: Vec<(usize, usize, usize)> = Vec::new();
    for (i, f) in findings.iter().enumerate() {
        if f.matched.is_empty() {
            continue;
        }
        let mut from = 0;
        while let Some(pos) = text[from..].find(&f.matched) {
            let (s, e) = (from + pos, from + pos + f.matched.len());
            if !spans.iter().any(|(a, b, _)| s < *b && *a < e) {
                spans.push((s, e, i));
                break;
            }
            from = e;
        }
    }
    spans.sort();
    let mut out = Vec::new();
    let mut at = 0;
    for (s, e, i) in spans {
        if s > at {
            out.push(Segment {
                text: text[at..s].into(),
                finding: None,
            });
        }
        out.push(Segment {
            text: text[s..e].into(),
            finding: Some(i),
        });
        at = e;
    }
    if at < text.len() {
        out.push(Segment {
            text: text[at..].into(),
            finding: None,
        });
    }
    out
}

pub async fn test_guardrail(
    id: String,
    version: String,
    source: String,
    text: String,
) -> Result<TestResult, ApiError> {
    require_role(ADMIN).await?;
    let state = gateway_state()?;
    let id = guardrail_id(&id)?;
    let version = version.trim().to_string();
    parse_version(&version, true).map_err(|_| invalid("not a version"))?;
    let source = match source.as_str() {
        "INPUT" | "" => gateway::guard::Source::Input,
        "OUTPUT" => gateway::guard::Source::Output,
        _ => return Err(invalid("source must be INPUT or OUTPUT")),
    };
    if text.chars().count() > TEST_TEXT_MAX {
        return Err(invalid(format!(
            "test text is at most {TEST_TEXT_MAX} characters"
        )));
    }
    if state.config.bedrock_guardrails() {
        return applied_test(&state, id, version, source, text).await;
    }
    blocking(move || {
        let compiled = state
            .registry
            .compiled(&GuardrailRef {
                id: id.clone(),
                version: version.clone(),
            })
            .map_err(|e| match e {
                gateway::guard::GuardError::NotFound(_) => {
                    not_found(format!("guardrail {id} has no version {version}"))
                }
                other => unavailable("guardrail", other),
            })?;
        let body = compiled.assess(source, &[(text.as_str(), true)], true);
        let action = body["action"].as_str().unwrap_or("NONE").to_string();
        let mut findings = Vec::new();
        if let Some(a) = body["assessments"].get(0) {
            let list = |v: &serde_json::Value| v.as_array().cloned().unwrap_or_default();
            for v in list(&a["sensitiveInformationPolicy"]["piiEntities"]) {
                findings.push(finding_from("pii", &v, "type"));
            }
            for v in list(&a["sensitiveInformationPolicy"]["regexes"]) {
                findings.push(finding_from("regex", &v, "name"));
            }
            for v in list(&a["wordPolicy"]["customWords"]) {
                let mut f = finding_from("word", &v, "match");
                f.label = "custom word".into();
                findings.push(f);
            }
            for v in list(&a["wordPolicy"]["managedWordLists"]) {
                findings.push(finding_from("profanity", &v, "type"));
            }
            for v in list(&a["topicPolicy"]["topics"]) {
                findings.push(finding_from("topic", &v, "name"));
            }
            for v in list(&a["contentPolicy"]["filters"]) {
                let mut f = finding_from("filter", &v, "type");
                let conf = v["confidence"].as_str().unwrap_or("");
                f.label = format!("{} ({} confidence)", f.label, conf);
                findings.push(f);
            }
        }
        let blocked = findings.iter().any(|f| f.action == "BLOCKED");
        let output = body["outputs"]
            .get(0)
            .and_then(|o| o["text"].as_str())
            .map_or_else(|| text.clone(), str::to_string);
        Ok(TestResult {
            action,
            blocked,
            output,
            segments: segments(&text, &findings),
            findings,
        })
    })
    .await
}

/// The test pane through the gateway's guardrail engine (Bedrock's ApplyGuardrail): the
/// verdict, the output and which policies matched. The engine's outcome names policies, not
/// spans, so only custom words (whose name is the match) are highlighted.
async fn applied_test(
    state: &AppState,
    id: String,
    version: String,
    source: gateway::guard::Source,
    text: String,
) -> Result<TestResult, ApiError> {
    use gateway::guard::{GuardError, TextAction};
    let guardrail = GuardrailRef {
        id: id.clone(),
        version: version.clone(),
    };
    let outcome = state
        .guardrails
        .apply(&guardrail, source, &text)
        .await
        .map_err(|e| match e {
            GuardError::NotFound(_) => {
                not_found(format!("guardrail {id} has no version {version}"))
            }
            other => unavailable("guardrail", other),
        })?;
    let findings: Vec<Finding> = outcome
        .policies
        .iter()
        .map(|p| {
            let (policy, label) = p.split_once(':').unwrap_or(("policy", p.as_str()));
            Finding {
                policy: policy.into(),
                label: label.into(),
                action: String::new(),
                matched: if policy == "word" && label != "PROFANITY" {
                    label.into()
                } else {
                    String::new()
                },
            }
        })
        .collect();
    Ok(TestResult {
        action: match outcome.action {
            TextAction::None => "NONE".into(),
            _ => "GUARDRAIL_INTERVENED".into(),
        },
        blocked: outcome.action == TextAction::Blocked,
        output: outcome.text,
        segments: segments(&text, &findings),
        findings,
    })
}

/// A policy as stable pretty-printed JSON lines (the diff's unit).
fn pretty_lines(p: &GuardrailPolicy) -> Vec<String> {
    serde_json::to_string_pretty(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A side-by-side diff of two line lists (longest common subsequence; inputs are small:
/// a policy is at most a few thousand lines, and the table is bounded below).
pub fn diff_lines(a: &[String], b: &[String]) -> Vec<DiffLine> {
    const MAX_CELLS: usize = 25_000_000;
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        return a
            .iter()
            .map(|l| DiffLine {
                left: Some(l.clone()),
                right: None,
                kind: "removed".into(),
            })
            .chain(b.iter().map(|l| DiffLine {
                left: None,
                right: Some(l.clone()),
                kind: "added".into(),
            }))
            .collect();
    }
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[at(i, j)] = if a[i] == b[j] {
                lcs[at(i + 1, j + 1)] + 1
            } else {
                lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
            };
        }
    }
    let mut out: Vec<DiffLine> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push(DiffLine {
                left: Some(a[i].clone()),
                right: Some(b[j].clone()),
                kind: "same".into(),
            });
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[at(i + 1, j)] >= lcs[at(i, j + 1)]) {
            out.push(DiffLine {
                left: Some(a[i].clone()),
                right: None,
                kind: "removed".into(),
            });
            i += 1;
        } else {
            out.push(DiffLine {
                left: None,
                right: Some(b[j].clone()),
                kind: "added".into(),
            });
            j += 1;
        }
    }
    // Pair a run of removals with the additions right after it as changed lines.
    let mut paired: Vec<DiffLine> = Vec::with_capacity(out.len());
    let mut k = 0;
    while k < out.len() {
        if out[k].kind == "removed" {
            let start = k;
            while k < out.len() && out[k].kind == "removed" {
                k += 1;
            }
            let adds_start = k;
            while k < out.len() && out[k].kind == "added" {
                k += 1;
            }
            let removed = &out[start..adds_start];
            let added = &out[adds_start..k];
            for r in 0..removed.len().max(added.len()) {
                let left = removed.get(r).and_then(|d| d.left.clone());
                let right = added.get(r).and_then(|d| d.right.clone());
                let kind = match (&left, &right) {
                    (Some(_), Some(_)) => "changed",
                    (Some(_), None) => "removed",
                    _ => "added",
                };
                paired.push(DiffLine {
                    left,
                    right,
                    kind: kind.into(),
                });
            }
        } else {
            paired.push(out[k].clone());
            k += 1;
        }
    }
    paired
}

pub async fn diff(id: String, left: String, right: String) -> Result<Vec<DiffLine>, ApiError> {
    require_role(ADMIN).await?;
    let state = gateway_state()?;
    let id = guardrail_id(&id)?;
    let l = parse_version(left.trim(), true).map_err(|_| invalid("not a version"))?;
    let r = parse_version(right.trim(), true).map_err(|_| invalid("not a version"))?;
    let a = state
        .guardrail_registry
        .get(&id, l)
        .await
        .map_err(from_registry)?;
    let b = state
        .guardrail_registry
        .get(&id, r)
        .await
        .map_err(from_registry)?;
    blocking(move || {
        Ok(diff_lines(
            &pretty_lines(&a.policy),
            &pretty_lines(&b.policy),
        ))
    })
    .await
}

#[cfg(test)]
mod tests {

    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    #[test]
    fn diff_pairs_changes_and_keeps_common_lines() {
        let d = diff_lines(&lines("a\nb\nc\nd"), &lines("a\nB\nc\nd\ne"));
        let kinds: Vec<&str> = d.iter().map(|l| l.kind.as_str()).collect();
        assert_eq!(kinds, ["same", "changed", "same", "same", "added"]);
        assert_eq!(d[1].left.as_deref(), Some("b"));
        assert_eq!(d[1].right.as_deref(), Some("B"));
    }

    #[test]
    fn segments_cover_the_text_and_mark_matches() {
        let findings = vec![Finding {
            policy: "pii".into(),
            label: "EMAIL".into(),
            action: "ANONYMIZED".into(),
            matched: "jane@example.com".into(),
        }];
        let s = segments("mail jane@example.com now", &findings);
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].finding, Some(0));
        let joined: String = s.iter().map(|x| x.text.as_str()).collect();
        assert_eq!(joined, "mail jane@example.com now");
    }

    #[test]
    fn the_editor_round_trips_a_policy_and_validates_regexes() {
        let base = GuardrailPolicy::default_policy();
        let doc = to_doc("x", "DRAFT", "", &base);
        let mut form = DraftForm {
            blocked_input: doc.blocked_input.clone(),
            blocked_output: doc.blocked_output.clone(),
            ..DraftForm::default()
        };
        for row in &doc.pii {
            form.pii_in.insert(row.entity.clone(), row.input.clone());
            form.pii_out.insert(row.entity.clone(), row.output.clone());
        }
        form.topic_name.insert("0".into(), "Investing".into());
        form.topic_definition
            .insert("0".into(), "Advice on stocks or funds".into());
        form.topic_examples
            .insert("0".into(), "Which stock should I buy?\n\n".into());
        form.words = "alpha, beta\ngamma\nALPHA".into();
        form.filter_in.insert("HATE".into(), "HIGH".into());
        let p = apply_form(&base, &form).unwrap();
        let again = to_doc("x", "DRAFT", "", &p);
        assert_eq!(again.pii, doc.pii);
        assert_eq!(again.words, ["alpha", "beta", "gamma"]);
        assert_eq!(again.topics[0].examples, ["Which stock should I buy?"]);
        assert_eq!(again.filters[2].input, "HIGH");

        form.regex_name.insert("0".into(), "employee".into());
        form.regex_pattern.insert("0".into(), "EMP-[0-9]{6}".into());
        form.regex_in.insert("0".into(), "ANONYMIZE".into());
        assert!(apply_form(&base, &form).is_ok());
        form.regex_pattern.insert("0".into(), "EMP-([0-9]".into());
        assert!(matches!(
            apply_form(&base, &form),
            Err(ApiError::Invalid(_))
        ));
    }
}
