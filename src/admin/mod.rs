//! The management operations behind every front door (the CLI, the admin
//! HTTP API and the console): what a valid client, API, grant and
//! key rotation is, new ids and secrets, the change in the store, and the
//! audit event. A front door only translates its input into these plain
//! types and renders the typed result or error its own way.

mod apis;
mod clients;
pub mod console;
mod grants;
mod import;
mod keys;
mod registration;
mod tokens;

pub use apis::{ApiChanges, NewApi};
pub use clients::{
    ClientChanges, ClientDetails, CreatedClient, NewClient, NewTrustRule, RotatedSecret,
};
pub use grants::NewGrant;
pub use import::{GeneratedSecret, ImportError, Imported};
pub use keys::MIN_PUBLICATION;
pub use registration::{Metadata, Registered, REGISTRATION_TOKEN_PREFIX};
pub use tokens::{Issuing, TestToken};

use std::str::FromStr;

use crate::keys::rotation::RotationError;
use crate::keys::MasterKey;
use crate::store::{Store, StoreError};
use crate::types::TokenFormat;

/// Who makes changes, and through which front door: both go into every
/// audit event.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The operator's name, as the front door knows it.
    pub by: String,
    /// The front door: `cli`, `api` or `console`.
    pub via: &'static str,
}

/// The operations, on one store, on behalf of one actor.
pub struct Admin<'a> {
    store: &'a Store,
    master: &'a MasterKey,
    actor: Actor,
    /// When the operations happen, for their audit events.
    now: i64,
}

impl<'a> Admin<'a> {
    pub fn new(store: &'a Store, master: &'a MasterKey, actor: Actor, now: i64) -> Self {
        Self {
            store,
            master,
            actor,
            now,
        }
    }

    /// The operator as the system knows them, for audit events: the login
    /// name, else the numeric user id (never "unknown").
    pub fn operator_name() -> String {
        for var in ["USER", "LOGNAME"] {
            if let Ok(name) = std::env::var(var) {
                if !name.is_empty() {
                    return name;
                }
            }
        }
        #[cfg(unix)]
        {
            // SAFETY: getuid has no preconditions and cannot fail.
            format!("uid:{}", unsafe { libc::getuid() })
        }
        #[cfg(not(unix))]
        {
            "unknown".into()
        }
    }

    /// The audit event for a change that was made: what, to what, by whom.
    /// Audit events use the target `audit` so they can be routed on their own.
    /// The change is made already: an event that cannot be stored is
    /// logged, and the operation still succeeds.
    async fn audit(&self, event: &str, subject: &str) {
        let Actor { by, via } = &self.actor;
        tracing::info!(target: "audit", event, subject, by = %by, via = *via, outcome = "ok");
        if let Err(e) = self
            .store
            .record_audit(self.now, event, subject, by, via)
            .await
        {
            tracing::warn!(error = %e, event, "the audit event was not stored");
        }
    }

    /// The audit events, newest first, before the event `before`.
    pub async fn audit_events(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<crate::store::AuditRecord>, AdminError> {
        Ok(self.store.audit_events(before, limit).await?)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// An input breaks a rule; nothing was changed.
    #[error("{0}")]
    Invalid(Invalid),
    /// Input that is not what the operation reads (a line of an import).
    #[error("{0}")]
    Malformed(String),
    /// No such client, API, grant or secret.
    #[error("{0}")]
    NotFound(String),
    /// It exists already, or contradicts what is stored (a public client
    /// has no secret to rotate).
    #[error("{0}")]
    Conflict(String),
    /// The database failed; `StoreError::is_unavailable` tells a passing
    /// condition from a fault.
    #[error(transparent)]
    Store(StoreError),
    /// A new signing key could not be made.
    #[error(transparent)]
    Keys(RotationError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(message) => Self::NotFound(message),
            StoreError::Conflict(message) => Self::Conflict(message),
            other => Self::Store(other),
        }
    }
}

impl From<RotationError> for AdminError {
    fn from(e: RotationError) -> Self {
        match e {
            RotationError::Store(e) => e.into(),
            other => Self::Keys(other),
        }
    }
}

impl From<Invalid> for AdminError {
    fn from(e: Invalid) -> Self {
        Self::Invalid(e)
    }
}

/// An input of an operation, by its name in `NewClient`, `NewApi`… (which
/// is also how a JSON front door spells it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Scope,
    DefaultScope,
    GrantTypes,
    Lifetime,
    MaxLifetime,
    Claims,
    Identifier,
    Algorithm,
    Overlap,
    AuthMethods,
    Jwks,
    JwksUri,
    Trust,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Scope => "scope",
            Self::DefaultScope => "default_scope",
            Self::GrantTypes => "grant_types",
            Self::Lifetime => "lifetime",
            Self::MaxLifetime => "max_lifetime",
            Self::Claims => "claims",
            Self::Identifier => "identifier",
            Self::Algorithm => "algorithm",
            Self::Overlap => "overlap",
            Self::AuthMethods => "auth_methods",
            Self::Jwks => "jwks",
            Self::JwksUri => "jwks_uri",
            Self::Trust => "trust",
        }
    }
}

/// A broken rule: the input it concerns and what is wrong with it. Some
/// messages name inputs, and each front door names them its own way
/// (`--lifetime` on the command line, `lifetime` in JSON), so the message
/// is rendered with the front door's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: Field,
    problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    /// A sentence that names its own subject: "API scope 'a*' must not be a pattern".
    Sentence(String),
    /// Said of the input: "must not be empty" → "name must not be empty".
    OfField(String),
    /// "lifetime must not exceed max_lifetime".
    Exceeds(Field),
}

impl Invalid {
    fn sentence(field: Field, message: impl Into<String>) -> Self {
        Self {
            field,
            problem: Problem::Sentence(message.into()),
        }
    }

    fn of_field(field: Field, predicate: impl Into<String>) -> Self {
        Self {
            field,
            problem: Problem::OfField(predicate.into()),
        }
    }

    /// The message, with inputs named by `name`.
    pub fn message(&self, name: impl Fn(Field) -> &'static str) -> String {
        match &self.problem {
            Problem::Sentence(message) => message.clone(),
            Problem::OfField(predicate) => format!("{} {predicate}", name(self.field)),
            Problem::Exceeds(other) => {
                format!("{} must not exceed {}", name(self.field), name(*other))
            }
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message(Field::as_str))
    }
}

impl std::error::Error for Invalid {}

/// A token format to set, or `None`: back to the default (for a client the
/// API's format, for an API JWT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatSetting(pub Option<TokenFormat>);

impl FromStr for FormatSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "default" => Ok(Self(None)),
            other => Ok(Self(Some(
                other
                    .parse()
                    .map_err(|e: String| format!("{e}, or default"))?,
            ))),
        }
    }
}

pub use crate::types::MAX_LIFETIME;

/// Longest name of a client or an API, in characters: a label for people,
/// shown in lists, the console and logs.
pub const MAX_NAME: usize = 200;

/// A name for people: not empty, and of a sane length (dynamic
/// registration lets other programs choose it).
fn name(name: String) -> Result<String, Invalid> {
    if name.trim().is_empty() {
        return Err(Invalid::of_field(Field::Name, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(Invalid::of_field(
            Field::Name,
            format!("must be at most {MAX_NAME} characters"),
        ));
    }
    Ok(name)
}

/// Lifetimes are whole seconds; zero would issue tokens already expired.
fn positive_lifetime(field: Field, seconds: Option<u64>) -> Result<Option<u64>, Invalid> {
    match seconds {
        Some(0) => Err(Invalid::of_field(
            field,
            "must be a positive number of seconds",
        )),
        Some(s) if s > MAX_LIFETIME => Err(Invalid::of_field(
            field,
            format!("must be at most {MAX_LIFETIME} seconds (366 days)"),
        )),
        seconds => Ok(seconds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_not_empty_and_not_absurdly_long() {
        assert!(name(" ".into()).is_err());
        assert_eq!(
            name("é".repeat(MAX_NAME)).unwrap().chars().count(),
            MAX_NAME
        );
        let err = name("x".repeat(MAX_NAME + 1)).unwrap_err();
        assert_eq!(err.to_string(), "name must be at most 200 characters");
    }

    #[test]
    fn lifetime_must_be_positive() {
        let err = positive_lifetime(Field::MaxLifetime, Some(0)).unwrap_err();
        assert_eq!(err.field, Field::MaxLifetime);
        assert_eq!(
            err.to_string(),
            "max_lifetime must be a positive number of seconds"
        );
        assert_eq!(positive_lifetime(Field::Lifetime, Some(1)), Ok(Some(1)));
        let err = positive_lifetime(Field::Lifetime, Some(99_999_999_999_999)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "lifetime must be at most 31622400 seconds (366 days)"
        );
        assert_eq!(positive_lifetime(Field::Lifetime, None), Ok(None));
    }

    #[test]
    fn messages_name_inputs_the_front_doors_way() {
        let err = Invalid {
            field: Field::Lifetime,
            problem: Problem::Exceeds(Field::MaxLifetime),
        };
        assert_eq!(err.to_string(), "lifetime must not exceed max_lifetime");
        let flag = |f: Field| match f {
            Field::Lifetime => "--lifetime",
            _ => "--max-lifetime",
        };
        assert_eq!(
            err.message(flag),
            "--lifetime must not exceed --max-lifetime"
        );
    }

    #[test]
    fn format_setting_is_a_format_or_default() {
        assert_eq!("default".parse(), Ok(FormatSetting(None)));
        assert_eq!(
            "opaque".parse(),
            Ok(FormatSetting(Some(TokenFormat::Opaque)))
        );
        let err = "paseto".parse::<FormatSetting>().unwrap_err();
        assert!(err.ends_with(", or default"), "{err}");
    }

    #[test]
    fn store_outcomes_keep_their_kind() {
        let err = AdminError::from(StoreError::NotFound("no client 'x'".into()));
        assert!(matches!(err, AdminError::NotFound(_)));
        assert_eq!(err.to_string(), "no client 'x'");
        let err = AdminError::from(RotationError::Store(StoreError::Conflict("c".into())));
        assert!(matches!(err, AdminError::Conflict(_)));
    }
}
