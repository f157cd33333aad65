//! Grants per API on a client's page: for each API a switch (granted or
//! not) and that API's scopes as check boxes, saved one API at a time.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};

use super::clients::{client_path, refused};
use super::page::{field_label, Page};
use super::{Posted, Session};
use crate::admin::{AdminError, NewGrant};
use crate::http::AppState;
use crate::store::{ApiRecord, GrantRecord};

/// Check boxes of scopes are named `scope:<scope>`: a form field per
/// scope, since the form reader keeps one value per name.
const SCOPE_FIELD: &str = "scope:";

pub fn section(
    session: &Session,
    here: &str,
    apis: &[ApiRecord],
    grants: &[GrantRecord],
) -> Markup {
    html! {
        section aria-labelledby="grants-heading" {
            h2 #grants-heading { "Grants per API" }
            p.hint { "Which APIs this client may call, and with which of each API's scopes." }
            @if apis.is_empty() {
                p.message { "No APIs yet: create one on the " a href=(session.base.to("/apis")) { "APIs page" } "." }
            }
            @for (i, api) in apis.iter().enumerate() {
                @let grant = grants.iter().find(|g| g.api == api.identifier);
                form.grant method="post" action={ (here) "/grants" } {
                    input type="hidden" name="csrf" value=(session.csrf);
                    input type="hidden" name="api" value=(api.identifier);
                    fieldset {
                        legend { (api.name) " " code { (api.identifier) } }
                        label.switch {
                            input type="checkbox" role="switch" name="granted" value="on" checked[grant.is_some()]
                                aria-describedby={ "grant-scopes-" (i) };
                            " Granted"
                        }
                        div.scopes #{ "grant-scopes-" (i) } {
                            @if api.scopes.is_empty() {
                                span.hint { "This API defines no scopes." }
                            }
                            @for scope in &api.scopes {
                                label.choice {
                                    input type="checkbox" name={ (SCOPE_FIELD) (scope) } value="on"
                                        checked[grant.is_some_and(|g| g.scopes.contains(scope))];
                                    " " code { (scope) }
                                }
                            }
                        }
                        button type="submit" aria-label={ "Save the grant for " (api.name) } { "Save" }
                    }
                }
            }
        }
    }
}

/// Saves one API's grant: granted with the ticked scopes, or taken away.
pub async fn save(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, form }: Posted<HashMap<String, String>>,
) -> Result<Response, Page> {
    let Some(api) = form.get("api").filter(|a| !a.is_empty()).cloned() else {
        return Err(refused(&state, &session, &id, "Choose an API to grant.".into()).await);
    };
    let admin = session.admin(&state);
    let done = if form.get("granted").is_some_and(|g| g == "on") {
        let mut scopes: Vec<&str> = form
            .keys()
            .filter_map(|k| k.strip_prefix(SCOPE_FIELD))
            .collect();
        scopes.sort_unstable();
        let new = NewGrant {
            client_id: id.clone(),
            api,
            scope: scopes.join(" "),
        };
        match admin.set_grant(new, state.clock.now()).await {
            Ok(_) => "granted",
            Err(AdminError::Invalid(i)) => {
                return Err(refused(&state, &session, &id, i.message(field_label)).await)
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        // Already not granted is what was asked for; the client and API
        // must still exist.
        admin.client(&id).await?;
        admin.api(&api).await?;
        match admin.delete_grant(&id, &api).await {
            Ok(()) | Err(AdminError::NotFound(_)) => "ungranted",
            Err(e) => return Err(e.into()),
        }
    };
    Ok(Redirect::to(&format!(
        "{}?done={done}#grants-heading",
        client_path(&session, &id)
    ))
    .into_response())
}
