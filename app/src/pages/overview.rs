//! `/`: live usage from the audit store — headline numbers, latency percentiles, requests per
//! minute, tokens by feature (charts rendered on the server), top users and top triggered
//! policies, for a range chosen with the range control. The numbers come from the store's
//! per-minute rollups (`AuditStore::usage`), so a 24 h range reads minutes, not events.
//!
//! The range lives in the URL (`/?range=15m|1h|24h`), so the control is plain links that work
//! without JavaScript; once hydrated, the router turns a click into a client-side navigation
//! and the overview resource refetches through the `load_overview` server function (no page load).
//! The control carries `data-hydrated="true"` once the browser has taken over.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_query_map;

use super::{TopBar, clock_time, group_thousands};
use crate::api::{ApiError, Overview, Range, TopEntry, load_overview};

/// How often the browser refreshes the numbers, in seconds.
#[cfg(feature = "hydrate")]
const REFRESH_SECS: u64 = 30;

#[component]
pub fn OverviewPage() -> impl IntoView {
    let query = use_query_map();
    let range = Memo::new(move |_| Range::from_query(query.read().get("range").as_deref()));
    let data = Resource::new(move || range.get(), load_overview);
    let (loading, set_loading) = signal(false);

    // Effects run only in the browser: this is the hydration marker.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    #[cfg(feature = "hydrate")]
    Effect::new(move |started: Option<()>| {
        if started.is_none()
            && let Ok(handle) = set_interval_with_handle(
                move || data.refetch(),
                std::time::Duration::from_secs(REFRESH_SECS),
            )
        {
            on_cleanup(move || handle.clear());
        }
    });

    view! {
        <Title text="Overview · Golden Path" />
        <div class="app">
            <TopBar />
            <main class="content">
                <header class="page-header">
                    <div>
                        <h1>"Overview"</h1>
                        <p class="muted">
                            "Requests through the gateway, read from the audit trail."
                        </p>
                    </div>
                    <nav
                        class="segmented"
                        aria-label="Time range"
                        data-testid="range-control"
                        data-hydrated=move || hydrated.get().then_some("true")
                    >
                        {Range::ALL
                            .into_iter()
                            .map(|r| {
                                let active = move || range.get() == r;
                                view! {
                                    <a
                                        href=format!("/?range={}", r.as_query())
                                        class="segment"
                                        class:active=active
                                        aria-current=move || active().then_some("true")
                                        data-range=r.as_query()
                                    >
                                        {r.label()}
                                    </a>
                                }
                            })
                            .collect_view()}
                    </nav>
                </header>
                <Transition
                    fallback=|| view! { <div class="card placeholder">"Loading…"</div> }
                    set_pending=set_loading
                >
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok(o) => view! { <OverviewBody overview=o loading /> }.into_any(),
                            Err(ApiError::Unauthorized) => {
                                view! { <Redirect path="/login" /> }.into_any()
                            }
                            Err(e) => {
                                view! {
                                    <div class="alert" role="alert">
                                        {e.to_string()}
                                    </div>
                                }
                                    .into_any()
                            }
                        }
                    })}
                </Transition>
            </main>
        </div>
    }
}

/// The numbers, charts and top lists of one [`Overview`].
#[component]
fn OverviewBody(overview: Overview, loading: ReadSignal<bool>) -> impl IntoView {
    let Overview {
        range,
        generated_ms,
        requests,
        interventions,
        peak_per_minute,
        latency,
        features,
        top_users,
        top_policies,
        chart_svg,
        tokens_svg,
        spooled_records,
        dead_letter_records,
        ..
    } = overview;
    let rate = if requests == 0 {
        "–".to_string()
    } else {
        format!("{:.1} %", interventions as f64 * 100.0 / requests as f64)
    };
    let total_tokens: u64 = features
        .iter()
        .map(|f| f.input_tokens.saturating_add(f.output_tokens))
        .sum();
    let tokens_label = format!(
        "Tokens by feature, {}: {} tokens over {} features",
        range.long_label(),
        total_tokens,
        features.len()
    );
    let spool_notice = spooled_records.filter(|n| *n > 0).map(|n| {
        view! {
            <p class="alert" role="status" data-testid="spool-backlog">
                {format!(
                    "{} records are waiting in this console's local spool for S3, KMS or CloudWatch Logs; they are replayed in order when the service answers again.",
                    group_thousands(n),
                )}
            </p>
        }
    });
    let dead_notice = dead_letter_records.filter(|n| *n > 0).map(|n| {
        view! {
            <p class="alert" role="alert" data-testid="spool-dead-letters">
                {format!(
                    "{} spooled records could never be delivered (refused by the service, or damaged) and were set aside in the spool's dead-letter folder (spool/dead, with the reason beside each); to retry them, stop the gateway and move them back into spool/.",
                    group_thousands(n),
                )}
            </p>
        }
    });
    view! {
        {spool_notice}
        {dead_notice}
        <section class="stats" aria-label="Headline numbers">
            <div class="stat">
                <span class="stat-label">"Requests"</span>
                <span class="stat-value" data-testid="stat-requests">
                    {group_thousands(requests)}
                </span>
                <span class="stat-hint">{range.long_label()}</span>
            </div>
            <div class="stat">
                <span class="stat-label">"Guardrail interventions"</span>
                <span class="stat-value accent" data-testid="stat-interventions">
                    {group_thousands(interventions)}
                </span>
                <span class="stat-hint">"blocked or anonymized"</span>
            </div>
            <div class="stat">
                <span class="stat-label">"Intervention rate"</span>
                <span class="stat-value">{rate}</span>
                <span class="stat-hint">"of requests"</span>
            </div>
            <div class="stat">
                <span class="stat-label">"Busiest minute"</span>
                <span class="stat-value">{group_thousands(peak_per_minute)}</span>
                <span class="stat-hint">"requests / min"</span>
            </div>
        </section>
        <section class="card latency-card" aria-labelledby="latency-title">
            <div class="card-header">
                <h2 id="latency-title">"Latency"</h2>
                <span class="muted small">
                    "end to end · approximate: from per-minute histograms, each value is the upper bound of its bucket (≤ 33 % wide)"
                </span>
            </div>
            {if latency.is_empty() {
                view! { <p class="muted empty-state">"No requests in this range yet."</p> }
                    .into_any()
            } else {
                view! {
                    <dl class="percentiles" data-testid="latency">
                        {latency
                            .into_iter()
                            .map(|p| {
                                view! {
                                    <div class="percentile">
                                        <dt>{p.label.clone()}</dt>
                                        <dd data-testid=format!("latency-{}", p.label.to_lowercase())>
                                            {p.display()}
                                        </dd>
                                    </div>
                                }
                            })
                            .collect_view()}
                    </dl>
                }
                    .into_any()
            }}
        </section>
        <section class="card chart-card" class:loading=move || loading.get()>
            <div class="card-header">
                <div class="card-title">
                    <h2>"Requests per minute"</h2>
                    <ul class="legend" aria-label="Legend">
                        <li>
                            <span class="swatch swatch-requests"></span>
                            "requests"
                        </li>
                        <li>
                            <span class="swatch swatch-interventions"></span>
                            "guardrail interventions"
                        </li>
                    </ul>
                </div>
                <span class="muted small">
                    {range.long_label()} " · updated " {clock_time(generated_ms)} " UTC"
                </span>
            </div>
            <div
                class="chart"
                id="requests-chart"
                data-testid="requests-chart"
                data-range=range.as_query()
                data-generated=generated_ms.to_string()
                role="img"
                aria-label=format!(
                    "Requests per minute, {}: {} requests, {} interventions",
                    range.long_label(),
                    requests,
                    interventions,
                )
                inner_html=chart_svg
            ></div>
        </section>
        <section class="card chart-card" class:loading=move || loading.get()>
            <div class="card-header">
                <div class="card-title">
                    <h2>"Tokens by feature"</h2>
                    <ul class="legend" aria-label="Legend">
                        <li>
                            <span class="swatch swatch-requests"></span>
                            "input tokens"
                        </li>
                        <li>
                            <span class="swatch swatch-output"></span>
                            "output tokens"
                        </li>
                    </ul>
                </div>
                <span class="muted small">{range.long_label()}</span>
            </div>
            <div
                class="chart"
                data-testid="tokens-chart"
                role="img"
                aria-label=tokens_label
                inner_html=tokens_svg
            ></div>
        </section>
        <div class="grid-2 align-start">
            <TopList
                title="Top users"
                unit="requests"
                empty="No requests in this range yet."
                testid="top-users"
                entries=top_users
            />
            <TopList
                title="Top triggered policies"
                unit="interventions"
                empty="No guardrail interventions in this range."
                testid="top-policies"
                entries=top_policies
            />
        </div>
    }
}

/// A ranked list with a proportional bar per entry (a `<meter>`: no inline style needed).
#[component]
fn TopList(
    title: &'static str,
    unit: &'static str,
    empty: &'static str,
    testid: &'static str,
    entries: Vec<TopEntry>,
) -> impl IntoView {
    let max = entries.first().map_or(1, |e| e.count.max(1));
    view! {
        <section class="card table-card top-list" data-testid=testid>
            <div class="card-header">
                <h2>{title}</h2>
                <span class="muted small">{unit}</span>
            </div>
            {if entries.is_empty() {
                view! { <p class="muted empty-state">{empty}</p> }.into_any()
            } else {
                view! {
                    <table class="data-table compact">
                        <tbody>
                            {entries
                                .into_iter()
                                .map(|e| {
                                    view! {
                                        <tr>
                                            <td class="top-name" title=e.name.clone()>
                                                {e.name.clone()}
                                            </td>
                                            <td class="top-bar">
                                                <meter
                                                    min="0"
                                                    max=max.to_string()
                                                    value=e.count.to_string()
                                                    aria-hidden="true"
                                                ></meter>
                                            </td>
                                            <td class="num">{group_thousands(e.count)}</td>
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
