//! `/admin/accounts` (admin only): the console's accounts — create one with a role, change a
//! role, disable or re-enable, set a new password — and the changes granting `soc` that wait
//! for a second admin (`console.soc_grant_requires_second_admin`), to approve or reject. Every
//! form is an `ActionForm`, so it posts as a plain form before the wasm loads (answered with a
//! redirect back here) and through `fetch` after (the table refetches).

use leptos::prelude::*;
use leptos_meta::Title;

use super::TopBar;
use crate::admin::ui::{Flash, FlashBanner, date_time, load_error};
use crate::admin::{
    AccountRow, AdminApproveGrant, AdminCreateAccount, AdminRejectGrant, AdminResetPassword,
    AdminSetDisabled, AdminSetRole, PendingGrantRow, ROLES, admin_accounts, admin_pending_grants,
};
use crate::flash_on;

/// [`flash_on!`] for the account changes that answer whether they wait for approval.
macro_rules! flash_grant {
    ($action:expr, $flash:expr, $ok:expr) => {{
        let action = $action;
        let flash: Flash = $flash;
        Effect::new(move |_| {
            if let Some(result) = action.value().get() {
                flash.set(Some(match result {
                    Ok(true) => (
                        false,
                        "This grants the soc role: it waits for another admin's approval."
                            .to_string(),
                    ),
                    Ok(false) => (false, ($ok).to_string()),
                    Err(e) => (true, e.to_string()),
                }));
            }
        });
    }};
}

#[component]
pub fn AccountsPage() -> impl IntoView {
    let create = ServerAction::<AdminCreateAccount>::new();
    let set_role = ServerAction::<AdminSetRole>::new();
    let set_disabled = ServerAction::<AdminSetDisabled>::new();
    let reset = ServerAction::<AdminResetPassword>::new();
    let approve = ServerAction::<AdminApproveGrant>::new();
    let reject = ServerAction::<AdminRejectGrant>::new();
    let flash: Flash = RwSignal::new(None);
    flash_grant!(create, flash, "Account created.");
    flash_grant!(set_role, flash, "Role changed.");
    flash_grant!(set_disabled, flash, "Account updated.");
    flash_grant!(
        reset,
        flash,
        "Password set; the user's sessions were ended."
    );
    flash_on!(approve, flash, "Approved and applied.");
    flash_on!(reject, flash, "Rejected.");
    let data = Resource::new(
        move || {
            (
                create.version().get(),
                set_role.version().get(),
                set_disabled.version().get(),
                reset.version().get(),
                approve.version().get(),
                reject.version().get(),
            )
        },
        |_| async {
            Ok::<_, crate::api::ApiError>((admin_accounts().await?, admin_pending_grants().await?))
        },
    );
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    view! {
        <Title text="Accounts · Golden Path" />
        <div class="app">
            <TopBar />
            <main
                class="content"
                data-testid="accounts-page"
                data-hydrated=move || hydrated.get().then_some("true")
            >
                <header class="page-header">
                    <div>
                        <h1>"Accounts"</h1>
                        <p class="muted">
                            "Who can sign in to the console, and with which role. "
                            "Admins govern guardrails and features; SOC analysts investigate; "
                            "viewers see the overview."
                        </p>
                    </div>
                </header>
                <FlashBanner flash />
                <Transition fallback=|| view! { <div class="card placeholder">"Loading…"</div> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok((rows, pending)) => {
                                view! {
                                    <PendingGrants pending approve reject />
                                    <AccountsTable rows set_role set_disabled reset />
                                    <CreateAccount create />
                                }
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

#[component]
fn AccountsTable(
    rows: Vec<AccountRow>,
    set_role: ServerAction<AdminSetRole>,
    set_disabled: ServerAction<AdminSetDisabled>,
    reset: ServerAction<AdminResetPassword>,
) -> impl IntoView {
    view! {
        <section class="card table-card">
            <table class="data-table" data-testid="accounts-table">
                <thead>
                    <tr>
                        <th>"User"</th>
                        <th>"Role"</th>
                        <th>"Status"</th>
                        <th>"Created (UTC)"</th>
                        <th class="num">"Sessions"</th>
                        <th>"New password"</th>
                        <th></th>
                    </tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|row| {
                            let name = row.name.clone();
                            let (name_role, name_reset, name_disable) =
                                (name.clone(), name.clone(), name.clone());
                            let label = format!("New password for {name}");
                            let current_role = row.role.clone();
                            view! {
                                <tr data-user=row.name.clone() class:disabled-row=row.disabled>
                                    <td class="strong">{row.name.clone()}</td>
                                    <td>
                                        <ActionForm action=set_role attr:class="inline-form">
                                            <input type="hidden" name="name" value=name_role />
                                            <select name="role" aria-label="Role">
                                                {ROLES
                                                    .iter()
                                                    .map(|r| {
                                                        view! {
                                                            <option value=*r selected=current_role == *r>
                                                                {*r}
                                                            </option>
                                                        }
                                                    })
                                                    .collect_view()}
                                            </select>
                                            <button type="submit" class="btn btn-small">
                                                "Set"
                                            </button>
                                        </ActionForm>
                                    </td>
                                    <td>
                                        {if row.disabled {
                                            view! { <span class="pill pill-off">"disabled"</span> }
                                                .into_any()
                                        } else {
                                            view! { <span class="pill pill-on">"active"</span> }
                                                .into_any()
                                        }}
                                    </td>
                                    <td class="mono">{date_time(row.created_ms)}</td>
                                    <td class="num">{row.sessions}</td>
                                    <td>
                                        <ActionForm action=reset attr:class="inline-form">
                                            <input type="hidden" name="name" value=name_reset />
                                            <input
                                                type="password"
                                                name="password"
                                                autocomplete="new-password"
                                                minlength="12"
                                                maxlength="1024"
                                                placeholder="12+ characters"
                                                aria-label=label
                                                required
                                            />
                                            <button type="submit" class="btn btn-small">
                                                "Set"
                                            </button>
                                        </ActionForm>
                                    </td>
                                    <td>
                                        <ActionForm action=set_disabled attr:class="inline-form">
                                            <input type="hidden" name="name" value=name_disable />
                                            <input
                                                type="hidden"
                                                name="disabled"
                                                value=if row.disabled { "false" } else { "true" }
                                            />
                                            <button
                                                type="submit"
                                                class=if row.disabled {
                                                    "btn btn-small"
                                                } else {
                                                    "btn btn-small btn-danger"
                                                }
                                            >
                                                {if row.disabled { "Enable" } else { "Disable" }}
                                            </button>
                                        </ActionForm>
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
    }
}

/// Changes granting `soc` that wait for a second admin (shown only when there are some).
#[component]
fn PendingGrants(
    pending: Vec<PendingGrantRow>,
    approve: ServerAction<AdminApproveGrant>,
    reject: ServerAction<AdminRejectGrant>,
) -> impl IntoView {
    if pending.is_empty() {
        return ().into_any();
    }
    view! {
        <section class="card table-card" data-testid="pending-grants">
            <div class="card-header">
                <h2>"Waiting for approval"</h2>
                <span class="muted small">
                    "These changes grant the soc role. Another admin than the one who asked "
                    "must approve them."
                </span>
            </div>
            <table class="data-table">
                <thead>
                    <tr>
                        <th>"Change"</th>
                        <th>"User"</th>
                        <th>"Asked by"</th>
                        <th>"Asked (UTC)"</th>
                        <th></th>
                    </tr>
                </thead>
                <tbody>
                    {pending
                        .into_iter()
                        .map(|p| {
                            let id = p.id.to_string();
                            let (id_row, id_reject) = (id.clone(), id.clone());
                            view! {
                                <tr data-grant=id_row>
                                    <td>{p.change}</td>
                                    <td class="strong">{p.target}</td>
                                    <td>{p.requested_by}</td>
                                    <td class="mono">{date_time(p.requested_ms)}</td>
                                    <td>
                                        <ActionForm action=approve attr:class="inline-form">
                                            <input type="hidden" name="id" value=id />
                                            <button type="submit" class="btn btn-small btn-primary">
                                                "Approve"
                                            </button>
                                        </ActionForm>
                                        <ActionForm action=reject attr:class="inline-form">
                                            <input type="hidden" name="id" value=id_reject />
                                            <button type="submit" class="btn btn-small">
                                                "Reject"
                                            </button>
                                        </ActionForm>
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}

#[component]
fn CreateAccount(create: ServerAction<AdminCreateAccount>) -> impl IntoView {
    view! {
        <section class="card">
            <h2>"Create an account"</h2>
            <ActionForm action=create attr:class="form-row" attr:data-testid="create-account">
                <div class="field">
                    <label for="new-name">"User name"</label>
                    <input
                        id="new-name"
                        name="name"
                        type="text"
                        maxlength="64"
                        pattern="[A-Za-z0-9._@-]{1,64}"
                        autocomplete="off"
                        required
                    />
                </div>
                <div class="field">
                    <label for="new-role">"Role"</label>
                    <select id="new-role" name="role">
                        <option value="viewer">"viewer"</option>
                        <option value="soc">"soc"</option>
                        <option value="admin">"admin"</option>
                    </select>
                </div>
                <div class="field">
                    <label for="new-password">"Initial password"</label>
                    <input
                        id="new-password"
                        name="password"
                        type="password"
                        autocomplete="new-password"
                        minlength="12"
                        maxlength="1024"
                        required
                    />
                </div>
                <button type="submit" class="btn btn-primary">
                    "Create"
                </button>
            </ActionForm>
            <p class="muted small">
                "Names are 1–64 letters, digits, . _ - or @. Passwords are at least 12 characters; "
                "share them out of band and have the user change them."
            </p>
        </section>
    }
}
