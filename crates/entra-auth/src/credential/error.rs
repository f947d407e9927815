//! Why no credential could be presented.

/// Why no credential could be presented.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The certificate or its key cannot be read or used.
    #[error("certificate credential: {0}")]
    Certificate(String),
    /// The managed identity endpoint gave no token.
    #[error("managed identity credential: {0}")]
    ManagedIdentity(String),
    /// The workload identity token file cannot be read.
    #[error("workload identity credential: cannot read {path}: {source}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
