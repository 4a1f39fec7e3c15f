//! `/investigate?user=SUB[&range=][&open=REQUEST_ID]` (SOC): one user's timeline of requests
//! and interventions with a chart, and "open record": a stated reason (required), the access
//! event written first, then the decrypted record — raw prompt, what the model saw, raw and
//! delivered output with redactions highlighted — and who else opened it.
//!
//! The decrypted record lives only in the action's value on this page (never in the URL, never
//! in a resource that could be cached); its response is `Cache-Control: no-store`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_query_map;

use super::{TopBar, group_thousands};
use crate::api::ApiError;
use crate::soc::api::{
    Investigation, MAX_REASON, Message, OpenRecord, OpenedRecord, WINDOWS, encode_component,
    investigate,
};

#[component]
pub fn InvestigatePage() -> impl IntoView {
    let q = use_query_map();
    let user = Memo::new(move |_| q.read().get("user").unwrap_or_default());
    let range = Memo::new(move |_| {
        let r = q.read().get("range").unwrap_or_default();
        if r.is_empty() { "24h".to_string() } else { r }
    });
    let open = Memo::new(move |_| q.read().get("open").unwrap_or_default());
    // The one-time token of a record opened by a plain form post (no JavaScript).
    let shown = Memo::new(move |_| q.read().get("shown"));
    let data = Resource::new(
        move || (user.get(), range.get(), shown.get()),
        |(u, r, shown)| async move {
            if u.trim().is_empty() {
                // Still check the role, so the page refuses a viewer even without a user.
                investigate(String::new(), r, None)
                    .await
                    .map(Some)
                    .or_else(|e| match e {
                        ApiError::Invalid(_) => Ok(None),
                        e => Err(e),
                    })
            } else {
                investigate(u, r, shown).await.map(Some)
            }
        },
    );
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    view! {
        <Title text="Investigate · Golden Path" />
        <div class="app">
            <TopBar />
            <main class="content soc-page" data-hydrated=move || hydrated.get().then_some("true")>
                <header class="page-header">
                    <div>
                        <h1>"Investigate a user"</h1>
                        <p class="muted">
                            "Their requests and interventions; opening a record needs a reason and is recorded."
                        </p>
                    </div>
                    <form method="get" action="/investigate" class="search" data-testid="user-search">
                        <input
                            type="text"
                            name="user"
                            class="input"
                            placeholder="user subject"
                            aria-label="User subject"
                            maxlength="256"
                            required
                            value=move || user.get()
                        />
                        <select name="range" class="input" aria-label="Time range">
                            {WINDOWS
                                .into_iter()
                                .map(|(key, label)| {
                                    view! {
                                        <option value=key selected=move || range.get() == key>
                                            {format!("last {label}")}
                                        </option>
                                    }
                                })
                                .collect_view()}
                        </select>
                        <button type="submit" class="btn btn-primary">
                            "Show"
                        </button>
                    </form>
                </header>
                <Transition fallback=|| view! { <div class="card placeholder">"Loading…"</div> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok(Some(inv)) => {
                                view! { <Timeline inv open range=range.get_untracked() /> }
                                    .into_any()
                            }
                            Ok(None) => {
                                view! {
                                    <div class="card placeholder">
                                        "Name a user to see their requests."
                                    </div>
                                }
                                    .into_any()
                            }
                            Err(ApiError::Unauthorized) => {
                                view! { <Redirect path="/login" /> }.into_any()
                            }
                            Err(e) => {
                                view! {
                                    <div class="alert" role="alert" data-testid="investigate-error">
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
    .into_any()
}

#[component]
fn Timeline(inv: Investigation, open: Memo<String>, range: String) -> impl IntoView {
    let Investigation {
        user,
        range_label,
        requests,
        interventions,
        entries,
        chart_svg,
        truncated,
        opened,
    } = inv;
    let rate = if requests == 0 {
        "–".to_string()
    } else {
        format!("{:.1} %", interventions as f64 * 100.0 / requests as f64)
    };
    let shown = entries.len();
    let lookup: Vec<(String, String)> = entries
        .iter()
        .map(|e| (e.request_id.clone(), e.timestamp.clone()))
        .collect();
    let base = format!(
        "/investigate?user={}&range={}",
        encode_component(&user),
        encode_component(&range)
    );
    view! {
        {
            let close = base.clone();
            move || {
                let wanted = open.get();
                lookup
                    .iter()
                    .find(|(rid, _)| *rid == wanted)
                    .map(|(rid, when)| {
                        let back = format!("{close}&open={}", encode_component(rid));
                        view! {
                            <OpenPanel
                                request_id=rid.clone()
                                when=when.clone()
                                close=close.clone()
                                back
                                handed=opened.clone()
                            />
                        }
                    })
            }
        }
        <section class="stats stats-user" aria-label="Headline numbers">
            <div class="stat">
                <span class="stat-label">"User"</span>
                <span class="stat-value stat-text" data-testid="investigated-user">{user.clone()}</span>
                <span class="stat-hint">{range_label.clone()}</span>
            </div>
            <div class="stat">
                <span class="stat-label">"Requests"</span>
                <span class="stat-value">{group_thousands(requests)}</span>
                <span class="stat-hint">{range_label}</span>
            </div>
            <div class="stat">
                <span class="stat-label">"Interventions"</span>
                <span class="stat-value accent">{group_thousands(interventions)}</span>
                <span class="stat-hint">"blocked or anonymized"</span>
            </div>
            <div class="stat">
                <span class="stat-label">"Intervention rate"</span>
                <span class="stat-value">{rate}</span>
                <span class="stat-hint">"of their requests"</span>
            </div>
        </section>
        <section class="card chart-card">
            <div class="card-header">
                <div class="card-title">
                    <h2>"Activity"</h2>
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
            </div>
            <div class="chart" data-testid="activity-chart" role="img" aria-label="Requests over time" inner_html=chart_svg></div>
        </section>
        <section class="card">
            <div class="card-header">
                <h2>"Timeline"</h2>
                <span class="muted small">
                    {if truncated {
                        format!("newest {shown} of {}", group_thousands(requests))
                    } else {
                        format!("{shown} requests, newest first")
                    }}
                </span>
            </div>
            {if entries.is_empty() {
                view! { <p class="empty">"No requests by this user in this range."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="timeline">
                            <thead>
                                <tr>
                                    <th>"time (UTC)"</th>
                                    <th>"request"</th>
                                    <th>"feature"</th>
                                    <th>"model"</th>
                                    <th>"guardrail"</th>
                                    <th>"input"</th>
                                    <th>"output"</th>
                                    <th>"status"</th>
                                    <th class="num">"latency"</th>
                                    <th></th>
                                </tr>
                            </thead>
                            <tbody>
                                {entries
                                    .into_iter()
                                    .map(|e| {
                                        let intervened = e.action == "INTERVENED";
                                        let href = format!("{base}&open={}", encode_component(&e.request_id));
                                        let rid = e.request_id.clone();
                                        let selected = move || open.get() == rid;
                                        view! {
                                            <tr class:intervened=intervened class:selected=selected>
                                                <td class="nowrap">{e.timestamp}</td>
                                                <td class="mono rid" title=e.request_id.clone()>{e.request_id.clone()}</td>
                                                <td>{e.feature}</td>
                                                <td>{e.model}</td>
                                                <td>
                                                    <span class="pill" class:pill-warn=intervened>{e.action}</span>
                                                </td>
                                                <td>{e.input_action}</td>
                                                <td>{e.output_action}</td>
                                                <td>{e.status}</td>
                                                <td class="num">{e.latency_ms} " ms"</td>
                                                <td class="open-cell">
                                                    {e
                                                        .has_record
                                                        .then(|| {
                                                            view! {
                                                                <a class="btn btn-quiet btn-small" href=href data-testid="open-link" data-request=e.request_id.clone()>
                                                                    "Open record"
                                                                </a>
                                                            }
                                                        })}
                                                </td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    </div>
                }
                    .into_any()
            }}
        </section>
    }
    .into_any()
}

/// The reason form for one record and, once opened, the record. The form works without
/// JavaScript too: the post redirects to `back` with a token, and the record comes back as
/// `handed`.
#[component]
fn OpenPanel(
    request_id: String,
    when: String,
    close: String,
    back: String,
    handed: Option<Result<OpenedRecord, ApiError>>,
) -> impl IntoView {
    let action = ServerAction::<OpenRecord>::new();
    let value = action.value();
    let rid = request_id.clone();
    view! {
        <section class="card open-panel" data-testid="open-panel">
            <div class="card-header">
                <div class="card-title">
                    <h2>"Open record"</h2>
                    <span class="mono small">{request_id.clone()}</span>
                    <span class="muted small">{when}</span>
                </div>
                <a class="btn btn-quiet" href=close>
                    "Close"
                </a>
            </div>
            {move || match value.get().or_else(|| handed.clone()) {
                Some(Ok(record)) => view! { <RecordView record /> }.into_any(),
                other => {
                    let rid = rid.clone();
                    let back = back.clone();
                    let error = match other {
                        Some(Err(e)) => Some(e.to_string()),
                        _ => None,
                    };
                    view! {
                        <ActionForm action attr:class="reason-form" attr:data-testid="reason-form">
                            <input type="hidden" name="request_id" value=rid />
                            <input type="hidden" name="back" value=back.clone() />
                            <label for="reason">
                                "Why are you opening this record? Your name, the reason and your address are recorded before it is decrypted."
                            </label>
                            <textarea
                                id="reason"
                                name="reason"
                                class="input"
                                rows="2"
                                required
                                minlength="4"
                                maxlength=MAX_REASON.to_string()
                                placeholder="e.g. ticket SEC-123: suspected data leak"
                                data-testid="reason-input"
                            ></textarea>
                            {error
                                .map(|e| {
                                    view! {
                                        <div class="alert" role="alert" data-testid="open-error">
                                            {e}
                                        </div>
                                    }
                                })}
                            <div>
                                <button type="submit" class="btn btn-primary" data-testid="open-submit">
                                    "Record reason and open"
                                </button>
                            </div>
                        </ActionForm>
                    }
                        .into_any()
                }
            }}
        </section>
    }
    .into_any()
}

/// Split text into plain and redacted (`{EMAIL}`-style placeholder) segments.
pub fn placeholders(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}');
        let name_ok = close.is_some_and(|c| {
            c > 0
                && after[..c]
                    .chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch == '_' || ch.is_ascii_digit())
        });
        match (close, name_ok) {
            (Some(c), true) => {
                if open > 0 {
                    out.push((rest[..open].to_string(), false));
                }
                out.push((rest[open..open + c + 2].to_string(), true));
                rest = &after[c + 1..];
            }
            _ => {
                out.push((rest[..open + 1].to_string(), false));
                rest = after;
            }
        }
    }
    if !rest.is_empty() {
        out.push((rest.to_string(), false));
    }
    // Merge neighbouring plain segments.
    let mut merged: Vec<(String, bool)> = Vec::new();
    for (s, mark) in out {
        match merged.last_mut() {
            Some((prev, false)) if !mark => prev.push_str(&s),
            _ => merged.push((s, mark)),
        }
    }
    merged
}

/// Mark in `raw` what the guardrail replaced, given the redacted text: the literal parts of
/// `redacted` are found in `raw` in order, and what lies between them where a placeholder
/// stood is marked. `None` when the texts do not line up.
pub fn redacted_spans(raw: &str, redacted: &str) -> Option<Vec<(String, bool)>> {
    let parts = placeholders(redacted);
    if !parts.iter().any(|(_, m)| *m) {
        return None;
    }
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut i = 0;
    while i < parts.len() {
        let (text, mark) = &parts[i];
        if !*mark {
            if !raw[pos..].starts_with(text.as_str()) {
                return None;
            }
            out.push((text.clone(), false));
            pos += text.len();
        } else {
            // The replaced value runs until the next literal part (or the end).
            let end = match parts.get(i + 1) {
                Some((next, false)) => pos + raw[pos..].find(next.as_str())?,
                Some((_, true)) => return None,
                None => raw.len(),
            };
            if end == pos {
                return None;
            }
            out.push((raw[pos..end].to_string(), true));
            pos = end;
        }
        i += 1;
    }
    (pos == raw.len()).then_some(out)
}

fn marked(segments: Vec<(String, bool)>) -> impl IntoView {
    segments
        .into_iter()
        .map(|(text, mark)| {
            if mark {
                view! { <mark class="redaction">{text}</mark> }.into_any()
            } else {
                view! { <span>{text}</span> }.into_any()
            }
        })
        .collect_view()
}

fn messages_view(messages: Vec<Message>, against: Option<Vec<Message>>) -> impl IntoView {
    if messages.is_empty() {
        return view! { <p class="empty small">"(nothing — the request was blocked before this step)"</p> }
            .into_any();
    }
    messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            // The raw prompt: mark what the guardrail replaced in the matching message.
            let segments = match against.as_ref().and_then(|a| a.get(i)) {
                Some(redacted) => redacted_spans(&m.content, &redacted.content)
                    .unwrap_or_else(|| vec![(m.content.clone(), false)]),
                None => placeholders(&m.content),
            };
            view! {
                <div class="message">
                    <span class="message-role">{m.role}</span>
                    <pre class="message-text">{marked(segments)}</pre>
                </div>
            }
        })
        .collect_view()
        .into_any()
}

#[component]
fn RecordView(record: OpenedRecord) -> impl IntoView {
    let OpenedRecord {
        request_id: _,
        when: _,
        user,
        feature,
        model,
        input_action,
        output_action,
        policies,
        raw_prompt,
        model_input,
        raw_output,
        delivered_output,
        accesses,
    } = record;
    let raw_output_view = match redacted_spans(&raw_output, &delivered_output) {
        Some(s) => s,
        None => vec![(raw_output.clone(), false)],
    };
    view! {
        <div class="record" data-testid="record">
            <dl class="record-meta">
                <div><dt>"user"</dt><dd>{user}</dd></div>
                <div><dt>"feature"</dt><dd>{feature}</dd></div>
                <div><dt>"model"</dt><dd>{model}</dd></div>
                <div><dt>"input"</dt><dd>{input_action}</dd></div>
                <div><dt>"output"</dt><dd>{output_action}</dd></div>
                <div>
                    <dt>"policies"</dt>
                    <dd>
                        {if policies.is_empty() {
                            view! { <span class="muted">"none"</span> }.into_any()
                        } else {
                            policies
                                .into_iter()
                                .map(|p| view! { <span class="pill pill-warn">{p}</span> })
                                .collect_view()
                                .into_any()
                        }}
                    </dd>
                </div>
            </dl>
            <div class="record-grid">
                <div class="record-pane">
                    <h3>"Raw prompt"</h3>
                    <p class="muted small">"As the caller sent it; what the guardrail replaced is marked."</p>
                    <div data-testid="raw-prompt">{messages_view(raw_prompt, Some(model_input.clone()))}</div>
                </div>
                <div class="record-pane">
                    <h3>"What the model saw"</h3>
                    <p class="muted small">"After the input guardrail."</p>
                    <div data-testid="model-input">{messages_view(model_input, None)}</div>
                </div>
                <div class="record-pane">
                    <h3>"Raw model output"</h3>
                    <p class="muted small">"Before the output guardrail."</p>
                    <pre class="message-text" data-testid="raw-output">{marked(raw_output_view)}</pre>
                </div>
                <div class="record-pane">
                    <h3>"Delivered output"</h3>
                    <p class="muted small">"What the caller received."</p>
                    <pre class="message-text" data-testid="delivered-output">{marked(placeholders(&delivered_output))}</pre>
                </div>
            </div>
            <h3>"Who opened this record"</h3>
            <div class="table-wrap">
                <table class="table" data-testid="accesses">
                    <thead>
                        <tr>
                            <th>"when (UTC)"</th>
                            <th>"who"</th>
                            <th>"reason"</th>
                            <th>"from"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {accesses
                            .into_iter()
                            .map(|a| {
                                view! {
                                    <tr>
                                        <td class="nowrap">{a.when}</td>
                                        <td>{a.actor}</td>
                                        <td>{a.reason}</td>
                                        <td>{a.origin}</td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[(&str, bool)]) -> Vec<(String, bool)> {
        v.iter().map(|(a, b)| (a.to_string(), *b)).collect()
    }

    #[test]
    fn placeholders_are_found() {
        assert_eq!(
            placeholders("Mail {EMAIL} now {x} {}"),
            s(&[("Mail ", false), ("{EMAIL}", true), (" now {x} {}", false)])
        );
        assert_eq!(placeholders("plain"), s(&[("plain", false)]));
    }

    #[test]
    fn raw_values_line_up_with_their_placeholders() {
        assert_eq!(
            redacted_spans("Reply to jane@x.com about it", "Reply to {EMAIL} about it"),
            Some(s(&[
                ("Reply to ", false),
                ("jane@x.com", true),
                (" about it", false)
            ]))
        );
        assert_eq!(
            redacted_spans("call 555-1234", "call {PHONE}"),
            Some(s(&[("call ", false), ("555-1234", true)]))
        );
        assert_eq!(redacted_spans("abc", "xyz {EMAIL}"), None);
        assert_eq!(redacted_spans("same", "same"), None);
    }
}
