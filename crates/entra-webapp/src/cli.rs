//! The command line: `serve` (a real tenant, settings from the environment) and `demo` (the
//! built-in emulator, no settings).

use clap::{Args, Parser, Subcommand};

use crate::config::Settings;

/// Sign users in with Microsoft Entra ID, show their Microsoft Graph profile, sign them out.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the app against a real Entra ID tenant (or any Entra-shaped one). Every setting
    /// comes from the environment or .env; missing or malformed settings stop start-up (exit 2).
    /// Never falls back to the demo.
    Serve(Box<Settings>),
    /// Put sign-in in front of another web app: `serve` with UPSTREAM_URL required. Every request
    /// that is not one of ours goes to the upstream with the user's identity headers (App Service
    /// authentication's); see docs/PROXY.md.
    Proxy(Box<Settings>),
    /// Run the app and a local Entra ID emulator together on this machine, with test users: no
    /// Azure account and no settings needed.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
}

/// Options of `demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Port of the app (the emulator takes a free one).
    #[arg(long, env = "PORT", default_value_t = 5001)]
    pub port: u16,
    /// Proxy mode: put the demo's sign-in in front of this app (http://host:port, or https://
    /// with a certificate the system trusts) instead of showing the built-in pages.
    #[arg(long, env = "UPSTREAM_URL")]
    pub upstream: Option<String>,
}
