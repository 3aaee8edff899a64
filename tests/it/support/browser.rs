//! A real browser for the console's tests: Debian's headless chromium driven through
//! chromedriver over WebDriver (fantoccini), with waits that poll a condition until a deadline
//! and screenshots under `<target>/console-screenshots/`.

use super::Souk;
use fantoccini::{Client, Locator};
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long any one wait may take.
pub const T: Duration = Duration::from_secs(30);

/// chromedriver and the chromium it drives, when both are installed.
pub fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let find = |names: &[&str]| {
        names.iter().find_map(|n| {
            let p = PathBuf::from(n);
            if p.is_absolute() {
                return p.is_file().then_some(p);
            }
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join(n))
                    .find(|c| c.is_file())
            })
        })
    };
    let driver = find(&["chromedriver", "/usr/lib/chromium/chromedriver"])?;
    let chromium = find(&["chromium", "chromium-browser", "/usr/lib/chromium/chromium"])?;
    Some((driver, chromium))
}

/// chromedriver on a free loopback port, killed when dropped.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start_driver(binary: &PathBuf) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(binary)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = souk::http::tls::client().build().unwrap();
    let deadline = Instant::now() + T;
    loop {
        if let Ok(r) = http.get(format!("{}/status", driver.url)).send().await
            && r.status() == 200
        {
            return driver;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The browser, with what the steps need.
pub struct B<'a> {
    pub c: &'a Client,
    pub souk: &'a Souk,
    pub shots: PathBuf,
}

pub fn css(s: &str) -> Locator<'_> {
    Locator::Css(s)
}

impl B<'_> {
    /// Polls `check` until it gives `Some`, or fails naming `what` (with a screenshot).
    pub async fn until<F, Fut, V>(&self, what: &str, mut check: F) -> V
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<V>>,
    {
        let deadline = Instant::now() + T;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            if Instant::now() > deadline {
                self.shot("failure").await;
                let url = self.c.current_url().await.map(|u| u.to_string());
                let text = match self.c.find(css("body")).await {
                    Ok(body) => body.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                panic!("timed out waiting for {what}; at {url:?}; the page says:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a visible element.
    pub async fn el(&self, selector: &str) -> fantoccini::elements::Element {
        let c = self.c;
        self.until(selector, || async move {
            let e = c.find(css(selector)).await.ok()?;
            e.is_displayed().await.ok()?.then_some(e)
        })
        .await
    }

    /// Waits until `selector`'s text contains `text`.
    pub async fn text(&self, selector: &str, text: &str) {
        let c = self.c;
        self.until(&format!("{selector} to say {text:?}"), || async move {
            for e in c.find_all(css(selector)).await.ok()? {
                if e.text().await.ok()?.contains(text) {
                    return Some(());
                }
            }
            None
        })
        .await
    }

    pub async fn click(&self, selector: &str) {
        self.el(selector).await.click().await.unwrap();
    }

    pub async fn fill(&self, selector: &str, value: &str) {
        let e = self.el(selector).await;
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    pub async fn nav(&self, page: &str) {
        // On narrow screens the navigation is behind the menu button.
        let link = self.c.find(css(&format!("[data-testid=nav-{page}]"))).await;
        if let Ok(l) = &link
            && !l.is_displayed().await.unwrap_or(false)
        {
            self.click(".menu-toggle").await;
        }
        self.click(&format!("[data-testid=nav-{page}]")).await;
    }

    pub async fn shot(&self, name: &str) {
        if let Ok(png) = self.c.screenshot().await {
            let _ = std::fs::write(self.shots.join(format!("{name}.png")), png);
        }
    }

    /// Waits until no element matches `selector`.
    pub async fn gone(&self, selector: &str) {
        let c = self.c;
        self.until(&format!("{selector} to go away"), || async move {
            c.find_all(css(selector))
                .await
                .ok()
                .filter(|v| v.is_empty())
                .map(|_| ())
        })
        .await
    }

    /// Searches the catalog until it shows `text` (or no longer does): it follows within moments.
    pub async fn catalog_shows(&self, text: &str, present: bool) {
        let c = self.c;
        self.until(
            &format!(
                "the catalog to {}show {text:?}",
                if present { "" } else { "not " }
            ),
            || async move {
                // Judge what is shown; if it is not there yet, search again for the next look.
                let results = c.find(css("[data-testid=catalog-results]")).await.ok()?;
                if results.attr("aria-busy").await.ok()?.is_none()
                    && results.text().await.ok()?.contains(text) == present
                {
                    return Some(());
                }
                let submit = c.find(css("[data-testid=catalog-submit]")).await.ok()?;
                submit.click().await.ok()?;
                None
            },
        )
        .await
    }

    /// The elements that stick out to the right of the viewport (none when the page fits).
    pub async fn too_wide(&self) -> Value {
        self.c
            .execute(
                "const w = document.documentElement.clientWidth;
                 if (document.documentElement.scrollWidth <= w) return [];
                 return [...document.querySelectorAll('body *')]
                   .filter((e) => e.getBoundingClientRect().right > w + 0.5 && !e.closest('.table-wrap *'))
                   .filter((e) => ![...e.children].some((c) => c.getBoundingClientRect().right > w + 0.5))
                   .slice(0, 8)
                   .map((e) => `${e.tagName.toLowerCase()}.${e.className} (${Math.round(e.getBoundingClientRect().right)} px)`);",
                vec![],
            )
            .await
            .unwrap()
    }
}

/// A Chrome DevTools command through chromedriver (to emulate the dark colour scheme).
#[derive(Debug)]
pub struct Cdp(pub Value);

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &reqwest::Url,
        session: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::POST, Some(self.0.to_string()))
    }
}
