//! The auth service: console accounts (roles admin, editor, viewer), their sessions and API
//! tokens in `auth.redb`, served as the `souk-auth` micro service. Account and token changes
//! are published as `account.*`/`token.*` events (without secrets), so the streams are the
//! audit trail. While no admin exists it keeps a one-time setup token and says where to use it.

pub mod commands;
pub mod error;
pub mod model;
pub mod offline;
pub mod rpc;
pub mod secrets;
pub mod store;

pub use model::{Principal, Role};

use crate::services::runtime::Runtime;
use commands::{Auth, Lifetimes};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Opens `auth.redb`, starts its outbox relay, registers `souk-auth`, and keeps house: expired
/// sessions are pruned, and a setup token is offered (and renewed) while no admin exists.
pub async fn start(rt: &mut Runtime<'_>) -> anyhow::Result<()> {
    let db = rt.open_store("auth.redb", store::init).await?;
    rt.relay("auth", &db);
    let auth = Arc::new(Auth {
        db,
        names: rt.bus.names().clone(),
        lifetimes: Lifetimes {
            idle: rt.config.security.session_idle,
            max_age: rt.config.security.session_max_age,
        },
        setup: Mutex::new(None),
    });
    let url = rt.http_url.clone();
    if !auth.has_admin().await.map_err(|e| anyhow::anyhow!("{e}"))? {
        offer_setup(&auth, &url);
    }
    let a = auth.clone();
    rt.supervisor.spawn(
        "auth-housekeeping",
        crate::supervisor::Restart::OnError {
            initial: Duration::from_secs(1),
        },
        move |cancel| housekeeping(a.clone(), url.clone(), cancel),
    );
    rt.rpc("auth", move || rpc::service(auth.clone()));
    Ok(())
}

fn offer_setup(auth: &Auth, url: &str) {
    let token = auth.new_setup_token();
    tracing::warn!(
        "no admin account yet: open {url}/setup#token={token} within 30 minutes to create one \
         (or run `souk admin create --email you@example.com --password-stdin` while Souk is stopped)"
    );
}

async fn housekeeping(
    auth: Arc<Auth>,
    url: String,
    cancel: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rounds = 0u64;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        rounds += 1;
        let expired = auth
            .setup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|(_, until)| std::time::Instant::now() >= *until);
        if expired && !auth.has_admin().await.map_err(|e| anyhow::anyhow!("{e}"))? {
            offer_setup(&auth, &url);
        }
        if rounds % 10 == 1 {
            let n = auth.prune().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if n > 0 {
                tracing::debug!(sessions = n, "pruned ended sessions");
            }
        }
    }
}
