//! `/guardrails` and `/guardrails/:id` (admin only): the guardrail registry the gateway and the
//! Bedrock-compatible API share.
//!
//! - The list: every guardrail, its versions, which features pin which version.
//! - A guardrail's page: the DRAFT editor (`?version=DRAFT`, the default) — blocked messages,
//!   denied topics with examples, the PII table with per-direction actions, custom regexes
//!   (checked by the engine as you type once hydrated, and on save always), words (bulk paste:
//!   one per line or comma-separated), the profanity list and content filter strengths — and
//!   "create version"; numbered versions read-only (`?version=N`); a side-by-side diff of two
//!   versions (`?left=&right=`); and a test pane applying a version to sample text
//!   (`?test_version=&source=&text=`), highlighting what was anonymized or blocked and why.
//!
//! Diff and test are GET forms handled by the page's loader, so they work without wasm too.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

use super::TopBar;
use crate::admin::ui::{Flash, FlashBanner, load_error};
use crate::admin::{
    AdminCheckRegex, AdminCreateGuardrail, AdminCreateVersion, AdminDeleteGuardrail,
    AdminSaveDraft, DiffLine, GuardrailDetail, GuardrailDoc, GuardrailSummary, PII_ACTIONS,
    STRENGTHS, TestResult, admin_guardrail, admin_guardrail_diff, admin_guardrails,
    admin_test_guardrail,
};
use crate::api::ApiError;
use crate::flash_on;
use crate::textarea;

/// Empty rows offered for new topics and regexes.
const BLANK_ROWS: usize = 2;
/// The longest sample text the test pane sends (it travels in the URL).
const TEST_TEXT_MAX: usize = 2000;

#[component]
pub fn GuardrailsPage() -> impl IntoView {
    let create = ServerAction::<AdminCreateGuardrail>::new();
    let flash: Flash = RwSignal::new(None);
    let navigate = use_navigate();
    // Created (hydrated): open the new guardrail's editor; refused: say why.
    Effect::new(move |_| match create.value().get() {
        Some(Ok(id)) => navigate(&format!("/guardrails/{id}"), Default::default()),
        Some(Err(e)) => flash.set(Some((true, e.to_string()))),
        None => {}
    });
    let data = Resource::new(|| (), |_| admin_guardrails());
    view! {
        <Title text="Guardrails · Golden Path" />
        <div class="app">
            <TopBar />
            <main class="content" data-testid="guardrails-page">
                <header class="page-header">
                    <div>
                        <h1>"Guardrails"</h1>
                        <p class="muted">
                            "Policies applied to every prompt and answer. Edit a DRAFT, create an "
                            "immutable version, then pin it to a feature."
                        </p>
                    </div>
                </header>
                <FlashBanner flash />
                <section class="card">
                    <ActionForm action=create attr:class="form-row" attr:data-testid="create-guardrail">
                        <div class="field">
                            <label for="new-guardrail-name">"New guardrail"</label>
                            <input
                                id="new-guardrail-name"
                                name="name"
                                type="text"
                                required
                                maxlength="50"
                                pattern="[0-9a-zA-Z_\\-]+"
                                placeholder="name: letters, digits, - and _"
                            />
                        </div>
                        <div class="field grow">
                            <label for="new-guardrail-description">"Description"</label>
                            <input
                                id="new-guardrail-description"
                                name="description"
                                type="text"
                                maxlength="200"
                                placeholder="What it is for (optional)"
                            />
                        </div>
                        <button type="submit" class="btn btn-primary" data-testid="create-guardrail-submit">
                            "Create guardrail"
                        </button>
                    </ActionForm>
                    <p class="muted small">"It starts as a copy of the default policy; edit its DRAFT, then create a version."</p>
                </section>
                <Transition fallback=|| view! { <div class="card placeholder">"Loading…"</div> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok(list) => view! { <GuardrailList list /> }.into_any(),
                            Err(e) => load_error(e),
                        }
                    })}
                </Transition>
            </main>
        </div>
    }
}

#[component]
fn GuardrailList(list: Vec<GuardrailSummary>) -> impl IntoView {
    view! {
        <section class="card table-card">
            <table class="data-table" data-testid="guardrails-table">
                <thead>
                    <tr>
                        <th>"Name"</th>
                        <th>"Id"</th>
                        <th>"Versions"</th>
                        <th>"Pinned by"</th>
                        <th>"Draft"</th>
                        <th>"Updated (UTC)"</th>
                    </tr>
                </thead>
                <tbody>
                    {list
                        .into_iter()
                        .map(|g| {
                            let href = format!("/guardrails/{}", g.id);
                            view! {
                                <tr>
                                    <td class="strong">
                                        <a href=href>{g.name}</a>
                                        <div class="muted small">{g.description}</div>
                                    </td>
                                    <td class="mono">{g.id.clone()}</td>
                                    <td>
                                        {g
                                            .versions
                                            .iter()
                                            .map(|v| {
                                                view! {
                                                    <a
                                                        class="chip"
                                                        href=format!("/guardrails/{}?version={v}", g.id)
                                                    >
                                                        {format!("v{v}")}
                                                    </a>
                                                }
                                            })
                                            .collect_view()}
                                    </td>
                                    <td>
                                        {g
                                            .pinned_by
                                            .iter()
                                            .map(|(f, v)| {
                                                view! {
                                                    <span class="chip">{format!("{f} → v{v}")}</span>
                                                }
                                            })
                                            .collect_view()}
                                    </td>
                                    <td>
                                        {if g.draft_differs {
                                            view! { <span class="pill pill-guard">"unreleased changes"</span> }
                                                .into_any()
                                        } else {
                                            view! { <span class="pill">"same as latest"</span> }
                                                .into_any()
                                        }}
                                    </td>
                                    <td class="mono">{g.updated_at}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
    }
}

/// Everything `/guardrails/:id` loads for its URL.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Loaded {
    detail: GuardrailDetail,
    diff: Option<(String, String, Vec<DiffLine>)>,
    test: Option<Result<TestResult, ApiError>>,
}

#[component]
pub fn GuardrailPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let save = ServerAction::<AdminSaveDraft>::new();
    let create = ServerAction::<AdminCreateVersion>::new();
    let delete = ServerAction::<AdminDeleteGuardrail>::new();
    let flash: Flash = RwSignal::new(None);
    let navigate = use_navigate();
    // Deleted (hydrated): back to the list; refused (pinned, wrong confirmation): say why.
    Effect::new(move |_| match delete.value().get() {
        Some(Ok(())) => navigate(
            "/guardrails?notice=Guardrail%20deleted.",
            Default::default(),
        ),
        Some(Err(e)) => flash.set(Some((true, e.to_string()))),
        None => {}
    });
    flash_on!(save, flash, "Draft saved.");
    flash_on!(
        create,
        flash,
        "Version created; pin it to a feature on the features page."
    );
    let key = move || {
        let id = params.read().get("id").unwrap_or_default();
        let q = query.read();
        let get = |k: &str| q.get(k).unwrap_or_default();
        (
            id,
            q.get("version").unwrap_or_else(|| "DRAFT".into()),
            (get("left"), get("right")),
            (get("test_version"), get("source"), get("text")),
            (save.version().get(), create.version().get()),
        )
    };
    let data = Resource::new(
        key,
        |(id, version, (left, right), (tv, source, text), _)| async move {
            let detail = admin_guardrail(id.clone(), version).await?;
            let diff = if left.is_empty() || right.is_empty() {
                None
            } else {
                let lines = admin_guardrail_diff(id.clone(), left.clone(), right.clone()).await?;
                Some((left, right, lines))
            };
            let test = if text.is_empty() {
                None
            } else {
                let text: String = text.chars().take(TEST_TEXT_MAX).collect();
                let tv = if tv.is_empty() {
                    "DRAFT".to_string()
                } else {
                    tv
                };
                Some(admin_test_guardrail(id, tv, source, text).await)
            };
            Ok::<_, ApiError>(Loaded { detail, diff, test })
        },
    );
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <Title text="Guardrail · Golden Path" />
        <div class="app">
            <TopBar />
            <main
                class="content"
                data-testid="guardrail-page"
                data-hydrated=move || hydrated.get().then_some("true")
            >
                <FlashBanner flash />
                <Transition fallback=|| view! { <div class="card placeholder">"Loading…"</div> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok(loaded) => view! { <GuardrailBody loaded save create delete /> }.into_any(),
                            Err(e) => load_error(e),
                        }
                    })}
                </Transition>
            </main>
        </div>
    }
}

#[component]
fn GuardrailBody(
    loaded: Loaded,
    save: ServerAction<AdminSaveDraft>,
    create: ServerAction<AdminCreateVersion>,
    delete: ServerAction<AdminDeleteGuardrail>,
) -> impl IntoView {
    let Loaded { detail, diff, test } = loaded;
    let GuardrailDetail {
        doc,
        versions,
        pinned_by,
    } = detail;
    let id = doc.id.clone();
    let (id_create, id_test, id_diff) = (id.clone(), id.clone(), id.clone());
    let (id_delete, pinned) = (id.clone(), !pinned_by.is_empty());
    let is_draft = doc.version == "DRAFT";
    let base = format!("/guardrails/{id}");
    let tabs = std::iter::once("DRAFT".to_string())
        .chain(versions.iter().rev().cloned())
        .map(|v| {
            let active = v == doc.version;
            let label = if v == "DRAFT" {
                "Draft".to_string()
            } else {
                format!("v{v}")
            };
            view! {
                <a
                    class="segment"
                    class:active=active
                    aria-current=active.then_some("page")
                    href=format!("{base}?version={v}")
                >
                    {label}
                </a>
            }
        })
        .collect_view();
    let pins = pinned_by
        .iter()
        .map(|(f, v)| view! { <span class="chip">{format!("{f} → v{v}")}</span> })
        .collect_view();
    view! {
        <header class="page-header">
            <div>
                <p class="crumbs">
                    <a href="/guardrails">"Guardrails"</a>
                    " / "
                    <code>{id.clone()}</code>
                </p>
                <h1>{doc.name.clone()}</h1>
                <p class="muted">
                    {if is_draft {
                        "Editing the DRAFT. Versions are immutable snapshots of it.".to_string()
                    } else {
                        format!("Version {} (read-only), created {}.", doc.version, doc.updated_at)
                    }} " Pinned by: " {pins}
                </p>
            </div>
            <nav class="segmented" aria-label="Versions" data-testid="version-tabs">
                {tabs}
            </nav>
        </header>
        {if is_draft {
            view! {
                <section class="card create-version">
                    <ActionForm action=create attr:class="form-row" attr:data-testid="create-version">
                        <input type="hidden" name="id" value=id_create />
                        <div class="field grow">
                            <label for="version-description">"Create a version from the DRAFT"</label>
                            <input
                                id="version-description"
                                name="description"
                                type="text"
                                maxlength="200"
                                placeholder="What changed (optional)"
                            />
                        </div>
                        <button type="submit" class="btn btn-primary" data-testid="create-version-submit">
                            "Create version"
                        </button>
                    </ActionForm>
                </section>
                <DraftEditor doc=doc.clone() save />
            }
                .into_any()
        } else {
            view! { <ReadOnly doc=doc.clone() /> }.into_any()
        }}
        <TestPane id=id_test versions=versions.clone() test />
        <DiffPane id=id_diff versions diff />
        <DeletePane id=id_delete pinned delete />
    }
}

/// Delete the guardrail and all its versions: the id typed again confirms it. While a feature
/// pins a version the server refuses (and the pane says so up front).
#[component]
fn DeletePane(
    id: String,
    pinned: bool,
    delete: ServerAction<AdminDeleteGuardrail>,
) -> impl IntoView {
    view! {
        <section class="card danger-zone" id="delete">
            <h2>"Delete this guardrail"</h2>
            <p class="muted small">
                {if pinned {
                    "A feature pins a version of it: pin another guardrail version on the features page first."
                } else {
                    "Deletes the DRAFT and every version. This cannot be undone."
                }}
            </p>
            <ActionForm action=delete attr:class="form-row" attr:data-testid="delete-guardrail">
                <input type="hidden" name="id" value=id.clone() />
                <div class="field grow">
                    <label for="delete-confirm">{format!("Type {id} to confirm")}</label>
                    <input id="delete-confirm" name="confirm" type="text" required autocomplete="off" />
                </div>
                <button type="submit" class="btn btn-danger" data-testid="delete-guardrail-submit">
                    "Delete guardrail"
                </button>
            </ActionForm>
        </section>
    }
}

/// The two per-direction cells of a PII, regex or content-filter row: a select of `choices`
/// named `{field}_in[key]` (prompts) and one named `{field}_out[key]` (answers). Actions
/// (PII and regexes) carry an `action-*` class that colours them.
fn direction_cells(
    field: &str,
    key: &str,
    label: &str,
    (input, output): (String, String),
    choices: &'static [&'static str],
) -> impl IntoView + use<> {
    let coloured = choices == PII_ACTIONS.as_slice();
    let select = |side: &str, direction: &str, current: String| {
        let options = choices
            .iter()
            .map(|c| view! { <option value=*c selected=current == *c>{*c}</option> })
            .collect_view();
        view! {
            <select
                name=format!("{field}_{side}[{key}]")
                aria-label=format!("{label} on {direction}")
                class=coloured.then(|| format!("action-{}", current.to_lowercase()))
            >
                {options}
            </select>
        }
    };
    view! {
        <td>{select("in", "input", input)}</td>
        <td>{select("out", "output", output)}</td>
    }
}

#[component]
fn DraftEditor(doc: GuardrailDoc, save: ServerAction<AdminSaveDraft>) -> impl IntoView {
    let check = ServerAction::<AdminCheckRegex>::new();
    // Which regex row the last check was for.
    let checked_row = RwSignal::new(None::<usize>);
    let topic_rows = doc.topics.len() + BLANK_ROWS;
    let regex_rows = doc.regexes.len() + BLANK_ROWS;
    let topics = (0..topic_rows)
        .map(|i| {
            let t = doc.topics.get(i);
            let name = t.map(|t| t.name.clone()).unwrap_or_default();
            let definition = t.map(|t| t.definition.clone()).unwrap_or_default();
            let examples = t.map(|t| t.examples.join("\n")).unwrap_or_default();
            view! {
                <tr>
                    <td>
                        <input
                            type="text"
                            name=format!("topic_name[{i}]")
                            value=name
                            maxlength="100"
                            placeholder="e.g. Investing"
                            aria-label=format!("Topic {} name", i + 1)
                        />
                    </td>
                    <td>
                        <textarea
                            name=format!("topic_definition[{i}]")
                            maxlength="200"
                            rows="2"
                            placeholder="What the topic covers"
                            aria-label=format!("Topic {} definition", i + 1)
                        >
                            {textarea::value(&definition)}
                        </textarea>
                    </td>
                    <td>
                        <textarea
                            name=format!("topic_examples[{i}]")
                            rows="2"
                            placeholder="One example per line (up to 5)"
                            aria-label=format!("Topic {} examples", i + 1)
                        >
                            {textarea::value(&examples)}
                        </textarea>
                    </td>
                </tr>
            }
            .into_any()
        })
        .collect_view();
    let pii = doc
        .pii
        .iter()
        .map(|row| {
            let active = row.input != "NONE" || row.output != "NONE";
            view! {
                <tr class:active-row=active>
                    <td class="mono">{row.entity.clone()}</td>
                    {direction_cells(
                        "pii",
                        &row.entity,
                        &row.entity,
                        (row.input.clone(), row.output.clone()),
                        &PII_ACTIONS,
                    )}
                </tr>
            }
            .into_any()
        })
        .collect_view();
    let regexes = (0..regex_rows)
        .map(|i| {
            let r = doc.regexes.get(i);
            let name = r.map(|r| r.name.clone()).unwrap_or_default();
            let pattern = r.map(|r| r.pattern.clone()).unwrap_or_default();
            let input = r.map_or("ANONYMIZE".to_string(), |r| r.input.clone());
            let output = r.map_or("ANONYMIZE".to_string(), |r| r.output.clone());
            let status = move || {
                (checked_row.get() == Some(i))
                    .then(|| match check.value().get() {
                        Some(Ok(())) => {
                            Some(view! { <span class="regex-ok">"✓ compiles"</span> }.into_any())
                        }
                        Some(Err(e)) => Some(
                            view! { <span class="regex-error" role="alert">{e.to_string()}</span> }
                                .into_any(),
                        ),
                        None => None,
                    })
                    .flatten()
            };
            view! {
                <tr>
                    <td>
                        <input
                            type="text"
                            name=format!("regex_name[{i}]")
                            value=name
                            maxlength="100"
                            placeholder="e.g. employee-id"
                            aria-label=format!("Regex {} name", i + 1)
                        />
                    </td>
                    <td>
                        <input
                            type="text"
                            class="mono"
                            name=format!("regex_pattern[{i}]")
                            value=pattern
                            maxlength="500"
                            placeholder="e.g. EMP-[0-9]{6}"
                            aria-label=format!("Regex {} pattern", i + 1)
                            on:input=move |ev| {
                                let value = event_target_value(&ev);
                                checked_row.set(Some(i));
                                if !value.trim().is_empty() {
                                    check.dispatch(AdminCheckRegex { pattern: value });
                                }
                            }
                        />
                        <div class="regex-status">{status}</div>
                    </td>
                    {direction_cells(
                        "regex",
                        &i.to_string(),
                        &format!("Regex {}", i + 1),
                        (input.clone(), output.clone()),
                        &PII_ACTIONS,
                    )}
                </tr>
            }
            .into_any()
        })
        .collect_view();
    let filters = doc
        .filters
        .iter()
        .map(|f| {
            view! {
                <tr>
                    <td class="mono">{f.kind.clone()}</td>
                    {direction_cells(
                        "filter",
                        &f.kind,
                        &f.kind,
                        (f.input.clone(), f.output.clone()),
                        &STRENGTHS,
                    )}
                </tr>
            }
            .into_any()
        })
        .collect_view();
    let words = doc.words.join("\n");
    let word_count = doc.words.len();
    let messages_card = view! {
            <section class="card">
                <h2>"Messages"</h2>
                <div class="grid-2">
                    <div class="field">
                        <label for="blocked-input">"Blocked prompt message"</label>
                        <textarea id="blocked-input" name="blocked_input" rows="2" maxlength="500" required>
                            {textarea::value(&doc.blocked_input)}
                        </textarea>
                    </div>
                    <div class="field">
                        <label for="blocked-output">"Blocked answer message"</label>
                        <textarea id="blocked-output" name="blocked_output" rows="2" maxlength="500" required>
                            {textarea::value(&doc.blocked_output)}
                        </textarea>
                    </div>
                </div>
                <div class="field">
                    <label for="description">"Description"</label>
                    <input id="description" name="description" type="text" maxlength="200" value=doc.description.clone() />
                </div>
            </section>
    }
    .into_any();
    let topics_card = view! {
            <section class="card">
                <h2>"Denied topics"</h2>
                <p class="muted small">"Leave a row empty to remove it."</p>
                <table class="data-table form-table">
                    <thead>
                        <tr>
                            <th>"Name"</th>
                            <th>"Definition"</th>
                            <th>"Examples"</th>
                        </tr>
                    </thead>
                    <tbody>{topics}</tbody>
                </table>
            </section>
    }
    .into_any();
    let sensitive_card = view! {
            <section class="card">
                <h2>"Sensitive information"</h2>
                <div class="stack">
                    <table class="data-table form-table compact" data-testid="pii-table">
                        <thead>
                            <tr>
                                <th>"PII entity"</th>
                                <th>"Prompts"</th>
                                <th>"Answers"</th>
                            </tr>
                        </thead>
                        <tbody>{pii}</tbody>
                    </table>
                    <div>
                        <h3>"Custom regexes"</h3>
                        <table class="data-table form-table" data-testid="regex-table">
                            <thead>
                                <tr>
                                    <th>"Name"</th>
                                    <th>"Pattern"</th>
                                    <th>"Prompts"</th>
                                    <th>"Answers"</th>
                                </tr>
                            </thead>
                            <tbody>{regexes}</tbody>
                        </table>
                        <p class="muted small">
                            "Anonymized matches become {name} in the text the model sees."
                        </p>
                    </div>
                </div>
            </section>
    }
    .into_any();
    let words_card = view! {
            <section class="card">
                <h2>"Words and content"</h2>
                <div class="grid-2 align-start">
                    <div class="field">
                        <label for="words">{format!("Blocked words ({word_count})")}</label>
                        <textarea id="words" name="words" rows="8" class="mono" placeholder="Paste a list: one per line or comma-separated">
                            {textarea::value(&words)}
                        </textarea>
                        <label class="check">
                            <input type="checkbox" name="profanity" value="on" checked=doc.profanity />
                            " Block the managed profanity list"
                        </label>
                    </div>
                    <table class="data-table form-table compact">
                        <thead>
                            <tr>
                                <th>"Content filter"</th>
                                <th>"Prompts"</th>
                                <th>"Answers"</th>
                            </tr>
                        </thead>
                        <tbody>{filters}</tbody>
                    </table>
                </div>
            </section>
    }
    .into_any();
    view! {
        <ActionForm action=save attr:class="editor" attr:data-testid="draft-editor">
            <input type="hidden" name="id" value=doc.id.clone() />
            {messages_card}
            {topics_card}
            {sensitive_card}
            {words_card}
            <div class="sticky-actions">
                <button type="submit" class="btn btn-primary" data-testid="save-draft">
                    "Save draft"
                </button>
                <span class="muted small">"Saving changes the DRAFT only; features use numbered versions."</span>
            </div>
        </ActionForm>
    }
}

#[component]
fn ReadOnly(doc: GuardrailDoc) -> impl IntoView {
    let pii = doc
        .pii
        .iter()
        .filter(|r| r.input != "NONE" || r.output != "NONE")
        .map(|r| {
            view! {
                <tr>
                    <td class="mono">{r.entity.clone()}</td>
                    <td>{r.input.clone()}</td>
                    <td>{r.output.clone()}</td>
                </tr>
            }
        })
        .collect_view();
    let filters = doc
        .filters
        .iter()
        .filter(|f| f.input != "NONE" || f.output != "NONE")
        .map(|f| format!("{} (prompts {}, answers {})", f.kind, f.input, f.output))
        .collect::<Vec<_>>()
        .join(", ");
    view! {
        <section class="card readonly" data-testid="readonly-version">
            <dl class="props">
                <dt>"Blocked prompt message"</dt>
                <dd>{doc.blocked_input.clone()}</dd>
                <dt>"Blocked answer message"</dt>
                <dd>{doc.blocked_output.clone()}</dd>
                <dt>"Denied topics"</dt>
                <dd>
                    {if doc.topics.is_empty() {
                        "none".to_string()
                    } else {
                        doc.topics.iter().map(|t| t.name.clone()).collect::<Vec<_>>().join(", ")
                    }}
                </dd>
                <dt>"Custom regexes"</dt>
                <dd class="mono">
                    {if doc.regexes.is_empty() {
                        "none".to_string()
                    } else {
                        doc.regexes
                            .iter()
                            .map(|r| format!("{} = {} ({}/{})", r.name, r.pattern, r.input, r.output))
                            .collect::<Vec<_>>()
                            .join("; ")
                    }}
                </dd>
                <dt>"Words"</dt>
                <dd>
                    {format!("{} custom", doc.words.len())}
                    {if doc.profanity { ", managed profanity list" } else { "" }}
                </dd>
                <dt>"Content filters"</dt>
                <dd>{if filters.is_empty() { "none".to_string() } else { filters }}</dd>
            </dl>
            <table class="data-table compact">
                <thead>
                    <tr>
                        <th>"PII entity"</th>
                        <th>"Prompts"</th>
                        <th>"Answers"</th>
                    </tr>
                </thead>
                <tbody>{pii}</tbody>
            </table>
        </section>
    }
}

#[component]
fn TestPane(
    id: String,
    versions: Vec<String>,
    test: Option<Result<TestResult, ApiError>>,
) -> impl IntoView {
    let query = use_query_map();
    let current_text = query.read_untracked().get("text").unwrap_or_else(|| {
        "Email jane.doe@example.com about order 1234; my card is 4111 1111 1111 1111.".into()
    });
    let current_version = query
        .read_untracked()
        .get("test_version")
        .unwrap_or_else(|| "DRAFT".into());
    let current_source = query
        .read_untracked()
        .get("source")
        .unwrap_or_else(|| "INPUT".into());
    let keep_version = query.read_untracked().get("version").unwrap_or_default();
    let options = std::iter::once("DRAFT".to_string())
        .chain(versions.into_iter().rev())
        .map(|v| {
            let label = if v == "DRAFT" {
                "Draft".to_string()
            } else {
                format!("version {v}")
            };
            view! { <option value=v.clone() selected=v == current_version>{label}</option> }
        })
        .collect_view();
    let result = test.map(|r| match r {
        Ok(t) => view! { <TestOutcome t /> }.into_any(),
        Err(e) => view! { <div class="alert" role="alert">{e.to_string()}</div> }.into_any(),
    });
    view! {
        <section class="card" id="test">
            <h2>"Test a version"</h2>
            <form method="get" action=format!("/guardrails/{id}#test") class="test-form" data-testid="test-form">
                {(!keep_version.is_empty()).then(|| view! { <input type="hidden" name="version" value=keep_version /> })}
                <div class="form-row">
                    <div class="field">
                        <label for="test-version">"Version"</label>
                        <select id="test-version" name="test_version">{options}</select>
                    </div>
                    <div class="field">
                        <label for="test-source">"As"</label>
                        <select id="test-source" name="source">
                            <option value="INPUT" selected=current_source == "INPUT">"a prompt"</option>
                            <option value="OUTPUT" selected=current_source == "OUTPUT">"an answer"</option>
                        </select>
                    </div>
                </div>
                <div class="field">
                    <label for="test-text">"Sample text"</label>
                    <textarea id="test-text" name="text" rows="3" maxlength=TEST_TEXT_MAX.to_string() required>
                        {textarea::value(&current_text)}
                    </textarea>
                </div>
                <button type="submit" class="btn btn-primary" data-testid="test-submit">
                    "Apply"
                </button>
            </form>
            {result}
        </section>
    }
}

#[component]
fn TestOutcome(t: TestResult) -> impl IntoView {
    let verdict = if t.blocked {
        ("verdict verdict-blocked", "Blocked")
    } else if t.action == "GUARDRAIL_INTERVENED" {
        ("verdict verdict-anonymized", "Anonymized")
    } else {
        ("verdict verdict-none", "No action")
    };
    let findings = t.findings.clone();
    let highlighted = t
        .segments
        .into_iter()
        .map(|s| match s.finding.and_then(|i| findings.get(i)) {
            Some(f) => {
                let class = match f.action.as_str() {
                    "BLOCKED" => "hl hl-blocked",
                    "ANONYMIZED" => "hl hl-anonymized",
                    _ => "hl hl-detected",
                };
                view! {
                    <mark class=class title=format!("{} {}: {}", f.policy, f.label, f.action)>
                        {s.text}
                    </mark>
                }
                .into_any()
            }
            None => view! { <span>{s.text}</span> }.into_any(),
        })
        .collect_view();
    view! {
        <div class="test-outcome" data-testid="test-outcome" data-action=t.action.clone()>
            <p>
                <span class=verdict.0 data-testid="test-verdict">{verdict.1}</span>
            </p>
            <div class="grid-2 align-start">
                <div>
                    <h3>"What was found"</h3>
                    <p class="sample" data-testid="test-highlighted">{highlighted}</p>
                    {if t.findings.is_empty() {
                        view! { <p class="muted">"Nothing matched."</p> }.into_any()
                    } else {
                        view! {
                            <table class="data-table compact">
                                <thead>
                                    <tr>
                                        <th>"Policy"</th>
                                        <th>"Why"</th>
                                        <th>"Match"</th>
                                        <th>"Action"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {t
                                        .findings
                                        .into_iter()
                                        .map(|f| {
                                            view! {
                                                <tr>
                                                    <td>{f.policy}</td>
                                                    <td class="mono">{f.label}</td>
                                                    <td class="mono">{f.matched}</td>
                                                    <td>{f.action}</td>
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        }
                            .into_any()
                    }}
                </div>
                <div>
                    <h3>{if t.blocked { "What the caller gets" } else { "What passes on" }}</h3>
                    <p class="sample output" data-testid="test-output">{t.output}</p>
                </div>
            </div>
        </div>
    }
}

#[component]
fn DiffPane(
    id: String,
    versions: Vec<String>,
    diff: Option<(String, String, Vec<DiffLine>)>,
) -> impl IntoView {
    let all: Vec<String> = std::iter::once("DRAFT".to_string())
        .chain(versions.iter().rev().cloned())
        .collect();
    let (left, right) = match &diff {
        Some((l, r, _)) => (l.clone(), r.clone()),
        None => (
            versions.last().cloned().unwrap_or_else(|| "DRAFT".into()),
            "DRAFT".to_string(),
        ),
    };
    let select = |name: &'static str, current: String| {
        let options = all
            .iter()
            .map(|v| view! { <option value=v.clone() selected=*v == current>{v.clone()}</option> })
            .collect_view();
        view! { <select name=name aria-label=name>{options}</select> }
    };
    let table = diff.map(|(l, r, lines)| {
        let changes = lines.iter().filter(|d| d.kind != "same").count();
        view! {
            <p class="muted small" data-testid="diff-summary">
                {format!("{changes} changed lines between {l} and {r}")}
            </p>
            <table class="diff" data-testid="diff-table">
                <thead>
                    <tr>
                        <th>{l}</th>
                        <th>{r}</th>
                    </tr>
                </thead>
                <tbody>
                    {lines
                        .into_iter()
                        .map(|d| {
                            let class = format!("diff-{}", d.kind);
                            view! {
                                <tr class=class>
                                    <td><pre>{d.left.unwrap_or_default()}</pre></td>
                                    <td><pre>{d.right.unwrap_or_default()}</pre></td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        }
    });
    view! {
        <section class="card" id="diff">
            <h2>"Compare versions"</h2>
            <form method="get" action=format!("/guardrails/{id}#diff") class="form-row" data-testid="diff-form">
                {select("left", left)}
                <span>"→"</span>
                {select("right", right)}
                <button type="submit" class="btn">"Compare"</button>
            </form>
            {table}
        </section>
    }
}
