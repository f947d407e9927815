//! The session-store contract, run against the memory store and the Redis store alike.

use std::sync::Arc;

use entra_webapp::sessions::seal::Sealer;
use entra_webapp::sessions::{AppSessionStore, MemoryStore, RedisStore};
use secrecy::SecretString;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};

use crate::redis_server::RedisServer;

fn record(seconds: i64) -> Record {
    let mut data = std::collections::HashMap::new();
    data.insert("entra.user".to_owned(), serde_json::json!({"name": "Adele", "n": 1}));
    Record { id: Id::default(), data, expiry_date: time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds) }
}

fn secrets(values: &[&str]) -> Vec<SecretString> {
    values.iter().map(|v| SecretString::from((*v).to_owned())).collect()
}

fn redis_store(server: &RedisServer, secret_list: &[&str]) -> AppSessionStore {
    let client = redis::Client::open(server.url()).unwrap();
    AppSessionStore::Redis(Arc::new(RedisStore::new(client, Sealer::new(&secrets(secret_list))).unwrap()))
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

    // unknown ids load as nothing
    assert!(store.load(&Id::default()).await.unwrap().is_none());

    // delete
    store.delete(&created.id).await.unwrap();
    assert!(store.load(&created.id).await.unwrap().is_none());
    store.delete(&created.id).await.unwrap();

    // expired records are gone
    let mut expired = record(-5);
    store.create(&mut expired).await.unwrap();
    assert!(store.load(&expired.id).await.unwrap().is_none());

    // creating with an id in use picks another
    let mut first = record(60);
    store.create(&mut first).await.unwrap();
    let mut second = record(60);
    second.id = first.id;
    store.create(&mut second).await.unwrap();
    assert_ne!(first.id, second.id, "a colliding id is replaced");
    assert!(store.load(&first.id).await.unwrap().is_some(), "the first record is untouched");

    // readiness
    store.readiness().await.unwrap();
}

#[tokio::test]
async fn memory_store_honours_the_session_store_contract() {
    contract(&AppSessionStore::Memory(Arc::new(MemoryStore::new(100)))).await;
}

#[tokio::test]
async fn redis_store_honours_the_session_store_contract() {
    let server = RedisServer::start();
    contract(&redis_store(&server, &["contract-secret-contract-secret-0123"])).await;
}

#[tokio::test]
async fn memory_store_evicts_the_least_recently_saved_beyond_its_limit() {
    let memory = Arc::new(MemoryStore::new(3));
    let store = AppSessionStore::Memory(memory.clone());
    let mut records = Vec::new();
    for _ in 0..3 {
        let mut r = record(60);
        store.create(&mut r).await.unwrap();
        records.push(r);
    }
    store.save(&records[0]).await.unwrap(); // now the most recent
    let mut fourth = record(60);
    store.create(&mut fourth).await.unwrap();
    assert_eq!(memory.len(), 3);
    assert!(store.load(&records[1].id).await.unwrap().is_none(), "the least recently saved went");
    assert!(store.load(&records[0].id).await.unwrap().is_some());
}

#[tokio::test]
async fn redis_keys_expire_with_the_session() {
    let server = RedisServer::start();
    let store = redis_store(&server, &["ttl-secret-ttl-secret-ttl-secret-0123"]);
    let mut r = record(120);
    store.create(&mut r).await.unwrap();
    let ttl = server.ttl(&format!("entra-webapp:session:{}", r.id)).await;
    assert!((100..=120).contains(&ttl), "TTL {ttl}");
}

#[tokio::test]
async fn sealed_records_rotate_with_the_secret_list_and_tampering_is_no_session() {
    let server = RedisServer::start();
    let old = redis_store(&server, &["old-secret-old-secret-old-secret-0123"]);
    let mut r = record(60);
    old.create(&mut r).await.unwrap();

    let rotated = redis_store(&server, &["new-secret-new-secret-new-secret-0123", "old-secret-old-secret-old-secret-0123"]);
    assert!(rotated.load(&r.id).await.unwrap().is_some(), "the second secret of the list opens");

    let rotated_out = redis_store(&server, &["new-secret-new-secret-new-secret-0123"]);
    assert!(rotated_out.load(&r.id).await.unwrap().is_none(), "a rotated-out secret's record is rejected");

    let key = format!("entra-webapp:session:{}", r.id);
    let mut raw = server.raw_values().await.into_iter().find(|(k, _)| *k == key).unwrap().1;
    let middle = raw.len() / 2;
    raw[middle] ^= 0x55;
    server.set_raw(&key, &raw).await;
    assert!(old.load(&r.id).await.unwrap().is_none(), "a tampered record is no session, not an error");
}
