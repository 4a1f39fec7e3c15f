//! A fault-injecting TCP proxy for the AWS fault tests: it sits between the gateway and the
//! emulator (the gateway's per-service endpoint points at [`FaultProxy::url`]) and the test
//! switches it between [`Mode`]s at any time:
//!
//! - [`Mode::Pass`]: bytes flow both ways untouched.
//! - [`Mode::Refuse`]: the peer is "stopped": the listening socket is closed (new connections
//!   are refused) and every open connection is reset.
//! - [`Mode::Hang`]: the peer accepts connections and reads requests but never answers.
//! - [`Mode::Throttle`]: every request is answered `503` with a `ThrottlingException` body.
//! - [`Mode::Reject`]: every request is answered `400 EntityTooLarge` in S3's XML error shape: a
//!   refusal of the request itself, which no retry will change (for the S3 peer).
//!
//! Each switch resets every connection opened before it (RST, so the client sees the peer go
//! away rather than a clean close), and a switch back to [`Mode::Pass`] re-binds the same port:
//! the peer is "restarted". The emulator itself keeps running (moto holds its state in memory,
//! so stopping it would wipe the buckets and keys under test); the proxy takes away its
//! presence on the network instead. It runs on its own thread and runtime, so it works the same
//! from any test runtime, and stops when dropped.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Refuse,
    Hang,
    Throttle,
    Reject,
}

/// Largest request head read in [`Mode::Throttle`].
const MAX_HEAD: usize = 64 * 1024;

/// A running proxy to one upstream address; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    /// (mode, generation): every switch bumps the generation, which resets older connections.
    control: watch::Sender<(Mode, u64)>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    /// Proxy 127.0.0.1:<free port> to `upstream` (`http://host:port` or `host:port`).
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .expect("proxy runtime");
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = std_listener.local_addr().expect("proxy addr");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let (control, watch_rx) = watch::channel((Mode::Pass, 0u64));
        runtime.spawn(async move {
            let listener = TcpListener::from_std(std_listener).expect("tokio listener");
            serve(Some(listener), addr, upstream, watch_rx).await;
        });
        FaultProxy {
            addr,
            control,
            runtime: Some(runtime),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switch mode; connections opened before the switch are reset.
    pub fn set(&self, mode: Mode) {
        self.control.send_modify(|(m, generation)| {
            *m = mode;
            *generation += 1;
        });
        // Give the accept loop a moment to close or re-bind the listener.
        std::thread::sleep(Duration::from_millis(50));
    }

    pub fn mode(&self) -> Mode {
        self.control.borrow().0
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn serve(
    mut listener: Option<TcpListener>,
    addr: SocketAddr,
    upstream: String,
    mut control: watch::Receiver<(Mode, u64)>,
) {
    loop {
        let (mode, generation) = *control.borrow_and_update();
        match (mode, listener.is_some()) {
            (Mode::Refuse, true) => listener = None,
            (Mode::Refuse, false) => {}
            (_, false) => listener = Some(rebind(addr).await),
            (_, true) => {}
        }
        let Some(l) = &listener else {
            if control.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            accepted = l.accept() => {
                if let Ok((client, _)) = accepted {
                    let up = upstream.clone();
                    let ctl = control.clone();
                    tokio::spawn(connection(client, up, mode, generation, ctl));
                }
            }
            changed = control.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Bind the same address again (the port was ours a moment ago).
async fn rebind(addr: SocketAddr) -> TcpListener {
    for _ in 0..100 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        if socket.bind(addr).is_ok()
            && let Ok(l) = socket.listen(1024)
        {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the proxy could not re-bind {addr}");
}

/// Resolves when the generation moves past `generation` (or the proxy stops).
async fn superseded(mut control: watch::Receiver<(Mode, u64)>, generation: u64) {
    loop {
        if control.borrow_and_update().1 != generation {
            return;
        }
        if control.changed().await.is_err() {
            return;
        }
    }
}

async fn connection(
    mut client: TcpStream,
    upstream: String,
    mode: Mode,
    generation: u64,
    control: watch::Receiver<(Mode, u64)>,
) {
    let work = async {
        match mode {
            Mode::Pass => {
                if let Ok(mut up) = TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                }
            }
            Mode::Hang => {
                let mut sink = [0u8; 8192];
                while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
                // The client gave up; keep the socket until the switch resets it.
                std::future::pending::<()>().await;
            }
            Mode::Throttle => {
                let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
                let _ = answer_every_request(
                    &mut client,
                    "503 Service Unavailable\r\ncontent-type: application/x-amz-json-1.1\r\n\
                     x-amzn-errortype: ThrottlingException",
                    body,
                )
                .await;
            }
            Mode::Reject => {
                let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>EntityTooLarge</Code>\
                            <Message>Your proposed upload exceeds the maximum allowed size</Message></Error>";
                let _ = answer_every_request(
                    &mut client,
                    "400 Bad Request\r\ncontent-type: application/xml",
                    body,
                )
                .await;
            }
            Mode::Refuse => {}
        }
    };
    let reset = tokio::select! {
        () = work => false,
        () = superseded(control, generation) => true,
    };
    if reset {
        // RST instead of FIN: the peer went away. (A zero linger never blocks on drop.)
        #[expect(deprecated, reason = "SO_LINGER 0 is the point: reset, do not block")]
        let _ = client.set_linger(Some(Duration::ZERO));
    }
}

/// Answer every request on the connection with `status_and_headers` (the status line's rest and
/// header lines, without the last CRLF) and `body`.
async fn answer_every_request(
    client: &mut TcpStream,
    status_and_headers: &str,
    body: &str,
) -> std::io::Result<()> {
    loop {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > MAX_HEAD || client.read(&mut byte).await? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut rest = vec![0u8; length.min(64 * 1024 * 1024)];
        client.read_exact(&mut rest).await?;
        let response = format!(
            "HTTP/1.1 {status_and_headers}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        client.write_all(response.as_bytes()).await?;
    }
}

/// Whether `url`'s port accepts connections right now (for tests of the proxy itself).
pub fn accepts(url: &str) -> bool {
    let addr = url.trim_start_matches("http://");
    std::net::TcpStream::connect_timeout(
        &addr.parse().expect("socket address"),
        Duration::from_millis(200),
    )
    .is_ok()
}
