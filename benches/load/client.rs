//! The HTTP side of the harness: a closed-loop load generator and a one-shot GET.
//!
//! Each simulated client owns one keep-alive HTTP/1.1 connection and sends its next request as
//! soon as the previous answer is read (as wrk does), until the deadline. Closed-loop clients
//! slow down when the server does, so tail latencies are those of a saturated server, not of
//! an open arrival rate (no coordinated-omission correction is attempted).
//!
//! Latencies are kept as exact samples (µs, sorted once at the end): at tens of thousands of
//! requests per second for seconds, that is a few MB, and percentiles need no approximation.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1;
use hyper::header::{AUTHORIZATION, HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Builds the `n`-th request a client sends (n counts from 0 per client). Scenarios that write
/// (e.g. `POST /api/users`) use `client` and `n` to make unique bodies.
pub type MakeRequest = Arc<dyn Fn(usize, u64) -> Request<Full<Bytes>> + Send + Sync>;

/// One load run: `clients` connections to `addr` for `duration`.
pub struct Load {
    pub addr: SocketAddr,
    pub clients: usize,
    pub duration: Duration,
    pub request: MakeRequest,
    /// The status a successful answer has; anything else counts as an error.
    pub expect: StatusCode,
}

impl Load {
    /// The same `GET path` from every client.
    pub fn get(addr: SocketAddr, path: &'static str, clients: usize, duration: Duration) -> Load {
        Load {
            addr,
            clients,
            duration,
            request: Arc::new(move |_, _| {
                Request::get(path)
                    .body(Full::new(Bytes::new()))
                    .expect("a static request is valid")
            }),
            expect: StatusCode::OK,
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Latencies of successful requests, µs, ascending.
    pub latencies_us: Vec<u32>,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// Nearest-rank percentile, `q` in 0..=1 (1 is the maximum).
    pub fn percentile(&self, q: f64) -> Duration {
        crate::report::percentile(&self.latencies_us, q)
    }
}

/// Runs `load` and waits for every client. Requests in flight at the deadline are finished
/// and counted, so `elapsed` runs from the first request to the last answer.
pub async fn drive(load: &Load) -> Outcome {
    let started = Instant::now();
    let deadline = started + load.duration;
    let tasks: Vec<_> = (0..load.clients)
        .map(|i| {
            let (addr, request, expect) = (load.addr, load.request.clone(), load.expect);
            tokio::spawn(async move { one_client(i, addr, request, expect, deadline).await })
        })
        .collect();
    let mut out = Outcome {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
    };
    for task in tasks {
        match task.await {
            Ok(c) => {
                out.ok += c.latencies_us.len() as u64;
                out.errors += c.errors;
                out.latencies_us.extend(c.latencies_us);
            }
            Err(_) => out.errors += 1,
        }
    }
    out.elapsed = started.elapsed();
    out.latencies_us.sort_unstable();
    out
}

struct ClientTally {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn one_client(
    i: usize,
    addr: SocketAddr,
    request: MakeRequest,
    expect: StatusCode,
    deadline: Instant,
) -> ClientTally {
    let mut tally = ClientTally {
        latencies_us: Vec::with_capacity(1 << 14),
        errors: 0,
    };
    let host: hyper::header::HeaderValue = addr.to_string().parse().expect("an address is a host");
    let auth = bearer().and_then(|b| HeaderValue::from_str(&b).ok());
    let mut sender = None;
    let mut n = 0u64;
    // Bounded by the deadline; after a failure the client pauses briefly so a refused
    // connection cannot turn into a hot loop that starves the server being measured.
    while Instant::now() < deadline {
        if sender.is_none() {
            match connect(addr).await {
                Ok(s) => sender = Some(s),
                Err(_) => {
                    tally.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let s = sender.as_mut().expect("connected above");
        let mut req = request(i, n);
        n += 1;
        req.headers_mut()
            .entry(HOST)
            .or_insert_with(|| host.clone());
        if let Some(auth) = &auth {
            req.headers_mut()
                .entry(AUTHORIZATION)
                .or_insert_with(|| auth.clone());
        }
        let sent = Instant::now();
        let result = async {
            s.ready().await?;
            let resp = s.send_request(req).await?;
            let status = resp.status();
            resp.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        }
        .await;
        match result {
            Ok(status) if status == expect => {
                let us = sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                tally.latencies_us.push(us);
            }
            Ok(_) => tally.errors += 1,
            Err(_) => {
                tally.errors += 1;
                sender = None;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    tally
}

/// The admin API token of the Souk under test, sent with every request (`Souk::start` sets it).
static TOKEN: std::sync::RwLock<Option<String>> = std::sync::RwLock::new(None);

pub fn set_token(token: &str) {
    *TOKEN.write().unwrap() = Some(token.to_string());
}

/// `Bearer <token>` for the Souk under test, if one is set.
pub fn bearer() -> Option<String> {
    TOKEN
        .read()
        .unwrap()
        .as_ref()
        .map(|t| format!("Bearer {t}"))
}

/// A reqwest client that sends the token (for control requests and the freshness scenario).
pub fn reqwest_client() -> reqwest::ClientBuilder {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(b) = bearer() {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            b.parse().expect("a token header"),
        );
    }
    souk::http::tls::client().default_headers(headers)
}

async fn connect(addr: SocketAddr) -> anyhow::Result<http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    // As wrk and browsers do: without it, Nagle's algorithm can hold small requests back.
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// One `GET path` on a fresh connection: status and body. For control requests (readiness),
/// not for load.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = Request::get(path)
        .header(HOST, addr.to_string())
        .body(Empty::<Bytes>::new())?;
    if let Some(b) = bearer() {
        req.headers_mut()
            .insert(AUTHORIZATION, HeaderValue::from_str(&b)?);
    }
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}
