//! Signing keys shared by several processes: initialisation racing on a
//! fresh database, rotation, and how long a retiring key stays published.

use writ::clock::{Clock, SystemClock};
use writ::keys::rotation::{ensure_signing_keys, rotate};
use writ::keys::MasterKey;
use writ::store::{KeyRecord, KeyState, Location, Store};
use writ::types::Algorithm;

use crate::harness::Writ;
use crate::pg::{PgDb, MASTER_KEY};

const ALGORITHMS: [Algorithm; 3] = [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA];

/// How many keys of each algorithm are in `state`.
fn count(keys: &[KeyRecord], alg: Algorithm, state: KeyState, now: i64) -> usize {
    keys.iter()
        .filter(|k| k.algorithm == alg && k.state(now) == state)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_initialising_keys_together_make_one_active_and_one_next_key_each() {
    let db = PgDb::create().await;
    let location = Location::Postgres(db.url.clone());
    let master = std::sync::Arc::new(MasterKey::from_base64(MASTER_KEY).unwrap());
    // Each store is a node of its own: its own pool, its own connections.
    let mut stores = Vec::new();
    for _ in 0..6 {
        stores.push(Store::open(&location).await.unwrap());
    }
    let now = SystemClock.now();
    let tasks: Vec<_> = stores
        .iter()
        .map(|store| {
            let (store, master) = (store.clone(), master.clone());
            tokio::spawn(
                async move { ensure_signing_keys(&store, &master, &ALGORITHMS, now).await },
            )
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let keys = stores[0].keys().await.unwrap();
    for alg in ALGORITHMS {
        assert_eq!(
            count(&keys, alg, KeyState::Active, now),
            1,
            "{alg} active: {keys:#?}"
        );
        assert_eq!(
            count(&keys, alg, KeyState::Next, now),
            1,
            "{alg} next: {keys:#?}"
        );
    }
    for store in stores {
        store.close().await;
    }
}

fn active_key(kid: &str, activated_at: i64) -> KeyRecord {
    KeyRecord {
        kid: kid.into(),
        algorithm: Algorithm::ES256,
        private_key: vec![1, 2, 3],
        created_at: activated_at,
        activated_at: Some(activated_at),
        retired_at: None,
        publish_until: None,
    }
}

async fn rotation_leaves_one_active_key(store: Store) {
    let master = MasterKey::from_base64(MASTER_KEY).unwrap();
    let now = SystemClock.now();
    // Two active keys, as two nodes that raced used to leave behind.
    store.insert_key(&active_key("a1", now - 20)).await.unwrap();
    store.insert_key(&active_key("a2", now - 10)).await.unwrap();
    let activated = rotate(&store, &master, Some(Algorithm::ES256), 3600, now)
        .await
        .unwrap();
    let keys = store.keys().await.unwrap();
    assert_eq!(
        count(&keys, Algorithm::ES256, KeyState::Active, now),
        1,
        "{keys:#?}"
    );
    let active = keys
        .iter()
        .find(|k| k.state(now) == KeyState::Active)
        .unwrap();
    assert_eq!(vec![active.kid.clone()], activated);
    for old in ["a1", "a2"] {
        let k = keys.iter().find(|k| k.kid == old).unwrap();
        assert_eq!(k.state(now), KeyState::Retiring, "{old}");
        assert!(
            k.publish_until.unwrap() >= now + 3600,
            "{old} stays published"
        );
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_retires_every_active_key_of_the_algorithm_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Location::Sqlite(dir.path().join("k.db")))
        .await
        .unwrap();
    rotation_leaves_one_active_key(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_retires_every_active_key_of_the_algorithm_on_postgres() {
    let db = PgDb::create().await;
    let store = Store::open(&Location::Postgres(db.url.clone()))
        .await
        .unwrap();
    rotation_leaves_one_active_key(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_rotation_keeps_the_old_key_published_for_the_servers_token_lifetime() {
    let mut w = Writ::new();
    w.start_configured(w.config_with_file("token_lifetime = 86400\n"))
        .await;
    let before = w.cli(&["key", "list"]);
    let old = before
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "active")
        .unwrap()["kid"]
        .clone();
    // The CLI has no config: its own default lifetime is 3600 s.
    let now = SystemClock.now();
    w.cli(&["key", "rotate", "--force"]);
    let keys = w.cli(&["key", "list"]);
    let retiring = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == old)
        .unwrap();
    assert_eq!(retiring["state"], "retiring", "{keys}");
    let until = retiring["publish_until"].as_i64().unwrap();
    assert!(until >= now + 86400, "published until {until}, now {now}");
    w.server.take().unwrap().shutdown().await.unwrap();
}
