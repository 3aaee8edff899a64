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
    let mut http = crate::http::tls::client()
        .default_headers(headers)
        .timeout(Duration::from_secs(30));
    let here = crate::app::reachable(config.http);
    let base = match (&config.security.tls_cert, url) {
        (None, url) => url.unwrap_or_else(|| format!("http://{here}")),
        (Some(cert), url) => {
            // Souk serves HTTPS with this chain: trust it (and only it), and by default reach
            // the listener as `localhost`, the name a self-signed certificate usually holds.
            http = http.tls_backend_preconfigured(trusting(cert)?);
            if url.is_none() {
                http = http.resolve("localhost", here);
            }
            url.unwrap_or_else(|| format!("https://localhost:{}", here.port()))
        }
    }
    .trim_end_matches('/')
    .to_string();
    let http = http.build()?;
    let started = http
        .post(format!("{base}/api/admin/projections/{name}/rebuild"))
        .send()
        .await
        .with_context(|| {
            let tls = if config.security.tls_cert.is_some() {
                " If the certificate in `http_tls_cert` does not name localhost, pass \
                 --url https://<a name it holds>:<port>."
            } else {
                ""
            };
            format!("cannot reach souk at {base}; is it running? (pass --url, or set `http`).{tls}")
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

/// A TLS client configuration whose only roots are the certificates in `chain` (PEM): the
/// certificate Souk serves (config `http_tls_cert`).
fn trusting(chain: &std::path::Path) -> anyhow::Result<rustls::ClientConfig> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(chain).with_context(|| {
        format!(
            "cannot read {} (config `http_tls_cert`, env SOUK_HTTP_TLS_CERT)",
            chain.display()
        )
    })? {
        roots
            .add(
                cert.with_context(|| {
                    format!("{} is not a PEM certificate chain", chain.display())
                })?,
            )
            .with_context(|| {
                format!("{} holds a certificate rustls cannot use", chain.display())
            })?;
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}
