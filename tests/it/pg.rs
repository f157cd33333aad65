//! PostgreSQL for tests: a uniquely named database, created on the server the
//! machine runs (or `WRIT_TEST_POSTGRES_URL`), dropped afterwards. These
//! tests never skip: without PostgreSQL they fail.

use sqlx::{Connection, Executor, PgConnection};

pub fn admin_url() -> String {
    std::env::var("WRIT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The URL of database `name` on the admin URL's server, as `user`.
fn url_for(name: &str, user: Option<&str>) -> String {
    let mut url = url::Url::parse(&admin_url()).unwrap();
    url.set_path(&format!("/{name}"));
    if let Some(user) = user {
        url.set_username(user).unwrap();
        url.set_password(None).unwrap();
    }
    url.to_string()
}

pub struct PgDb {
    pub name: String,
    pub url: String,
}

impl PgDb {
    pub async fn create() -> Self {
        let name = format!("writ_test_{}", hex_id());
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .expect("PostgreSQL must be reachable for these tests (WRIT_TEST_POSTGRES_URL)");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        admin.close().await.unwrap();
        Self {
            url: url_for(&name, None),
            name,
        }
    }

    /// A database owned by a new unprivileged role, so that the role's
    /// access can be taken away and given back (a superuser ignores CONNECT).
    pub async fn create_with_role() -> (Self, String) {
        let mut db = Self::create().await;
        let role = format!("{}_role", db.name);
        db.admin(&format!("CREATE ROLE {role} LOGIN")).await;
        db.admin(&format!("ALTER DATABASE {} OWNER TO {role}", db.name))
            .await;
        db.admin(&format!(
            "REVOKE CONNECT ON DATABASE {} FROM PUBLIC",
            db.name
        ))
        .await;
        db.admin(&format!("GRANT CONNECT ON DATABASE {} TO {role}", db.name))
            .await;
        db.url = url_for(&db.name, Some(&role));
        (db, role)
    }

    pub async fn admin(&self, sql: &str) {
        let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
        admin.execute(sql).await.unwrap();
        admin.close().await.unwrap();
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop needs async; use a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
                    let _ = admin
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                    let _ = admin
                        .execute(format!("DROP ROLE IF EXISTS {name}_role").as_str())
                        .await;
                }
            });
        })
        .join();
    }
}

fn hex_id() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", nanos, std::process::id())
}

/// A fixed master key for nodes that must share one.
pub const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
