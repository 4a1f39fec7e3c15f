//! `/`: live request counts from the audit store — headline numbers and a requests-per-minute
//! chart rendered on the server, for a range chosen with the range control.
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
use crate::api::{ApiError, Overview, Range, load_overview};

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

/// The numbers and the chart of one [`Overview`].
#[component]
fn OverviewBody(overview: Overview, loading: ReadSignal<bool>) -> impl IntoView {
    let Overview {
        range,
        generated_ms,
        requests,
        interventions,
        peak_per_minute,
        chart_svg,
        ..
    } = overview;
    let rate = if requests == 0 {
        "–".to_string()
    } else {
        format!("{:.1} %", interventions as f64 * 100.0 / requests as f64)
    };
    view! {
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
    }
}
