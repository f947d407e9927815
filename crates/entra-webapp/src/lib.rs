//! entra-webapp: a server-side web app that signs users in with Microsoft Entra ID, shows their
//! Graph profile and signs them out. `main` only parses the command line and calls in here.

mod bearer_header;
pub mod cli;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod error;
pub mod guard;
pub mod metrics;
pub mod pages;
pub mod proxy;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod sessions;
pub mod shutdown;
pub mod site;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod workers;
