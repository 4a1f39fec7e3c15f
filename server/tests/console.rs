//! The console router without a socket (`tower::ServiceExt::oneshot`), over a real SQLite audit
//! store and account store in a temp dir: the session gate, sign-in with and without
//! JavaScript, the overview's numbers, sign-out, the throttle, and the security headers.
#![expect(clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::header::{ACCEPT, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{Request, Response, StatusCode};
use gateway::audit::sqlite::SqliteAuditStore;
use gateway::audit::{AuditEvent, AuditStore};
use http_body_util::BodyExt;
use leptos_config::LeptosOptions;
use tower::ServiceExt;

use app::accounts::Accounts;
use app::accounts::events::{EventFilter, UNKNOWN_ACCOUNT};
use app::accounts::password::HashCost;
use app::context::Console;

const CHEAP: HashCost = HashCost {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

struct Fixture {
    _dir: tempfile::TempDir,
    router: Router,
    audit: Arc<SqliteAuditStore>,
    accounts: Accounts,
    password: String,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let accounts = Accounts::open_with_cost(&dir.path().join("console.db"), CHEAP).unwrap();
    let password = accounts
        .ensure_admin(gateway::now_ms())
        .await
        .unwrap()
        .unwrap();
    let audit = Arc::new(SqliteAuditStore::open(&dir.path().join("audit.db")).unwrap());
    std::fs::create_dir_all(dir.path().join("site/pkg")).unwrap();
    std::fs::write(
        dir.path().join("site/pkg/console.css"),
        "body { color: black; }\n".repeat(100),
    )
    .unwrap();
    let options = LeptosOptions::builder()
        .output_name("console")
        .site_root(dir.path().join("site").to_string_lossy().into_owned())
        .build();
    let router = server::console::router(
        options,
        Console {
            accounts: accounts.clone(),
            audit: audit.clone(),
            soc: None,
        },
    );
    Fixture {
        _dir: dir,
        router,
        audit,
        accounts,
        password,
    }
}

async fn send(router: &Router, req: Request<Body>) -> Response<Body> {
    router.clone().oneshot(req).await.unwrap()
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut req = Request::get(path).header(ACCEPT, "text/html");
    if let Some(cookie) = cookie {
        req = req.header(COOKIE, cookie);
    }
    req.body(Body::empty()).unwrap()
}

/// A server-function call: `accept` is `text/html` for a plain form post, JSON for the client.
fn post_form(path: &str, form: &str, accept: &str, cookie: Option<&str>) -> Request<Body> {
    let mut req = Request::post(path)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, accept);
    if let Some(cookie) = cookie {
        req = req.header(COOKIE, cookie);
    }
    req.body(Body::from(form.to_string())).unwrap()
}

fn header(res: &Response<Body>, name: impl axum::http::header::AsHeaderName) -> &str {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

async fn body(res: Response<Body>) -> String {
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

/// The text inside the element with `data-testid={test_id}` (no nested tags).
fn text_of<'a>(html: &'a str, test_id: &str) -> &'a str {
    let start = html
        .find(&format!("data-testid=\"{test_id}\""))
        .unwrap_or_else(|| panic!("no {test_id} in {html}"));
    let rest = &html[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest[open..].find('<').unwrap();
    &rest[open..open + close]
}

fn login_form(password: &str) -> String {
    format!("name=admin&password={password}")
}

/// Sign in as a plain form would and return the `name=value` cookie pair.
async fn sign_in(f: &Fixture) -> String {
    let res = send(
        &f.router,
        post_form("/api/login", &login_form(&f.password), "text/html", None),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(header(&res, LOCATION), "/");
    let cookie = header(&res, SET_COOKIE);
    cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn every_page_but_login_needs_a_session() {
    let f = fixture().await;
    for path in ["/", "/?range=24h", "/somewhere/else"] {
        let res = send(&f.router, get(path, None)).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(header(&res, LOCATION), "/login", "{path}");
    }
    let res = send(
        &f.router,
        post_form("/api/overview", "range=1h", "application/json", None),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(res).await, "\"Unauthorized\"");
    let res = send(
        &f.router,
        post_form(
            "/api/overview",
            "range=1h",
            "application/json",
            Some("gp_session=forged"),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn pages_carry_a_nonce_csp_and_the_security_headers() {
    let f = fixture().await;
    let res = send(&f.router, get("/login", None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "x-frame-options"), "DENY");
    assert_eq!(header(&res, "x-content-type-options"), "nosniff");
    assert_eq!(header(&res, "referrer-policy"), "no-referrer");
    assert_eq!(header(&res, "cache-control"), "no-store");
    let csp = header(&res, "content-security-policy").to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap()
        .to_string();
    let html = body(res).await;
    assert!(html.contains(r#"<form action="/api/login" method="post">"#));
    // Every inline script carries this response's nonce.
    let scripts = html.matches("<script").count();
    assert!(scripts >= 1);
    assert_eq!(html.matches(&format!("nonce=\"{nonce}\"")).count(), scripts);

    // Redirects and server-function answers get a locked-down policy too.
    let res = send(&f.router, get("/", None)).await;
    assert!(header(&res, "content-security-policy").starts_with("default-src 'none'"));
    assert_eq!(header(&res, "x-frame-options"), "DENY");
}

#[tokio::test]
async fn plain_form_sign_in_then_the_overview_shows_the_audit_counts() {
    let f = fixture().await;
    let now = gateway::now_ms();
    for (i, action) in ["NONE", "INTERVENED", "NONE"].iter().enumerate() {
        f.audit
            .record(&AuditEvent {
                timestamp: now - 1_000 * i as i64,
                request_id: format!("req-{i}"),
                guardrail_action: action.to_string(),
                status: 200,
                ..AuditEvent::default()
            })
            .await
            .unwrap();
    }

    let res = send(
        &f.router,
        post_form(
            "/api/login",
            &login_form(&f.password),
            "text/html,application/xhtml+xml",
            None,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let set_cookie = header(&res, SET_COOKIE).to_string();
    assert!(set_cookie.starts_with("gp_session="), "{set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();

    let res = send(&f.router, get("/?range=15m", Some(&cookie))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = body(res).await;
    assert!(html.contains(r#"data-testid="requests-chart""#), "{html}");
    assert!(html.contains("<svg"));
    assert!(html.contains("requests / min"));
    assert_eq!(text_of(&html, "stat-requests"), "3");
    assert_eq!(text_of(&html, "stat-interventions"), "1");

    let res = send(
        &f.router,
        post_form(
            "/api/overview",
            "range=24h",
            "application/json",
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body(res).await).unwrap();
    assert_eq!(json["range"], "24h");
    assert_eq!(json["requests"], 3);
    assert_eq!(json["interventions"], 1);
    assert!(json["chart_svg"].as_str().unwrap().starts_with("<svg"));

    // Signed in, /login sends you home.
    let res = send(&f.router, get("/login", Some(&cookie))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&res, LOCATION), "/");
}

#[tokio::test]
async fn failed_sign_ins_are_generic_and_throttled() {
    let f = fixture().await;
    // Without JavaScript: back to the form with a code, no cookie.
    let res = send(
        &f.router,
        post_form("/api/login", &login_form("wrong"), "text/html", None),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(header(&res, LOCATION), "/login?error=invalid");
    assert_eq!(header(&res, SET_COOKIE), "");
    // Through the client: 401 and the same error for an unknown user.
    let res = send(
        &f.router,
        post_form(
            "/api/login",
            "name=nobody&password=x",
            "application/json",
            None,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(res).await, "\"InvalidCredentials\"");

    for _ in 0..4 {
        send(
            &f.router,
            post_form("/api/login", &login_form("wrong"), "text/html", None),
        )
        .await;
    }
    // The sixth attempt is refused before the password is looked at.
    let res = send(
        &f.router,
        post_form("/api/login", &login_form(&f.password), "text/html", None),
    )
    .await;
    assert_eq!(header(&res, LOCATION), "/login?error=throttled");
    assert_eq!(header(&res, SET_COOKIE), "");
}

/// Issue 13, findings 15 and 16, through the route: 600 made-up names (with line breaks) add a
/// few counted audit rows under "unknown account"; a failure for a real account and the real
/// sign-in stay on the first page; a name over 256 characters is refused as malformed.
#[tokio::test]
async fn a_flood_of_made_up_names_leaves_the_audit_trail_readable() {
    let f = fixture().await;
    sign_in(&f).await;
    let res = send(
        &f.router,
        post_form("/api/login", &login_form("wrong"), "application/json", None),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    for i in 0..600 {
        let form = format!("name=n{i:x}%0A2026-01-01%20INFO%20forged&password=wrong");
        let res = send(
            &f.router,
            post_form("/api/login", &form, "application/json", None),
        )
        .await;
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&res.status()),
            "{}",
            res.status()
        );
    }
    let page = f
        .accounts
        .events(EventFilter {
            limit: 20,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    let refused: Vec<_> = page
        .iter()
        .filter(|e| e.kind.starts_with("login."))
        .collect();
    // Failed and throttled, for admin and for unknown accounts, in at most two minutes.
    assert!((3..=8).contains(&refused.len()), "{page:?}");
    assert!(
        refused
            .iter()
            .all(|e| e.actor == "admin" || e.actor == UNKNOWN_ACCOUNT),
        "{page:?}"
    );
    assert!(
        refused
            .iter()
            .any(|e| e.actor == "admin" && e.kind == "login.failed"),
        "{page:?}"
    );
    assert!(
        page.iter().any(|e| e.actor == "admin" && e.kind == "login"),
        "{page:?}"
    );
    assert_eq!(page.len(), refused.len() + 1, "{page:?}");

    let form = format!("name={}&password=x", "a".repeat(300));
    let res = send(
        &f.router,
        post_form("/api/login", &form, "application/json", None),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(body(res).await.contains("at most 256 characters"));
}

#[tokio::test]
async fn sign_out_ends_the_session_and_sign_in_rotates_it() {
    let f = fixture().await;
    let first = sign_in(&f).await;
    // Signing in again with the old cookie replaces it.
    let res = send(
        &f.router,
        post_form(
            "/api/login",
            &login_form(&f.password),
            "text/html",
            Some(&first),
        ),
    )
    .await;
    let second = header(&res, SET_COOKIE)
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(first, second);
    let res = send(&f.router, get("/", Some(&first))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = send(&f.router, get("/", Some(&second))).await;
    assert_eq!(res.status(), StatusCode::OK);

    let res = send(
        &f.router,
        post_form("/api/logout", "", "text/html", Some(&second)),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(header(&res, LOCATION), "/login");
    assert!(header(&res, SET_COOKIE).contains("Max-Age=0"));
    let res = send(&f.router, get("/", Some(&second))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn assets_are_public_compressed_and_revalidated() {
    let f = fixture().await;
    let req = Request::get("/pkg/console.css")
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .unwrap();
    let res = send(&f.router, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "content-encoding"), "gzip");
    assert_eq!(header(&res, "cache-control"), "no-cache");
    assert_eq!(header(&res, "x-content-type-options"), "nosniff");
    let res = send(&f.router, get("/pkg/missing.js", None)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Pages are never compressed (no secret shares a compressed stream with reflected input).
    let req = Request::get("/login")
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .unwrap();
    let res = send(&f.router, req).await;
    assert_eq!(header(&res, "content-encoding"), "");
}

#[tokio::test]
async fn behind_an_https_proxy_the_cookie_is_secure() {
    let f = fixture().await;
    let mut req = post_form("/api/login", &login_form(&f.password), "text/html", None);
    req.headers_mut()
        .insert("x-forwarded-proto", "https".parse().unwrap());
    let res = send(&f.router, req).await;
    assert!(header(&res, SET_COOKIE).ends_with("; Secure"));
}

/// Separation of duties (`console.soc_grant_requires_second_admin`): through the server
/// functions, an admin's request to create a SOC account only files it; the same admin cannot
/// approve it; another admin can, and the audit trail says who granted what to whom.
#[tokio::test]
async fn a_soc_grant_waits_for_a_second_admin_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = Accounts::open_with_cost(&dir.path().join("console.db"), CHEAP)
        .unwrap()
        .with_soc_grant_approval(true);
    let now = gateway::now_ms();
    let mut cookies = Vec::new();
    for name in ["ada", "bea"] {
        accounts
            .create_user(
                name,
                "a long enough password",
                app::accounts::Role::Admin,
                now,
            )
            .await
            .unwrap();
        let s = accounts
            .login(name, "a long enough password", "127.0.0.1", None, now)
            .await
            .unwrap();
        cookies.push(format!("gp_session={}", s.token));
    }
    let (ada, bea) = (cookies[0].as_str(), cookies[1].as_str());
    let audit = Arc::new(SqliteAuditStore::open(&dir.path().join("audit.db")).unwrap());
    let options = LeptosOptions::builder()
        .output_name("console")
        .site_root(dir.path().join("site").to_string_lossy().into_owned())
        .build();
    let router = server::console::router(
        options,
        Console {
            accounts: accounts.clone(),
            audit,
            soc: None,
        },
    );
    let call = |path: &'static str, form: String, cookie: &str| {
        post_form(path, &form, "application/json", Some(cookie))
    };

    let res = send(
        &router,
        call(
            "/api/admin_create_account",
            "name=sam&role=soc&password=a+long+enough+password".into(),
            ada,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, "true", "the change waits for approval");
    assert!(
        accounts
            .login("sam", "a long enough password", "127.0.0.1", None, now)
            .await
            .is_err()
    );
    let res = send(
        &router,
        call("/api/admin_pending_grants", String::new(), bea),
    )
    .await;
    let pending: serde_json::Value = serde_json::from_str(&body(res).await).unwrap();
    assert_eq!(pending[0]["target"], "sam");
    assert_eq!(pending[0]["requested_by"], "ada");
    let id = pending[0]["id"].as_i64().unwrap();

    // The requester cannot approve their own request.
    let res = send(
        &router,
        call("/api/admin_approve_grant", format!("id={id}"), ada),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(body(res).await.contains("another admin"));
    assert!(
        accounts
            .login("sam", "a long enough password", "127.0.0.1", None, now)
            .await
            .is_err()
    );
    // Another admin can.
    let res = send(
        &router,
        call("/api/admin_approve_grant", format!("id={id}"), bea),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let sam = accounts
        .login("sam", "a long enough password", "127.0.0.1", None, now)
        .await
        .unwrap();
    assert_eq!(sam.user.role, app::accounts::Role::Soc);

    let res = send(
        &router,
        call(
            "/api/admin_audit",
            "filter%5Bactor%5D=&filter%5Bkind%5D=account.soc_grant&filter%5Brange%5D=24h".into(),
            bea,
        ),
    )
    .await;
    let page: serde_json::Value = serde_json::from_str(&body(res).await).unwrap();
    let rows = page["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{page}");
    assert_eq!(rows[0]["actor"], "bea");
    assert_eq!(rows[0]["target"], "sam");
    assert_eq!(
        rows[0]["detail"],
        "soc role granted by ada to sam (new account with the soc role); approved by bea"
    );
}
