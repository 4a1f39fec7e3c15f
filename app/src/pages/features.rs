//! `/features` (admin only): each feature's app clients, pinned model alias, pinned guardrail
//! version and throttles, with live usage against the limits; one form per feature saves all
//! of it through `admin_save_feature`, and the gateway applies it on its next request. Only
//! existing numbered versions are offered (and the server refuses any other).

use leptos::prelude::*;
use leptos_meta::Title;

use super::{TopBar, group_thousands};
use crate::admin::ui::{Flash, FlashBanner, load_error, percent};
use crate::admin::{AdminSaveFeature, FeatureRow, admin_features};
use crate::flash_on;

#[component]
pub fn FeaturesPage() -> impl IntoView {
    let save = ServerAction::<AdminSaveFeature>::new();
    let flash: Flash = RwSignal::new(None);
    flash_on!(
        save,
        flash,
        "Saved; the gateway applies it from the next request."
    );
    let data = Resource::new(move || save.version().get(), |_| admin_features());
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <Title text="Features · Golden Path" />
        <div class="app">
            <TopBar />
            <main
                class="content"
                data-testid="features-page"
                data-hydrated=move || hydrated.get().then_some("true")
            >
                <header class="page-header">
                    <div>
                        <h1>"Features"</h1>
                        <p class="muted">
                            "What each product feature may call: its app clients, the model and "
                            "guardrail version it is pinned to, and its throttles. Changes apply "
                            "to the next request, no restart."
                        </p>
                    </div>
                </header>
                <FlashBanner flash />
                <Transition fallback=|| view! { <div class="card placeholder">"Loading…"</div> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok(rows) => {
                                rows.into_iter()
                                    .map(|row| view! { <FeatureCard row save /> })
                                    .collect_view()
                                    .into_any()
                            }
                            Err(e) => load_error(e),
                        }
                    })}
                </Transition>
            </main>
        </div>
    }
}

/// A usage bar: `used` of `limit` (a `<meter>`: the CSP forbids inline styles).
#[component]
fn Meter(label: &'static str, used: u64, limit: u64, unit: &'static str) -> impl IntoView {
    let pct = percent(used, limit);
    view! {
        <div class="meter" title=format!("{pct} % of the limit")>
            <div class="meter-head">
                <span class="meter-label">{label}</span>
                <span class="meter-value">
                    {group_thousands(used)} " / " {group_thousands(limit)} " " {unit}
                </span>
            </div>
            <meter
                class="meter-bar"
                aria-label=label
                min="0"
                max=limit.to_string()
                low=(limit as f64 * 0.6).to_string()
                high=(limit as f64 * 0.9).to_string()
                optimum="0"
                value=used.min(limit).to_string()
            ></meter>
        </div>
    }
}

#[component]
fn FeatureCard(row: FeatureRow, save: ServerAction<AdminSaveFeature>) -> impl IntoView {
    let FeatureRow {
        name,
        clients,
        models,
        all_models,
        guardrail,
        guardrail_name,
        guardrail_version,
        versions,
        limits,
        tokens_minute,
        tokens_day,
        requests_minute,
        overridden,
    } = row;
    let pinned_model = models.first().cloned().unwrap_or_default();
    let form_test_id = format!("feature-form-{name}");
    let hidden_name = name.clone();
    let id = format!("feature-{name}");
    let prefix = name.clone();
    let input_id = move |field: &str| format!("{prefix}-{field}");
    let field_ids = [
        input_id("model"),
        input_id("version"),
        input_id("rpm"),
        input_id("burst"),
        input_id("tpm"),
        input_id("tpd"),
    ];
    let [model_id, version_id, rpm_id, burst_id, tpm_id, tpd_id] = field_ids;
    view! {
        <section class="card feature-card" id=id data-feature=name.clone()>
            <div class="card-header">
                <div class="card-title">
                    <h2>{name.clone()}</h2>
                    {overridden
                        .then(|| view! { <span class="pill pill-feature">"edited in console"</span> })}
                </div>
                <span class="muted small">
                    "app clients: "
                    {clients
                        .iter()
                        .map(|c| view! { <code class="chip">{c.clone()}</code> })
                        .collect_view()}
                </span>
            </div>
            <div class="meters">
                <Meter
                    label="Requests, last minute"
                    used=requests_minute
                    limit=limits.requests_per_minute
                    unit="req"
                />
                <Meter
                    label="Tokens, rolling minute"
                    used=tokens_minute
                    limit=limits.tokens_per_minute
                    unit="tok"
                />
                <Meter
                    label="Tokens, today (UTC)"
                    used=tokens_day
                    limit=limits.tokens_per_day
                    unit="tok"
                />
            </div>
            <ActionForm action=save attr:class="feature-form" attr:data-testid=form_test_id>
                <input type="hidden" name="feature" value=hidden_name />
                <fieldset>
                    <legend>"Bindings"</legend>
                    <div class="field">
                        <label for=model_id.clone()>"Pinned model alias"</label>
                        <select id=model_id name="model">
                            {all_models
                                .iter()
                                .map(|m| {
                                    view! {
                                        <option value=m.clone() selected=*m == pinned_model>
                                            {m.clone()}
                                        </option>
                                    }
                                })
                                .collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for=version_id.clone()>
                            "Guardrail " <code>{guardrail.clone()}</code> " ("
                            {guardrail_name} ") version"
                        </label>
                        <select id=version_id name="guardrail_version" data-testid="pin-version">
                            {versions
                                .iter()
                                .rev()
                                .map(|v| {
                                    view! {
                                        <option value=v.clone() selected=*v == guardrail_version>
                                            {format!("version {v}")}
                                        </option>
                                    }
                                })
                                .collect_view()}
                        </select>
                    </div>
                </fieldset>
                <fieldset>
                    <legend>"Throttles"</legend>
                    <div class="field">
                        <label for=rpm_id.clone()>"Requests / minute"</label>
                        <input
                            id=rpm_id
                            name="requests_per_minute"
                            type="number"
                            min="1"
                            max="4294967295"
                            required
                            value=limits.requests_per_minute.to_string()
                        />
                    </div>
                    <div class="field">
                        <label for=burst_id.clone()>"Burst"</label>
                        <input
                            id=burst_id
                            name="burst"
                            type="number"
                            min="1"
                            max="4294967295"
                            required
                            value=limits.burst.to_string()
                        />
                    </div>
                    <div class="field">
                        <label for=tpm_id.clone()>"Tokens / minute"</label>
                        <input
                            id=tpm_id
                            name="tokens_per_minute"
                            type="number"
                            min="1"
                            required
                            value=limits.tokens_per_minute.to_string()
                        />
                    </div>
                    <div class="field">
                        <label for=tpd_id.clone()>"Tokens / day"</label>
                        <input
                            id=tpd_id
                            name="tokens_per_day"
                            type="number"
                            min="1"
                            required
                            value=limits.tokens_per_day.to_string()
                        />
                    </div>
                </fieldset>
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" data-testid="save-feature">
                        "Save"
                    </button>
                </div>
            </ActionForm>
        </section>
    }
}
