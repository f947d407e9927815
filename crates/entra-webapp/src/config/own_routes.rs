//! Where our own routes are (`PROXY_OWN_ROUTES`): at the root (`/login`, `/logout`, `/healthz`,
//! `/readyz`, `/metrics`), or, in front of an app that has paths of those names, all under
//! `/.auth/` as App Service authentication's are, leaving every other path to the app.

use crate::config::problems::Problems;

/// The paths of our own routes (App Service authentication's `/.auth/*` are the same in both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OwnRoutes {
    /// `/login`, `/logout`, `/healthz`, `/readyz`, `/metrics`.
    #[default]
    Root,
    /// `/.auth/sign-in`, `/.auth/sign-out`, `/.auth/healthz`, `/.auth/readyz`, `/.auth/metrics`.
    UnderAuth,
}

impl OwnRoutes {
    /// Sign-in (entra-auth's login route).
    pub fn sign_in(self) -> &'static str {
        self.pick("/login", "/.auth/sign-in")
    }

    /// Sign-out, its confirmation and front-channel logout (entra-auth's logout route).
    pub fn sign_out(self) -> &'static str {
        self.pick("/logout", "/.auth/sign-out")
    }

    /// Liveness.
    pub fn healthz(self) -> &'static str {
        self.pick("/healthz", "/.auth/healthz")
    }

    /// Readiness.
    pub fn readyz(self) -> &'static str {
        self.pick("/readyz", "/.auth/readyz")
    }

    /// Prometheus metrics (with `METRICS_TOKEN`).
    pub fn metrics(self) -> &'static str {
        self.pick("/metrics", "/.auth/metrics")
    }

    fn pick(self, root: &'static str, under_auth: &'static str) -> &'static str {
        match self {
            OwnRoutes::Root => root,
            OwnRoutes::UnderAuth => under_auth,
        }
    }
}

/// `PROXY_OWN_ROUTES`: `/` or `/.auth`.
pub(crate) fn own_routes(value: &str, problems: &mut Problems) -> OwnRoutes {
    match value.trim().trim_end_matches('/') {
        "" => OwnRoutes::Root,
        "/.auth" => OwnRoutes::UnderAuth,
        other => {
            problems.add(
                "PROXY_OWN_ROUTES",
                format!(
                    "'{other}' is not / (our routes at the root: /login, /logout, /healthz, /readyz, /metrics) or /.auth (all of them under /.auth/, as App Service authentication's, leaving those paths to the app)."
                ),
            );
            OwnRoutes::Root
        }
    }
}
