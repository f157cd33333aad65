//! HTTP: the router and thin handlers. Each endpoint parses, calls the
//! protocol core, and renders; `OAuthError` is rendered in `error.rs` only.

pub mod admin;
pub mod connections;
pub mod console;
mod discovery;
mod error;
mod health;
mod introspect;
pub mod limits;
pub mod live;
mod register;
pub mod request_id;
mod revoke;
mod token;

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::keys::remote::{Source, Unavailable};
use crate::keys::{ClientKeys, MasterKey, SecretHasher};
use crate::oauth::assertion::Audience;
use crate::oauth::client_auth::{
    AssertionKeys, AssertionKind, Authenticated, BodyCredentials, ClientCredentials,
};
use crate::oauth::client_credentials::GrantPolicy;
use crate::oauth::introspect::token_param;
use crate::oauth::request::{BodyFormat, Params, MAX_BODY_BYTES};
use crate::oauth::spiffe;
use crate::oauth::{ErrorCode, OAuthError, Refusal};
use crate::registry::{Client, Registry, Snapshot};
use crate::store::{Grouped, Replay, Store, StoreError};
use crate::token::{TokenInfo, Tokens};
use limits::Budget;

/// What every handler shares. axum clones the state for every request, so it
/// is one `Arc` (an HMAC key clone alone copies hash contexts).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

pub struct Shared {
    pub registry: Arc<Registry>,
    pub clock: Arc<dyn Clock>,
    /// Keys the HMAC of client secrets.
    pub secret_hasher: SecretHasher,
    pub issuer: Arc<str>,
    /// The `aud` values a client assertion may carry.
    pub assertion_audience: Audience,
    /// Keys fetched from clients' `jwks_uri`s, trusted issuers and SPIFFE
    /// bundle endpoints.
    pub remote_keys: Arc<crate::keys::remote::RemoteKeys>,
    /// SPIFFE trust domain → bundle endpoint, as configured.
    pub spiffe_bundles: Arc<std::collections::BTreeMap<String, String>>,
    pub policy: Arc<GrantPolicy>,
    /// For the readiness check; tokens reach the store through `tokens`.
    pub store: Store,
    /// The `jti`s of accepted client assertions, recorded in groups.
    pub replays: Grouped<Replay, bool>,
    /// For the admin API's operations (new secrets, keys).
    pub master: Arc<MasterKey>,
    pub tokens: Tokens,
    /// (secret id, when) pairs, written to the store in the background.
    pub secret_use: mpsc::Sender<(i64, i64)>,
    pub limits: limits::Limits,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// The last minutes of token traffic, for the console's live view.
    pub live: Arc<live::Live>,
}

/// Where the keys for a client assertion came from.
enum Fetched {
    /// The client's registered keys, or none.
    Registered,
    /// Fetched from the client's `jwks_uri`.
    Own(Arc<ClientKeys>),
    /// An issuer's that the client trusts.
    Issuer(String, Arc<ClientKeys>),
    /// A SPIFFE trust domain's, from its bundle.
    TrustDomain(String, Arc<ClientKeys>),
}

/// The token paths of the four dialects: RFC 6749 and Auth0 and Commerce
/// Layer (`/oauth/token`), Moltin (`/oauth/access_token`), WSO2 (`/token`).
pub const TOKEN_PATHS: [&str; 3] = ["/oauth/token", "/oauth/access_token", "/token"];
pub const INTROSPECTION_PATH: &str = "/oauth/introspect";
pub const REVOCATION_PATH: &str = "/oauth/revoke";

/// Every route, behind the request-id layer. The layer wraps the router, not
/// each route (`Router::layer`): that put a second boxed route, cloned and
/// called for every request, between the connection and the handler.
pub fn router(state: AppState) -> request_id::WithId<Router> {
    let routes = endpoints();
    let mut app = routes.clone();
    // RFC 8414 §3.1: an issuer with a path (`https://h/tenant1`) has its
    // metadata at `/.well-known/oauth-authorization-server/tenant1`, and
    // the endpoints it names are under that path. Both are served, and the
    // plain paths too, for a proxy that strips the path before forwarding.
    if let Some(path) = issuer_path(&state.issuer) {
        app = app
            .nest(&path, routes)
            .route(&format!("{METADATA_PATH}{path}"), get(discovery::metadata));
    }
    tower::Layer::layer(&request_id::Layer, app.with_state(state))
}

/// RFC 8414 §3: the metadata's well-known path for an issuer without a path.
const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// The issuer's path without its trailing slash; `None` when it has none.
fn issuer_path(issuer: &str) -> Option<String> {
    let url = url::Url::parse(issuer).ok()?;
    let path = url.path().trim_end_matches('/');
    (!path.is_empty()).then(|| path.to_owned())
}

fn endpoints() -> Router<AppState> {
    let [oauth_token, moltin_token, wso2_token] = TOKEN_PATHS;
    Router::new()
        .route(
            oauth_token,
            post(token::token).fallback(error::method_not_allowed),
        )
        .route(
            moltin_token,
            post(token::moltin).fallback(error::method_not_allowed),
        )
        .route(
            wso2_token,
            post(token::token).fallback(error::method_not_allowed),
        )
        .route(
            INTROSPECTION_PATH,
            post(introspect::introspect).fallback(error::method_not_allowed),
        )
        .route(
            REVOCATION_PATH,
            post(revoke::revoke).fallback(error::method_not_allowed),
        )
        .route(register::REGISTRATION_PATH, post(register::register))
        .route(
            &format!("{}/{{id}}", register::REGISTRATION_PATH),
            get(register::read)
                .put(register::update)
                .delete(register::delete),
        )
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route(METADATA_PATH, get(discovery::metadata))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .nest(admin::BASE, admin::router())
        .merge(console::router())
}

/// RFC 6749 §5.1, RFC 7662 §2.2: OAuth answers, errors included, must not be
/// cached; nor framed or sniffed as another type (WSO2 sends the same two
/// headers). Every response of the token, introspection and revocation
/// endpoints is made by this or by `OAuthError`'s `IntoResponse`.
pub(crate) fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.reserve(4);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A 200 JSON answer of an OAuth endpoint.
pub(crate) fn oauth_json<T: serde::Serialize>(body: T) -> Response {
    match serde_json::to_vec(&body) {
        Ok(bytes) => json_bytes(bytes),
        Err(e) => OAuthError::server_error(e).into_response(),
    }
}

/// A 200 answer of an OAuth endpoint whose JSON body is already written.
pub(crate) fn json_bytes(body: Vec<u8>) -> Response {
    // The headers are the same every time: a copy of a map made once is a
    // third of what inserting them one by one cost (each name hashed, the
    // map grown), on every token, introspection and error answer.
    // Room for two more, which a copy keeps (its table's size, not its
    // list's): the request id, and the length axum sets.
    static HEADERS: std::sync::LazyLock<HeaderMap> = std::sync::LazyLock::new(|| {
        let mut response = Response::new(Body::empty());
        *response.headers_mut() = HeaderMap::with_capacity(8);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        no_store(response).headers().clone()
    });
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = HEADERS.clone();
    response
}

/// Content type, size and time limits, and parsing, shared by the POST endpoints.
async fn read_params(
    headers: &HeaderMap,
    body: Body,
    timeout: std::time::Duration,
) -> Result<Params, OAuthError> {
    // The body is read first, so a refusal for the content type reaches a
    // client still sending (an unread body would reset the connection).
    let body = read_body(headers, body, timeout).await?;
    let format = BodyFormat::from_content_type(header_str(headers, header::CONTENT_TYPE)?)?;
    format.parse(&body)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>, OAuthError> {
    headers
        .get(&name)
        .map(|v| {
            v.to_str()
                .map_err(|_| OAuthError::invalid_request(format!("the {name} header is not ASCII")))
        })
        .transpose()
}

/// Reads the body, at most `MAX_BODY_BYTES`. An oversized body is still read
/// to its end (up to `DRAIN_LIMIT`) before the 413 goes out: closing a
/// connection with unread data resets it, and the client would never see
/// the answer.
async fn read_body(
    headers: &HeaderMap,
    mut body: Body,
    timeout: std::time::Duration,
) -> Result<Bytes, OAuthError> {
    use http_body_util::BodyExt;
    use std::future::Future;
    const DRAIN_LIMIT: u64 = 1024 * 1024;
    let too_large = || {
        OAuthError::refused(
            Refusal::BodyTooLarge,
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(too_large());
    }
    let read = async {
        let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(MAX_BODY_BYTES as u64) as usize);
        let mut seen = 0u64;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|_| OAuthError::invalid_request("the body could not be read"))?;
            if let Ok(data) = frame.into_data() {
                seen += data.len() as u64;
                if seen > DRAIN_LIMIT {
                    return Err(too_large());
                }
                if seen <= MAX_BODY_BYTES as u64 {
                    buf.extend_from_slice(&data);
                }
            }
        }
        if seen > MAX_BODY_BYTES as u64 {
            return Err(too_large());
        }
        Ok(Bytes::from(buf))
    };
    // Almost always the whole body came in with the head: then it is read
    // at the first poll, and no timer is set (a clock read, and a timer
    // entry made and dropped, on every request).
    let mut read = std::pin::pin!(read);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(read.as_mut().poll(cx))).await;
    if let std::task::Poll::Ready(body) = first {
        return body;
    }
    // A client that sends its body slowly is cut off (408).
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        OAuthError::refused(
            Refusal::BodyTimeout,
            "the request body was not received in time",
        )
    })?
}

impl Shared {
    /// The source address's budget, checked before anything else. A refused
    /// request's body is still read (within the usual size and time limits)
    /// so that the client gets the 429 rather than a reset connection.
    async fn admit(
        &self,
        source: IpAddr,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Body, OAuthError> {
        match self.limits.check_address(source) {
            Ok(()) => Ok(body),
            Err(refused) => {
                // Boxed, as a rare path: inline, its state would be part of
                // every request's future.
                let _ = Box::pin(read_body(headers, body, self.limits.request_timeout())).await;
                Err(refused)
            }
        }
    }

    /// The client credentials of a request (RFC 6749 §2.3), extracted.
    fn credentials(
        &self,
        headers: &HeaderMap,
        body: BodyCredentials,
    ) -> Result<ClientCredentials, OAuthError> {
        ClientCredentials::extract(header_str(headers, header::AUTHORIZATION)?, body)
    }

    /// RFC 6749 §2.3, with the abuse limits around it: a (client id,
    /// address) pair backing off after failures is refused before its
    /// credentials are looked at; a failure is counted; an authenticated
    /// client spends its own rate budget (nobody else can without its
    /// secret) whatever the rest of its request turns out to be, and its
    /// secret's use is noted. The client comes from memory, or from the
    /// store for an id this node does not hold (read-your-writes). A
    /// client assertion that passed its checks is then recorded as used,
    /// in the store every node shares: a replay fails like any other
    /// authentication (RFC 7523 §3 item 7).
    async fn authenticate(
        &self,
        credentials: &ClientCredentials,
        source: IpAddr,
        now: i64,
        budget: Budget,
    ) -> Result<Arc<Client>, OAuthError> {
        let id = credentials.client_id();
        self.limits.check_failures(id, source)?;
        let client = self.registry.client(id).await?;
        // The assertion paths are boxed: their futures (key fetches, the
        // replay check) are kilobytes, which every request's future would
        // otherwise carry, and move, secret or not.
        let fetched = match (credentials, client.as_deref()) {
            (
                ClientCredentials::Assertion {
                    assertion,
                    kind: AssertionKind::Spiffe,
                    ..
                },
                Some(c),
            ) => Box::pin(self.trust_domain_keys(c, assertion, now)).await,
            (ClientCredentials::Assertion { assertion, .. }, Some(c)) => {
                Box::pin(self.assertion_keys(c, assertion, now)).await
            }
            _ => Err(Unavailable("no assertion")),
        };
        let keys = match (&fetched, client.as_deref()) {
            (Ok(Fetched::Own(keys)), _) => AssertionKeys::Own(keys),
            (Ok(Fetched::Issuer(issuer, keys)), _) => AssertionKeys::Issuer { issuer, keys },
            (Ok(Fetched::TrustDomain(trust_domain, keys)), _) => {
                AssertionKeys::TrustDomain { trust_domain, keys }
            }
            (
                Ok(Fetched::Registered),
                Some(Client {
                    keys: Some(keys), ..
                }),
            ) => AssertionKeys::Own(keys),
            (Ok(Fetched::Registered), _) => {
                AssertionKeys::Unavailable("the client has no usable registered keys")
            }
            (Err(Unavailable(why)), _) => AssertionKeys::Unavailable(why),
        };
        let checked = credentials.authenticate(
            client.as_deref(),
            &self.secret_hasher,
            &self.assertion_audience,
            keys,
            now,
        );
        let checked = match checked {
            Ok(who) => match &who.assertion {
                Some(a) => {
                    let fresh = match &a.jti {
                        Some(jti) => Box::pin(self.replays.submit(Replay {
                            client_id: a.replay_scope.clone(),
                            jti: jti.clone(),
                            expires_at: a.replay_until,
                            now,
                        }))
                        .await
                        .map_err(StoreError::Shared)?,
                        None => true,
                    };
                    if fresh {
                        Ok(who)
                    } else {
                        Err(OAuthError::client_authentication_failed(
                            "the client assertion was used before (its jti is spent)",
                        ))
                    }
                }
                None => Ok(who),
            },
            Err(e) => Err(e),
        };
        match checked {
            Err(e) => {
                if e.code == ErrorCode::InvalidClient {
                    self.limits.record_failure(id, source);
                    if let Some(c) = &client {
                        c.count_failure();
                    }
                }
                Err(e)
            }
            Ok(who) => {
                self.limits.record_success(id, source);
                self.limits.check_client(&who.client.id, budget)?;
                self.record_use(&who, now);
                Ok(client.expect("authenticated clients exist"))
            }
        }
    }

    /// The keys to check a client's assertion with. Its unverified `iss`
    /// picks them: an issuer one of the client's trust rules names exactly
    /// gets that issuer's keys, and no other issuer's (a `kid` is only
    /// looked up among the keys of the issuer the token claims); anything
    /// else is checked with the client's own keys, registered or fetched
    /// from its `jwks_uri`. Only URLs an administrator configured are
    /// fetched: a trust rule's issuer, the client's `jwks_uri`. The
    /// assertion's `kid` only decides whether held keys are stale.
    async fn assertion_keys(
        &self,
        client: &Client,
        assertion: &str,
        now: i64,
    ) -> Result<Fetched, Unavailable> {
        let kid = crate::oauth::assertion::unverified_kid(assertion);
        let issuer = crate::oauth::assertion::unverified_issuer(assertion);
        // A SPIFFE rule's `spiffe://` issuer is no URL to discover keys
        // at: its tokens come as JWT-SVIDs (`trust_domain_keys`).
        if let Some(rule) = issuer.filter(|iss| *iss != client.id).and_then(|iss| {
            client
                .trust
                .iter()
                .find(|r| r.issuer == iss && !spiffe::is_spiffe_rule(r))
        }) {
            let source = Source::Issuer(rule.issuer.clone());
            let keys = self.remote_keys.keys(&source, kid.as_deref(), now).await?;
            return Ok(Fetched::Issuer(rule.issuer.clone(), keys));
        }
        let Some(url) = &client.jwks_uri else {
            return Ok(Fetched::Registered);
        };
        self.remote_keys
            .keys(&Source::Jwks(url.clone()), kid.as_deref(), now)
            .await
            .map(Fetched::Own)
    }

    /// The keys to check a JWT-SVID with: those of the trust domain its
    /// unverified `sub` names, from the bundle endpoint the configuration
    /// gives that trust domain, and only if one of the client's trust rules
    /// names it (so an SVID cannot make Writ fetch bundles for clients that
    /// do not use them). After the signature, `spiffe::verify` checks that
    /// the signed `sub` is of the same trust domain.
    async fn trust_domain_keys(
        &self,
        client: &Client,
        svid: &str,
        now: i64,
    ) -> Result<Fetched, Unavailable> {
        let trust_domain = spiffe::unverified_trust_domain(svid)
            .ok_or(Unavailable("the SVID's 'sub' is not a SPIFFE ID"))?;
        let issuer = spiffe::rule_issuer(&trust_domain);
        if !client.trust.iter().any(|r| r.issuer == issuer) {
            return Err(Unavailable(
                "no trust rule of the client names the SVID's trust domain",
            ));
        }
        let url = self.spiffe_bundles.get(&trust_domain).ok_or(Unavailable(
            "the SVID's trust domain has no bundle endpoint in [spiffe] bundles",
        ))?;
        let source = Source::SpiffeBundle {
            trust_domain: trust_domain.clone(),
            url: url.clone(),
        };
        let kid = crate::oauth::assertion::unverified_kid(svid);
        let keys = self.remote_keys.keys(&source, kid.as_deref(), now).await?;
        Ok(Fetched::TrustDomain(trust_domain, keys))
    }

    /// The steps introspection and revocation share, in order: the
    /// address's budget, the body, the caller's authentication, the token
    /// looked up.
    async fn caller_and_token(
        &self,
        source: IpAddr,
        headers: &HeaderMap,
        body: Body,
        snapshot: &Snapshot,
        now: i64,
    ) -> Result<(Arc<Client>, Option<TokenInfo>), OAuthError> {
        let body = self.admit(source, headers, body).await?;
        let params = read_params(headers, body, self.limits.request_timeout()).await?;
        let param = |name: &str| params.get(name).map(str::to_owned);
        let credentials = self.credentials(
            headers,
            BodyCredentials {
                client_id: param("client_id"),
                client_secret: param("client_secret"),
                client_assertion_type: param("client_assertion_type"),
                client_assertion: param("client_assertion"),
            },
        )?;
        let caller = self
            .authenticate(&credentials, source, now, Budget::Introspection)
            .await?;
        let raw = token_param(&params)?;
        let token = self.tokens.lookup(raw, snapshot, now).await?;
        Ok((caller, token))
    }

    /// Notes that a secret was used, at most once a minute per secret; the
    /// store is written in the background, never on the request path.
    fn record_use(&self, who: &Authenticated<'_>, now: i64) {
        if let Some(secret) = who.secret {
            if secret.should_report_use(now) {
                let _ = self.secret_use.try_send((secret.id, now));
            }
        }
    }
}
