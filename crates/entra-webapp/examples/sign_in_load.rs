//! Load driver for `scripts/bench.sh`: complete sign-ins against a running entra-webapp and its
//! emulator, each with a fresh cookie jar, as a new browser would: /login, the emulator's sign-in
//! form, the callback, then the signed-in page.
//!
//! `sign_in_load --app http://127.0.0.1:5001 --count 1000 --concurrency 8 --print rate|cookie`
//!
//! With `--anonymous`, each unit is instead one cookieless `GET /login` (an anonymous flood: it
//! must cost the server nothing), checked to answer 303 without a session cookie.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};

#[derive(Parser)]
struct Args {
    /// The app's base URL.
    #[arg(long)]
    app: String,
    /// How many sign-ins.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// How many at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    #[arg(long, default_value = "adele@emulator.test")]
    user: String,
    #[arg(long, default_value = "adele-password")]
    password: String,
    /// Cookieless `GET /login` requests instead of sign-ins.
    #[arg(long)]
    anonymous: bool,
    /// The app is in proxy mode: its cookie is `entra-session`, and `/.auth/me` says who is
    /// signed in (its `/` is the upstream's).
    #[arg(long)]
    proxy: bool,
    /// What to print on stdout: the rate, or the last session cookie (for wrk).
    #[arg(long, value_enum, default_value_t = Print::Rate)]
    print: Print,
}

#[derive(Clone, Copy, ValueEnum)]
enum Print {
    Rate,
    Cookie,
}

fn location(response: &reqwest::Response) -> anyhow::Result<String> {
    Ok(response.headers().get("location").context("no Location")?.to_str()?.to_owned())
}

fn hidden_ctx(html: &str) -> anyhow::Result<String> {
    let marker = "name=\"ctx\" value=\"";
    let start = html.find(marker).context("no ctx on the sign-in page")? + marker.len();
    let end = html[start..].find('"').context("unterminated ctx")? + start;
    Ok(html[start..end].to_owned())
}

/// One complete sign-in; returns the session cookie.
async fn sign_in(args: &Args) -> anyhow::Result<String> {
    // A new browser: its own cookie jar and connections. The app is plain HTTP on loopback, so
    // the driver skips loading the system's root certificates for each one (file reads that cost
    // more CPU than the sign-in it measures, on the cores the servers share).
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .tls_built_in_root_certs(false)
        .no_proxy()
        .build()?;
    let login = browser.get(format!("{}/login", args.app)).send().await?;
    let authorize = location(&login)?;
    let page = browser.get(&authorize).send().await?.text().await?;
    let tenant_base = authorize.split("/oauth2/").next().context("not an authorize URL")?;
    let form = [("ctx", hidden_ctx(&page)?), ("loginfmt", args.user.clone()), ("passwd", args.password.clone())];
    let answer = browser.post(format!("{tenant_base}/login")).form(&form).send().await?;
    if answer.status() != reqwest::StatusCode::FOUND {
        bail!("the emulator answered {} (start it with --admin-consent)", answer.status());
    }
    let callback = browser.get(location(&answer)?).send().await?;
    let cookie = callback
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| {
            let name = value.trim_start_matches("__Host-");
            name.starts_with(if args.proxy { "entra-session=" } else { "session=" })
        })
        .context("no session cookie")?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let signed_in = match args.proxy {
        true => browser.get(format!("{}/.auth/me", args.app)).send().await?.status().is_success(),
        false => browser.get(format!("{}/", args.app)).send().await?.text().await?.contains("id=\"welcome\""),
    };
    if !signed_in {
        bail!("not signed in after the callback");
    }
    Ok(cookie)
}

/// One anonymous sign-in start: a redirect to Entra and no session.
async fn anonymous_login(client: &reqwest::Client, app: &str) -> anyhow::Result<()> {
    let response = client.get(format!("{app}/login")).send().await?;
    if response.status() != reqwest::StatusCode::SEE_OTHER {
        bail!("/login answered {}", response.status());
    }
    let session = response.headers().get_all("set-cookie").iter().any(|v| v.as_bytes().starts_with(b"session="));
    if session {
        bail!("an anonymous /login created a session");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let anonymous = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let args = args.clone();
        let next = next.clone();
        let anonymous = anonymous.clone();
        workers.push(tokio::spawn(async move {
            let mut last_cookie = String::new();
            while next.fetch_add(1, Ordering::Relaxed) < args.count {
                if args.anonymous {
                    anonymous_login(&anonymous, &args.app).await?;
                } else {
                    last_cookie = sign_in(&args).await?;
                }
            }
            Ok::<_, anyhow::Error>(last_cookie)
        }));
    }
    let mut cookie = String::new();
    for worker in workers {
        let last = worker.await??;
        if !last.is_empty() {
            cookie = last;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    match args.print {
        Print::Rate => println!("{:.1}", args.count as f64 / elapsed),
        Print::Cookie => println!("{cookie}"),
    }
    let what = if args.anonymous { "anonymous /login requests" } else { "sign-ins" };
    eprintln!("{} {what} in {elapsed:.2} s", args.count);
    Ok(())
}
