//! The console's access matrix, walked through the real router (no socket) over real SQLite
//! stores and a real gateway state in a temp dir: for every page route and every server
//! function, and for each role (admin, soc, viewer) and no session, the expected allow/deny.
//!
//! The tables below are the contract. The test fails when the app has a route or a server
//! function the tables do not name (so a new one must be given its roles here), and when a table
//! names one that no longer exists. It also checks the cross-origin (CSRF) guard on
//! state-changing requests, the status each server function answers a caller's mistake with
//! (400, 404 for unknown or someone else's ids, 409; never 500), and that text anyone can store
//! or link (guardrail fields, `?query=`, `?text=`) stays text in every page's textareas.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use axum::http::header::{ACCEPT, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use leptos_config::LeptosOptions;
use tower::ServiceExt;

use app::accounts::password::HashCost;
use app::accounts::{Accounts, Role};
use gateway::config::Config;
use gateway::state::AppState;

const CHEAP: HashCost = HashCost {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};
const PASSWORD: &str = "a long enough password";

/// Who may reach a page or call a function.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// Anyone, signed in or not (sign-in itself).
    Public,
    /// Any signed-in role.
    SignedIn,
    /// Only these roles.
    Roles(&'static [&'static str]),
}

const ADMIN: Access = Access::Roles(&["admin"]);
const SOC: Access = Access::Roles(&["soc"]);
const ADMIN_SOC: Access = Access::Roles(&["admin", "soc"]);

/// Every page route: (route pattern, a concrete path to request, who may see it).
const PAGES: &[(&str, &str, Access)] = &[
    ("/login", "/login", Access::Public),
    ("/", "/", Access::SignedIn),
    ("/insights", "/insights", SOC),
    ("/investigate", "/investigate", SOC),
    ("/guardrails", "/guardrails", ADMIN),
    ("/guardrails/{id}", "/guardrails/default", ADMIN),
    ("/features", "/features", ADMIN),
    ("/admin/accounts", "/admin/accounts", ADMIN),
    ("/audit", "/audit", ADMIN_SOC),
];

/// Every server function: (path, arguments that reach the function body — harmless ones, a
/// denied call must be refused before they are looked at — and who may call it).
const FUNCTIONS: &[(&str, &str, Access)] = &[
    ("/api/login", "name=x&password=y", Access::Public),
    ("/api/logout", "", Access::Public),
    ("/api/sso_available", "", Access::Public),
    ("/api/whoami", "", Access::SignedIn),
    ("/api/overview", "range=1h", Access::SignedIn),
    (
        "/api/insights_page",
        "query=fields%20%40timestamp&range=1h&start=&end=&id=&error=",
        SOC,
    ),
    ("/api/insights_start", "", SOC),
    ("/api/insights_stop", "id=none&back=%2Finsights", SOC),
    ("/api/insights_csv", "id=none", SOC),
    ("/api/investigate", "user=alice&range=24h", SOC),
    (
        "/api/open_record",
        "request_id=none&reason=access%20test",
        SOC,
    ),
    ("/api/admin_accounts", "", ADMIN),
    (
        "/api/admin_create_account",
        "name=zz&role=viewer&password=short",
        ADMIN,
    ),
    ("/api/admin_set_role", "name=nobody&role=viewer", ADMIN),
    (
        "/api/admin_set_disabled",
        "name=nobody&disabled=false",
        ADMIN,
    ),
    (
        "/api/admin_reset_password",
        "name=nobody&password=short",
        ADMIN,
    ),
    ("/api/admin_pending_grants", "", ADMIN),
    ("/api/admin_approve_grant", "id=999999", ADMIN),
    ("/api/admin_reject_grant", "id=999999", ADMIN),
    (
        "/api/admin_audit",
        "filter%5Bactor%5D=&filter%5Bkind%5D=&filter%5Brange%5D=24h",
        ADMIN_SOC,
    ),
    ("/api/admin_features", "", ADMIN),
    (
        "/api/admin_save_feature",
        "feature=nope&model=dev&guardrail_version=1&requests_per_minute=1&burst=1&tokens_per_minute=1&tokens_per_day=1",
        ADMIN,
    ),
    ("/api/admin_guardrails", "", ADMIN),
    ("/api/admin_guardrail", "id=default&version=DRAFT", ADMIN),
    (
        "/api/admin_save_draft",
        "id=NOPE&blocked_input=a&blocked_output=b",
        ADMIN,
    ),
    ("/api/admin_create_version", "id=NOPE", ADMIN),
    ("/api/admin_create_guardrail", "name=not%20valid", ADMIN),
    ("/api/admin_delete_guardrail", "id=NOPE&confirm=NOPE", ADMIN),
    ("/api/admin_check_regex", "pattern=a%2B", ADMIN),
    (
        "/api/admin_test_guardrail",
        "id=default&version=DRAFT&source=INPUT&text=hello",
        ADMIN,
    ),
    (
        "/api/admin_guardrail_diff",
        "id=default&left=1&right=DRAFT",
        ADMIN,
    ),
];

struct Fixture {
    _dir: tempfile::TempDir,
    router: Router,
    /// `(role, cookie)` for each role.
    cookies: Vec<(&'static str, String)>,
    /// A second SOC analyst (`sol`), for ids that belong to someone else.
    other_soc: String,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let accounts = Accounts::open_with_cost(&dir.path().join("console.db"), CHEAP).unwrap();
    let now = gateway::now_ms();
    for (name, role) in [
        ("ada", Role::Admin),
        ("sam", Role::Soc),
        ("vic", Role::Viewer),
        ("sol", Role::Soc),
    ] {
        accounts
            .create_user(name, PASSWORD, role, now)
            .await
            .unwrap();
    }
    let mut cookies = Vec::new();
    for (name, role) in [("ada", "admin"), ("sam", "soc"), ("vic", "viewer")] {
        let s = accounts
            .login(name, PASSWORD, "127.0.0.1", None, now)
            .await
            .unwrap();
        cookies.push((role, format!("gp_session={}", s.token)));
    }
    let other = accounts
        .login("sol", PASSWORD, "127.0.0.1", None, now)
        .await
        .unwrap();
    let other_soc = format!("gp_session={}", other.token);
    let config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    let state = AppState::build(config).await.unwrap();
    std::fs::create_dir_all(dir.path().join("site/pkg")).unwrap();
    let options = LeptosOptions::builder()
        .output_name("console")
        .site_root(dir.path().join("site").to_string_lossy().into_owned())
        .build();
    let console = server::console_for(accounts, &state);
    let router = server::console::router_with_gateway(options, console, Some(state));
    Fixture {
        _dir: dir,
        router,
        cookies,
        other_soc,
    }
}

async fn send(router: &Router, req: Request<Body>) -> Response<Body> {
    router.clone().oneshot(req).await.unwrap()
}

fn request(method: Method, path: &str, body: &str, cookie: Option<&str>) -> Request<Body> {
    let (uri, body) = if method == Method::GET && path.starts_with("/api/") {
        (format!("{path}?{body}"), String::new())
    } else {
        (path.to_string(), body.to_string())
    };
    let mut req = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header(ACCEPT, "application/json");
    if method == Method::POST {
        req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    if let Some(cookie) = cookie {
        req = req.header(COOKIE, cookie);
    }
    req.body(Body::from(body)).unwrap()
}

fn allows(access: Access, role: &str) -> bool {
    match access {
        Access::Public | Access::SignedIn => true,
        Access::Roles(roles) => roles.contains(&role),
    }
}

#[tokio::test]
async fn every_route_and_server_function_is_in_the_table() {
    let routes: BTreeSet<String> = leptos_axum::generate_route_list(app::App)
        .iter()
        .map(|r| r.path().to_string())
        .collect();
    let table: BTreeSet<String> = PAGES.iter().map(|(p, _, _)| p.to_string()).collect();
    assert_eq!(
        routes, table,
        "page routes and the access table differ: give every new route its roles in PAGES"
    );

    // Building the router registers every server function.
    let _f = fixture().await;
    let functions: BTreeSet<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_string())
        .collect();
    let table: BTreeSet<String> = FUNCTIONS.iter().map(|(p, _, _)| p.to_string()).collect();
    assert_eq!(
        functions, table,
        "server functions and the access table differ: give every new function its roles in FUNCTIONS"
    );
}

#[tokio::test]
async fn pages_allow_and_deny_as_the_table_says() {
    let f = fixture().await;
    let mut failures = Vec::new();
    for &(pattern, path, access) in PAGES {
        // No session: public pages render, every other page sends the browser to sign in.
        let res = send(&f.router, request(Method::GET, path, "", None)).await;
        let ok = match access {
            Access::Public => res.status() == StatusCode::OK,
            _ => {
                res.status() == StatusCode::SEE_OTHER
                    && res.headers().get(LOCATION).unwrap() == "/login"
            }
        };
        if !ok {
            failures.push(format!("{pattern} without a session: {}", res.status()));
        }
        for (role, cookie) in &f.cookies {
            let res = send(&f.router, request(Method::GET, path, "", Some(cookie))).await;
            let status = res.status();
            let ok = match access {
                Access::Public => status.is_success() || status.is_redirection(),
                _ if allows(access, role) => status == StatusCode::OK,
                _ => status == StatusCode::FORBIDDEN,
            };
            if !ok {
                failures.push(format!("{pattern} as {role}: {status}"));
            }
            if status == StatusCode::FORBIDDEN {
                let html =
                    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec())
                        .unwrap();
                assert!(
                    !html.contains("data-testid=\"accounts-table\"")
                        && !html.contains("data-testid=\"draft-editor\""),
                    "{pattern} as {role} leaked the page's data"
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "access matrix violations:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn server_functions_allow_and_deny_as_the_table_says() {
    let f = fixture().await;
    let methods: std::collections::BTreeMap<String, Method> =
        leptos::server_fn::axum::server_fn_paths()
            .map(|(p, m)| (p.to_string(), m))
            .collect();
    let mut failures = Vec::new();
    for &(path, args, access) in FUNCTIONS {
        let method = methods.get(path).cloned().unwrap_or(Method::POST);
        if !matches!(access, Access::Public) {
            let res = send(&f.router, request(method.clone(), path, args, None)).await;
            if res.status() != StatusCode::UNAUTHORIZED {
                failures.push(format!("{path} without a session: {}", res.status()));
            }
        } else {
            // Public functions are called without a session only (logout would end it); the
            // session gate lets them through (a wrong sign-in is its own 401).
            let res = send(&f.router, request(method.clone(), path, args, None)).await;
            let status = res.status();
            if status == StatusCode::FORBIDDEN
                || (status == StatusCode::UNAUTHORIZED && path != "/api/login")
            {
                failures.push(format!("{path} (public) without a session: {status}"));
            }
            continue;
        }
        for (role, cookie) in &f.cookies {
            let res = send(&f.router, request(method.clone(), path, args, Some(cookie))).await;
            let status = res.status();
            let denied = status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED;
            let ok = if allows(access, role) {
                !denied
            } else {
                status == StatusCode::FORBIDDEN
            };
            if !ok {
                let body = res.into_body().collect().await.unwrap().to_bytes();
                failures.push(format!(
                    "{path} as {role}: {status} {}",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "access matrix violations:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn cross_site_posts_are_refused_and_same_origin_ones_pass() {
    let f = fixture().await;
    let admin = &f.cookies[0].1;
    let post = |headers: &[(&str, &str)]| {
        let mut req = request(
            Method::POST,
            "/api/admin_set_role",
            "name=vic&role=soc",
            Some(admin),
        );
        for (k, v) in headers {
            req.headers_mut().insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        req
    };
    for headers in [
        &[("sec-fetch-site", "cross-site")][..],
        &[("sec-fetch-site", "same-site")][..],
        &[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:3000"),
        ][..],
        &[("origin", "null"), ("host", "127.0.0.1:3000")][..],
    ] {
        let res = send(&f.router, post(headers)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{headers:?}");
    }
    // A cross-site sign-in (login CSRF) is refused too.
    let mut login = request(Method::POST, "/api/login", "name=ada&password=x", None);
    login
        .headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert_eq!(send(&f.router, login).await.status(), StatusCode::FORBIDDEN);

    // The console's own pages pass, with either header.
    for headers in [
        &[("sec-fetch-site", "same-origin")][..],
        &[
            ("origin", "http://127.0.0.1:3000"),
            ("host", "127.0.0.1:3000"),
        ][..],
    ] {
        let res = send(&f.router, post(headers)).await;
        assert_eq!(res.status(), StatusCode::OK, "{headers:?}");
    }
    // The change happened and was recorded in the audit trail.
    let res = send(
        &f.router,
        request(
            Method::POST,
            "/api/admin_audit",
            "filter%5Bactor%5D=ada&filter%5Bkind%5D=account.&filter%5Brange%5D=1h",
            Some(admin),
        ),
    )
    .await;
    let body =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(
        body.contains("account.role") && body.contains("role set to soc"),
        "{body}"
    );
}

#[tokio::test]
async fn a_plain_form_post_is_answered_with_a_redirect_back() {
    let f = fixture().await;
    let admin = &f.cookies[0].1;
    let mut req = request(
        Method::POST,
        "/api/admin_create_account",
        "name=newbie&role=viewer&password=another+long+password",
        Some(admin),
    );
    req.headers_mut()
        .insert(ACCEPT, "text/html,application/xhtml+xml".parse().unwrap());
    let res = send(&f.router, req).await;
    assert!(res.status().is_redirection(), "{}", res.status());
    let location = res.headers().get(LOCATION).unwrap().to_str().unwrap();
    assert!(
        location.starts_with("/admin/accounts?notice="),
        "{location}"
    );
    assert!(res.headers().get(SET_COOKIE).is_none());
    // A refused one comes back with the reason.
    let mut req = request(
        Method::POST,
        "/api/admin_create_account",
        "name=newbie&role=viewer&password=another+long+password",
        Some(admin),
    );
    req.headers_mut()
        .insert(ACCEPT, "text/html".parse().unwrap());
    let res = send(&f.router, req).await;
    let location = res.headers().get(LOCATION).unwrap().to_str().unwrap();
    assert!(
        location.contains("error=a%20user%20with%20this%20name"),
        "{location}"
    );
}

fn cookie<'a>(f: &'a Fixture, role: &str) -> &'a str {
    &f.cookies.iter().find(|(r, _)| *r == role).unwrap().1
}

async fn call(f: &Fixture, path: &str, args: &str, cookie: &str) -> Response<Body> {
    let method = leptos::server_fn::axum::server_fn_paths()
        .find(|(p, _)| *p == path)
        .map_or(Method::POST, |(_, m)| m);
    send(&f.router, request(method, path, args, Some(cookie))).await
}

const FEATURE_LIMITS: &str = "burst=1&tokens_per_minute=1&tokens_per_day=1";

/// Caller mistakes and the status each answers (never a 500): `(function, arguments, role,
/// status)`. 400: arguments that do not fit or are refused; 404: ids that name nothing;
/// 409: the state forbids it.
const MISTAKES: &[(&str, &str, &str, u16)] = &[
    // Arguments the function cannot even read.
    ("/api/admin_guardrail", "", "admin", 400),
    ("/api/overview", "range=7y", "viewer", 400),
    // Refused input.
    (
        "/api/admin_guardrail",
        "id=not%20valid&version=DRAFT",
        "admin",
        400,
    ),
    (
        "/api/admin_guardrail",
        "id=default&version=v1",
        "admin",
        400,
    ),
    (
        "/api/admin_save_draft",
        "id=default&blocked_input=&blocked_output=b",
        "admin",
        400,
    ),
    ("/api/admin_check_regex", "pattern=%28", "admin", 400),
    (
        "/api/admin_test_guardrail",
        "id=default&version=DRAFT&source=SIDEWAYS&text=x",
        "admin",
        400,
    ),
    (
        "/api/admin_create_guardrail",
        "name=not%20valid",
        "admin",
        400,
    ),
    (
        "/api/admin_audit",
        "filter%5Bactor%5D=&filter%5Bkind%5D=&filter%5Brange%5D=1y",
        "admin",
        400,
    ),
    ("/api/investigate", "user=&range=24h", "soc", 400),
    ("/api/investigate", "user=alice&range=1y", "soc", 400),
    (
        "/api/open_record",
        "request_id=not%20an%20id&reason=access%20test",
        "soc",
        400,
    ),
    ("/api/open_record", "request_id=r-1&reason=no", "soc", 400),
    // Ids that name nothing.
    (
        "/api/admin_guardrail",
        "id=nope&version=DRAFT",
        "admin",
        404,
    ),
    (
        "/api/admin_guardrail",
        "id=default&version=99",
        "admin",
        404,
    ),
    (
        "/api/admin_save_draft",
        "id=nope&blocked_input=a&blocked_output=b",
        "admin",
        404,
    ),
    ("/api/admin_create_version", "id=nope", "admin", 404),
    (
        "/api/admin_delete_guardrail",
        "id=nope&confirm=nope",
        "admin",
        404,
    ),
    (
        "/api/admin_test_guardrail",
        "id=default&version=99&source=INPUT&text=x",
        "admin",
        404,
    ),
    (
        "/api/admin_guardrail_diff",
        "id=default&left=1&right=99",
        "admin",
        404,
    ),
    ("/api/insights_stop", "id=none&back=%2Finsights", "soc", 404),
    ("/api/insights_csv", "id=none", "soc", 404),
    (
        "/api/open_record",
        "request_id=r-unknown&reason=access%20test",
        "soc",
        404,
    ),
    // The state forbids it: the default guardrail is pinned by the default feature.
    (
        "/api/admin_delete_guardrail",
        "id=default&confirm=default",
        "admin",
        409,
    ),
];

#[tokio::test]
async fn caller_mistakes_answer_4xx_not_500() {
    let f = fixture().await;
    let mut failures = Vec::new();
    let features = [
        (
            format!(
                "feature=nope&model=dev&guardrail_version=1&requests_per_minute=1&{FEATURE_LIMITS}"
            ),
            404,
        ),
        (
            format!(
                "feature=default&model=dev&guardrail_version=1&requests_per_minute=0&{FEATURE_LIMITS}"
            ),
            400,
        ),
    ];
    let cases = MISTAKES
        .iter()
        .map(|&(path, args, role, status)| (path, args.to_string(), role, status))
        .chain(
            features
                .into_iter()
                .map(|(args, status)| ("/api/admin_save_feature", args, "admin", status)),
        );
    for (path, args, role, status) in cases {
        let res = call(&f, path, &args, cookie(&f, role)).await;
        let got = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        // The body is still the error the browser's client decodes.
        let decoded = serde_json::from_slice::<app::api::ApiError>(&body);
        if got != status || decoded.is_err() {
            failures.push(format!(
                "{path}?{args} as {role}: {got} (want {status}) {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ));
        }
    }
    // A name taken is a conflict.
    let admin = cookie(&f, "admin");
    let create = "name=dup-check&description=";
    let first = call(&f, "/api/admin_create_guardrail", create, admin).await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = call(&f, "/api/admin_create_guardrail", create, admin).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(
        failures.is_empty(),
        "caller mistakes with the wrong status:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn another_analysts_query_is_not_found() {
    let f = fixture().await;
    let sam = cookie(&f, "soc");
    let started = call(
        &f,
        "/api/insights_start",
        "query=fields%20%40timestamp&range=1h",
        sam,
    )
    .await;
    assert_eq!(started.status(), StatusCode::OK);
    let location = started.headers().get(LOCATION).unwrap().to_str().unwrap();
    let id = location
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("id="))
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| panic!("no query id in {location}"))
        .to_string();
    // Someone else's id answers exactly as an unknown one.
    for (path, args) in [
        ("/api/insights_csv", format!("id={id}")),
        ("/api/insights_stop", format!("id={id}&back=%2Finsights")),
    ] {
        let res = call(&f, path, &args, &f.other_soc).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path} as sol");
    }
    // Its owner may stop it, and is sent back to the Insights page only (a `back` no header
    // can carry is not used).
    let res = call(
        &f,
        "/api/insights_stop",
        &format!("id={id}&back=%2Finsights%3Fq%3Da%0Ab"),
        sam,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers().get(LOCATION).unwrap(), "/insights");
}

/// Ends a textarea early if written raw; the marker element and the refresh must never parse.
const HOSTILE: &str = "</textarea><meta http-equiv=\"refresh\" content=\"0;url=/x\"><b id=\"gp-injected\">x</b> &lt;b&gt;";

/// Every `<textarea>` of a page: its `name` and its value as the browser's parser reads it
/// (character references decoded, one leading line feed dropped). A raw `</textarea>` in the
/// text ends the element early, so the value comes out cut.
fn textareas(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<textarea") {
        let tag_end = at + rest[at..].find('>').unwrap();
        let tag = &rest[at..tag_end];
        let name = tag
            .split("name=\"")
            .nth(1)
            .and_then(|t| t.split('"').next())
            .unwrap_or("")
            .to_string();
        let content_end = tag_end + rest[tag_end..].find("</textarea>").unwrap();
        let raw = &rest[tag_end + 1..content_end];
        let raw = raw.strip_prefix('\n').unwrap_or(raw);
        let value = raw
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&");
        out.push((name, value));
        rest = &rest[content_end..];
    }
    out
}

async fn page(f: &Fixture, path: &str, role: &str) -> String {
    let mut req = request(Method::GET, path, "", Some(cookie(f, role)));
    req.headers_mut()
        .insert(ACCEPT, "text/html".parse().unwrap());
    let res = send(&f.router, req).await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

#[tokio::test]
async fn stored_and_linked_text_stays_text_in_every_textarea() {
    let f = fixture().await;
    let admin = cookie(&f, "admin");
    let q = app::admin::server::query_escape;
    let h = q(HOSTILE);
    // Every free-text field of the guardrail editor, written as the console writes it (the
    // Bedrock-compatible API stores the same fields).
    let form = format!(
        "id=default&blocked_input={h}&blocked_output={h}&topic_name%5B0%5D=Evil&\
         topic_definition%5B0%5D={h}&topic_examples%5B0%5D={h}&words={h}"
    );
    let res = call(&f, "/api/admin_save_draft", &form, admin).await;
    assert_eq!(res.status(), StatusCode::OK);

    let want = |names: &[&str], html: &str, page: &str| {
        for marker in ["<meta http-equiv=\"refresh\"", "<b id=\"gp-injected\""] {
            if let Some(at) = html.find(marker) {
                let from = html.floor_char_boundary(at.saturating_sub(300));
                panic!(
                    "{page}: the hostile text became markup: …{}",
                    &html[from..at + 60]
                );
            }
        }
        let found = textareas(html);
        for name in names {
            let value = found
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{page}: no textarea {name} in {found:?}"));
            assert_eq!(value, HOSTILE, "{page}: textarea {name}");
        }
    };
    let editor = page(
        &f,
        &format!("/guardrails/default?test_version=DRAFT&text={h}"),
        "admin",
    )
    .await;
    want(
        &[
            "blocked_input",
            "blocked_output",
            "topic_definition[0]",
            "topic_examples[0]",
            "words",
            "text",
        ],
        &editor,
        "guardrail editor",
    );
    let insights = page(&f, &format!("/insights?query={h}&range=1h"), "soc").await;
    want(&["query"], &insights, "insights");
}
