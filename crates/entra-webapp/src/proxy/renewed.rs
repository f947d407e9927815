//! What the proxy reads from files that are renewed in place: the certificate it presents to the
//! upstream (`client_certificate.rs`) and the CAs it trusts for it (`trusted_cas.rs`). Both are
//! renewed without a restart by the tools that keep them (cert-manager, a service mesh, App
//! Service's Key Vault certificates, a mounted ConfigMap), and a proxy that kept what it read at
//! start-up would be refused by the upstream, or refuse it, until restarted.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{FilesFingerprint, SettingProblem};

/// The files are looked at no more often than this (on a new connection to the upstream).
const RECHECK: Duration = Duration::from_secs(1);

/// Files read again when they change, and what is made of them.
pub(crate) trait RenewableFiles: Send + Sync {
    /// What is made of the files (and kept while they do not change).
    type Made: Clone;
    /// What the files are, for the logs.
    const WHAT: &'static str;
    /// The (first) file, for the logs.
    fn path(&self) -> &str;
    /// The files' modification times and sizes now.
    fn fingerprint(&self) -> FilesFingerprint;
    /// What the files hold now, made usable.
    fn make(&self) -> Result<Self::Made, SettingProblem>;
}

/// The latest usable content of `files`: on a new connection to the upstream, at most once per
/// [`RECHECK`], the files' modification times and sizes are compared with those last read; when
/// they changed, the files are read again. A changed file that cannot be used (half written, a key
/// of another certificate) is logged once and what was read before is kept.
#[derive(Debug)]
pub(crate) struct Renewed<F: RenewableFiles> {
    files: F,
    state: Mutex<State<F::Made>>,
}

#[derive(Debug)]
struct State<T> {
    current: T,
    /// The files as last read, whether what they held could be used or not.
    seen: FilesFingerprint,
    checked: Instant,
}

impl<F: RenewableFiles> Renewed<F> {
    /// `made` from `files`, as they were (`made_from`) when read at start-up.
    pub(crate) fn new(files: F, made: F::Made, made_from: FilesFingerprint) -> Self {
        Self { files, state: Mutex::new(State { current: made, seen: made_from, checked: Instant::now() }) }
    }

    /// What to use now, read again first if the files changed. (A look at two files' metadata once
    /// a second at most, and rarely a read of a few kilobytes: done in place, on the thread
    /// opening the connection, rather than by a task of its own.)
    pub(crate) fn current(&self) -> F::Made {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            let now = self.files.fingerprint();
            if now != state.seen {
                state.seen = now;
                match self.files.make() {
                    Ok(renewed) => {
                        tracing::info!(
                            what = F::WHAT,
                            path = self.files.path(),
                            "renewed in place: the new one is used"
                        );
                        state.current = renewed;
                    }
                    Err((setting, problem)) => tracing::warn!(
                        what = F::WHAT,
                        setting,
                        problem,
                        "the changed file cannot be used: the one read before is still used"
                    ),
                }
            }
        }
        state.current.clone()
    }

    /// As if the last look at the files were more than [`RECHECK`] ago.
    #[cfg(test)]
    pub(crate) fn let_a_second_pass(&self) {
        self.state.lock().unwrap().checked -= RECHECK;
    }
}
