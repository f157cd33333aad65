//! The web console under `/console`: server-rendered pages over the same
//! operations as the CLI and the admin API (`crate::admin`: the same rules,
//! the same audit events, by `console:<session label>` via `console`).
//! Its stylesheet and one small ES module are compiled into the binary.
//!
//! Signing in: `writ console` prints a one-time link (five minutes); the
//! link opens a session whose id lives only in an `HttpOnly`,
//! `SameSite=Strict` cookie and, hashed, in the store. Every POST carries
//! a CSRF token derived from the session, and every response carries a
//! strict Content-Security-Policy (no inline script or style).

mod apis;
mod clients;
mod grants;
mod keys;
mod live;
mod page;
mod try_it;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::html;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::AppState;
use crate::admin::console::{SigninRefused, SESSION_PREFIX};
use crate::admin::{Actor, Admin, AdminError};
use page::{layout, Page};

/// Where the console lives, below the issuer's path if it has one.
pub const BASE: &str = "/console";
const COOKIE: &str = "writ_console";

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// Every console response's policy: only this origin's files, no inline
/// script or style, no framing, forms posting only here.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(BASE, get(home))
        .route(&format!("{BASE}/"), get(home))
        .route(&format!("{BASE}/signin"), get(sign_in))
        .route(&format!("{BASE}/signout"), post(sign_out))
        .route(
            &format!("{BASE}/clients"),
            get(clients::list).post(clients::create),
        )
        .route(&format!("{BASE}/clients/new"), get(clients::new_form))
        .route(
            &format!("{BASE}/clients/{{id}}"),
            get(clients::show).post(clients::update),
        )
        .route(
            &format!("{BASE}/clients/{{id}}/enabled"),
            post(clients::set_enabled),
        )
        .route(
            &format!("{BASE}/clients/{{id}}/secrets"),
            post(clients::rotate),
        )
        .route(
            &format!("{BASE}/clients/{{id}}/secrets/{{secret_id}}/revoke"),
            post(clients::revoke),
        )
        .route(&format!("{BASE}/clients/{{id}}/grants"), post(grants::save))
        .route(&format!("{BASE}/clients/{{id}}/try"), post(try_it::issue))
        .route(
            &format!("{BASE}/clients/{{id}}/delete"),
            get(clients::confirm_delete).post(clients::delete),
        )
        .route(&format!("{BASE}/apis"), get(apis::list).post(apis::create))
        .route(&format!("{BASE}/apis/new"), get(apis::new_form))
        .route(
            &format!("{BASE}/apis/{{identifier}}"),
            get(apis::show).post(apis::update),
        )
        .route(&format!("{BASE}/live"), get(live::page))
        .route(&format!("{BASE}/live/now"), get(live::fragment))
        .route(&format!("{BASE}/keys"), get(keys::list))
        .route(&format!("{BASE}/keys/rotate"), post(keys::rotate))
        .route(&format!("{BASE}/assets/console.css"), get(css))
        .route(&format!("{BASE}/assets/console.js"), get(js))
        .route(&format!("{BASE}/{{*rest}}"), get(not_found))
        .layer(axum::middleware::from_fn(headers))
}

/// The headers of every console response, errors included.
async fn headers(request: Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A sign-in link's token is in the URL: it must not travel as a Referer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    // Pages may show a secret once; assets are cached by the browser only.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// The console's path as the browser sees it: `/console`, or below the
/// issuer's path when the router is nested there.
#[derive(Debug, Clone)]
pub struct Base(pub String);

impl Base {
    pub fn to(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let seen = parts.uri.path().to_owned();
        let original = OriginalUri::from_request_parts(parts, state)
            .await
            .map(|u| u.0.path().to_owned())
            .unwrap_or_else(|_| seen.clone());
        let prefix = original.strip_suffix(&seen).unwrap_or_default();
        Ok(Self(format!("{prefix}{BASE}")))
    }
}

/// A signed-in browser: its session id (from the cookie), label and CSRF token.
pub struct Session {
    id: String,
    pub label: String,
    pub csrf: String,
    pub base: Base,
    /// The path asked for, below the base: which part of the console the
    /// navigation marks as current.
    pub path: String,
}

impl Session {
    /// The operations, audited as this session's, via the console.
    pub fn admin<'a>(&self, state: &'a AppState) -> Admin<'a> {
        Admin::new(
            &state.store,
            &state.master,
            Actor {
                by: format!("console:{}", self.label),
                via: "console",
            },
            state.clock.now(),
        )
    }
}

fn cookie_value(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && value.starts_with(SESSION_PREFIX))
        .map(|(_, value)| value.to_owned())
}

/// Operations for requests with no session (signing in): audited as the
/// console itself until a session exists.
fn anonymous(state: &AppState) -> Admin<'_> {
    Admin::new(
        &state.store,
        &state.master,
        Actor {
            by: "console".into(),
            via: "console",
        },
        state.clock.now(),
    )
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Page;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Page> {
        let base = Base::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|e| match e {});
        let signed_out = || {
            Page::message(
                StatusCode::UNAUTHORIZED,
                "Not signed in",
                "Your console session has ended or was never opened. Run writ console on the server for a new sign-in link.",
                &base,
            )
        };
        let Some(id) = cookie_value(parts) else {
            return Err(signed_out());
        };
        let admin = anonymous(state);
        let Some(session) = admin.console_session(&id).await.map_err(Page::from)? else {
            return Err(signed_out());
        };
        let csrf = admin.csrf_token(&id);
        let path = parts
            .uri
            .path()
            .strip_prefix(BASE)
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            id,
            label: session.label,
            csrf,
            base,
            path,
        })
    }
}

/// A form posted by a signed-in browser, its CSRF token checked before
/// anything else is read from it.
pub struct Posted<T> {
    pub session: Session,
    pub form: T,
}

#[derive(Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Page;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Page> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| {
                Page::message(
                    StatusCode::BAD_REQUEST,
                    "Bad request",
                    "The form could not be read.",
                    &session.base,
                )
            })?;
        let forbidden = || {
            Page::message(
                StatusCode::FORBIDDEN,
                "Refused",
                "The form did not carry this session's CSRF token. Reload the page and try again.",
                &session.base,
            )
        };
        let field: CsrfField = serde_urlencoded_form(&bytes).ok_or_else(forbidden)?;
        let presented = field.csrf.unwrap_or_default();
        if !anonymous(state).csrf_matches(&session.id, &presented) {
            return Err(forbidden());
        }
        let form: T = serde_urlencoded_form(&bytes).ok_or_else(|| {
            Page::message(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The form could not be read.",
                &session.base,
            )
        })?;
        Ok(Self { session, form })
    }
}

/// An `application/x-www-form-urlencoded` body, through axum's own reader.
fn serde_urlencoded_form<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let query = std::str::from_utf8(bytes).ok()?;
    let uri: axum::http::Uri = format!("/?{}", query).parse().ok()?;
    Query::<T>::try_from_uri(&uri).ok().map(|q| q.0)
}

/// `/console`: the clients page, or how to sign in.
async fn home(_session: Session, base: Base) -> Redirect {
    Redirect::to(&base.to("/clients"))
}

async fn not_found(base: Base) -> Page {
    Page::message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page in the console.",
        &base,
    )
}

#[derive(Deserialize)]
struct SigninQuery {
    token: Option<String>,
}

/// Spends the link and sets the session cookie. The answer is a page that
/// moves on to the clients page by itself: a `SameSite=Strict` cookie set
/// on a navigation that began elsewhere (a terminal, a mail) is not sent
/// on a redirect of that same navigation, but is on the next one.
async fn sign_in(
    State(state): State<AppState>,
    base: Base,
    Query(query): Query<SigninQuery>,
) -> Result<Response, Page> {
    let token = query.token.unwrap_or_default();
    let refused = |title: &str, why: &str| Page::message(StatusCode::FORBIDDEN, title, why, &base);
    let opened = match anonymous(&state).sign_in(&token).await.map_err(Page::from)? {
        Ok(opened) => opened,
        Err(SigninRefused::Used) => {
            return Err(refused(
                "This sign-in link was used already",
                "A sign-in link works once. Run writ console on the server for a new one.",
            ))
        }
        Err(SigninRefused::Expired) => {
            return Err(refused(
                "This sign-in link has expired",
                "A sign-in link works for 5 minutes. Run writ console on the server for a new one.",
            ))
        }
        Err(SigninRefused::Unknown) => {
            return Err(refused(
                "This sign-in link is not valid",
                "Check that the whole link was copied, or run writ console on the server for a new one.",
            ))
        }
    };
    let max_age = opened.session.expires_at - opened.session.created_at;
    let secure = if state.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={}; Path={}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
        opened.id, base.0
    );
    let next = base.to("/clients");
    let body = layout(
        "Signed in",
        None,
        &base,
        html! {
            meta http-equiv="refresh" content={ "0;url=" (next) };
        },
        html! {
            h1 { "Signed in" }
            p { "Continue to the " a href=(next) { "clients" } "." }
        },
    );
    let mut response = Page::new(StatusCode::OK, body).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct Nothing {}

/// Ends the session in the store and in the browser.
async fn sign_out(
    State(state): State<AppState>,
    posted: Posted<Nothing>,
) -> Result<Response, Page> {
    let session = posted.session;
    session
        .admin(&state)
        .sign_out(&session.id, &session.label)
        .await
        .map_err(Page::from)?;
    let secure = if state.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}=; Path={}; Max-Age=0; HttpOnly; SameSite=Strict{secure}",
        session.base.0
    );
    let mut response = Page::message(
        StatusCode::OK,
        "Signed out",
        "The session has ended. Run writ console on the server to sign in again.",
        &session.base,
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

impl From<AdminError> for Page {
    fn from(e: AdminError) -> Self {
        let base = Base(BASE.into());
        match e {
            AdminError::Invalid(invalid) => Page::message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Not changed",
                &invalid.message(page::field_label),
                &base,
            ),
            AdminError::Malformed(m) => {
                Page::message(StatusCode::BAD_REQUEST, "Bad request", &m, &base)
            }
            AdminError::NotFound(m) => Page::message(StatusCode::NOT_FOUND, "Not found", &m, &base),
            AdminError::Conflict(m) => Page::message(StatusCode::CONFLICT, "Conflict", &m, &base),
            AdminError::Store(e) => {
                // The cause is logged, never shown.
                tracing::error!(error = %e, "console request failed");
                let status = if e.is_unavailable() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                Page::message(
                    status,
                    "Something went wrong",
                    "The server could not complete the request; try again shortly.",
                    &base,
                )
            }
            AdminError::Keys(e) => {
                tracing::error!(error = %e, "console request failed");
                Page::message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not complete the request.",
                    &base,
                )
            }
        }
    }
}
