//! Plain-language explanations of the AADSTS codes users and operators meet most.
//! See `docs/ENTRA.md`, "Token endpoint errors".

/// What an AADSTS code means and what to do about it; `redirect_uri` is the configured one.
pub(crate) fn explain(code: u32, redirect_uri: &str) -> Option<String> {
    let text = match code {
        50011 => format!(
            "The redirect URI this app sent is not registered on its app registration. In the Azure portal, open the app registration, Authentication, and add exactly {redirect_uri} as a Web redirect URI (it is case-sensitive and must match the scheme, host, port and path)."
        ),
        7000215 => "Entra does not recognise the client secret. The app must be configured with the secret's Value (not its Secret ID) from Certificates & secrets.".to_owned(),
        7000222 => "The client secret has expired. Create a new one under Certificates & secrets and configure the app with it.".to_owned(),
        700016 => "The application (client) id was not found in this tenant. Check the app's client id and tenant, or whether the app is registered in another tenant.".to_owned(),
        65001 => "You (or an administrator) have not consented to the permissions this app needs. Sign in again and accept the permissions, or ask an administrator to grant consent.".to_owned(),
        65004 => "You declined the permissions this app asked for, so what needs them is not available. Sign in again and accept them if you want to use it.".to_owned(),
        700027 => "Entra could not verify the app's client assertion: the certificate that signed it is not among the app registration's certificates (Certificates & secrets), or its key does not match the uploaded certificate.".to_owned(),
        700024 => "The app's client assertion is outside its validity period: check the server's clock, and that the managed identity or workload identity token is fresh.".to_owned(),
        70021 | 700211 | 700212 | 700213 => format!(
            "No federated credential of the app registration matches the token the app presented ({}). Under Certificates & secrets > Federated credentials, the managed identity's entry needs issuer https://login.microsoftonline.com/<tenant id>/v2.0, subject = the identity's object (principal) id, audience api://AzureADTokenExchange.",
            match code {
                700211 => "its issuer differs",
                700212 => "its audience differs",
                700213 => "its subject differs",
                _ => "issuer, subject or audience differ",
            }
        ),
        54005 => "This sign-in link was already used. Sign in again to get a fresh one.".to_owned(),
        70008 => "The sign-in took too long and its code expired. Sign in again.".to_owned(),
        501481 => "The sign-in could not be verified (PKCE check failed). Sign in again.".to_owned(),
        50076 => "Your organisation requires multi-factor authentication for this app. Sign in again and complete it.".to_owned(),
        53003 => "Your organisation's Conditional Access policy blocked this sign-in. Contact your administrator.".to_owned(),
        50196 => "Entra stopped a sign-in loop: the app asked for sign-in too many times in a short period. Wait a moment and try again.".to_owned(),
        50058 => "No one is signed in to Microsoft in this browser. Sign in again.".to_owned(),
        50173 | 700082 | 70043 => "Your sign-in has expired or was revoked. Sign in again.".to_owned(),
        _ => return None,
    };
    Some(text)
}

/// The AADSTS number at the start of an `error_description` ("AADSTS50011: ...").
pub(crate) fn code_in_description(description: &str) -> Option<u32> {
    let rest = description.trim_start().strip_prefix("AADSTS")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_url_mismatch_names_the_uri_to_register() {
        let text = explain(50011, "https://app.example/callback").unwrap();
        assert!(text.contains("https://app.example/callback"));
    }

    #[test]
    fn codes_are_read_from_descriptions() {
        assert_eq!(code_in_description("AADSTS65004: User declined"), Some(65004));
        assert_eq!(code_in_description("nothing"), None);
    }
}
