//! The admin console: every embedded file served with its type, cache headers, compression and
//! the CSP (plain HTTP); and the whole first-run-to-delete flow in a real browser (Debian's
//! headless chromium through chromedriver, over WebDriver).
//!
//! The browser test needs `chromium` and `chromium-driver`. Without them it is skipped with a
//! notice, except under CI (the `CI` variable set), where it fails: `.ci/run` installs them.

use crate::support::Souk;
use crate::support::browser::{B, Cdp, T, browser_binaries, css, screenshots_dir, start_driver};
use fantoccini::ClientBuilder;
use reqwest::header;
use serde_json::{Value, json};
const PASSWORD: &str = "correct horse battery staple";

fn expected_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        other => panic!("no expected type for {path} ({other:?}): add it here"),
    }
}

/// `/console/<version>/` as the index page names it.
fn base_of(html: &str) -> String {
    let start = html
        .find("/console/")
        .expect("the index names the console base");
    let rest = &html[start..];
    let end = rest["/console/".len()..].find('/').unwrap() + "/console/".len() + 1;
    rest[..end].to_string()
}

#[tokio::test]
async fn every_embedded_file_is_served_with_its_type_cache_headers_and_the_csp() {
    let souk = Souk::builder().start();
    let http = souk.anonymous();
    let get = |path: String| http.get(format!("{}{path}", souk.url)).send();

    let index = get("/".into()).await.unwrap();
    assert_eq!(index.status(), 200);
    let h = index.headers().clone();
    assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(h[header::CACHE_CONTROL], "no-cache");
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    let html = index.text().await.unwrap();
    assert!(!html.contains("%BASE%"), "{html}");
    let base = base_of(&html);
    assert!(html.contains(&format!("{base}app.js")), "{html}");

    let files = souk::http::console::files();
    for wanted in [
        "index.html",
        "app.js",
        "app.css",
        "favicon.svg",
        "pages/users.js",
    ] {
        assert!(
            files.iter().any(|(p, _)| p == wanted),
            "{wanted} is not embedded"
        );
    }
    for (path, _) in &files {
        let r = get(format!("{base}{path}")).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert_eq!(h[header::CONTENT_TYPE], expected_type(path), "{path}");
        assert_eq!(
            h[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable",
            "{path}"
        );
        assert!(h.contains_key(header::CONTENT_SECURITY_POLICY), "{path}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
    }

    // A page still holding an older version gets the file, but not for keeps.
    let old = get("/console/000000000000/app.js".into()).await.unwrap();
    assert_eq!(old.status(), 200);
    assert_eq!(old.headers()[header::CACHE_CONTROL], "no-cache");

    // Compressed when asked, plain when not.
    let plain = get(format!("{base}app.css")).await.unwrap();
    assert!(!plain.headers().contains_key(header::CONTENT_ENCODING));
    let plain_len = plain.bytes().await.unwrap().len();
    for encoding in ["br", "gzip"] {
        let r = http
            .get(format!("{}{base}app.css", souk.url))
            .header(header::ACCEPT_ENCODING, encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[header::CONTENT_ENCODING], encoding);
        let len = r.bytes().await.unwrap().len();
        assert!(
            len < plain_len / 2,
            "{encoding}: {len} of {plain_len} bytes"
        );
    }

    // An encoding Souk does not speak: the file as it is, not a 406.
    let r = http
        .get(format!("{}{base}app.css", souk.url))
        .header(header::ACCEPT_ENCODING, "zstd")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key(header::CONTENT_ENCODING));

    // The console's own pages get index.html; nothing else does.
    for page in [
        "/users",
        "/setup",
        "/login",
        "/users/usr_123",
        "/dead-letters",
    ] {
        let r = get(page.into()).await.unwrap();
        assert_eq!(r.status(), 200, "{page}");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8",
            "{page}"
        );
        assert!(r.text().await.unwrap().contains(&base), "{page}");
    }
    for missing in [
        "/x.js".to_string(),
        "/favicon.ico".into(),
        "/api/nope".into(),
        "/api".into(),
        "/public/nope".into(),
        format!("{base}missing.js"),
        format!("{base}..%2F..%2FCargo.toml"),
        format!("{base}%2Fetc%2Fpasswd"),
    ] {
        let r = get(missing.clone()).await.unwrap();
        assert_eq!(r.status(), 404, "{missing}");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json",
            "{missing}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{missing}");
    }
    let post = http
        .post(format!("{}/users", souk.url))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
}

#[tokio::test]
async fn the_console_from_first_run_to_delete_in_a_real_browser() {
    let Some((driver_bin, chromium)) = browser_binaries() else {
        let msg = "the console's browser tests need chromium and chromedriver: \
                   apt-get install chromium chromium-driver";
        if std::env::var_os("CI").is_some() {
            panic!("{msg} (CI is set, so they are required)");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    };
    let souk = Souk::builder().start();
    souk.wait_ready(T).await;
    let driver = start_driver(&driver_bin).await;
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-dev-shm-usage", "--window-size=1280,900"],
        }
    });
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps.as_object().unwrap().clone())
        .connect(&driver.url)
        .await
        .expect("a chromium session");
    let b = B {
        c: &client,
        souk: &souk,
        shots: screenshots_dir(),
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(flow(&b))).await;
    let _ = client.close().await;
    drop(driver);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn flow(b: &B<'_>) {
    let souk = b.souk;
    // First run: the setup link from the log, its token prefilled.
    let line = souk
        .log
        .wait_for("/setup#token=", T)
        .expect("the setup link is logged");
    let token = line.split_whitespace().next().unwrap();
    b.c.goto(&format!("{}/setup#token={token}", souk.url))
        .await
        .unwrap();
    let field = b.el("[data-testid=field-setup_token]").await;
    assert_eq!(field.prop("value").await.unwrap().as_deref(), Some(token));
    b.fill("[data-testid=field-email]", "admin@example.com")
        .await;
    b.fill("[data-testid=field-password]", PASSWORD).await;
    b.fill("[data-testid=field-confirm]", PASSWORD).await;
    b.shot("setup").await;
    b.click("[data-testid=setup-submit]").await;

    // Signed in: the dashboard says everything is healthy.
    b.text("[data-testid=overall-status]", "All systems healthy")
        .await;
    b.el("[data-testid=check]").await;
    let checks = b.c.find_all(css("[data-testid=check]")).await.unwrap();
    for c in &checks {
        assert_eq!(c.attr("data-ok").await.unwrap().as_deref(), Some("true"));
    }
    b.el("[data-testid=service]").await;
    b.shot("dashboard").await;

    // Sign out, and in again.
    b.click("[data-testid=logout]").await;
    b.el("[data-testid=signed-out]").await;
    b.fill("[data-testid=field-email]", "admin@example.com")
        .await;
    b.fill("[data-testid=field-password]", "wrong password!")
        .await;
    b.click("[data-testid=login-submit]").await;
    b.text("[data-testid=form-alert]", "do not match").await;
    b.shot("login").await;
    b.fill("[data-testid=field-password]", PASSWORD).await;
    b.click("[data-testid=login-submit]").await;
    b.el("[data-testid=overall-status]").await;

    // Users: a validation error shows on its field, then the user is created.
    b.nav("users").await;
    b.text("[data-testid=empty]", "No users yet").await;
    b.click("[data-testid=new-user]").await;
    b.fill("dialog [data-testid=field-name]", "Ada Lovelace")
        .await;
    b.fill("dialog [data-testid=field-email]", "not-an-email")
        .await;
    b.click("dialog [data-testid=submit]").await;
    let error = b.el("dialog [data-testid=error-email]").await;
    assert!(!error.text().await.unwrap().is_empty());
    let email = b.el("dialog [data-testid=field-email]").await;
    assert_eq!(
        email.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    b.shot("validation").await;
    b.fill("dialog [data-testid=field-email]", "ada@example.com")
        .await;
    b.click("dialog [data-testid=submit]").await;
    b.gone("dialog").await;
    b.text("[data-testid=user-name]", "Ada Lovelace").await;
    b.shot("users").await;

    // A listing for her, its price typed in dollars.
    b.nav("listings").await;
    b.text("[data-testid=empty]", "No listings yet").await;
    b.click("[data-testid=new-listing]").await;
    b.fill("dialog [data-testid=seller-search]", "Ada").await;
    // Found and chosen in one step, retried: the picker may still redraw its options (the
    // answer to the search typed replaces the first, unfiltered list).
    let c = b.c;
    let seller = b
        .until("Ada chosen as the seller", || async move {
            let select = c
                .find(css("dialog [data-testid=field-seller_id]"))
                .await
                .ok()?;
            let mut ada = None;
            for o in select.find_all(css("option")).await.ok()? {
                if o.text().await.ok()?.contains("Ada Lovelace") {
                    ada = o.attr("value").await.ok()?;
                }
            }
            let ada = ada?;
            select.select_by_value(&ada).await.ok()?;
            (select.prop("value").await.ok()?? == ada).then_some(ada)
        })
        .await;
    b.fill("dialog [data-testid=field-title]", "Brass lantern")
        .await;
    b.fill(
        "dialog [data-testid=field-description]",
        "Hand-hammered, from the old souk",
    )
    .await;
    b.fill("dialog [data-testid=field-price]", "12,5x").await;
    b.click("dialog [data-testid=submit]").await;
    b.el("dialog [data-testid=error-price]").await;
    b.fill("dialog [data-testid=field-price]", "19.99").await;
    b.click("dialog [data-testid=submit]").await;
    b.gone("dialog").await;
    b.text("[data-testid=listing-title]", "Brass lantern").await;
    b.text("[data-testid=listings-table]", "Ada Lovelace").await;
    b.shot("listings").await;
    let listings: Value = souk.get("/api/listings").await.json().await.unwrap();
    assert_eq!(listings["items"][0]["price"], 1999, "{listings}");
    assert_eq!(listings["items"][0]["seller_id"], seller.as_str());

    // The catalog finds it, with its seller.
    b.nav("catalog").await;
    b.fill("[data-testid=catalog-q]", "lantern").await;
    b.catalog_shows("Ada Lovelace", true).await;
    b.text("[data-testid=catalog-item-title]", "Brass lantern")
        .await;
    b.shot("catalog").await;

    // Disable and enable her.
    b.nav("users").await;
    b.click("[data-testid=disable-user]").await;
    b.text("[data-testid=users-table]", "disabled").await;
    b.click("[data-testid=enable-user]").await;
    b.el("[data-testid=disable-user]").await;

    // Someone else changes her while the form is open: the console says so, and reloads.
    b.click("[data-testid=edit-user]").await;
    b.el("dialog [data-testid=field-name]").await;
    let (status, _) = souk
        .json(
            reqwest::Method::PATCH,
            &format!("/api/users/{seller}"),
            Some(json!({"bio": "Mathematician"})),
        )
        .await;
    assert_eq!(status, 200);
    b.fill("dialog [data-testid=field-name]", "Ada King").await;
    b.click("dialog [data-testid=submit]").await;
    b.text("dialog [data-testid=form-alert]", "changed by someone else")
        .await;
    b.shot("conflict").await;
    b.click("dialog [data-testid=reload]").await;
    b.until("the form to hold the latest bio", || async move {
        let bio = c.find(css("dialog [data-testid=field-bio]")).await.ok()?;
        (bio.prop("value").await.ok()?? == "Mathematician").then_some(())
    })
    .await;

    // Rename her: the catalog follows.
    b.fill("dialog [data-testid=field-name]", "Ada King").await;
    b.click("dialog [data-testid=submit]").await;
    b.gone("dialog").await;
    b.text("[data-testid=user-name]", "Ada King").await;
    b.nav("catalog").await;
    b.fill("[data-testid=catalog-q]", "lantern").await;
    b.catalog_shows("Ada King", true).await;

    // The live event tail shows what happens.
    b.nav("events").await;
    b.text("[data-testid=events-state]", "live").await;
    let (status, _) = souk
        .post("/api/users", json!({"name": "Grace Hopper"}))
        .await;
    assert_eq!(status, 201);
    b.text("[data-testid=event]", "user.created").await;
    b.click("[data-testid=event]").await;
    b.text("[data-testid=event-json]", "Grace Hopper").await;
    b.shot("events").await;

    // Paused, it holds new events back until resumed.
    b.click("[data-testid=events-pause]").await;
    let (status, _) = souk
        .post("/api/users", json!({"name": "Alan Turing"}))
        .await;
    assert_eq!(status, 201);
    b.text("[data-testid=events-pause]", "Resume (1 new)").await;
    assert_eq!(
        b.c.find_all(css("[data-testid=event]"))
            .await
            .unwrap()
            .len(),
        1
    );
    b.click("[data-testid=events-pause]").await;
    b.until("the held event to show", || async move {
        let n = c.find_all(css("[data-testid=event]")).await.ok()?.len();
        (n == 2).then_some(())
    })
    .await;

    // The session ends (the cookie is gone): back to sign-in, then back where we were.
    b.nav("users").await;
    b.text("[data-testid=user-name]", "Grace Hopper").await;
    b.c.delete_cookie("souk_session").await.unwrap();
    b.nav("listings").await;
    b.el("[data-testid=session-expired]").await;
    b.fill("[data-testid=field-email]", "admin@example.com")
        .await;
    b.fill("[data-testid=field-password]", PASSWORD).await;
    b.click("[data-testid=login-submit]").await;
    b.text("[data-testid=listing-title]", "Brass lantern").await;
    assert_eq!(b.c.current_url().await.unwrap().path(), "/listings");

    // Delete Ada (after confirming): her listing leaves the catalog.
    b.nav("users").await;
    b.fill("[data-testid=users-search]", "Ada").await;
    b.until("only Ada in the table", || async move {
        let rows = c.find_all(css("[data-testid=user-name]")).await.ok()?;
        (rows.len() == 1 && rows[0].text().await.ok()? == "Ada King").then_some(())
    })
    .await;
    b.click("[data-testid=delete-user]").await;
    b.shot("confirm-delete").await;
    b.click("dialog [data-testid=confirm]").await;
    b.text("[data-testid=empty]", "No users match").await;
    b.nav("catalog").await;
    b.fill("[data-testid=catalog-q]", "lantern").await;
    b.catalog_shows("Brass lantern", false).await;

    // The operations pages load.
    for (page, ready) in [
        ("dead-letters", "[data-testid=empty]"),
        ("projections", "[data-testid=projection]"),
        ("accounts", "[data-testid=accounts-table]"),
        ("tokens", "[data-testid=tokens-table]"),
    ] {
        b.nav(page).await;
        b.el(ready).await;
        b.shot(page).await;
    }

    // A rebuild of the catalog shows its progress to the end.
    b.nav("projections").await;
    b.click("[data-testid=rebuild]").await;
    b.click("dialog [data-testid=confirm]").await;
    b.text("[data-testid=rebuild-progress]", "done").await;
    b.shot("projections-rebuilt").await;

    // An API token's secret is shown once.
    b.nav("tokens").await;
    b.click("[data-testid=new-token]").await;
    b.fill("dialog [data-testid=field-name]", "nightly import")
        .await;
    b.click("dialog [data-testid=submit]").await;
    let secret = b.el("dialog [data-testid=token-secret]").await;
    let secret = secret.text().await.unwrap();
    b.shot("token-created").await;
    b.click("dialog .primary").await;
    b.gone("dialog").await;
    b.text("[data-testid=tokens-table]", "nightly import").await;
    let me = souk
        .anonymous()
        .get(format!("{}/api/auth/me", souk.url))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the token shown works");

    // Changing one's password: a wrong current one shows on its field.
    b.click("[data-testid=change-password]").await;
    b.fill(
        "dialog [data-testid=field-current_password]",
        "not my password",
    )
    .await;
    b.fill(
        "dialog [data-testid=field-new_password]",
        "a brand new passphrase",
    )
    .await;
    b.fill(
        "dialog [data-testid=field-confirm]",
        "a brand new passphrase",
    )
    .await;
    b.click("dialog [data-testid=submit]").await;
    b.text(
        "dialog [data-testid=error-current_password]",
        "not the current password",
    )
    .await;
    b.fill("dialog [data-testid=field-current_password]", PASSWORD)
        .await;
    b.click("dialog [data-testid=submit]").await;
    b.gone("dialog").await;
    let login = souk
        .anonymous()
        .post(format!("{}/api/auth/login", souk.url))
        .json(&json!({"email": "admin@example.com", "password": "a brand new passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "the new password works");

    // Usable from 360 px wide.
    b.c.set_window_size(360, 800).await.unwrap();
    for page in ["users", "dashboard"] {
        b.nav(page).await;
        b.el("main h1").await;
        if page == "dashboard" {
            b.el("[data-testid=check]").await;
        }
        let wide = b.too_wide().await;
        assert_eq!(wide, json!([]), "{page} is wider than 360 px");
        b.shot(&format!("{page}-360px")).await;
    }

    // The dark theme follows the system's.
    b.c.set_window_size(1280, 900).await.unwrap();
    b.c.issue_cmd(Cdp(json!({
        "cmd": "Emulation.setEmulatedMedia",
        "params": {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    })))
    .await
    .unwrap();
    let dark =
        b.c.execute(
            "return matchMedia('(prefers-color-scheme: dark)').matches \
             && getComputedStyle(document.body).backgroundColor",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(dark, json!("rgb(17, 20, 27)"), "the dark background");
    for (page, ready) in [
        ("dashboard", "[data-testid=check]"),
        ("catalog", "[data-testid=empty]"),
    ] {
        b.nav(page).await;
        b.el(ready).await;
        b.shot(&format!("{page}-dark")).await;
    }
}
