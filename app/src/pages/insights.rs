//! `/insights` (SOC): the Logs Insights page — query editor with the language's commands and
//! functions at hand, time range picker, presets, a results table sortable by any column, CSV
//! export, a chart for `stats … by bin()`, progress and Cancel for long queries, and syntax
//! errors that point at the line and column.
//!
//! The editor colours the query as it is typed (commands, keywords, functions, strings,
//! numbers, comments), from the gateway parser's own words, rendered on the server first.
//!
//! The state lives in the URL (`?query=&range=&start=&end=&id=&sort=&dir=`): running a query is
//! a form POST to `insights_start`, answered with a redirect to `…&id=<query id>`, so the page
//! works before (and without) the wasm. Hydrated, the same forms run through the router, the
//! page polls a running query every 700 ms, and sorting re-orders rows without a request.

use std::cmp::Ordering;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_query_map;

use super::{TopBar, group_thousands};
use crate::api::ApiError;
use crate::soc::api::{
    COMMANDS, FUNCTIONS, InsightsData, InsightsStart, InsightsStop, PRESETS, QueryView,
    SyntaxError, WINDOWS, encode_component, insights_page, insights_url,
};
use crate::soc::highlight::{Class, Vocabulary, spans};
use crate::textarea;

/// The URL's parameters (everything but the sort, which never reaches the server).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Params {
    query: String,
    range: String,
    start: String,
    end: String,
    id: String,
    error: String,
}

impl Params {
    fn url(&self) -> String {
        insights_url(&self.query, &self.range, &self.start, &self.end, &self.id)
    }
}

#[component]
pub fn InsightsPage() -> impl IntoView {
    let q = use_query_map();
    let param = move |name: &str| q.read().get(name).unwrap_or_default();
    let params = Memo::new(move |_| Params {
        query: param("query"),
        range: {
            let r = param("range");
            if r.is_empty() { "1h".to_string() } else { r }
        },
        start: param("start"),
        end: param("end"),
        id: param("id"),
        error: param("error"),
    });
    let sort = Memo::new(move |_| {
        let col = param("sort").parse::<usize>().ok();
        let desc = param("dir") == "desc";
        col.map(|c| (c, desc))
    });
    let start = ServerAction::<InsightsStart>::new();
    let stop = ServerAction::<InsightsStop>::new();
    let data = Resource::new(
        move || (params.get(), stop.version().get()),
        |(p, _)| insights_page(p.query, p.range, p.start, p.end, p.id, p.error),
    );

    // Hydrated: poll a running query.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(Ok(page)) = data.get()
            && page.run.as_ref().is_some_and(|r| r.active)
        {
            set_timeout(
                move || data.refetch(),
                std::time::Duration::from_millis(700),
            );
        }
    });
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    view! {
        <Title text="Insights · Golden Path" />
        <div class="app">
            <TopBar />
            <main class="content soc-page" data-hydrated=move || hydrated.get().then_some("true")>
                <header class="page-header">
                    <div>
                        <h1>"Insights"</h1>
                        <p class="muted">
                            "Logs Insights queries over the audit trail: every request's metadata, never its text."
                        </p>
                    </div>
                </header>
                <Presets start params />
                <Editor start params data />
                <Transition fallback=|| view! { <div class="card placeholder">"Loading…"</div> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok(page) => {
                                view! { <Outcome page params sort stop /> }.into_any()
                            }
                            Err(ApiError::Unauthorized) => {
                                view! { <Redirect path="/login" /> }.into_any()
                            }
                            Err(e) => {
                                view! {
                                    <div class="alert" role="alert" data-testid="insights-error">
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

/// The canned queries: each is its own small form that runs at once.
#[component]
fn Presets(start: ServerAction<InsightsStart>, params: Memo<Params>) -> impl IntoView {
    let range = move || params.read().range.clone();
    view! {
        <section class="presets" aria-label="Preset queries">
            <span class="presets-label">"Presets"</span>
            {PRESETS
                .into_iter()
                .map(|p| {
                    let with_user = p.query.contains("{user}");
                    view! {
                        <ActionForm action=start attr:class="preset">
                            <input type="hidden" name="preset" value=p.key />
                            <input type="hidden" name="range" value=range />
                            {with_user
                                .then(|| {
                                    view! {
                                        <input
                                            type="text"
                                            name="user"
                                            class="input input-small"
                                            placeholder="user, e.g. alice@example.com"
                                            aria-label="User subject"
                                            maxlength="256"
                                            required
                                            data-testid="preset-user"
                                        />
                                    }
                                })}
                            <button type="submit" class="btn btn-chip" data-testid=format!("preset-{}", p.key)>
                                {p.label}
                            </button>
                        </ActionForm>
                    }
                })
                .collect_view()}
        </section>
    }
    .into_any()
}

/// The query text coloured by [`crate::soc::highlight`]: plain text until the vocabulary is
/// known.
fn coloured(text: &str, vocab: &Vocabulary) -> AnyView {
    if vocab.commands.is_empty() {
        return text.to_string().into_any();
    }
    spans(text, vocab)
        .into_iter()
        .map(|(class, part)| {
            if class == Class::Plain {
                part.into_any()
            } else {
                view! { <span class=class.css()>{part}</span> }.into_any()
            }
        })
        .collect_view()
        .into_any()
}

/// The query editor: commands and functions to insert, the text (coloured as it is typed), the
/// range picker, Run.
///
/// Colouring: the textarea stays the real input (its text transparent, its caret visible) over
/// a `<pre>` that shows the same text in colour, rendered on the server too. Before hydration
/// the colours show until the textarea takes focus; then (CSS only, no script) its own text
/// shows, so typing without JavaScript is never blind.
#[component]
fn Editor(
    start: ServerAction<InsightsStart>,
    params: Memo<Params>,
    data: Resource<Result<InsightsData, ApiError>>,
) -> impl IntoView {
    let editor = NodeRef::<leptos::html::Textarea>::new();
    let backdrop = NodeRef::<leptos::html::Pre>::new();
    let text = RwSignal::new(params.get_untracked().query);
    // A new URL (a preset, a run) brings its query.
    Effect::new(move |_| text.set(params.read().query.clone()));
    let live = RwSignal::new(false);
    Effect::new(move |_| live.set(true));
    let sync_scroll = move || {
        #[cfg(feature = "hydrate")]
        if let (Some(area), Some(pre)) = (editor.get_untracked(), backdrop.get_untracked()) {
            pre.set_scroll_top(area.scroll_top());
            pre.set_scroll_left(area.scroll_left());
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = backdrop;
    };
    let self_text = text;
    let insert = move |word: &'static str| {
        #[cfg(feature = "hydrate")]
        if let Some(el) = editor.get() {
            let value = el.value();
            let at = el
                .selection_start()
                .ok()
                .flatten()
                .map_or(value.len(), |i| i as usize);
            // Selection offsets are UTF-16 units; fall back to the end on non-ASCII text.
            let at = if value.is_ascii() {
                at.min(value.len())
            } else {
                value.len()
            };
            let (before, after) = value.split_at(at);
            let sep = if before.is_empty() || before.ends_with([' ', '\n', '(']) {
                ""
            } else {
                " "
            };
            let text = if COMMANDS.contains(&word) {
                let nl = if before.trim_end().is_empty() {
                    ""
                } else {
                    "\n| "
                };
                format!("{}{nl}{word} ", before.trim_end())
            } else {
                format!("{before}{sep}{word} ")
            };
            el.set_value(&format!("{text}{after}"));
            self_text.set(el.value());
            let _ = el.focus();
            let pos = text.encode_utf16().count() as u32;
            let _ = el.set_selection_range(pos, pos);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (word, editor, self_text);
    };
    let p = move || params.get();
    view! {
        <section class="card editor-card">
            <ActionForm action=start attr:class="editor" attr:data-testid="query-form">
                <div class="palette" aria-label="Language">
                    {COMMANDS
                        .into_iter()
                        .map(|w| {
                            view! {
                                <button type="button" class="kw kw-command" on:click=move |_| insert(w)>
                                    {w}
                                </button>
                            }
                        })
                        .collect_view()}
                    <span class="palette-sep" aria-hidden="true"></span>
                    {FUNCTIONS
                        .into_iter()
                        .map(|w| {
                            view! {
                                <button type="button" class="kw kw-function" on:click=move |_| insert(w)>
                                    {w}
                                </button>
                            }
                        })
                        .collect_view()}
                </div>
                <label class="sr-only" for="query">"Query"</label>
                <div class="code-editor" class:live=move || live.get() data-testid="code-editor">
                    <textarea
                        id="query"
                        name="query"
                        class="query-input"
                        rows="6"
                        spellcheck="false"
                        autocomplete="off"
                        maxlength="10000"
                        placeholder="fields @timestamp, requestId, userSub | filter guardrailAction = \"INTERVENED\" | sort @timestamp desc"
                        data-testid="query-input"
                        node_ref=editor
                        prop:value=move || p().query
                        on:input=move |ev| {
                            text.set(event_target_value(&ev));
                            sync_scroll();
                        }
                        on:scroll=move |_| sync_scroll()
                    >
                        {move || textarea::value(&p().query)}
                    </textarea>
                    <pre class="code-highlight" aria-hidden="true" node_ref=backdrop data-testid="query-highlight">
                        <Transition fallback=move || text.get()>
                            {move || Suspend::new(async move {
                                let vocab = data.await.map(|d| d.vocabulary).unwrap_or_default();
                                view! { {move || coloured(&text.get(), &vocab)} }
                            })}
                        </Transition>
                        // A last empty line keeps the heights equal when the text ends in one.
                        "\n"
                    </pre>
                </div>
                <div class="editor-bar">
                    <label class="field-inline">
                        <span>"Time range"</span>
                        <select name="range" class="input input-small" data-testid="range-select">
                            {WINDOWS
                                .into_iter()
                                .map(|(key, label)| {
                                    view! {
                                        <option value=key selected=move || p().range == key>
                                            {format!("last {label}")}
                                        </option>
                                    }
                                })
                                .collect_view()}
                            <option value="custom" selected=move || p().range == "custom">
                                "custom (UTC)"
                            </option>
                        </select>
                    </label>
                    <label class="field-inline">
                        <span>"from"</span>
                        <input type="datetime-local" name="start" class="input input-small" value=move || p().start />
                    </label>
                    <label class="field-inline">
                        <span>"to"</span>
                        <input type="datetime-local" name="end" class="input input-small" value=move || p().end />
                    </label>
                    <span class="grow"></span>
                    <button type="submit" class="btn btn-primary" data-testid="run-query">
                        "Run query"
                    </button>
                </div>
            </ActionForm>
        </section>
    }
    .into_any()
}

/// What the URL's query led to: a syntax error, a notice, or a run.
#[component]
fn Outcome(
    page: InsightsData,
    params: Memo<Params>,
    sort: Memo<Option<(usize, bool)>>,
    stop: ServerAction<InsightsStop>,
) -> impl IntoView {
    let InsightsData {
        syntax_error,
        run,
        notice,
        range_label,
        ..
    } = page;
    view! {
        {syntax_error.map(|e| view! { <SyntaxErrorBox error=e /> })}
        {notice
            .map(|n| {
                view! {
                    <div class="alert" role="status" data-testid="insights-notice">
                        {n}
                    </div>
                }
            })}
        {run.map(|run| view! { <Results run range_label params sort stop /> })}
    }
    .into_any()
}

#[component]
fn SyntaxErrorBox(error: SyntaxError) -> impl IntoView {
    let caret = format!("{}^", " ".repeat(error.column.saturating_sub(1)));
    view! {
        <section class="card syntax-error" role="alert" data-testid="syntax-error">
            <h2>
                "Line " {error.line} ", column " {error.column}
            </h2>
            <p class="muted">{error.message}</p>
            <pre class="code-line">
                <span class="code-gutter">{format!("{:>3} │ ", error.line)}</span>
                {error.line_text}
                "\n"
                <span class="code-gutter">"    │ "</span>
                <span class="caret">{caret}</span>
            </pre>
        </section>
    }
    .into_any()
}

/// Compare two cells: numbers as numbers, everything else as text.
fn compare_cells(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        (Ok(_), Err(_)) => Ordering::Greater,
        (Err(_), Ok(_)) => Ordering::Less,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

#[component]
fn Results(
    run: QueryView,
    range_label: String,
    params: Memo<Params>,
    sort: Memo<Option<(usize, bool)>>,
    stop: ServerAction<InsightsStop>,
) -> impl IntoView {
    let QueryView {
        id,
        status,
        active,
        scanned,
        matched,
        elapsed_ms,
        columns,
        rows,
        total_rows,
        error,
        chart_svg,
        chart_legend,
    } = run;
    let status_class = format!("status status-{}", status.to_ascii_lowercase());
    let csv_href = format!("/api/insights_csv?id={}", encode_component(&id));
    let back = params.get_untracked().url();
    let complete = status == "Complete";
    let seconds = format!("{:.1} s", elapsed_ms as f64 / 1000.0);
    let columns_for_header = columns.clone();
    let header = move || {
        let p = params.get();
        let current = sort.get();
        columns_for_header
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (active_sort, desc) = match current {
                    Some((col, desc)) if col == i => (true, desc),
                    _ => (false, false),
                };
                let next = if active_sort && !desc { "desc" } else { "asc" };
                let href = format!("{}&sort={i}&dir={next}", p.url());
                let arrow = match (active_sort, desc) {
                    (true, false) => " ▲",
                    (true, true) => " ▼",
                    _ => "",
                };
                let aria = match (active_sort, desc) {
                    (true, false) => "ascending",
                    (true, true) => "descending",
                    _ => "none",
                };
                view! {
                    <th aria-sort=aria>
                        <a href=href class="sort-link">
                            {c.clone()}
                            {arrow}
                        </a>
                    </th>
                }
            })
            .collect_view()
    };
    let request_col = columns.iter().position(|c| c == "requestId");
    let user_col = columns.iter().position(|c| c == "userSub");
    let body = move || {
        let mut sorted = rows.clone();
        if let Some((col, desc)) = sort.get() {
            sorted.sort_by(|a, b| {
                let o = compare_cells(
                    a.get(col).map_or("", String::as_str),
                    b.get(col).map_or("", String::as_str),
                );
                if desc { o.reverse() } else { o }
            });
        }
        sorted
            .into_iter()
            .map(|row| {
                let link = match (request_col, user_col) {
                    (Some(r), Some(u)) => Some(format!(
                        "/investigate?user={}&open={}",
                        encode_component(row.get(u).map_or("", String::as_str)),
                        encode_component(row.get(r).map_or("", String::as_str)),
                    )),
                    _ => None,
                };
                view! {
                    <tr>
                        {row
                            .into_iter()
                            .enumerate()
                            .map(|(i, cell)| {
                                match (&link, Some(i) == request_col) {
                                    (Some(href), true) => {
                                        view! {
                                            <td class="mono">
                                                <a href=href.clone() title="Investigate this request">
                                                    {cell}
                                                </a>
                                            </td>
                                        }
                                            .into_any()
                                    }
                                    _ => view! { <td>{cell}</td> }.into_any(),
                                }
                            })
                            .collect_view()}
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <section class="card results-card" data-testid="results" data-status=status.clone()>
            <div class="card-header">
                <div class="card-title">
                    <h2>"Results"</h2>
                    <span class=status_class data-testid="query-status">{status.clone()}</span>
                </div>
                <div class="results-meta">
                    <span data-testid="scanned">{group_thousands(scanned)} " events scanned"</span>
                    {complete
                        .then(|| {
                            view! {
                                <span>{group_thousands(matched)} " matched"</span>
                                <span>{group_thousands(total_rows as u64)} " rows"</span>
                            }
                            .into_any()
                        })}
                    <span>{seconds}</span>
                    <span class="muted small">{range_label}</span>
                    {complete
                        .then(|| {
                            view! {
                                <a class="btn btn-quiet" href=csv_href download data-testid="csv-export">
                                    "Export CSV"
                                </a>
                            }
                            .into_any()
                        })}
                    {active
                        .then(|| {
                            view! {
                                <ActionForm action=stop>
                                    <input type="hidden" name="id" value=id.clone() />
                                    <input type="hidden" name="back" value=back.clone() />
                                    <button type="submit" class="btn btn-danger" data-testid="cancel-query">
                                        "Cancel"
                                    </button>
                                </ActionForm>
                            }
                            .into_any()
                        })}
                </div>
            </div>
            {active
                .then(|| {
                    view! {
                        <div class="progress" role="progressbar" aria-label="Query running">
                            <div class="progress-bar"></div>
                        </div>
                        <noscript>
                            <meta http-equiv="refresh" content="2" />
                        </noscript>
                    }
                    .into_any()
                })}
            {error
                .map(|e| {
                    view! {
                        <div class="alert" role="alert" data-testid="query-failure">
                            {e}
                        </div>
                    }
                    .into_any()
                })}
            {chart_svg
                .map(|svg| {
                    let label = format!("Chart of the binned results: {}", chart_legend.join(", "));
                    view! {
                        <ul class="legend chart-legend" aria-label="Legend" data-testid="insights-legend">
                            {chart_legend
                                .into_iter()
                                .enumerate()
                                .map(|(i, name)| {
                                    view! {
                                        <li>
                                            <span class=format!("swatch swatch-s{}", i % 8)></span>
                                            {name}
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ul>
                        <div class="chart" data-testid="insights-chart" role="img" aria-label=label inner_html=svg></div>
                    }
                    .into_any()
                })}
            {(complete && total_rows == 0)
                .then(|| view! { <p class="empty">"No events matched in this range."</p> }.into_any())}
            {(!columns.is_empty())
                .then(|| {
                    view! {
                        <div class="table-wrap">
                            <table class="table" data-testid="results-table">
                                <thead>
                                    <tr>{header}</tr>
                                </thead>
                                <tbody>{body}</tbody>
                            </table>
                        </div>
                    }
                    .into_any()
                })}
            {(total_rows > crate::soc::api::MAX_SHOWN_ROWS)
                .then(|| {
                    view! {
                        <p class="muted small">
                            "Showing the first " {crate::soc::api::MAX_SHOWN_ROWS}
                            " rows; the CSV has all " {total_rows} "."
                        </p>
                    }
                    .into_any()
                })}
        </section>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_sort_numbers_numerically() {
        assert_eq!(compare_cells("9", "10"), Ordering::Less);
        assert_eq!(compare_cells("b", "a"), Ordering::Greater);
        assert_eq!(compare_cells("1.5", "x"), Ordering::Greater);
    }
}
