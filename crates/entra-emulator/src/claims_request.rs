//! The `claims` request parameter (OpenID Connect Core §5.5) as Entra reads it: client
//! capabilities (`xms_cc`, e.g. `cp1` for continuous access evaluation), and the `nbf` and
//! authentication contexts (`acrs`) a claims challenge demands. See `docs/ENTRA.md`, "Continuous access evaluation".

use serde_json::Value;

fn parse(claims: Option<&str>) -> Option<Value> {
    serde_json::from_str(claims?).ok()
}

/// Whether the request declares the `cp1` capability (`{"access_token":{"xms_cc":{"values":["cp1"]}}}`).
pub(crate) fn declares_cp1(claims: Option<&str>) -> bool {
    parse(claims)
        .and_then(|claims| claims.pointer("/access_token/xms_cc/values").cloned())
        .and_then(|values| values.as_array().cloned())
        .is_some_and(|values| values.iter().any(|value| value.as_str() == Some("cp1")))
}

/// The `access_token.nbf` value a claims challenge demands (unix seconds; Entra sends a string).
pub(crate) fn required_nbf(claims: Option<&str>) -> Option<i64> {
    let value = parse(claims)?.pointer("/access_token/nbf/value")?.clone();
    match value {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

/// The authentication contexts (`access_token.acrs`) a claims challenge demands: `value` or
/// `values`, as Conditional Access sends them.
pub(crate) fn required_auth_contexts(claims: Option<&str>) -> Vec<String> {
    let Some(acrs) = parse(claims).and_then(|claims| claims.pointer("/access_token/acrs").cloned()) else {
        return Vec::new();
    };
    let single = acrs.get("value").and_then(Value::as_str).map(str::to_owned);
    let several = acrs.get("values").and_then(Value::as_array).into_iter().flatten();
    single.into_iter().chain(several.filter_map(|value| value.as_str().map(str::to_owned))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_and_challenges_are_read() {
        let both = r#"{"access_token":{"xms_cc":{"values":["cp1"]},"nbf":{"essential":true,"value":"1700000000"}}}"#;
        assert!(declares_cp1(Some(both)));
        assert_eq!(required_nbf(Some(both)), Some(1_700_000_000));
        assert!(!declares_cp1(Some(r#"{"access_token":{"xms_cc":{"values":["cp2"]}}}"#)));
        assert!(!declares_cp1(Some("not json")));
        assert!(!declares_cp1(None));
        assert_eq!(required_nbf(Some(r#"{"access_token":{"nbf":{"value":17}}}"#)), Some(17));
        let contexts = r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#;
        assert_eq!(required_auth_contexts(Some(contexts)), ["c1"]);
        assert_eq!(required_auth_contexts(Some(r#"{"access_token":{"acrs":{"values":["c2","c3"]}}}"#)), ["c2", "c3"]);
        assert!(required_auth_contexts(Some(both)).is_empty());
    }
}
