//! The network edge both listeners (gateway and console) share: [`serve`] runs HTTP/1 with a
//! header-read timeout that also ends idle keep-alive connections, a deadline on reading each
//! request body (never on the response, so streams can run long), and connection caps in total
//! and per address; [`client_addr`] finds the client's address behind trusted proxies and
//! [`serve`] puts it on every request as [`ClientAddr`]; [`raise_nofile_limit`] lifts the
//! open-file limit so the caps, not the descriptor table, decide what is refused.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap, Request};
use futures::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use crate::config::ServerConfig;

/// The client's address as the edge resolved it: the TCP peer, or, when the peer is a trusted
/// proxy, the right-most untrusted `X-Forwarded-For` hop ([`client_addr`]). [`serve`] sets it
/// on every request, the Lambda entry from API Gateway's source IP. Everything that records or
/// throttles by address (sign-in throttle, audit events, logs) reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The address on a request, as text; `unknown` where none was set (a router driven
    /// without a socket, as in tests).
    pub fn text(extensions: &Extensions) -> String {
        extensions
            .get::<ClientAddr>()
            .map(|ClientAddr(ip)| ip.to_string())
            .unwrap_or_else(|| "unknown".into())
    }
}

/// One address block, `10.42.1.0/24` or `fd00::/8` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || format!("{text:?} is not an IP address or CIDR block");
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let addr = addr.parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        Ok(Cidr {
            net: masked(addr, prefix),
            prefix,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.net.is_ipv4() && masked(ip, self.prefix) == self.net
    }
}

/// `ip` with all but its first `prefix` bits cleared.
fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

/// The most entries `server.trusted_proxies` may have.
const MAX_TRUSTED_PROXIES: usize = 256;

/// The proxies whose `X-Forwarded-For` is believed (`server.trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        if entries.len() > MAX_TRUSTED_PROXIES {
            return Err(format!("at most {MAX_TRUSTED_PROXIES} entries"));
        }
        entries
            .iter()
            .map(|e| Cidr::parse(e))
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|cidr| cidr.contains(ip))
    }
}

/// The client's address for a request that arrived from `peer`.
///
/// From an untrusted peer: the peer, whatever the headers say. From a trusted proxy: walk
/// `X-Forwarded-For` from the right (the hops the proxies appended), skipping trusted hops; the
/// first untrusted hop is the client. Hops left of it were written by the client and are never
/// read. A malformed hop before that point makes it the peer; if every hop is trusted, the
/// left-most one. Linear in the header's length, and stops at the first untrusted hop.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    let mut leftmost = None;
    // Several X-Forwarded-For fields read as one list, in order.
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        for hop in text.rsplit(',') {
            let Some(ip) = parse_hop(hop) else {
                return peer;
            };
            if !trusted.contains(ip) {
                return ip;
            }
            leftmost = Some(ip);
        }
    }
    leftmost.unwrap_or(peer)
}

/// One `X-Forwarded-For` hop: an address, or an address with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// What [`serve`] enforces, from `[server]`.
#[derive(Debug, Clone)]
pub struct Edge {
    /// Headers must arrive within this; hyper starts it whenever it waits for a request, so an
    /// idle keep-alive connection ends after it too.
    pub header_read_timeout: Duration,
    /// A request body must be read within this of the request's start.
    pub body_read_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_addr: usize,
    pub trusted: TrustedProxies,
}

impl Edge {
    pub fn from_config(server: &ServerConfig) -> anyhow::Result<Edge> {
        Ok(Edge {
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
            body_read_timeout: Duration::from_secs(server.body_read_timeout_secs),
            max_connections: server.max_connections.max(1),
            max_connections_per_addr: server.max_connections_per_addr.max(1),
            trusted: TrustedProxies::parse(&server.trusted_proxies)
                .map_err(|e| anyhow::anyhow!("server.trusted_proxies: {e}"))?,
        })
    }
}

/// Open connections per peer address, for the per-address cap.
#[derive(Default)]
struct PerAddr(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`PerAddr`], given back on drop.
struct AddrSlot {
    table: Arc<PerAddr>,
    ip: IpAddr,
}

impl PerAddr {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(table: &Arc<PerAddr>, ip: IpAddr, cap: usize) -> Option<AddrSlot> {
        let mut map = table.lock();
        let open = map.entry(ip).or_insert(0);
        if *open >= cap {
            return None;
        }
        *open += 1;
        Some(AddrSlot {
            table: table.clone(),
            ip,
        })
    }
}

impl Drop for AddrSlot {
    fn drop(&mut self) {
        let mut map = self.table.lock();
        if let Some(open) = map.get_mut(&self.ip) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Serve `router` on `listener` until `shutdown` resolves, then let open connections finish
/// (idle ones close at once).
///
/// Each accepted connection needs a place under `max_connections` and, unless the peer is a
/// trusted proxy, under `max_connections_per_addr`; without one it is closed at once, so a
/// flood of idle connections cannot take the descriptors real requests need. Every request
/// carries [`ConnectInfo`] (the TCP peer) and [`ClientAddr`].
pub async fn serve(
    router: Router,
    listener: TcpListener,
    edge: Edge,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if let Some(limit) = raise_nofile_limit()
        && limit < edge.max_connections as u64 + 64
    {
        tracing::warn!(
            open_files = limit,
            max_connections = edge.max_connections,
            "server.max_connections is above the open-file limit; the limit decides"
        );
    }
    let edge = Arc::new(edge);
    let total = Arc::new(Semaphore::new(edge.max_connections));
    let per_addr = Arc::new(PerAddr::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a connection reset before accept: wait a little
                    // rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = total.clone().try_acquire_owned() else {
            tracing::debug!("connection refused: server.max_connections reached");
            continue;
        };
        let ip = peer.ip().to_canonical();
        let slot = if edge.trusted.contains(ip) {
            None
        } else {
            match PerAddr::take(&per_addr, ip, edge.max_connections_per_addr) {
                Some(slot) => Some(slot),
                None => {
                    tracing::debug!(%ip, "connection refused: server.max_connections_per_addr reached");
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            edge.clone(),
            stop_rx.clone(),
            (permit, slot),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit until it ends: all of them back means all have ended.
    let all = u32::try_from(edge.max_connections).unwrap_or(u32::MAX);
    let _ = total.acquire_many(all).await;
    Ok(())
}

/// One HTTP/1 connection, holding its places under the caps until it ends.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    edge: Arc<Edge>,
    mut stop: watch::Receiver<bool>,
    _places: (OwnedSemaphorePermit, Option<AddrSlot>),
) {
    let header_read_timeout = edge.header_read_timeout;
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let router = router.clone();
        let edge = edge.clone();
        async move {
            let client = client_addr(peer.ip(), request.headers(), &edge.trusted);
            let mut request =
                request.map(|body| read_deadline(Body::new(body), edge.body_read_timeout));
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(ClientAddr(client));
            router.oneshot(request).await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
        () = async { let _ = stop.wait_for(|stop| *stop).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Why a request body stopped: it was not read within `server.body_read_timeout_secs`.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within the read timeout")]
struct BodyTimeout;

/// `body`, failing if it has not been read to its end within `limit` from now. The deadline is
/// on the request only; the response (an SSE stream included) is not bounded by it.
fn read_deadline(body: Body, limit: Duration) -> Body {
    let deadline = tokio::time::Instant::now() + limit;
    let frames = futures::stream::unfold(Some(body.into_data_stream()), move |state| async move {
        let mut stream = state?;
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(item)) => Some((item, Some(stream))),
            Ok(None) => None,
            Err(_) => Some((Err(axum::Error::new(BodyTimeout)), None)),
        }
    });
    Body::from_stream(frames)
}

/// Raise the soft limit on open files to the hard limit, so a busy listener is bounded by the
/// connection caps rather than by the descriptor table. Returns the soft limit now in force
/// (`None`: unlimited, or not a Unix system).
pub fn raise_nofile_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if let Some(hard) = limit.maximum
            && limit.current.is_some_and(|soft| soft < hard)
        {
            let raised = Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            };
            if let Err(error) = setrlimit(Resource::Nofile, raised) {
                tracing::warn!(%error, "cannot raise the open-file limit");
            }
        }
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
            .expect("cidrs")
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).expect("value"));
        }
        headers
    }

    #[test]
    fn cidrs_parse_and_match() {
        let t = trusted(&["10.42.1.0/24", "10.42.2.7", "fd00::/8", "0.0.0.0/0"]);
        assert!(t.contains(ip("10.42.1.200")));
        assert!(t.contains(ip("8.8.8.8")), "/0 matches every IPv4 address");
        assert!(t.contains(ip("::ffff:10.42.1.1")), "IPv4-mapped IPv6");
        assert!(t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("fe80::1")));
        let t = trusted(&["10.42.1.9/24"]);
        assert!(t.contains(ip("10.42.1.1")), "host bits are masked");
        assert!(!t.contains(ip("10.42.2.1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "::/129",
            "x",
            "10.0.0.0/+8",
        ] {
            assert!(
                TrustedProxies::parse(&[bad.to_string()]).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(TrustedProxies::parse(&vec!["10.0.0.1".to_string(); 257]).is_err());
    }

    #[test]
    fn an_untrusted_peers_forwarded_for_is_ignored() {
        let none = TrustedProxies::default();
        let headers = xff(&["203.0.113.9"]);
        assert_eq!(
            client_addr(ip("198.51.100.1"), &headers, &none),
            ip("198.51.100.1")
        );
        let t = trusted(&["10.42.1.0/24"]);
        assert_eq!(
            client_addr(ip("198.51.100.1"), &headers, &t),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_trusted_peer_gives_the_rightmost_untrusted_hop() {
        let t = trusted(&["10.42.1.0/24", "10.42.2.0/24"]);
        let alb = ip("10.42.1.10");
        // The load balancer appends the address it saw; what the client wrote is ignored.
        let spoofed = xff(&["1.1.1.1, 2.2.2.2, 203.0.113.9"]);
        assert_eq!(client_addr(alb, &spoofed, &t), ip("203.0.113.9"));
        // A chain of trusted proxies is walked through.
        let chain = xff(&["1.1.1.1, 203.0.113.9, 10.42.2.5"]);
        assert_eq!(client_addr(alb, &chain, &t), ip("203.0.113.9"));
        // Several fields are one list, in order.
        let fields = xff(&["1.1.1.1, 203.0.113.9", "10.42.2.5"]);
        assert_eq!(client_addr(alb, &fields, &t), ip("203.0.113.9"));
        // No header: the peer. Every hop trusted: the left-most.
        assert_eq!(client_addr(alb, &HeaderMap::new(), &t), alb);
        let all_trusted = xff(&["10.42.2.1, 10.42.2.5"]);
        assert_eq!(client_addr(alb, &all_trusted, &t), ip("10.42.2.1"));
        // Ports are allowed.
        let port = xff(&["203.0.113.9:4711"]);
        assert_eq!(client_addr(alb, &port, &t), ip("203.0.113.9"));
    }

    #[test]
    fn ipv6_hops_and_peers() {
        let t = trusted(&["fd00::/8"]);
        let headers = xff(&["2001:db8::1, [2001:db8::2]:443, fd00::7"]);
        assert_eq!(client_addr(ip("fd00::1"), &headers, &t), ip("2001:db8::2"));
        let mapped = xff(&["::ffff:198.51.100.7"]);
        assert_eq!(client_addr(ip("fd00::1"), &mapped, &t), ip("198.51.100.7"));
        let t4 = trusted(&["10.0.0.0/8"]);
        // A v4-mapped peer is matched as IPv4.
        let headers = xff(&["2001:db8::1"]);
        assert_eq!(
            client_addr(ip("::ffff:10.1.2.3"), &headers, &t4),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn garbage_falls_back_to_the_peer() {
        let t = trusted(&["10.42.1.0/24"]);
        let alb = ip("10.42.1.10");
        for value in [
            "unknown",
            "",
            " , ",
            "203.0.113.9 extra",
            "1.2.3.4.5",
            "_hidden",
        ] {
            assert_eq!(client_addr(alb, &xff(&[value]), &t), alb, "{value:?}");
        }
        // Garbage left of the client's hop is never read.
        let left = xff(&["garbage, 203.0.113.9"]);
        assert_eq!(client_addr(alb, &left, &t), ip("203.0.113.9"));
        // Non-UTF-8 bytes.
        let mut raw = HeaderMap::new();
        raw.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"203.0.113.9\xff").expect("value"),
        );
        assert_eq!(client_addr(alb, &raw, &t), alb);
    }

    #[test]
    fn a_long_spoofed_list_costs_nothing_past_the_client_hop() {
        let t = trusted(&["10.42.1.0/24"]);
        let long = format!("{}203.0.113.9", "1.1.1.1, ".repeat(20_000));
        let headers = xff(&[&long]);
        assert_eq!(
            client_addr(ip("10.42.1.10"), &headers, &t),
            ip("203.0.113.9")
        );
    }
}
