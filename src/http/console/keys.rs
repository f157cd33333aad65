//! The signing keys page: each key's state (next, active, retiring) and
//! dates, and the rotate button, which says when resource servers see the
//! keys it changes.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::clients::error_box;
use super::page::{layout, time, Page};
use super::{Posted, Session};
use crate::admin::{AdminError, MIN_PUBLICATION};
use crate::http::AppState;
use crate::store::{KeyRecord, KeyState};
use crate::types::Algorithm;

#[derive(Deserialize)]
pub struct KeysQuery {
    /// The keys a rotation made active, comma-separated.
    rotated: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<KeysQuery>,
) -> Result<Page, Page> {
    let rotated: Vec<&str> = query
        .rotated
        .as_deref()
        .map(|r| r.split(',').filter(|k| !k.is_empty()).collect())
        .unwrap_or_default();
    keys_page(&state, &session, &rotated, None, StatusCode::OK).await
}

fn duration(seconds: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(seconds.max(0) as u64)).to_string()
}

/// What a rotation did, from the keys as they now are: when the newly
/// active key was published, how long the key it replaced stays in the
/// JWKS, and when the new next key may sign.
fn rotation_story(keys: &[KeyRecord], kid: &str, now: i64) -> Option<Markup> {
    let active = keys.iter().find(|k| k.kid == kid)?;
    let since = active.activated_at?;
    let replaced = keys
        .iter()
        .find(|k| k.algorithm == active.algorithm && k.retired_at == Some(since));
    let next = keys
        .iter()
        .find(|k| k.algorithm == active.algorithm && k.state(now) == KeyState::Next);
    let published_for = since - active.created_at;
    Some(html! {
        li {
            strong { (active.algorithm) ": " } "key " code { (active.kid) } " signs new tokens since " (time(since)) ". "
            @if published_for >= MIN_PUBLICATION {
                "Resource servers have seen it in the JWKS since " (time(active.created_at)) " (" (duration(published_for)) " before it signed), so they verify its tokens at once."
            } @else {
                "It was published only " (duration(published_for)) " before it signed: a resource server that cached the JWKS before " (time(active.created_at)) " refuses its tokens until it fetches the JWKS again (Writ lets it cache for 60 s)."
            }
            @if let Some(r) = replaced {
                " The key it replaced, " code { (r.kid) } ", stays in the JWKS until "
                (r.publish_until.map(time).unwrap_or_default()) ", when the last token it signed has expired."
            }
            @if let Some(n) = next {
                " The new next key " code { (n.kid) } " is in the JWKS from " (time(n.created_at))
                " and signs from the following rotation: rotate again no sooner than "
                (time(n.created_at + MIN_PUBLICATION)) ", so that resource servers have it by then."
            }
        }
    })
}

async fn keys_page(
    state: &AppState,
    session: &Session,
    rotated: &[&str],
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, Page> {
    let now = state.clock.now();
    let mut keys = session.admin(state).keys().await?;
    let expired = keys
        .iter()
        .filter(|k| k.state(now) == KeyState::Expired)
        .count();
    keys.retain(|k| k.state(now) != KeyState::Expired);
    let order = |s: KeyState| match s {
        KeyState::Active => 0,
        KeyState::Next => 1,
        KeyState::Retiring => 2,
        KeyState::Expired => 3,
    };
    keys.sort_by_key(|k| (k.algorithm.as_str(), order(k.state(now)), -k.created_at));
    let stories: Vec<Markup> = rotated
        .iter()
        .filter_map(|kid| rotation_story(&keys, kid, now))
        .collect();
    let mut algorithms: Vec<Algorithm> = keys.iter().map(|k| k.algorithm).collect();
    algorithms.dedup();
    let base = &session.base;
    let main = html! {
        h1 { "Signing keys" }
        @if !stories.is_empty() {
            section.done role="status" aria-labelledby="rotated-heading" {
                h2 #rotated-heading { "Rotated" }
                ul { @for s in &stories { (s) } }
            }
        }
        (error_box(error))
        p.hint {
            "A " strong { "next" } " key is published in the JWKS before it signs; the " strong { "active" }
            " key signs new tokens; a " strong { "retiring" } " key no longer signs and stays published until the tokens it signed have expired."
        }
        @if keys.is_empty() {
            p.message { "No signing keys yet: they are made with the first API, or when the server starts." }
        } @else {
            div.table {
                table {
                    thead { tr {
                        th scope="col" { "Key id" } th scope="col" { "Algorithm" } th scope="col" { "State" }
                        th.wide scope="col" { "Published" } th scope="col" { "Signing since" } th scope="col" { "Leaves the JWKS" }
                    } }
                    tbody {
                        @for k in &keys {
                            @let st = k.state(now);
                            tr {
                                td { code { (k.kid) } }
                                td { (k.algorithm) }
                                td { span class={ "state " (st.as_str()) } { (st.as_str()) } }
                                td.wide { (time(k.created_at)) }
                                td { @match (st, k.activated_at) { (KeyState::Next, _) => { "at the next rotation" } (_, Some(a)) => { (time(a)) } _ => { "—" } } }
                                td { @match k.publish_until { Some(u) => { (time(u)) } None => { "when retired" } } }
                            }
                        }
                    }
                }
            }
            @if expired > 0 {
                p.hint { (expired) " expired keys (no longer published) are not shown." }
            }
        }
        section aria-labelledby="rotate-heading" {
            h2 #rotate-heading { "Rotate" }
            p { "Rotating makes each algorithm's next key sign new tokens now, keeps the active key published until its tokens expire, and publishes a new next key at once." }
            form.stack method="post" action=(base.to("/keys/rotate")) {
                input type="hidden" name="csrf" value=(session.csrf);
                label for="algorithm" { "Algorithm" }
                select #algorithm name="algorithm" {
                    option value="" { "Every algorithm in use" }
                    @for a in &algorithms { option value=(a.as_str()) { (a) } }
                }
                label.choice {
                    input type="checkbox" name="force" value="on";
                    " Even if the next key was published less than " (duration(MIN_PUBLICATION)) " ago (resource servers may not have it yet)"
                }
                button type="submit" { "Rotate keys" }
            }
        }
    };
    Ok(Page::new(
        status,
        layout("Signing keys", Some(session), base, html! {}, main),
    ))
}

#[derive(Debug, Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    algorithm: String,
    force: Option<String>,
}

pub async fn rotate(
    State(state): State<AppState>,
    Posted { session, form }: Posted<RotateForm>,
) -> Result<Response, Page> {
    let algorithm = match form.algorithm.as_str() {
        "" => None,
        a => match a.parse::<Algorithm>() {
            Ok(a) => Some(a),
            Err(m) => {
                return Err(keys_page(
                    &state,
                    &session,
                    &[],
                    Some(&m),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await?)
            }
        },
    };
    let activated = match session
        .admin(&state)
        .rotate_keys(
            algorithm,
            state.policy.default_lifetime,
            form.force.is_some(),
            state.clock.now(),
        )
        .await
    {
        Ok(a) => a,
        Err(AdminError::Conflict(m)) => {
            let m = m.replace("or use --force", "or tick the box to rotate anyway");
            return Err(keys_page(&state, &session, &[], Some(&m), StatusCode::CONFLICT).await?);
        }
        Err(e) => return Err(e.into()),
    };
    let list: String =
        url::form_urlencoded::byte_serialize(activated.join(",").as_bytes()).collect();
    Ok(Redirect::to(&format!("{}?rotated={list}", session.base.to("/keys"))).into_response())
}
