//! The console's access matrix, walked through the real router (no socket) over real SQLite
//! stores and a real gateway state in a temp dir: for every page route and every server
//! function, and for each role (admin, soc, viewer) and no session, the expected allow/deny.
//!
//! The tables below are the contract. The test fails when the app has a route or a server
//! function the tables do not name (so a new one must be given its roles here), and when a table
//! names one that no longer exists. It also checks the cross-origin (CSRF) guard on
//! state-changing requests.
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
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let accounts = Accounts::open_with_cost(&dir.path().join("console.db"), CHEAP).unwrap();
    let now = gateway::now_ms();
    for (name, role) in [
        ("ada", Role::Admin),
        ("sam", Role::Soc),
        ("vic", Role::Viewer),
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
