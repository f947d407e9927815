//! The app's routes around entra-auth's sign-in routes.

mod assets;
mod calls;
mod health;
mod home;
mod profile;
mod setup;

pub use assets::stylesheet;
pub use calls::{MailRead, downstream, mail};
pub use health::{healthz, readyz};
pub use home::home;
pub use profile::{photo, profile};
pub use setup::setup;
