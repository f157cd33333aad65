"""Standard Python OAuth clients against a real Writ, unchanged but for the
base URL. Run by tests/it/interop.rs, which passes addresses and credentials
in the environment (REQUESTS_CA_BUNDLE trusts its HTTPS certificate)."""

import json
import os
import time

import jwt
import pytest
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session

# Each listener is its own issuer: its base URL.
HTTP = os.environ["WRIT_HTTP"]
HTTPS = os.environ["WRIT_HTTPS"]
C = json.loads(os.environ["WRIT_CLIENTS"])


def verify(token, issuer, audience=None):
    """PyJWT with PyJWKClient: signature from the served JWKS, aud, iss, exp."""
    jwks = jwt.PyJWKClient(f"{HTTP}/.well-known/jwks.json")
    key = jwks.get_signing_key_from_jwt(token)
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    return jwt.decode(
        token,
        key.key,
        algorithms=["ES256", "EdDSA", "RS256"],
        audience=audience or issuer,
        issuer=issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )


@pytest.mark.parametrize("base", [HTTP, HTTPS])
@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib(base, method):
    session = AuthlibSession(
        C["conf"]["id"], C["conf"]["secret"], token_endpoint_auth_method=method, scope="read"
    )
    token = session.fetch_token(f"{base}/oauth/token", grant_type="client_credentials")
    assert token["scope"] == "read"
    assert token["expires_at"] >= int(time.time()) + 3500
    claims = verify(token["access_token"], base)
    assert claims["client_id"] == C["conf"]["id"]
    assert claims["scope"] == "read"


def test_authlib_audience_and_wrong_secret():
    session = AuthlibSession(C["conf"]["id"], C["conf"]["secret"])
    token = session.fetch_token(
        f"{HTTPS}/oauth/token", grant_type="client_credentials", audience=C["api"]
    )
    assert token["expires_in"] == 600
    assert verify(token["access_token"], HTTPS, C["api"])["azp"] == C["conf"]["id"]

    bad = AuthlibSession(C["conf"]["id"], "writ_sk_wrong")
    with pytest.raises(Exception) as raised:
        bad.fetch_token(f"{HTTP}/oauth/token", grant_type="client_credentials")
    assert "invalid_client" in str(raised.value)


def test_requests_oauthlib_backend_application():
    client = BackendApplicationClient(client_id=C["conf"]["id"], scope=["read"])
    session = OAuth2Session(client=client)
    token = session.fetch_token(
        token_url=f"{HTTPS}/oauth/token",
        client_id=C["conf"]["id"],
        client_secret=C["conf"]["secret"],
    )
    assert token["scope"] == ["read"]
    assert token["token_type"] == "Bearer"
    verify(token["access_token"], HTTPS)


def test_pyjwt_refuses_wrong_audience():
    session = AuthlibSession(C["conf"]["id"], C["conf"]["secret"])
    token = session.fetch_token(f"{HTTP}/oauth/token", grant_type="client_credentials")
    with pytest.raises(jwt.InvalidAudienceError):
        verify(token["access_token"], HTTP, "https://other.example/")


# private_key_jwt (RFC 7523 §2.2): authlib's PrivateKeyJWT signs the client
# assertion with joserfc. Writ wants the issuer as `aud`; authlib sends the
# token endpoint unless told otherwise, which only the HTTPS listener
# (configured with [client_assertions] accept_token_endpoint_audience) takes.
def _jwt_session(key, alg, audience=None):
    from authlib.oauth2.rfc7523 import PrivateKeyJWT

    session = AuthlibSession(
        C["jwt"]["id"], key, token_endpoint_auth_method="private_key_jwt", scope="read"
    )
    session.register_client_auth_method(PrivateKeyJWT(audience, alg=alg))
    return session


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_authlib_private_key_jwt_with_the_issuer_as_audience(alg):
    from joserfc.jwk import ECKey, RSAKey

    key = ECKey.import_key(C["jwt"]["ec_pem"]) if alg == "ES256" else RSAKey.import_key(
        C["jwt"]["rsa_pem"]
    )
    session = _jwt_session(key, alg, audience=HTTP)
    token = session.fetch_token(f"{HTTP}/oauth/token", grant_type="client_credentials")
    claims = verify(token["access_token"], HTTP)
    assert claims["client_id"] == C["jwt"]["id"]
    assert claims["scope"] == "read"


def test_authlib_private_key_jwt_with_the_token_endpoint_as_audience():
    from joserfc.jwk import ECKey

    key = ECKey.import_key(C["jwt"]["ec_pem"])
    # Accepted where configured (HTTPS here)...
    token = _jwt_session(key, "ES256").fetch_token(
        f"{HTTPS}/oauth/token", grant_type="client_credentials"
    )
    assert verify(token["access_token"], HTTPS)["client_id"] == C["jwt"]["id"]
    # ...and refused by default, as draft-ietf-oauth-rfc7523bis wants.
    with pytest.raises(Exception) as raised:
        _jwt_session(key, "ES256").fetch_token(
            f"{HTTP}/oauth/token", grant_type="client_credentials"
        )
    assert "invalid_client" in str(raised.value)
