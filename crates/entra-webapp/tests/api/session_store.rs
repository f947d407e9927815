//! The session-store contract, run against the memory store and the Redis store alike.

use std::sync::Arc;

use entra_auth::SessionKeys;
use entra_auth::axum::{EntraSession, EntraSessionIndex};
use entra_webapp::sessions::{AppSessionStore, MemoryStore, RedisStore};
use secrecy::SecretString;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};

use crate::redis_server::RedisServer;

const ISSUER: &str = "https://login.example/7e6b1c4a-2f0d-4a8e-9c3b-5d1e8f2a6b90/v2.0";

fn unix_now() -> u64 {
    time::OffsetDateTime::now_utc().unix_timestamp().unsigned_abs()
}

/// A signed-in record as entra-auth writes it, idle expiry `seconds` away, sign-in ending in an hour.
fn record(seconds: i64) -> Record {
    signed_in_record(seconds, "sid-1", unix_now() + 3600)
}

fn signed_in_record(seconds: i64, sid: &str, session_ends_at: u64) -> Record {
    let mut data = std::collections::HashMap::new();
    data.insert(
        "entra.user".to_owned(),
        serde_json::json!({"name": "Adele", "sid": sid, "issuer": ISSUER, "session_ends_at": session_ends_at}),
    );
    Record { id: Id::default(), data, expiry_date: time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds) }
}

fn secrets(values: &[&str]) -> Vec<SecretString> {
    values.iter().map(|v| SecretString::from((*v).to_owned())).collect()
}

fn redis_store(server: &RedisServer, secret_list: &[&str]) -> AppSessionStore {
    let client = redis::Client::open(server.url()).unwrap();
    let keys = Arc::new(SessionKeys::from_secrets(&secrets(secret_list)));
    AppSessionStore::Redis(Arc::new(RedisStore::new(client, keys).unwrap()))
}

fn entra_session(sid: &str) -> EntraSession {
    EntraSession { issuer: ISSUER.to_owned(), sid: sid.to_owned() }
}

async fn contract(store: &AppSessionStore) {
    // create + load
    let mut created = record(60);
    store.create(&mut created).await.unwrap();
    let loaded = store.load(&created.id).await.unwrap().expect("created record loads");
    assert_eq!(loaded.data, created.data);

    // save replaces
    let mut changed = loaded.clone();
    changed.data.insert("entra.tokens".to_owned(), serde_json::json!({"x": 2}));
    store.save(&changed).await.unwrap();
    assert_eq!(store.load(&created.id).await.unwrap().unwrap().data, changed.data);

    // a save carries the record's new expiry: one moved into the past no longer loads
    let mut lapsed = record(60);
    store.create(&mut lapsed).await.unwrap();
    lapsed.expiry_date = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    store.save(&lapsed).await.unwrap();
    assert!(store.load(&lapsed.id).await.unwrap().is_none(), "the saved expiry is the one that counts");

    // unknown ids load as nothing
    assert!(store.load(&Id::default()).await.unwrap().is_none());

    // delete, and a save from a request that loaded the record earlier does not bring it back
    store.delete(&created.id).await.unwrap();
    assert!(store.load(&created.id).await.unwrap().is_none());
    store.save(&changed).await.unwrap();
    assert!(store.load(&created.id).await.unwrap().is_none(), "a deleted session stays deleted");
    store.delete(&created.id).await.unwrap();

    // a save never creates
    let never_created = record(60);
    store.save(&never_created).await.unwrap();
    assert!(store.load(&never_created.id).await.unwrap().is_none(), "save is update-only");

    // expired records are gone, by idle expiry or by the sign-in's absolute end
    let mut expired = record(-5);
    store.create(&mut expired).await.unwrap();
    assert!(store.load(&expired.id).await.unwrap().is_none());
    let mut past_its_end = signed_in_record(600, "sid-end", unix_now() - 1);
    store.create(&mut past_its_end).await.unwrap();
    assert!(store.load(&past_its_end.id).await.unwrap().is_none(), "the absolute end wins over the idle expiry");

    // creating with an id in use picks another
    let mut first = record(60);
    store.create(&mut first).await.unwrap();
    let mut second = record(60);
    second.id = first.id;
    store.create(&mut second).await.unwrap();
    assert_ne!(first.id, second.id, "a colliding id is replaced");
    assert!(store.load(&first.id).await.unwrap().is_some(), "the first record is untouched");

    // front-channel logout: every session of that Entra session (issuer and sid) ends, no other
    let mut a = signed_in_record(60, "sid-shared", unix_now() + 3600);
    let mut b = signed_in_record(60, "sid-shared", unix_now() + 3600);
    let mut other = signed_in_record(60, "sid-other", unix_now() + 3600);
    for r in [&mut a, &mut b, &mut other] {
        store.create(r).await.unwrap();
    }
    let foreign =
        EntraSession { issuer: "https://login.example/another-tenant/v2.0".to_owned(), sid: "sid-shared".to_owned() };
    assert_eq!(store.end_entra_session(&foreign).await.unwrap(), 0, "the same sid from another issuer ends nothing");
    assert_eq!(store.end_entra_session(&entra_session("sid-shared")).await.unwrap(), 2);
    assert!(store.load(&a.id).await.unwrap().is_none() && store.load(&b.id).await.unwrap().is_none());
    store.save(&a).await.unwrap();
    assert!(
        store.load(&a.id).await.unwrap().is_none(),
        "an in-flight save after front-channel logout does not revive it"
    );
    assert!(store.load(&other.id).await.unwrap().is_some());

    assert!(store.is_ready().await);
}

#[tokio::test]
async fn memory_store_honours_the_session_store_contract() {
    contract(&AppSessionStore::Memory(Arc::new(MemoryStore::new(100)))).await;
}

#[tokio::test]
async fn redis_store_honours_the_session_store_contract() {
    let server = RedisServer::start();
    let store = redis_store(&server, &["contract-secret-contract-secret-0123"]);
    let debug = format!("{store:?}");
    assert!(debug.contains("RedisStore") && debug.contains("Sealer(1 keys)"), "{debug}");
    assert!(!debug.contains("contract-secret"), "Debug shows no secret: {debug}");
    contract(&store).await;
}

#[tokio::test]
async fn memory_store_evicts_the_least_recently_used_beyond_its_limit() {
    let memory = Arc::new(MemoryStore::new(3));
    let store = AppSessionStore::Memory(memory.clone());
    let mut records = Vec::new();
    for _ in 0..3 {
        let mut r = record(60);
        store.create(&mut r).await.unwrap();
        records.push(r);
    }
    // Reading counts as use: record 0 is now the most recent, record 1 the least.
    store.load(&records[0].id).await.unwrap().unwrap();
    let mut fourth = record(60);
    store.create(&mut fourth).await.unwrap();
    assert_eq!(memory.len(), 3);
    assert!(store.load(&records[1].id).await.unwrap().is_none(), "the least recently used went");
    assert!(store.load(&records[0].id).await.unwrap().is_some());
    assert!(store.load(&records[2].id).await.unwrap().is_some());
}

#[tokio::test]
async fn memory_store_evicts_in_creation_order_when_nothing_was_used() {
    let memory = Arc::new(MemoryStore::new(2));
    let store = AppSessionStore::Memory(memory.clone());
    assert!(memory.is_empty());
    let mut records = Vec::new();
    for _ in 0..4 {
        let mut r = record(60);
        store.create(&mut r).await.unwrap();
        records.push(r);
    }
    assert_eq!(memory.len(), 2, "bounded");
    assert!(!memory.is_empty());
    assert!(store.load(&records[0].id).await.unwrap().is_none() && store.load(&records[1].id).await.unwrap().is_none());
    assert!(store.load(&records[2].id).await.unwrap().is_some() && store.load(&records[3].id).await.unwrap().is_some());
}

#[tokio::test]
async fn redis_keys_expire_with_the_session_or_its_absolute_end() {
    let server = RedisServer::start();
    let store = redis_store(&server, &["ttl-secret-ttl-secret-ttl-secret-0123"]);
    let mut idle_first = signed_in_record(120, "sid-a", unix_now() + 3600);
    store.create(&mut idle_first).await.unwrap();
    let mut end_first = signed_in_record(3600, "sid-b", unix_now() + 200);
    store.create(&mut end_first).await.unwrap();
    let mut ttls: Vec<i64> = Vec::new();
    for (key, _) in server.raw_values().await.iter().filter(|(k, _)| k.starts_with("entra-webapp:session:")) {
        ttls.push(server.ttl(key).await);
    }
    ttls.sort();
    assert_eq!(ttls.len(), 2);
    assert!((100..=120).contains(&ttls[0]), "idle expiry: {ttls:?}");
    assert!((180..=200).contains(&ttls[1]), "absolute end, sooner than the idle expiry: {ttls:?}");
    // The front-channel index outlives the idle expiry: activity may extend the session up to its
    // absolute end, and front-channel logout must still find it then.
    let dump = server.raw_values().await;
    let mut index_ttls: Vec<i64> = Vec::new();
    for (key, _) in dump.iter().filter(|(k, _)| k.starts_with("entra-webapp:entra-session:")) {
        index_ttls.push(server.ttl(key).await);
    }
    index_ttls.sort();
    assert_eq!(index_ttls.len(), 2);
    assert!((180..=200).contains(&index_ttls[0]), "sid-b's index lives to its absolute end: {index_ttls:?}");
    assert!(
        (3580..=3600).contains(&index_ttls[1]),
        "sid-a's index lives to its absolute end, not its idle expiry: {index_ttls:?}"
    );
}

#[tokio::test]
async fn a_redis_dump_names_no_session_id_and_no_entra_session() {
    let server = RedisServer::start();
    let store = redis_store(&server, &["dump-secret-dump-secret-dump-secret-0123"]);
    let mut r = signed_in_record(60, "entra-sid-visible-if-leaked", unix_now() + 3600);
    store.create(&mut r).await.unwrap();
    let id = r.id.to_string();
    let dump = server.raw_values().await;
    assert_eq!(dump.len(), 2, "the record and its Entra-session index: {dump:?}");
    for (key, value) in &dump {
        for secret in [id.as_str(), "entra-sid-visible-if-leaked", ISSUER] {
            assert!(!key.contains(secret), "{key} names {secret}");
            assert!(!value.windows(secret.len()).any(|w| w == secret.as_bytes()), "{key}'s value holds {secret}");
        }
    }
}

#[tokio::test]
async fn sealed_records_rotate_with_the_secret_list_and_tampering_is_no_session() {
    let server = RedisServer::start();
    let old = redis_store(&server, &["old-secret-old-secret-old-secret-0123"]);
    let mut r = record(60);
    old.create(&mut r).await.unwrap();

    let rotated =
        redis_store(&server, &["new-secret-new-secret-new-secret-0123", "old-secret-old-secret-old-secret-0123"]);
    let loaded = rotated.load(&r.id).await.unwrap().expect("the second secret of the list finds and opens it");
    rotated.save(&loaded).await.unwrap();
    assert!(rotated.load(&r.id).await.unwrap().is_some(), "saving under rotation keeps the record");
    assert!(rotated.end_entra_session(&entra_session("sid-1")).await.unwrap() == 1, "the old index is found too");

    let mut again = record(60);
    old.create(&mut again).await.unwrap();
    let rotated_out = redis_store(&server, &["new-secret-new-secret-new-secret-0123"]);
    assert!(rotated_out.load(&again.id).await.unwrap().is_none(), "a rotated-out secret's record is not found");

    let key = server
        .raw_values()
        .await
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| k.starts_with("entra-webapp:session:"))
        .expect("the record's key");
    let mut raw = server.raw_values().await.into_iter().find(|(k, _)| *k == key).unwrap().1;
    let middle = raw.len() / 2;
    raw[middle] ^= 0x55;
    server.set_raw(&key, &raw).await;
    assert!(old.load(&again.id).await.unwrap().is_none(), "a tampered record is no session, not an error");
}

#[tokio::test]
async fn a_redis_key_lives_until_its_record_expires_to_the_fraction_of_a_second() {
    let server = RedisServer::start();
    let store = redis_store(&server, &["frac-secret-frac-secret-frac-secret-0123"]);
    // Expiring in 10.5 s: whole seconds rounded down would drop the key half a second early.
    let mut record = signed_in_record(0, "sid-f", unix_now() + 3600);
    record.expiry_date = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(10_500);
    store.create(&mut record).await.unwrap();
    let left_ms = (record.expiry_date - time::OffsetDateTime::now_utc()).whole_milliseconds();
    let dump = server.raw_values().await;
    let key = dump.iter().map(|(k, _)| k).find(|k| k.starts_with("entra-webapp:session:")).expect("the record's key");
    let pttl = i128::from(server.pttl(key).await);
    assert!(pttl >= left_ms - 100, "the key lives {pttl} ms, the record {left_ms} ms");
    assert!(pttl <= 11_000, "and not more than a second longer: {pttl} ms");
}
