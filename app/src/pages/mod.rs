//! The console's routes and the chrome they share (top bar, not-found page), plus small
//! display helpers used on both server and browser.

mod accounts;
mod audit;
mod features;
mod guardrails;
mod insights;
mod investigate;
mod login;
mod overview;

pub use accounts::AccountsPage;
pub use audit::AuditPage;
pub use features::FeaturesPage;
pub use guardrails::{GuardrailPage, GuardrailsPage};
pub use insights::InsightsPage;
pub use investigate::InvestigatePage;
pub use login::LoginPage;
pub use overview::OverviewPage;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_location;

use crate::api::{Logout, whoami};

/// The product mark and name.
#[component]
fn Brand() -> impl IntoView {
    view! {
        <span class="brand">
            <span class="brand-mark" aria-hidden="true"></span>
            <span class="brand-name">"Golden Path"</span>
        </span>
    }
}

/// Top bar of signed-in pages: brand, navigation, the user and sign-out (a form, so it works
/// without JavaScript too).
#[component]
fn TopBar() -> impl IntoView {
    let user = Resource::new(|| (), |_| whoami());
    let logout = ServerAction::<Logout>::new();
    // The link of the section this page belongs to is marked current.
    let pathname = use_location().pathname;
    let here = move |href: &'static str| {
        move || {
            let path = pathname.get();
            if href == "/" {
                path == "/"
            } else {
                path == href || path.starts_with(&format!("{href}/"))
            }
        }
    };
    let current = move |href: &'static str| move || here(href)().then_some("page");
    view! {
        <header class="topbar">
            <a class="topbar-home" href="/">
                <Brand />
                <span class="brand-product">"console"</span>
            </a>
            <nav class="topbar-nav" aria-label="Main">
                <a href="/" class="topbar-link" class:active=here("/") aria-current=current("/")>
                    "Overview"
                </a>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let soc = user.await.is_ok_and(|u| u.role == "soc");
                        soc.then(|| {
                            view! {
                                <a href="/insights" class="topbar-link" class:active=here("/insights") aria-current=current("/insights") data-testid="nav-insights">
                                    "Insights"
                                </a>
                                <a href="/investigate" class="topbar-link" class:active=here("/investigate") aria-current=current("/investigate") data-testid="nav-investigate">
                                    "Investigate"
                                </a>
                            }
                        })
                    })}
                </Suspense>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let role = user.await.map(|u| u.role).unwrap_or_default();
                        let admin = role == "admin";
                        let audit = admin || role == "soc";
                        view! {
                            {admin.then(|| view! {
                                <a href="/guardrails" class="topbar-link" class:active=here("/guardrails") aria-current=current("/guardrails") data-testid="nav-guardrails">"Guardrails"</a>
                                <a href="/features" class="topbar-link" class:active=here("/features") aria-current=current("/features") data-testid="nav-features">"Features"</a>
                                <a href="/admin/accounts" class="topbar-link" class:active=here("/admin/accounts") aria-current=current("/admin/accounts") data-testid="nav-accounts">"Accounts"</a>
                            })}
                            {audit.then(|| view! {
                                <a href="/audit" class="topbar-link" class:active=here("/audit") aria-current=current("/audit") data-testid="nav-audit">"Audit"</a>
                            })}
                        }
                    })}
                </Suspense>
            </nav>
            <div class="topbar-user">
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        user.await
                            .ok()
                            .map(|u| {
                                view! {
                                    <span class="user" data-testid="current-user">
                                        <span class="user-name">{u.name}</span>
                                        <span class="role-badge">{u.role}</span>
                                    </span>
                                }
                            })
                    })}
                </Suspense>
                <ActionForm action=logout>
                    <button type="submit" class="btn btn-quiet" data-testid="logout">
                        "Sign out"
                    </button>
                </ActionForm>
            </div>
        </header>
    }
}

/// Any path the console does not know.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found · Golden Path" />
        <main class="center-page">
            <section class="card narrow">
                <Brand />
                <h1>"Page not found"</h1>
                <p class="muted">"There is nothing at this address."</p>
                <a class="btn btn-primary" href="/">
                    "Go to the overview"
                </a>
            </section>
        </main>
    }
}

/// `12345` → `12,345`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `HH:MM:SS` (UTC) of a millisecond timestamp.
pub fn clock_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(24 * 60 * 60);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times_format_for_people() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(1234567), "1,234,567");
        assert_eq!(clock_time(0), "00:00:00");
        assert_eq!(clock_time(3_723_000), "01:02:03");
    }
}
