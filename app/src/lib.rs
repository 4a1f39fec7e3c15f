//! Console pages and components (Leptos), shared by server rendering (`ssr`) and the browser
//! (`hydrate`).
//!
//! - [`shell`] is the HTML document the server renders around [`App`]; it also sets the page's
//!   Content-Security-Policy with the per-response nonce.
//! - [`api`] holds the server functions and the types they exchange.
//! - [`pages`] are the routes: `/login` and `/` (overview).
//! - [`textarea`] gives every `<textarea>` its initial value (escaped on the server).
//! - Server only: [`accounts`] (users, sessions, throttle), [`context`] (what server functions
//!   reach), [`chart`] (plotters SVG), [`log_safe`] (client-chosen values in the log).

// The hydrate build's view types nest deeply (large forms); the default limit (128) is too low.
#![recursion_limit = "256"]

pub mod admin;
pub mod api;
pub mod pages;
pub mod soc;
pub mod textarea;

#[cfg(feature = "ssr")]
pub mod accounts;
#[cfg(feature = "ssr")]
pub mod chart;
#[cfg(feature = "ssr")]
pub mod context;
#[cfg(feature = "ssr")]
pub mod log_safe;

use leptos::prelude::*;
use leptos_meta::{MetaTags, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};

use pages::{
    AccountsPage, AuditPage, FeaturesPage, GuardrailPage, GuardrailsPage, InsightsPage,
    InvestigatePage, LoginPage, NotFound, OverviewPage,
};

/// The Content-Security-Policy of console pages; `nonce` admits Leptos' inline hydration
/// scripts and nothing else inline. `'wasm-unsafe-eval'` lets the page compile its wasm.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The HTML document around [`App`], rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_csp_header();
    let css = options.css_path();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light" />
                <link rel="icon" href="data:," />
                <link rel="stylesheet" href=css />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Put this response's CSP (with the nonce leptos_axum generated) into the response headers.
#[cfg(feature = "ssr")]
fn set_csp_header() {
    use axum::http::HeaderValue;
    use axum::http::header::CONTENT_SECURITY_POLICY;
    let (Some(nonce), Some(res)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(&content_security_policy(&nonce)) {
        res.insert_header(CONTENT_SECURITY_POLICY, value);
    }
}

/// The console application: routes and page chrome.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/login") view=LoginPage />
                <Route path=path!("/") view=OverviewPage ssr=SsrMode::Async />
                <Route path=path!("/insights") view=InsightsPage ssr=SsrMode::Async />
                <Route path=path!("/investigate") view=InvestigatePage ssr=SsrMode::Async />
                <Route path=path!("/guardrails") view=GuardrailsPage ssr=SsrMode::Async />
                <Route path=path!("/guardrails/:id") view=GuardrailPage ssr=SsrMode::Async />
                <Route path=path!("/features") view=FeaturesPage ssr=SsrMode::Async />
                <Route path=path!("/admin/accounts") view=AccountsPage ssr=SsrMode::Async />
                <Route path=path!("/audit") view=AuditPage ssr=SsrMode::Async />
            </Routes>
        </Router>
    }
}

/// Browser entry point: attach to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
