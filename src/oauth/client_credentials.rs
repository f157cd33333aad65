//! RFC 6749 §4.4: the client credentials grant.
//!
//! "The client can request an access token using only its client credentials
//! ... when the client is requesting access to the protected resources under
//! its control, or those of another resource owner that have been previously
//! arranged with the authorization server." (§4.4)
//!
//! The handler runs the checks in this order: `grant_type` (this module),
//! client authentication (`client_auth`), then `authorize`, whose result
//! `token::Tokens::issue` turns into a token.

use super::policy::{resolve_lifetime, resolve_scope};
use super::request::TokenRequest;
use super::{ErrorCode, OAuthError};
use crate::registry::{Api, Client, Snapshot};
use crate::token::Grant;
use crate::types::Algorithm;

pub const GRANT_TYPE: &str = "client_credentials";
/// Moltin's SDK asks for `grant_type=implicit` with only a `client_id` when it
/// has no secret: a public client's request for its default, read-only token.
pub const MOLTIN_IMPLICIT: &str = "implicit";

/// Server-wide settings the grant needs.
#[derive(Debug, Clone)]
pub struct GrantPolicy {
    pub enabled: bool,
    /// Seconds, when neither the client nor the API sets a lifetime.
    pub default_lifetime: u64,
    /// `aud` of tokens requested without `audience` / `resource`.
    pub default_audience: String,
}

/// What the checks decided.
#[derive(Debug)]
pub struct Authorized<'r> {
    /// Everything the token is minted from.
    pub grant: Grant<'r>,
    /// The grant as the client named it, echoed as Moltin's `identifier`.
    pub grant_type: &'static str,
}

/// The checks after authentication, in order: the client may use the
/// grant; the audience and the client's grant for it; the scope; the
/// lifetime; then how the token is made.
pub fn authorize<'r>(
    registry: &'r Snapshot,
    policy: &'r GrantPolicy,
    grant_type: &'static str,
    client: &'r Client,
    request: &TokenRequest,
) -> Result<Authorized<'r>, OAuthError> {
    check_client_may_use_grant(client)?;
    let (scope, audience) = match grant_type {
        MOLTIN_IMPLICIT => (None, None),
        _ => (request.scope.as_deref(), request.audience.as_deref()),
    };
    if grant_type == MOLTIN_IMPLICIT && !client.public {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "grant_type=implicit is for public clients; use client_credentials",
        ));
    }
    let target = resolve_target(registry, client, audience)?;
    let scope = resolve_scope(scope, target.allowed, target.default)?;
    let lifetime = resolve_lifetime(
        client.lifetime,
        target.api.and_then(|a| a.lifetime),
        target.api.and_then(|a| a.max_lifetime),
        policy.default_lifetime,
        request.validity_period,
    );
    let grant = Grant {
        client,
        audience: target
            .api
            .map_or(&policy.default_audience, |a| &a.identifier),
        scope,
        lifetime,
        algorithm: target.api.map_or(Algorithm::ES256, |a| a.algorithm),
        // The client's setting wins over the API's.
        format: client
            .token_format
            .or(target.api.and_then(|a| a.token_format))
            .unwrap_or_default(),
        profile: target
            .api
            .and_then(|a| a.claims_profile)
            .unwrap_or_default(),
    };
    Ok(Authorized { grant, grant_type })
}

/// RFC 6749 §4.4.2: `grant_type` is REQUIRED; §5.2 `unsupported_grant_type`
/// for one this server does not offer (or has switched off).
/// Moltin's `implicit` is offered only where Moltin's SDK asks for it
/// (`moltin`: its `/oauth/access_token` path); elsewhere, as discovery says,
/// `client_credentials` is the only grant.
pub fn check_grant_type(
    policy: &GrantPolicy,
    grant_type: Option<&str>,
    moltin: bool,
) -> Result<&'static str, OAuthError> {
    match grant_type {
        None => Err(OAuthError::invalid_request(
            "the 'grant_type' parameter is missing",
        )),
        Some(GRANT_TYPE) if policy.enabled => Ok(GRANT_TYPE),
        Some(MOLTIN_IMPLICIT) if policy.enabled && moltin => Ok(MOLTIN_IMPLICIT),
        Some(MOLTIN_IMPLICIT) if !moltin => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "the grant type is not supported; use client_credentials",
        )),
        Some(GRANT_TYPE | MOLTIN_IMPLICIT) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "the client_credentials grant is disabled on this server",
        )),
        Some(_) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "the grant type is not supported; use client_credentials",
        )),
    }
}

/// RFC 6749 §5.2 `unauthorized_client`.
fn check_client_may_use_grant(client: &Client) -> Result<(), OAuthError> {
    if client.may_use_grant(GRANT_TYPE) {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the client may not use the client_credentials grant",
        ))
    }
}

struct Target<'r> {
    api: Option<&'r Api>,
    allowed: &'r [String],
    default: &'r [String],
}

/// RFC 8707 §2 / Auth0's `audience`: the API must exist and the client must
/// hold a grant for it (`invalid_target`); its scopes then come from the grant.
/// Without one, the token is for the default audience with the client's scopes.
fn resolve_target<'r>(
    registry: &'r Snapshot,
    client: &'r Client,
    audience: Option<&str>,
) -> Result<Target<'r>, OAuthError> {
    let Some(audience) = audience else {
        return Ok(Target {
            api: None,
            allowed: &client.scopes,
            default: &client.default_scope,
        });
    };
    match (registry.api(audience), client.grants.get(audience)) {
        (Some(api), Some(granted)) => Ok(Target {
            api: Some(api),
            allowed: granted,
            default: granted,
        }),
        _ => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "the client may not request tokens for this audience",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::MasterKey;
    use crate::oauth::client_auth::ClientCredentials;
    use crate::store::{
        ApiRecord, ClientEntry, ClientRecord, GrantRecord, SecretRecord, Snapshot as Rows,
    };
    use crate::types::TokenFormat;
    use std::collections::HashMap;

    const SECRET: &str = "writ_sk_test";

    /// The APIs and keys, and the clients by id, as the registry holds them.
    fn fixture(master: &MasterKey) -> (Snapshot, HashMap<String, Client>) {
        let hasher = master.secret_hasher();
        let client = |id: &str, public: bool, grant_types: &[&str]| {
            let record = ClientRecord {
                id: id.into(),
                name: id.into(),
                public,
                scopes: vec!["market:*".into(), "read".into()],
                default_scope: Some(vec!["market:all".into()]),
                lifetime: None,
                grant_types: grant_types.iter().map(|s| s.to_string()).collect(),
                enabled: true,
                created_at: 0,
                token_format: None,
                claims: None,
                auth_methods: crate::types::AuthMethod::defaults(public, false),
                jwks: None,
                jwks_uri: None,
            };
            let secrets = (!public)
                .then(|| SecretRecord {
                    id: 1,
                    client_id: id.to_string(),
                    hash: hasher.hash(SECRET).to_vec(),
                    created_at: 0,
                    expires_at: None,
                    last_used_at: None,
                })
                .into_iter()
                .collect();
            let grants = (id == "conf")
                .then(|| GrantRecord {
                    client_id: id.into(),
                    api: "https://api.example".into(),
                    scopes: vec!["read:a".into()],
                    created_at: 0,
                })
                .into_iter()
                .collect();
            let entry = ClientEntry {
                client: record,
                secrets,
                grants,
                trust: vec![],
            };
            (id.to_owned(), Client::from_entry(entry))
        };
        let rows = Rows {
            revision: 1,
            apis: vec![ApiRecord {
                identifier: "https://api.example".into(),
                name: "api".into(),
                scopes: vec!["read:a".into(), "write:a".into()],
                lifetime: Some(600),
                max_lifetime: Some(900),
                algorithm: Algorithm::EdDSA,
                created_at: 0,
                token_format: Some(TokenFormat::Opaque),
                claims_profile: None,
            }],
            keys: vec![],
        };
        let clients = [
            client("conf", false, &[GRANT_TYPE]),
            client("pub", true, &[GRANT_TYPE]),
            client("nocc", false, &[]),
        ]
        .into_iter()
        .collect();
        (Snapshot::build(rows, master, 0, None), clients)
    }

    fn policy(enabled: bool) -> GrantPolicy {
        GrantPolicy {
            enabled,
            default_lifetime: 3600,
            default_audience: "https://issuer".into(),
        }
    }

    fn run(
        enabled: bool,
        body: &[(&str, &str)],
        creds: ClientCredentials,
    ) -> Result<(String, String, u64, Algorithm), OAuthError> {
        run_full(enabled, body, creds).map(|(a, s, l, alg, _)| (a, s, l, alg))
    }

    fn run_full(
        enabled: bool,
        body: &[(&str, &str)],
        creds: ClientCredentials,
    ) -> Result<(String, String, u64, Algorithm, TokenFormat), OAuthError> {
        let master = MasterKey::from_bytes(&[7; 32]);
        let (registry, clients) = fixture(&master);
        let policy = policy(enabled);
        let mut req = TokenRequest {
            grant_type: Some(GRANT_TYPE.into()),
            ..Default::default()
        };
        for (k, v) in body {
            match *k {
                "grant_type" => req.grant_type = Some(v.to_string()),
                "scope" => req.scope = Some(v.to_string()),
                "audience" => req.audience = Some(v.to_string()),
                "validity_period" => req.validity_period = Some(v.parse().unwrap()),
                _ => unreachable!(),
            }
        }
        // As the token endpoint runs them: grant type, authentication, the rest.
        let grant_type = check_grant_type(&policy, req.grant_type.as_deref(), true)?;
        let client = clients.get(creds.client_id());
        let audience = crate::oauth::assertion::Audience {
            issuer: "https://issuer".into(),
            token_endpoints: vec![],
        };
        let keys = crate::oauth::client_auth::AssertionKeys::Unavailable("no keys in this test");
        let authenticated =
            creds.authenticate(client, &master.secret_hasher(), &audience, keys, 0)?;
        authorize(&registry, &policy, grant_type, authenticated.client, &req).map(|a| {
            (
                a.grant.audience.to_string(),
                a.grant.scope,
                a.grant.lifetime,
                a.grant.algorithm,
                a.grant.format,
            )
        })
    }

    fn post(id: &str, secret: &str) -> ClientCredentials {
        ClientCredentials::Post {
            id: id.into(),
            secret: secret.into(),
        }
    }

    #[test]
    fn rfc6749_4_4_issues_default_scope_for_default_audience() {
        let (aud, scope, lifetime, alg) = run(true, &[], post("conf", SECRET)).unwrap();
        assert_eq!(
            (aud.as_str(), scope.as_str(), lifetime, alg),
            ("https://issuer", "market:all", 3600, Algorithm::ES256)
        );
    }

    #[test]
    fn rfc6749_5_2_unsupported_grant_type() {
        let err = run(true, &[("grant_type", "password")], post("conf", SECRET)).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnsupportedGrantType);
        let err = run(false, &[], post("conf", SECRET)).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnsupportedGrantType);
    }

    #[test]
    fn rfc6749_5_2_unauthorized_client() {
        let err = run(true, &[], post("nocc", SECRET)).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnauthorizedClient);
    }

    #[test]
    fn rfc6749_2_3_every_authentication_failure_reads_the_same() {
        let cases = [
            post("conf", "wrong"),
            post("nobody", SECRET),
            post("pub", SECRET),
            ClientCredentials::None { id: "conf".into() },
        ];
        for creds in cases {
            let err = run(true, &[], creds.clone()).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidClient, "{creds:?}");
            assert_eq!(err.description, "client authentication failed");
        }
    }

    #[test]
    fn moltin_implicit_gives_a_public_client_its_default_scope_only() {
        let (_, scope, _, _) = run(
            true,
            &[("grant_type", "implicit"), ("scope", "read")],
            ClientCredentials::None { id: "pub".into() },
        )
        .unwrap();
        assert_eq!(scope, "market:all");
        let err = run(true, &[("grant_type", "implicit")], post("conf", SECRET)).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnauthorizedClient);
        let err = run(
            false,
            &[("grant_type", "implicit")],
            ClientCredentials::None { id: "pub".into() },
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::UnsupportedGrantType);
    }

    #[test]
    fn moltin_implicit_is_offered_on_moltin_path_only() {
        let on = policy(true);
        let implicit = Some(MOLTIN_IMPLICIT);
        assert_eq!(check_grant_type(&on, implicit, true).unwrap(), "implicit");
        let err = check_grant_type(&on, implicit, false).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnsupportedGrantType);
        assert_eq!(
            check_grant_type(&on, Some(GRANT_TYPE), false).unwrap(),
            GRANT_TYPE
        );
    }

    #[test]
    fn public_client_authenticates_with_id_only() {
        let (_, scope, _, _) = run(
            true,
            &[("scope", "market:1234")],
            ClientCredentials::None { id: "pub".into() },
        )
        .unwrap();
        assert_eq!(scope, "market:1234");
    }

    #[test]
    fn rfc8707_2_audience_takes_grant_scopes_lifetime_and_algorithm() {
        let (aud, scope, lifetime, alg) = run(
            true,
            &[("audience", "https://api.example")],
            post("conf", SECRET),
        )
        .unwrap();
        assert_eq!(
            (aud.as_str(), scope.as_str(), lifetime, alg),
            ("https://api.example", "read:a", 600, Algorithm::EdDSA)
        );
    }

    #[test]
    fn token_format_comes_from_the_api_unless_the_client_sets_one() {
        let plain = run_full(true, &[], post("conf", SECRET)).unwrap();
        assert_eq!(plain.4, TokenFormat::Jwt);
        let api = run_full(
            true,
            &[("audience", "https://api.example")],
            post("conf", SECRET),
        );
        assert_eq!(api.unwrap().4, TokenFormat::Opaque);
    }

    #[test]
    fn rfc8707_2_unknown_or_ungranted_audience_is_invalid_target() {
        let err = run(true, &[("audience", "https://nope")], post("conf", SECRET)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidTarget);
        let err = run(
            true,
            &[("audience", "https://api.example")],
            ClientCredentials::None { id: "pub".into() },
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn rfc6749_3_3_scope_outside_grant_is_invalid_scope() {
        let err = run(
            true,
            &[("audience", "https://api.example"), ("scope", "write:a")],
            post("conf", SECRET),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidScope);
    }
}
