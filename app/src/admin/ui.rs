//! Small view pieces the admin pages share: the page frame, the notice/error banner (from the
//! redirect's `?notice=`/`?error=` before wasm, from the action's result after), the refusal
//! card, and formatting helpers.

use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_query_map;

use crate::api::ApiError;

/// A banner message: `(is_error, text)`.
pub type Flash = RwSignal<Option<(bool, String)>>;

/// The banner, seeded from the query string (plain-form redirects) and then driven by actions.
#[component]
pub fn FlashBanner(flash: Flash) -> impl IntoView {
    let query = use_query_map();
    let from_query = move || {
        let q = query.read();
        if let Some(e) = q.get("error") {
            Some((true, e))
        } else {
            q.get("notice").map(|n| (false, n))
        }
    };
    move || {
        flash.get().or_else(from_query).map(|(error, text)| {
            let class = if error {
                "flash flash-error"
            } else {
                "flash flash-ok"
            };
            view! {
                <div class=class role=if error { "alert" } else { "status" } data-testid="flash">
                    {text}
                </div>
            }
        })
    }
}

/// Set `flash` from a server action's latest result.
#[macro_export]
macro_rules! flash_on {
    ($action:expr, $flash:expr, $ok:expr) => {{
        let action = $action;
        let flash: $crate::admin::ui::Flash = $flash;
        Effect::new(move |_| {
            if let Some(result) = action.value().get() {
                flash.set(Some(match result {
                    Ok(_) => (false, ($ok).to_string()),
                    Err(e) => (true, e.to_string()),
                }));
            }
        });
    }};
}

/// What a page shows when its loader failed: sign-in again, a refusal, or the message.
pub fn load_error(e: ApiError) -> AnyView {
    match e {
        ApiError::Unauthorized => view! { <Redirect path="/login" /> }.into_any(),
        ApiError::Forbidden => view! {
            <section class="card refusal" data-testid="forbidden">
                <h2>"Not available to your role"</h2>
                <p class="muted">
                    "This page is for console admins. Ask an admin if you need access."
                </p>
                <a class="btn" href="/">
                    "Back to the overview"
                </a>
            </section>
        }
        .into_any(),
        e => view! {
            <div class="alert" role="alert">
                {e.to_string()}
            </div>
        }
        .into_any(),
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a millisecond timestamp.
pub fn date_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Percentage of `used` against `limit`, capped at 100.
pub fn percent(used: u64, limit: u64) -> u64 {
    if limit == 0 {
        return 100;
    }
    (used.saturating_mul(100) / limit).min(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_percentages() {
        assert_eq!(date_time(0), "1970-01-01 00:00:00");
        assert_eq!(date_time(1_795_910_400_000), "2026-11-29 00:00:00");
        assert_eq!(percent(5, 10), 50);
        assert_eq!(percent(50, 10), 100);
        assert_eq!(percent(1, 0), 100);
    }
}
