//! The web console's sign-in: one-time links made at the command line, and
//! the sessions they open. Links and session ids are bearer values with
//! their own prefixes (so log redaction and secret scanners know them);
//! the store keeps only their HMAC.

use super::{Admin, AdminError};
use crate::keys::{b64url, hashes_equal, random_bytes};
use crate::store::{ConsoleSession, SigninLink};

/// Prefix of a sign-in link's token.
pub const SIGNIN_PREFIX: &str = "writ_sl_";
/// Prefix of a console session id (the cookie's value).
pub const SESSION_PREFIX: &str = "writ_cs_";
/// A link works for five minutes, once.
pub const SIGNIN_LINK_LIFETIME: i64 = 5 * 60;
/// A session lasts a working day, unless signed out before.
pub const SESSION_LIFETIME: i64 = 8 * 3600;

/// A new sign-in link's token, in plain text only now.
#[derive(Debug, Clone)]
pub struct SigninToken {
    pub token: String,
    pub expires_at: i64,
}

/// A session just opened: its id goes into the cookie and nowhere else.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    pub id: String,
    pub session: ConsoleSession,
}

/// Why a link opened no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigninRefused {
    Used,
    Expired,
    Unknown,
}

impl Admin<'_> {
    /// A link that signs its holder in once, within five minutes.
    pub async fn create_signin_link(&self) -> Result<SigninToken, AdminError> {
        let token = format!("{SIGNIN_PREFIX}{}", b64url(&random_bytes::<32>()));
        let hash = self.master.secret_hasher().hash(&token);
        let expires_at = self.now + SIGNIN_LINK_LIFETIME;
        self.store
            .create_signin_link(&hash, self.now, expires_at, &self.actor.by)
            .await?;
        self.audit("console.signin_link_created", &self.actor.by)
            .await;
        Ok(SigninToken { token, expires_at })
    }

    /// Spends a sign-in link and opens a session labelled with who asked
    /// for the link and the link's number. The audit event is the
    /// session's, by that label, via the console.
    pub async fn sign_in(
        &self,
        token: &str,
    ) -> Result<Result<OpenedSession, SigninRefused>, AdminError> {
        if !token.starts_with(SIGNIN_PREFIX) {
            return Ok(Err(SigninRefused::Unknown));
        }
        let hash = self.master.secret_hasher().hash(token);
        let (id, created_by) = match self.store.spend_signin_link(&hash, self.now).await? {
            SigninLink::Spent { id, created_by } => (id, created_by),
            SigninLink::Used => return Ok(Err(SigninRefused::Used)),
            SigninLink::Expired => return Ok(Err(SigninRefused::Expired)),
            SigninLink::Unknown => return Ok(Err(SigninRefused::Unknown)),
        };
        let session_id = format!("{SESSION_PREFIX}{}", b64url(&random_bytes::<32>()));
        let session = ConsoleSession {
            created_at: self.now,
            expires_at: self.now + SESSION_LIFETIME,
            label: format!("{created_by}/link-{id}"),
        };
        let hash = self.master.secret_hasher().hash(&session_id);
        self.store.create_console_session(&hash, &session).await?;
        let by = format!("console:{}", session.label);
        let event = Admin::new(
            self.store,
            self.master,
            super::Actor { by, via: "console" },
            self.now,
        );
        event.audit("console.signed_in", &session.label).await;
        Ok(Ok(OpenedSession {
            id: session_id,
            session,
        }))
    }

    /// The live session with this id, if any.
    pub async fn console_session(&self, id: &str) -> Result<Option<ConsoleSession>, AdminError> {
        if !id.starts_with(SESSION_PREFIX) {
            return Ok(None);
        }
        let hash = self.master.secret_hasher().hash(id);
        Ok(self.store.console_session(&hash, self.now).await?)
    }

    /// Ends a session (signing out).
    pub async fn sign_out(&self, id: &str, label: &str) -> Result<(), AdminError> {
        let hash = self.master.secret_hasher().hash(id);
        self.store.delete_console_session(&hash).await?;
        self.audit("console.signed_out", label).await;
        Ok(())
    }

    /// The CSRF token of a session: derived from its id, so nothing more is
    /// stored and it dies with the session.
    pub fn csrf_token(&self, session_id: &str) -> String {
        csrf_token(self.master, session_id)
    }

    pub fn csrf_matches(&self, session_id: &str, presented: &str) -> bool {
        hashes_equal(
            csrf_token(self.master, session_id).as_bytes(),
            presented.as_bytes(),
        )
    }
}

fn csrf_token(master: &crate::keys::MasterKey, session_id: &str) -> String {
    b64url(
        &master
            .secret_hasher()
            .hash(&format!("csrf\u{0}{session_id}")),
    )
}
