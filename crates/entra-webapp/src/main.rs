//! `entra-webapp serve | demo`. Thin: parse, configure, run.

use std::process::ExitCode;

use clap::Parser;
use entra_webapp::cli::{Cli, Command};
#[cfg(feature = "demo")]
use entra_webapp::demo;
use entra_webapp::startup::Application;
use entra_webapp::{shutdown, telemetry};

/// mimalloc: a request allocates and frees many small buffers, and glibc's allocator took a sixth
/// of a proxied request's instructions (`docs/PERFORMANCE.md`). Built without transparent huge pages
/// (`no_thp`): with them, its arenas made the idle process twice as large.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Local development: settings may sit in .env; the real environment wins.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("entra-webapp: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match cli.command {
        Command::Serve(settings) => runtime.block_on(serve(*settings)),
        Command::Proxy(settings) if settings.upstream_url.as_deref().is_none_or(|url| url.trim().is_empty()) => {
            eprintln!(
                "entra-webapp cannot start: 1 setting(s) need fixing:\n  - UPSTREAM_URL: is not set. `proxy` forwards to the app behind it: set it to http://host:port.\nSet them as environment variables (or in .env); `entra-webapp proxy --help` lists every setting."
            );
            ExitCode::from(2)
        }
        Command::Proxy(settings) => runtime.block_on(serve(*settings)),
        #[cfg(feature = "demo")]
        Command::Demo(args) => runtime.block_on(demo::run(args.port, args.upstream)),
    }
}

async fn serve(settings: entra_webapp::config::Settings) -> ExitCode {
    let config = match settings.validate() {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.logging.format, &config.logging.filter);
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error = %err, "cannot start");
            eprintln!("entra-webapp: {err:#}");
            return ExitCode::from(1);
        }
    };
    if let Ok(address) = app.local_addr() {
        tracing::info!(%address, "listening");
    }
    match shutdown::serve_until_signal(app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "server failed");
            ExitCode::from(1)
        }
    }
}
