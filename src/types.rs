//! Value types every layer shares: how tokens are made (format, claims
//! profile) and signed (algorithm). A leaf: it imports nothing from Writ,
//! so any module may import it without making a circle.

use std::fmt;
use std::str::FromStr;

/// The longest token lifetime, and secret overlap, Writ accepts: 366 days.
/// Longer is a mistake (and far past it, `now + lifetime` overflows).
pub const MAX_LIFETIME: u64 = 366 * 24 * 3600;

/// JWS algorithms Writ signs with (RFC 7518 §3, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    ES256,
    RS256,
    EdDSA,
}

impl Algorithm {
    pub const ALL: [Algorithm; 3] = [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
            Self::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ES256" => Ok(Self::ES256),
            "RS256" => Ok(Self::RS256),
            "EdDSA" => Ok(Self::EdDSA),
            _ => Err(format!(
                "unknown algorithm '{s}': use ES256, RS256 or EdDSA"
            )),
        }
    }
}

/// How a client's or an API's access tokens are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenFormat {
    /// Self-contained and signed: verified offline against the JWKS.
    #[default]
    Jwt,
    /// A random reference, checked by introspection.
    Opaque,
}

impl TokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Opaque => "opaque",
        }
    }
}

impl fmt::Display for TokenFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "jwt" => Ok(Self::Jwt),
            "opaque" => Ok(Self::Opaque),
            _ => Err(format!("unknown token format '{s}': use jwt or opaque")),
        }
    }
}

/// Which claims an API's JWTs carry beyond RFC 9068's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClaimsProfile {
    #[default]
    Standard,
    /// What Auth0-minded resource servers read: `gty`, `azp`, and `sub` as
    /// `<client_id>@clients`.
    Auth0,
}

impl fmt::Display for ClaimsProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Standard => "standard",
            Self::Auth0 => "auth0",
        })
    }
}

impl FromStr for ClaimsProfile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "standard" => Ok(Self::Standard),
            "auth0" => Ok(Self::Auth0),
            _ => Err(format!(
                "unknown claims profile '{s}': use standard or auth0"
            )),
        }
    }
}

/// How a client authenticates at the token endpoint (RFC 7591 §2
/// `token_endpoint_auth_method`, OpenID Connect Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuthMethod {
    /// A secret in the Authorization header (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// A secret in the body (RFC 6749 §2.3.1).
    ClientSecretPost,
    /// A JWT signed with one of the client's registered keys (RFC 7523 §2.2).
    PrivateKeyJwt,
    /// A public client: its id alone.
    None,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 4] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    /// What a client of a kind may use unless limited: a public client its
    /// id alone, a client with keys its signed assertions, any other its
    /// secret either way.
    pub fn defaults(public: bool, has_keys: bool) -> Vec<AuthMethod> {
        if public {
            vec![Self::None]
        } else if has_keys {
            vec![Self::PrivateKeyJwt]
        } else {
            vec![Self::ClientSecretBasic, Self::ClientSecretPost]
        }
    }

    /// Proves possession of a secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                format!("unknown authentication method '{s}': use client_secret_basic, client_secret_post, private_key_jwt or none")
            })
    }
}
