//! The `entra-emulator` binary: `--managed-identity` serves a secretless app end to end.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn a_managed_identity_flag_gives_an_identity_endpoint_and_a_trusting_app_registration() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_entra-emulator"))
        .args(["--bind", "127.0.0.1:0", "--managed-identity", "5b0e2a53-6f7c-4c1e-9d8a-2a1f3e4b5c6d:9c8d7e6f-5a4b"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok);
    let mut banner = Vec::new();
    for line in lines.by_ref() {
        let done = line.starts_with("test users:");
        banner.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let value = |prefix: &str| {
        banner
            .iter()
            .find_map(|line| line.strip_prefix(prefix))
            .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{prefix} in {banner:?}"))
    };
    let (base, endpoint, header) =
        (value("entra-emulator listening on "), value("identity endpoint "), value("identity header "));
    let token: Value = http()
        .get(format!(
            "{endpoint}?resource=api://AzureADTokenExchange&api-version=2019-08-01&client_id=5b0e2a53-6f7c-4c1e-9d8a-2a1f3e4b5c6d"
        ))
        .header("X-IDENTITY-HEADER", header)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let form = [
        ("client_id", client_id()),
        ("grant_type", "client_credentials".to_owned()),
        ("scope", "https://graph.microsoft.com/.default".to_owned()),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned()),
        ("client_assertion", token["access_token"].as_str().unwrap().to_owned()),
    ];
    let tenant = entra_emulator::DEFAULT_TENANT_ID;
    let answer: Value = http()
        .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let code = answer["error_codes"][0].as_u64();
    assert!(!matches!(code, Some(700211 | 700212 | 700213 | 700027 | 700024 | 7000218)), "{answer}");
}
