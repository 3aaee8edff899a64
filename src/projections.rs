//! `souk projections rebuild <name>`: asks a running Souk to rebuild a read model and follows
//! its progress until it is done.

use crate::config::Config;
use anyhow::{Context, bail};
use serde_json::Value;
use std::time::Duration;

pub async fn rebuild(
    config: &Config,
    name: &str,
    url: Option<String>,
    token: Option<String>,
) -> anyhow::Result<()> {
    let base = url
        .unwrap_or_else(|| format!("http://{}", config.http))
        .trim_end_matches('/')
        .to_string();
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        bail!(
            "an admin API token is needed: pass --token or set SOUK_TOKEN (make one with \
             `souk admin token create --name cli --role admin` while Souk is stopped, or in the console)"
        );
    };
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}")
            .parse()
            .context("the token has characters a header cannot carry")?,
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()?;
    let started = http
        .post(format!("{base}/api/admin/projections/{name}/rebuild"))
        .send()
        .await
        .with_context(|| {
            format!("cannot reach souk at {base}; is it running? (pass --url, or set `http`)")
        })?;
    let status = started.status();
    let body: Value = started.json().await.unwrap_or_default();
    if status.as_u16() != 202 {
        bail!(
            "souk refused the rebuild ({status}): {}",
            body["detail"].as_str().unwrap_or("no detail")
        );
    }
    eprintln!("rebuilding {name} beside the live one; reads go on meanwhile");
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let all: Value = http
            .get(format!("{base}/api/admin/projections"))
            .send()
            .await?
            .json()
            .await?;
        let Some(p) = all["items"]
            .as_array()
            .and_then(|i| i.iter().find(|p| p["name"] == name))
        else {
            bail!("souk no longer lists the projection {name}");
        };
        let r = &p["rebuild"];
        let (applied, total) = (
            r["applied"].as_u64().unwrap_or(0),
            r["total"].as_u64().unwrap_or(0),
        );
        match r["state"].as_str() {
            Some("running") => eprintln!("  {applied} / {total} events"),
            Some("done") => {
                eprintln!(
                    "done: {applied} events, {} events/s",
                    r["events_per_second"]
                );
                return Ok(());
            }
            Some("failed") => bail!("the rebuild failed: {}", r["error"].as_str().unwrap_or("?")),
            other => bail!("unexpected rebuild state {other:?}"),
        }
    }
}
