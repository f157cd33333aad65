//! HTTP to a Writ server. Every answer goes through `try_send`, which hands
//! any access token in it to the transcript.

use serde_json::Value;

use super::{transcript, Creds};

pub struct Reply {
    pub status: u16,
    pub version: reqwest::Version,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

/// Sends `request`; any access token in the answer is recorded.
pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    try_send(request).await.unwrap()
}

/// `send` for requests that may fail on the way (TLS, a dying server).
pub async fn try_send(request: reqwest::RequestBuilder) -> reqwest::Result<Reply> {
    let r = request.send().await?;
    let status = r.status().as_u16();
    let version = r.version();
    let headers = r.headers().clone();
    let text = r.text().await?;
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    transcript::token_in(&json);
    Ok(Reply {
        status,
        version,
        headers,
        text,
        json,
    })
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 6749 §5.2 error with this status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.json["error"], code, "{}", self.text);
        assert!(
            self.json["error_description"].is_string(),
            "error_description missing: {}",
            self.text
        );
        // Besides the RFC members, only the `errors` array that JSON
        // (Commerce Layer) requests also get, saying the same thing.
        let object = self.json.as_object().unwrap();
        for key in object.keys() {
            assert!(
                ["error", "error_description", "errors"].contains(&key.as_str()),
                "unexpected member {key}: {}",
                self.text
            );
        }
        if let Some(errors) = object.get("errors") {
            assert_eq!(errors[0]["title"], code, "{}", self.text);
            assert_eq!(errors[0]["detail"], self.json["error_description"]);
            assert_eq!(errors[0]["status"], status.to_string());
        }
    }

    #[track_caller]
    pub fn access_token(&self) -> &str {
        assert_eq!(self.status, 200, "{}", self.text);
        self.json["access_token"].as_str().unwrap()
    }
}

/// A Writ server known only by its base URL (a `writ serve` process, a node
/// among several), called the way a client or resource server would: Basic
/// authentication.
#[derive(Clone)]
pub struct Remote {
    pub base: String,
    pub http: reqwest::Client,
}

impl Remote {
    pub fn new(base: &str) -> Self {
        Self::with_client(base, reqwest::Client::new())
    }

    pub fn with_client(base: &str, http: reqwest::Client) -> Self {
        Self {
            base: base.to_owned(),
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        send(request).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        send(self.http.get(self.url(path))).await
    }

    /// A client-credentials token request for `c`, to add to before sending.
    pub fn token_request(&self, c: &Creds) -> reqwest::RequestBuilder {
        self.http
            .post(self.url("/oauth/token"))
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[("grant_type", "client_credentials")])
    }

    pub async fn request_token(&self, c: &Creds) -> Reply {
        send(self.token_request(c)).await
    }

    pub async fn introspect(&self, caller: &Creds, token: &str) -> Reply {
        self.token_call("/oauth/introspect", caller, token).await
    }

    pub async fn revoke(&self, caller: &Creds, token: &str) -> Reply {
        self.token_call("/oauth/revoke", caller, token).await
    }

    async fn token_call(&self, path: &str, caller: &Creds, token: &str) -> Reply {
        send(
            self.http
                .post(self.url(path))
                .basic_auth(&caller.id, Some(&caller.secret))
                .form(&[("token", token)]),
        )
        .await
    }

    pub async fn jwks(&self) -> Value {
        self.get("/.well-known/jwks.json").await.json
    }

    /// Every token in `tokens` still introspects as active for `caller`.
    pub async fn assert_all_active(&self, caller: &Creds, tokens: &[String]) {
        for t in tokens {
            let r = self.introspect(caller, t).await;
            assert_eq!(r.json["active"], true, "{t} was answered but is lost");
        }
    }

    /// Asks `c` for tokens until three are refused (or `max` requests),
    /// keeping every token answered; every refusal must be a 503. Returns how
    /// many were refused.
    pub async fn issue_until_refused(
        &self,
        c: &Creds,
        answered: &mut Vec<String>,
        max: usize,
    ) -> usize {
        let mut refused = 0;
        for _ in 0..max {
            let r = self.request_token(c).await;
            if r.status == 200 {
                answered.push(r.access_token().to_owned());
                continue;
            }
            r.assert_error(503, "temporarily_unavailable");
            refused += 1;
            if refused == 3 {
                break;
            }
        }
        refused
    }
}
