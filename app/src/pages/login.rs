//! `/login`: the sign-in form. It is an `ActionForm` over the `login` server function, so it
//! posts as a plain form before the wasm has loaded and through `fetch` after.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::Brand;
use crate::api::{ApiError, Login, sso_available};

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let sso = Resource::new(|| (), |_| sso_available());
    let query = use_query_map();
    let pending = login.pending();
    // Effects run only in the browser: marks the form as enhanced (submits through fetch).
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    // After a no-JavaScript post the server redirects here with `?error=<code>`; after a fetch
    // the action holds the error itself.
    let message = move || match login.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        Some(Ok(())) => None,
        None => query
            .read()
            .get("error")
            .and_then(|code| ApiError::from_code(&code))
            .map(|e| e.to_string()),
    };
    view! {
        <Title text="Sign in · Golden Path" />
        <main class="center-page login-page">
            <section
                class="card narrow login-card"
                data-testid="login-card"
                data-hydrated=move || hydrated.get().then_some("true")
            >
                <Brand />
                <h1>"Sign in to the console"</h1>
                <p class="muted">
                    "Guardrails, models and the audit trail of your LLM gateway."
                </p>
                <ActionForm action=login>
                    <div class="field">
                        <label for="login-name">"User name"</label>
                        <input
                            id="login-name"
                            name="name"
                            type="text"
                            autocomplete="username"
                            autocapitalize="none"
                            spellcheck="false"
                            maxlength="64"
                            required
                        />
                    </div>
                    <div class="field">
                        <label for="login-password">"Password"</label>
                        <input
                            id="login-password"
                            name="password"
                            type="password"
                            autocomplete="current-password"
                            maxlength="1024"
                            required
                        />
                    </div>
                    {move || {
                        message()
                            .map(|m| {
                                view! {
                                    <p class="form-error" role="alert" data-testid="login-error">
                                        {m}
                                    </p>
                                }
                            })
                    }}
                    <button
                        type="submit"
                        class="btn btn-primary btn-block"
                        data-testid="login-submit"
                        disabled=move || pending.get()
                    >
                        {move || if pending.get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </ActionForm>
                <Suspense fallback=|| ()>
                    {move || {
                        sso.get()
                            .and_then(Result::ok)
                            .filter(|available| *available)
                            .map(|_| {
                                view! {
                                    <p class="or-divider">"or"</p>
                                    <a
                                        class="btn btn-quiet btn-block"
                                        href="/auth/oidc/login"
                                        rel="external"
                                        data-testid="login-sso"
                                    >
                                        "Sign in with single sign-on"
                                    </a>
                                }
                            })
                    }}
                </Suspense>
            </section>
            <p class="footnote">
                "First run? The admin password was printed once by the server at start-up."
            </p>
        </main>
    }
}
