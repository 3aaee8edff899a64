//! The yardstick for HTTP scenarios: a bare axum server inside the harness process, on its own
//! multi-threaded tokio runtime (the kind `souk serve` builds), answering `GET /healthz` with the
//! same body as Souk. Driven exactly like Souk, it shows what the machine, the client and axum
//! itself allow, so "souk / baseline" is the cost of Souk's own layers and process.

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::json;
use std::net::SocketAddr;

pub struct Baseline {
    /// Dropping the runtime stops the server.
    _rt: tokio::runtime::Runtime,
    pub addr: SocketAddr,
}

impl Baseline {
    pub fn start() -> anyhow::Result<Baseline> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let app = Router::new().route("/healthz", get(|| async { Json(json!({"status": "ok"})) }));
        rt.spawn(async move { axum::serve(listener, app).await });
        Ok(Baseline { _rt: rt, addr })
    }
}
