//! Exactly one client credential: `CLIENT_SECRET`, a certificate (`CLIENT_CERTIFICATE_PATH`, or
//! `CLIENT_CERTIFICATE_THUMBPRINT` on App Service), a managed identity
//! (`MANAGED_IDENTITY_CLIENT_ID`) or a workload identity token file
//! (`AZURE_FEDERATED_TOKEN_FILE`). Certificates are loaded here, so a bad one stops start-up.

use std::path::{Path, PathBuf};

use entra_auth::{Certificate, ClientCredential, ManagedIdentity};
use secrecy::SecretString;
use url::Url;

use crate::config::problems::Problems;
use crate::config::settings::{Settings, set};

const CREDENTIAL_SETTINGS: &str = "CLIENT_SECRET, CLIENT_CERTIFICATE_PATH, CLIENT_CERTIFICATE_THUMBPRINT, MANAGED_IDENTITY_CLIENT_ID or AZURE_FEDERATED_TOKEN_FILE";

pub(crate) fn validate(settings: &Settings, problems: &mut Problems) -> Option<ClientCredential> {
    let candidates = [
        ("CLIENT_SECRET", set(&settings.client_secret)),
        ("CLIENT_CERTIFICATE_PATH", set(&settings.client_certificate_path)),
        ("CLIENT_CERTIFICATE_THUMBPRINT", set(&settings.client_certificate_thumbprint)),
        ("MANAGED_IDENTITY_CLIENT_ID", set(&settings.managed_identity_client_id)),
        ("AZURE_FEDERATED_TOKEN_FILE", set(&settings.federated_token_file)),
    ];
    let chosen: Vec<(&'static str, &str)> =
        candidates.iter().filter_map(|(name, value)| value.map(|value| (*name, value))).collect();
    let (name, value) = match chosen.as_slice() {
        [] => {
            problems.add(
                "CLIENT_SECRET",
                format!("no client credential is set. Set one of {CREDENTIAL_SETTINGS}: a secret's Value from Certificates & secrets, or (no secret to leak) a certificate or a managed identity."),
            );
            return None;
        }
        [one] => *one,
        several => {
            let names: Vec<&str> = several.iter().map(|(name, _)| *name).collect();
            problems.add(names[0], format!("set exactly one client credential; {} are all set.", names.join(", ")));
            return None;
        }
    };
    match name {
        "CLIENT_SECRET" => {
            problems.resolved(name, value).map(|secret| ClientCredential::Secret(SecretString::from(secret)))
        }
        "CLIENT_CERTIFICATE_PATH" => {
            let key_path = set(&settings.client_certificate_key_path).map(Path::new);
            let password = SecretString::from(settings.client_certificate_password.clone().unwrap_or_default());
            certificate(problems, name, Path::new(value), key_path, &password)
        }
        "CLIENT_CERTIFICATE_THUMBPRINT" => {
            let thumbprint = value.to_ascii_uppercase();
            if thumbprint.len() != 40 || !thumbprint.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.add(name, format!("'{value}' is not a certificate thumbprint (40 hex digits)."));
                return None;
            }
            let path = PathBuf::from(&settings.client_certificate_store).join(format!("{thumbprint}.p12"));
            if !path.exists() {
                problems.add(
                    name,
                    format!("{} does not exist: add the thumbprint to the app setting WEBSITE_LOAD_CERTIFICATES so App Service loads the certificate into the container.", path.display()),
                );
                return None;
            }
            // App Service writes these without a password.
            certificate(problems, name, &path, None, &SecretString::from(String::new()))
        }
        "MANAGED_IDENTITY_CLIENT_ID" => managed_identity(settings, problems, value),
        _ => {
            let path = PathBuf::from(value);
            if let Err(err) = std::fs::metadata(&path) {
                problems.add(
                    name,
                    format!("cannot read {}: {err} (is workload identity enabled for this pod?)", path.display()),
                );
                return None;
            }
            Some(ClientCredential::WorkloadIdentity(path))
        }
    }
}

fn certificate(
    problems: &mut Problems,
    name: &'static str,
    path: &Path,
    key_path: Option<&Path>,
    password: &SecretString,
) -> Option<ClientCredential> {
    match Certificate::from_file(path, key_path, password) {
        Ok(certificate) => Some(certificate.into()),
        Err(err) => {
            problems.add(name, format!("{err}. Use the certificate uploaded to the app registration (Certificates & secrets), with its private key."));
            None
        }
    }
}

fn managed_identity(settings: &Settings, problems: &mut Problems, client_id: &str) -> Option<ClientCredential> {
    if uuid::Uuid::parse_str(client_id).is_err() {
        problems.add(
            "MANAGED_IDENTITY_CLIENT_ID",
            format!("'{client_id}' is not the client id (a GUID) of a user-assigned managed identity."),
        );
        return None;
    }
    let (Some(endpoint), Some(header)) = (set(&settings.identity_endpoint), set(&settings.identity_header)) else {
        problems.add(
            "MANAGED_IDENTITY_CLIENT_ID",
            "is set but IDENTITY_ENDPOINT and IDENTITY_HEADER are not: assign the user-assigned identity to the web app (App Service then sets both).",
        );
        return None;
    };
    let Ok(endpoint) = Url::parse(endpoint) else {
        problems.add("IDENTITY_ENDPOINT", format!("'{endpoint}' is not a URL."));
        return None;
    };
    Some(ManagedIdentity::new(endpoint, SecretString::from(header.to_owned()), client_id).into())
}
