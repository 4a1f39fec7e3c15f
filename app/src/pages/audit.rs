//! `/audit` (admin and SOC): the console's audit trail — sign-ins, account changes, guardrail
//! edits and versions, feature bindings and throttle changes (console events) — and every vault
//! opening (the gateway's access events), newest first. The filters are a GET form, so they
//! work before the wasm loads and the URL can be shared.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::TopBar;
use crate::admin::ui::{date_time, load_error};
use crate::admin::{AuditFilter, AuditPage, admin_audit};

/// Kinds offered in the filter: `(value, label)`.
const KINDS: [(&str, &str); 13] = [
    ("", "every kind"),
    ("login", "sign-in"),
    ("login.", "sign-ins, refused ones included"),
    ("logout", "sign-out"),
    ("account.", "account changes"),
    ("account.soc_grant", "soc role grants"),
    ("guardrail.edit", "guardrail draft edits"),
    ("guardrail.version", "guardrail versions"),
    ("guardrail.create", "guardrails created"),
    ("guardrail.delete", "guardrails deleted"),
    ("feature.binding", "guardrail bindings"),
    ("feature.throttle", "throttle changes"),
    ("vault.open", "vault openings"),
];
const RANGES: [(&str, &str); 5] = [
    ("1h", "last hour"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
    ("all", "all time"),
];

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| {
        let q = query.read();
        AuditFilter {
            actor: q.get("actor").unwrap_or_default(),
            kind: q.get("kind").unwrap_or_default(),
            range: q.get("range").unwrap_or_else(|| "24h".into()),
        }
    });
    let data = Resource::new(move || filter.get(), admin_audit);
    view! {
        <Title text="Audit · Golden Path" />
        <div class="app">
            <TopBar />
            <main class="content" data-testid="audit-page">
                <header class="page-header">
                    <div>
                        <h1>"Audit trail"</h1>
                        <p class="muted">
                            "Every sign-in, account change, guardrail edit, version, binding, "
                            "throttle change and vault opening: who, what, when, from where."
                        </p>
                    </div>
                </header>
                <form method="get" action="/audit" class="card filter-bar" data-testid="audit-filter">
                    <div class="field">
                        <label for="audit-actor">"Actor"</label>
                        <input
                            id="audit-actor"
                            name="actor"
                            type="text"
                            maxlength="64"
                            placeholder="any user"
                            prop:value=move || filter.get().actor
                        />
                    </div>
                    <div class="field">
                        <label for="audit-kind">"What"</label>
                        <select id="audit-kind" name="kind">
                            {KINDS
                                .iter()
                                .map(|(v, label)| {
                                    view! {
                                        <option value=*v selected=move || filter.get().kind == *v>
                                            {*label}
                                        </option>
                                    }
                                })
                                .collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="audit-range">"When"</label>
                        <select id="audit-range" name="range">
                            {RANGES
                                .iter()
                                .map(|(v, label)| {
                                    view! {
                                        <option value=*v selected=move || filter.get().range == *v>
                                            {*label}
                                        </option>
                                    }
                                })
                                .collect_view()}
                        </select>
                    </div>
                    <button type="submit" class="btn btn-primary">
                        "Filter"
                    </button>
                    <a class="btn btn-quiet" href="/audit">
                        "Reset"
                    </a>
                </form>
                <Transition fallback=|| view! { <div class="card placeholder">"Loading…"</div> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok(page) => view! { <AuditTable page /> }.into_any(),
                            Err(e) => load_error(e),
                        }
                    })}
                </Transition>
            </main>
        </div>
    }
}

fn kind_class(kind: &str) -> &'static str {
    if kind == crate::admin::SOC_GRANT_EVENT {
        return "pill pill-grant";
    }
    match kind.split('.').next().unwrap_or("") {
        "vault" => "pill pill-vault",
        "guardrail" => "pill pill-guard",
        "feature" => "pill pill-feature",
        "account" => "pill pill-account",
        _ if kind == "login.failed" || kind == "login.throttled" => "pill pill-off",
        _ => "pill",
    }
}

#[component]
fn AuditTable(page: AuditPage) -> impl IntoView {
    let AuditPage {
        rows, truncated, ..
    } = page;
    let count = rows.len();
    view! {
        <section class="card table-card">
            <div class="card-header">
                <h2>"Events"</h2>
                <span class="muted small" data-testid="audit-count">
                    {if truncated {
                        format!("newest {count} shown; narrow the filter for more")
                    } else {
                        format!("{count} events")
                    }}
                </span>
            </div>
            {if rows.is_empty() {
                view! { <p class="empty">"No events match this filter."</p> }.into_any()
            } else {
                view! {
                    <table class="data-table" data-testid="audit-table">
                        <thead>
                            <tr>
                                <th>"When (UTC)"</th>
                                <th>"Who"</th>
                                <th>"What"</th>
                                <th>"On"</th>
                                <th>"Details"</th>
                                <th>"From"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {rows
                                .into_iter()
                                .map(|r| {
                                    let grant = r.kind == crate::admin::SOC_GRANT_EVENT;
                                    view! {
                                        <tr data-kind=r.kind.clone() class:grant-row=grant>
                                            <td class="mono nowrap">{date_time(r.at_ms)}</td>
                                            <td class="strong">{r.actor}</td>
                                            <td>
                                                <span class=kind_class(&r.kind)>{r.kind.clone()}</span>
                                            </td>
                                            <td class="mono">{r.target}</td>
                                            <td class="wrap">{r.detail}</td>
                                            <td class="mono muted">{r.client}</td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                }
                    .into_any()
            }}
        </section>
    }
}
