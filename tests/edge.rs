//! Black-box tests of the network edge (`gateway::net`) on the real `gateway` binary over real
//! sockets: idle-connection floods, slow headers and bodies, the per-address cap, and the client
//! address behind a trusted proxy.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fail loudly"
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use e2e::Gateway;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn addr(gw: &Gateway) -> SocketAddr {
    gw.base.trim_start_matches("http://").parse().unwrap()
}

/// A connection from a chosen loopback source address (127.0.0.x are all local on Linux).
async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// A client whose connections come from `source`.
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

/// Whether the server closes `stream` (EOF or reset, after any response) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn two_thousand_idle_connections_leave_room_for_a_real_request() {
    // The test holds 2,000 sockets itself.
    gateway::net::raise_nofile_limit();
    // The gateway gets 1,024 descriptors: before the caps, 2,000 idle connections exhausted
    // them and every later connection waited in the backlog.
    let gw = Gateway::start_limited(tempfile::tempdir().unwrap(), None, &[], Some(1024));
    let to = addr(&gw);
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(TcpStream::connect(to).await.unwrap());
    }
    // Let the server take them off the backlog.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let resp = client_from("127.0.0.2")
        .get(gw.url("/healthz"))
        .send()
        .await
        .expect("a real request is served despite the idle flood");
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
}

#[tokio::test]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    let gw = Gateway::start(
        None,
        &[
            ("GOLDEN_PATH_SERVER__HEADER_READ_TIMEOUT_SECS", "1"),
            ("GOLDEN_PATH_SERVER__BODY_READ_TIMEOUT_SECS", "1"),
        ],
    );
    let to = addr(&gw);

    // Slowloris: headers one byte every 100 ms, never finished.
    let stream = TcpStream::connect(to).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let head = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {}",
            "a".repeat(200)
        );
        for byte in head.bytes() {
            if write.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(4) {
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(500), read.read(&mut buf)).await
        {
            closed = true;
            break;
        }
    }
    writer.abort();
    assert!(closed, "a slowloris connection stays open");
    assert!(started.elapsed() < Duration::from_secs(3));

    // A body promised and never sent: the request ends within the body timeout.
    let token = gw.token("user-1", "default");
    let mut stream = TcpStream::connect(to).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"messages\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(4), async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "a stalled request body holds the request");
    assert!(started.elapsed() < Duration::from_secs(3));
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
}

#[tokio::test]
async fn connections_per_address_are_capped() {
    let gw = Gateway::start(
        None,
        &[("GOLDEN_PATH_SERVER__MAX_CONNECTIONS_PER_ADDR", "4")],
    );
    let to = addr(&gw);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from("127.0.0.1", to).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fifth = connect_from("127.0.0.1", to).await;
    assert!(
        closed_within(&mut fifth, Duration::from_secs(2)).await,
        "a fifth connection from one address is served"
    );
    // Another address is not affected.
    let resp = client_from("127.0.0.2")
        .get(gw.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A connection that ends gives its place back.
    drop(held.pop());
    let mut served = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(resp) = client_from("127.0.0.1")
            .get(gw.url("/healthz"))
            .send()
            .await
        {
            served = resp.status() == 200;
            break;
        }
    }
    assert!(served, "the freed place is not given back");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_audit_trail_records_the_client() {
    let gw = Gateway::start(
        None,
        &[("GOLDEN_PATH_SERVER__TRUSTED_PROXIES", "[\"127.0.0.1/32\"]")],
    );
    let token = gw.token("user-1", "default");
    let chat = |source: &'static str| {
        let token = token.clone();
        let url = gw.url("/v1/chat/completions");
        async move {
            let resp = client_from(source)
                .post(url)
                .bearer_auth(token)
                // The left-most hop is what a client wrote; the proxy appended the right-most.
                .header("x-forwarded-for", "198.51.100.66, 203.0.113.9")
                .json(&json!({"messages": [{"role": "user", "content": "hello"}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.headers()["x-request-id"].to_str().unwrap().to_string()
        }
    };
    let via_proxy = chat("127.0.0.1").await;
    let direct = chat("127.0.0.2").await;
    let db = gw.audit_db();
    let source_ip = |id: &str| -> String {
        db.query_row(
            "SELECT source_ip FROM audit_events WHERE request_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(source_ip(&via_proxy), "203.0.113.9");
    // An untrusted peer's X-Forwarded-For is ignored.
    assert_eq!(source_ip(&direct), "127.0.0.2");
}
