//! Micro-benchmarks of the session path: record (de)serialisation and seal/open (Redis store).

#![allow(clippy::unwrap_used, reason = "fixtures fail the run on the spot")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use entra_auth::axum::SignedInUser;
use entra_auth::{SessionKeys, TokenSet};
use entra_webapp::sessions::decode_record;
use secrecy::SecretString;
use tower_sessions::session::{Id, Record};

/// A signed-in session as the app stores it: user, profile, tokens, CSRF token.
fn record() -> Record {
    let mut data = std::collections::HashMap::new();
    data.insert(
        "entra.user".to_owned(),
        serde_json::json!({
            "object_id": "5b9cf4a2-7f43-4bd6-9d8b-0b6a4e3c2d10", "tenant_id": "7e6b1c4a-2f0d-4a8e-9c3b-5d1e8f2a6b90",
            "name": "Adele Vance", "email": "adele.vance@contoso.example", "sid": "0c8f6d7e-1111-2222-3333-444455556666",
            "login_hint": null,
            "profile": {"id": "5b9cf4a2-7f43-4bd6-9d8b-0b6a4e3c2d10", "displayName": "Adele Vance",
                "mail": "adele.vance@contoso.example", "userPrincipalName": "adele@contoso.example",
                "givenName": "Adele", "surname": "Vance", "jobTitle": "Product Manager"}
        }),
    );
    data.insert(
        "entra.tokens".to_owned(),
        serde_json::json!({
            "access_token": "x".repeat(1600), "expires_at": 1_900_000_000u64, "refresh_token": "r".repeat(900),
            "scopes": ["openid", "profile", "offline_access", "User.Read"], "lifetime": 3600
        }),
    );
    data.insert("entra.csrf".to_owned(), serde_json::json!("c".repeat(43)));
    Record { id: Id::default(), data, expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(8) }
}

/// The same record with the user and the tokens kept as their JSON text, as entra-auth stores
/// them now.
fn record_with_text_buckets() -> Record {
    let mut record = record();
    for key in ["entra.user", "entra.tokens"] {
        let value = record.data[key].to_string();
        record.data.insert(key.to_owned(), serde_json::Value::String(value));
    }
    record
}

/// What every signed-in request does with its record: the store hands out a copy, and the user
/// and the tokens are read from it.
fn read_user_and_tokens(record: &Record) -> (SignedInUser, TokenSet) {
    fn bucket<T: serde::de::DeserializeOwned>(record: &Record, key: &str) -> T {
        match record.data.get(key).cloned().unwrap() {
            serde_json::Value::String(text) => serde_json::from_str(&text).unwrap(),
            object => serde_json::from_value(object).unwrap(),
        }
    }
    let copy = record.clone();
    (bucket(&copy, "entra.user"), bucket(&copy, "entra.tokens"))
}

fn session_records(c: &mut Criterion) {
    let record = record();
    let text_form = record_with_text_buckets();
    c.bench_function("session/read_user_and_tokens/object_buckets", |b| {
        b.iter(|| read_user_and_tokens(black_box(&record)))
    });
    c.bench_function("session/read_user_and_tokens/text_buckets", |b| {
        b.iter(|| read_user_and_tokens(black_box(&text_form)))
    });
    let json = serde_json::to_vec(&record).unwrap();
    c.bench_function("session/serialize", |b| b.iter(|| serde_json::to_vec(black_box(&record)).unwrap()));
    c.bench_function("session/deserialize", |b| b.iter(|| serde_json::from_slice::<Record>(black_box(&json)).unwrap()));
    let keys = SessionKeys::from_secrets(&[SecretString::from("bench-secret-bench-secret-bench-secret-01".to_owned())]);
    let sealer = &keys.records;
    let id = record.id.to_string();
    let sealed = sealer.seal(id.as_bytes(), &json).unwrap();
    c.bench_function("session/seal", |b| b.iter(|| sealer.seal(id.as_bytes(), black_box(&json)).unwrap()));
    c.bench_function("session/open_and_decode", |b| b.iter(|| decode_record(sealer, &id, black_box(&sealed)).unwrap()));
}

criterion_group!(benches, session_records);
criterion_main!(benches);
