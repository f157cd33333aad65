//! The storage contract: the same checks against SQLite and PostgreSQL.

use writ::store::{
    ApiRecord, ClientRecord, GrantRecord, KeyRecord, KeyState, Location, Store, StoreError,
    TokenRecord,
};
use writ::types::{Algorithm, ClaimsProfile, TokenFormat};

use crate::pg::PgDb;

fn client(id: &str) -> ClientRecord {
    ClientRecord {
        id: id.into(),
        name: format!("client {id}"),
        public: false,
        scopes: vec!["market:*".into(), "read".into()],
        default_scope: Some(vec!["market:all".into()]),
        lifetime: Some(600),
        grant_types: vec!["client_credentials".into()],
        enabled: true,
        created_at: 100,
        token_format: Some(TokenFormat::Opaque),
        claims: serde_json::json!({"tenant": "acme", "tier": 2})
            .as_object()
            .cloned(),
        auth_methods: vec![writ::types::AuthMethod::ClientSecretPost],
        jwks: None,
        jwks_uri: None,
    }
}

fn token(n: u8, client_id: &str, expires_at: i64) -> TokenRecord {
    TokenRecord {
        selector: vec![n; 16],
        hash: vec![n; 32],
        client_id: client_id.into(),
        scope: "read".into(),
        audience: "https://api/".into(),
        issued_at: 100,
        expires_at,
        revoked_at: None,
        // Tokens from before issuers were recorded have none.
        issuer: n.is_multiple_of(2).then(|| "https://issuer/".into()),
    }
}

fn key(kid: &str, activated_at: Option<i64>) -> KeyRecord {
    KeyRecord {
        kid: kid.into(),
        algorithm: Algorithm::ES256,
        private_key: vec![1, 2, 3],
        created_at: 100,
        activated_at,
        retired_at: None,
        publish_until: None,
    }
}

async fn contract(store: Store) {
    let rev0 = store.revision().await.unwrap();

    // Clients round-trip exactly; every registry write bumps the revision.
    let c = client("c1");
    store.create_client(&c, Some(&[7; 32])).await.unwrap();
    assert_eq!(store.client("c1").await.unwrap(), c);
    assert!(store.revision().await.unwrap() > rev0);
    assert!(matches!(
        store.create_client(&c, None).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.client("nope").await,
        Err(StoreError::NotFound(_))
    ));
    store.set_client_enabled("c1", false).await.unwrap();
    assert!(!store.client("c1").await.unwrap().enabled);
    store.set_client_format("c1", None).await.unwrap();
    store.set_client_claims("c1", None).await.unwrap();
    assert_eq!(store.client("c1").await.unwrap().claims, None);
    assert_eq!(store.client("c1").await.unwrap().token_format, None);
    assert!(matches!(
        store.set_client_enabled("nope", true).await,
        Err(StoreError::NotFound(_))
    ));
    // Which ids are registered, asked together: an answer each, in order,
    // repeats included, past one statement's worth of ids.
    let mut ids: Vec<String> = (0..450).map(|n| format!("unknown-{n}")).collect();
    ids.insert(7, "c1".into());
    ids.push("c1".into());
    let known = store.known_clients(&ids).await.unwrap();
    assert_eq!(known.len(), ids.len());
    let found: Vec<usize> = (0..ids.len()).filter(|&i| known[i]).collect();
    assert_eq!(found, [7, ids.len() - 1]);
    assert_eq!(store.known_clients(&[]).await.unwrap(), Vec::<bool>::new());

    // Secrets: rotation with overlap keeps the old one until then.
    store
        .rotate_secret("c1", &[8; 32], 200, 3600)
        .await
        .unwrap();
    let secrets = store.secrets("c1").await.unwrap();
    assert_eq!(secrets.len(), 2);
    assert_eq!(secrets[0].hash, vec![7; 32]);
    assert_eq!(secrets[0].expires_at, Some(3800));
    assert_eq!(secrets[1].expires_at, None);
    store.touch_secrets(&[(secrets[1].id, 250)]).await.unwrap();
    store.touch_secrets(&[(secrets[1].id, 240)]).await.unwrap();
    assert_eq!(
        store.secrets("c1").await.unwrap()[1].last_used_at,
        Some(250)
    );
    store.revoke_secret("c1", secrets[0].id).await.unwrap();
    assert_eq!(store.secrets("c1").await.unwrap().len(), 1);
    assert!(store.revoke_secret("c1", secrets[0].id).await.is_err());
    store.rotate_secret("c1", &[9; 32], 300, 0).await.unwrap();
    let secrets = store.secrets("c1").await.unwrap();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].hash, vec![9; 32]);

    // APIs and grants; deleting a client removes its grants.
    let api = ApiRecord {
        identifier: "https://api/".into(),
        name: "API".into(),
        scopes: vec!["read:a".into()],
        lifetime: Some(60),
        max_lifetime: Some(120),
        algorithm: Algorithm::RS256,
        created_at: 100,
        token_format: None,
        claims_profile: Some(ClaimsProfile::Auth0),
    };
    store.create_api(&api).await.unwrap();
    assert_eq!(store.api("https://api/").await.unwrap(), api);
    assert!(matches!(
        store.create_api(&api).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .set_api_format("https://api/", Some(TokenFormat::Jwt))
        .await
        .unwrap();
    assert_eq!(
        store.api("https://api/").await.unwrap().token_format,
        Some(TokenFormat::Jwt)
    );
    let grant = GrantRecord {
        client_id: "c1".into(),
        api: "https://api/".into(),
        scopes: vec!["read:a".into()],
        created_at: 100,
    };
    store.create_grant(&grant).await.unwrap();
    assert!(matches!(
        store.create_grant(&grant).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.grants().await.unwrap(), vec![grant.clone()]);

    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.revision, store.revision().await.unwrap());
    assert_eq!((snap.apis.len(), snap.keys.len()), (1, 0));
    let entry = store.client_entry("c1").await.unwrap().unwrap();
    assert_eq!(
        (entry.client, entry.secrets.len(), entry.grants),
        (store.client("c1").await.unwrap(), 1, vec![grant.clone()])
    );
    assert!(store.client_entry("nope").await.unwrap().is_none());
    assert!(store.has_clients().await.unwrap());
    // Every write said what it touched, in order, after the revision read.
    let changes = store.changes_since(rev0, 1000).await.unwrap().unwrap();
    let kinds: Vec<(String, String)> = changes
        .iter()
        .map(|c| (c.kind.clone(), c.subject.clone()))
        .collect();
    assert!(
        kinds.contains(&("client.created".into(), "c1".into())),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("client".into(), "c1".into())), "{kinds:?}");
    assert!(changes.windows(2).all(|w| w[0].revision <= w[1].revision));
    assert_eq!(
        changes.last().unwrap().revision,
        store.revision().await.unwrap()
    );
    assert!(store
        .changes_since(store.revision().await.unwrap(), 10)
        .await
        .unwrap()
        .unwrap()
        .is_empty());

    store.delete_client("c1").await.unwrap();
    assert!(store.grants().await.unwrap().is_empty());
    assert!(store.secrets("c1").await.unwrap().is_empty());
    store.delete_api("https://api/").await.unwrap();
    assert!(store.delete_api("https://api/").await.is_err());

    // Keys: next → active → retiring, once only.
    store.insert_key(&key("k1", Some(100))).await.unwrap();
    store.insert_key(&key("k2", None)).await.unwrap();
    store
        .rotate_keys(Some("k1"), &key("k2", None), &key("k3", None), 500, 4000)
        .await
        .unwrap();
    let keys = store.keys().await.unwrap();
    let state = |kid: &str| keys.iter().find(|k| k.kid == kid).unwrap().state(600);
    assert_eq!(state("k1"), KeyState::Retiring);
    assert_eq!(state("k2"), KeyState::Active);
    assert_eq!(state("k3"), KeyState::Next);
    assert_eq!(
        keys.iter().find(|k| k.kid == "k1").unwrap().state(4000),
        KeyState::Expired
    );
    assert!(matches!(
        store
            .rotate_keys(Some("k1"), &key("k3", None), &key("k4", None), 600, 4000)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.keys().await.unwrap().len(),
        3,
        "a lost race changes nothing"
    );

    // Opaque tokens: batch insert, lookup, revoke, purge in bounded batches.
    let batch: Vec<TokenRecord> = (0..250u8)
        .map(|n| token(n, "c1", 1000 + n as i64))
        .collect();
    store.insert_tokens(batch.clone()).await.unwrap();
    assert_eq!(store.token(&[5; 16]).await.unwrap(), Some(batch[5].clone()));
    assert_eq!(store.token(&[6; 16]).await.unwrap(), Some(batch[6].clone()));
    assert_eq!(store.token(&[255; 16]).await.unwrap(), None);
    assert!(
        store.insert_tokens(vec![batch[0].clone()]).await.is_err(),
        "id is unique"
    );
    // A batch is all or nothing, however long: one transaction (SQLite's
    // token thread) or one statement (PostgreSQL's arrays).
    let fresh = |n: u8| token(n, "c1", 5000);
    assert!(store
        .insert_tokens(vec![fresh(251), batch[1].clone()])
        .await
        .is_err());
    assert_eq!(store.token(&[251; 16]).await.unwrap(), None);
    let mut long: Vec<TokenRecord> = (0..150).map(|_| fresh(252)).collect();
    for (i, t) in long.iter_mut().enumerate() {
        t.selector = vec![
            252,
            (i % 256) as u8,
            (i / 256) as u8,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
        ];
    }
    long.push(batch[2].clone());
    assert!(store.insert_tokens(long.clone()).await.is_err());
    assert_eq!(store.token(&long[0].selector).await.unwrap(), None);
    store.revoke_token(&[5; 16], 150).await.unwrap();
    assert_eq!(
        store.token(&[5; 16]).await.unwrap().unwrap().revoked_at,
        Some(150)
    );
    store.revoke_jti("jwt-1", 1100).await.unwrap();
    store.revoke_jti("jwt-1", 1100).await.unwrap();
    assert!(store.jti_revoked("jwt-1").await.unwrap());
    assert!(!store.jti_revoked("jwt-2").await.unwrap());
    // Tokens expiring at 1000..=1100 (101) and the revocation at 1100 are due at 1100.
    let mut purged = 0;
    loop {
        let n = store.purge_expired(1100, 40).await.unwrap();
        assert!(n <= 80);
        if n == 0 {
            break;
        }
        purged += n;
    }
    assert_eq!(purged, 102);
    assert_eq!(store.token(&[100; 16]).await.unwrap(), None);
    assert!(store.token(&[101; 16]).await.unwrap().is_some());
    assert!(!store.jti_revoked("jwt-1").await.unwrap());

    client_tokens_page_through_bounded_windows(&store).await;
    expired_tokens_are_a_range_of_selectors(&store).await;

    // The longest token lifetime on record only ever grows.
    assert_eq!(store.longest_token_lifetime().await.unwrap(), None);
    store.record_token_lifetime(86400).await.unwrap();
    store.record_token_lifetime(3600).await.unwrap();
    assert_eq!(store.longest_token_lifetime().await.unwrap(), Some(86400));
    // The longest configured lifetime, in one aggregate, is what reading
    // every client and API would find.
    let mut sale = client("long-lived");
    sale.lifetime = Some(7200);
    store.create_client(&sale, None).await.unwrap();
    let scanned = store
        .clients()
        .await
        .unwrap()
        .iter()
        .filter_map(|c| c.lifetime)
        .chain(
            store
                .apis()
                .await
                .unwrap()
                .iter()
                .filter_map(|a| a.lifetime),
        )
        .max()
        .unwrap_or(0);
    assert_eq!(scanned, 7200);
    assert_eq!(store.longest_configured_lifetime().await.unwrap(), scanned);

    // Batches of clients (an import), and pages in registration order,
    // whatever their ids and however many come after the cursor.
    let batch: Vec<ClientRecord> = ["zz", "aa", "mm"].iter().map(|id| client(id)).collect();
    let hashes = vec![Some(vec![1; 32]), None, Some(vec![2; 32])];
    store.create_clients(&batch, &hashes).await.unwrap();
    assert!(store
        .create_clients(&batch[..1], &hashes[..1])
        .await
        .is_err());
    assert_eq!(
        store
            .existing_client_ids(&["aa", "nope", "zz"])
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.secrets("zz").await.unwrap().len(), 1);
    let ids = |page: Vec<ClientRecord>| page.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let first = ids(store.clients_page(None, None, 1000).await.unwrap());
    let tail = &first[first.len() - 3..];
    assert_eq!(tail, ["zz", "aa", "mm"]);
    assert_eq!(
        ids(store.clients_page(Some("zz"), None, 1).await.unwrap()),
        ["aa"]
    );
    store
        .create_client(&client("00-newest"), None)
        .await
        .unwrap();
    assert_eq!(
        ids(store.clients_page(Some("mm"), None, 10).await.unwrap()),
        ["00-newest"]
    );
    let named = store.clients_page(None, Some("client z"), 1000).await;
    assert_eq!(ids(named.unwrap()), ["zz"]);
    // A prefix is literal, wildcards of LIKE included.
    let mut sale = client("sale");
    sale.name = "50%_off".into();
    store.create_client(&sale, None).await.unwrap();
    let mut other = client("other");
    other.name = "500 off".into();
    store.create_client(&other, None).await.unwrap();
    let named = store.clients_page(None, Some("50%_"), 1000).await;
    assert_eq!(ids(named.unwrap()), ["sale"]);
}

/// A token's selector begins with the millisecond it expires: the purge
/// deletes the range below the second after `now`, and passes over tokens
/// whose selectors began with their issue time until they expire.
async fn expired_tokens_are_a_range_of_selectors(store: &Store) {
    use writ::store::selector_prefix;
    let now = 1_000_000_000i64;
    let at = |expires_millis: i64, n: u8| {
        let mut t = token(n, "c7", expires_millis.div_euclid(1000));
        t.selector = [&selector_prefix(expires_millis)[..], &[n; 10][..]].concat();
        t
    };
    let issued = |issued_millis: i64, expires_at: i64, n: u8| {
        let mut t = token(n, "c7", expires_at);
        t.selector = [&issued_millis.to_be_bytes()[2..], &[n; 10][..]].concat();
        t
    };
    let gone = [
        at(now * 1000, 1),
        at(now * 1000 + 999, 2),
        at(900_000_000_000, 3),
        issued(1_700_000_000_000, now, 4),
    ];
    // A selector that claims an expiry its row does not have: the row's
    // `expires_at` is what counts.
    let mut claims_expired = at(now * 1000, 9);
    claims_expired.expires_at = now + 1;
    let kept = [
        at((now + 1) * 1000, 5),
        at((now + 86_400) * 1000 + 1, 6),
        claims_expired,
        issued(1_600_000_000_000, now + 1, 7),
        issued(1_800_000_000_000, 2 * now, 8),
    ];
    store
        .insert_tokens(gone.iter().chain(&kept).cloned().collect())
        .await
        .unwrap();
    while store.purge_expired(now, 2).await.unwrap() > 0 {}
    for t in &gone {
        assert_eq!(store.token(&t.selector).await.unwrap(), None, "{t:?}");
    }
    for t in &kept {
        assert_eq!(store.token(&t.selector).await.unwrap().as_ref(), Some(t));
    }
}

/// A client's tokens are listed in selector order from the last (the last
/// to expire first) by reading at most `SCAN`
/// tokens of any client a page: paging by `next` finds every live one, in
/// order, each once, and a page that read a full window links on even
/// with none of the client's in it.
async fn client_tokens_page_through_bounded_windows(store: &Store) {
    use writ::store::SCAN;
    let n = SCAN as u32 + 60;
    // After every token above in selector order (theirs start below 0xfd).
    let selector = |i: u32| [&[0xfd][..], &i.to_be_bytes()[..], &[0; 11]].concat();
    let (mut mine, mut revoked) = (Vec::new(), Vec::new());
    let rows: Vec<TokenRecord> = (0..n)
        .map(|i| {
            let mut t = token(0, "c8", 5000);
            t.selector = selector(i);
            // The client's: 40 among the oldest 80 (10 of which the
            // newest window reaches) and 15 among the newest 60.
            if (i % 2 == 0 && i < 80) || (i % 4 == 0 && i >= n - 60) {
                t.client_id = "c9".into();
                match i % 3 {
                    0 if i >= n - 60 => t.expires_at = 1000,
                    1 if i < 80 => revoked.push(t.selector.clone()),
                    _ => mine.push(t.selector.clone()),
                }
            }
            t
        })
        .collect();
    for chunk in rows.chunks(2000) {
        store.insert_tokens(chunk.to_vec()).await.unwrap();
    }
    for r in &revoked {
        store.revoke_token(r, 120).await.unwrap();
    }
    mine.reverse();
    assert!(mine.len() > 20, "{}", mine.len());

    let (first, next) = store.client_tokens("c9", 1100, 1000, None).await.unwrap();
    let newest: Vec<_> = mine
        .iter()
        .filter(|s| s[1..5] >= selector(n - SCAN as u32)[1..5])
        .collect();
    assert_eq!(
        first.iter().map(|t| &t.selector).collect::<Vec<_>>(),
        newest
    );
    assert_eq!(
        next,
        Some(selector(n - SCAN as u32)),
        "a full window read links on, where it ended"
    );

    let mut seen = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let (page, next) = store
            .client_tokens("c9", 1100, 4, before.as_deref())
            .await
            .unwrap();
        assert!(page.len() <= 4);
        assert!(page
            .iter()
            .all(|t| t.client_id == "c9" && t.revoked_at.is_none()));
        seen.extend(page.into_iter().map(|t| t.selector));
        pages += 1;
        assert!(pages < 100, "paging ends");
        match next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, mine, "every live token, last first, once");
    let (none, end) = store.client_tokens("nobody", 1100, 10, None).await.unwrap();
    assert!(none.is_empty());
    assert!(end.is_some(), "more than one window of tokens is stored");
    assert_eq!(
        store
            .client_tokens("nobody", 1100, 10, end.as_deref())
            .await
            .unwrap(),
        (vec![], None),
        "the last window ends the list"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_contract_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Location::Sqlite(dir.path().join("c.db")))
        .await
        .unwrap();
    contract(store).await;
}

/// Closing the store closes every connection, the token writer's too: the
/// last one checkpoints the WAL into the database file and removes it, so a
/// copy of a stopped server's file holds every token. A name with `%`, `?`
/// and `#` in it is one file for the pool and the token writer alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_close_leaves_every_token_in_the_one_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let name = "a%41?b#c.db";
    let location = Location::Sqlite(dir.path().join(name));
    let store = Store::open(&location).await.unwrap();
    let tokens = vec![token(7, "c1", 5000), token(8, "c1", 5000)];
    store.insert_tokens(tokens.clone()).await.unwrap();
    store.close().await;
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, [name], "one file, and no WAL left behind");
    let again = Store::open(&location).await.unwrap();
    for t in tokens {
        assert_eq!(again.token(&t.selector).await.unwrap(), Some(t));
    }
    again.close().await;
}

/// Committed tokens are copied from the WAL into the database file while
/// the server runs, by the checkpoint thread, long before the WAL reaches
/// the size at which the token writer would checkpoint by itself (which
/// would make the commit that crossed it wait for the copy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checkpoints_run_beside_the_token_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let store = Store::open(&Location::Sqlite(path.clone())).await.unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    // About 200 pages of rows and index entries, in groups as under load:
    // far fewer frames than the writer's own limit.
    for group in 0..40u32 {
        let tokens = (0..100u32)
            .map(|i| {
                let n = group * 100 + i;
                let mut t = token(0, "c1", 5000);
                t.selector = [&n.to_be_bytes()[..], &[0; 12]].concat();
                t.hash = vec![(n % 251) as u8; 32];
                t.scope = "read write ".repeat(8);
                t
            })
            .collect();
        store.insert_tokens(tokens).await.unwrap();
    }
    let wal = dir.path().join("w.db-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "the rows went to the WAL first"
    );
    let mut copied = false;
    for _ in 0..250 {
        if std::fs::metadata(&path).unwrap().len() > before + 100 * 4096 {
            copied = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        copied,
        "the database file grew by the tokens' pages while the store was open"
    );
    let last = [&3999u32.to_be_bytes()[..], &[0; 12]].concat();
    assert!(store.token(&last).await.unwrap().is_some());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_contract_postgres() {
    let db = PgDb::create().await;
    let store = Store::open(&Location::Postgres(db.url.clone()))
        .await
        .unwrap();
    contract(store.clone()).await;
    store.close().await;
}

#[test]
fn database_urls() {
    assert_eq!(
        Location::parse("sqlite://writ.db").unwrap(),
        Location::Sqlite("writ.db".into())
    );
    assert_eq!(
        Location::parse("sqlite:///var/lib/writ.db").unwrap(),
        Location::Sqlite("/var/lib/writ.db".into())
    );
    assert!(matches!(
        Location::parse("postgres://u@h/db").unwrap(),
        Location::Postgres(_)
    ));
    assert!(Location::parse("mysql://h/db").is_err());
    assert!(Location::parse("sqlite::memory:").is_err());
}
