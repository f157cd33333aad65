// Vendor SDKs and standard OAuth clients, unchanged but for the base URL,
// against a real Writ. Run by tests/it/interop.rs, which starts Writ on
// plain HTTP and on HTTPS (NODE_EXTRA_CA_CERTS trusts its certificate) and
// passes the addresses and credentials in the environment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

import { gateway as moltinGateway, MemoryStorageFactory } from '@moltin/sdk';
import { authenticate as clAuthenticate } from '@commercelayer/js-auth';
import * as oidc from 'openid-client';
import { ClientCredentials } from 'simple-oauth2';
import { createRemoteJWKSet, jwtVerify, decodeJwt, importPKCS8 } from 'jose';

const require = createRequire(import.meta.url);
const { AuthenticationClient } = require('auth0');

// Each listener is its own issuer (its base URL), as RFC 8414 discovery wants.
const HTTP = process.env.WRIT_HTTP; // http://127.0.0.1:PORT
const HTTPS = process.env.WRIT_HTTPS; // https://127.0.0.1:PORT
const C = JSON.parse(process.env.WRIT_CLIENTS);
const now = () => Math.floor(Date.now() / 1000);

async function verifyJwt(token, audience, issuer) {
  const jwks = createRemoteJWKSet(new URL(`${HTTP}/.well-known/jwks.json`));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    typ: 'at+jwt',
  });
  return { payload, protectedHeader };
}

test('@moltin/sdk: client_credentials, then implicit for a public client', async () => {
  for (const [config, identifier] of [
    [{ client_id: C.conf.id, client_secret: C.conf.secret }, 'client_credentials'],
    [{ client_id: C.pub.id }, 'implicit'],
  ]) {
    const moltin = moltinGateway({
      ...config,
      host: new URL(HTTP).host,
      protocol: 'http',
      storage: new MemoryStorageFactory(),
    });
    const auth = await moltin.Authenticate();
    assert.equal(auth.identifier, identifier);
    assert.equal(auth.token_type, 'Bearer');
    assert.ok(auth.expires > now() + 3000, 'absolute expires');
    await verifyJwt(auth.access_token, HTTP, HTTP);
  }
  const bad = moltinGateway({
    client_id: C.conf.id,
    client_secret: 'writ_sk_wrong',
    host: new URL(HTTP).host,
    protocol: 'http',
    storage: new MemoryStorageFactory(),
  });
  await assert.rejects(bad.Authenticate(), (e) => e.error === 'invalid_client');
});

test('@commercelayer/js-auth: sales channel with a market scope, integration, errors', async () => {
  // The SDK builds https://auth.<domain>/oauth/token; point that at Writ.
  const realFetch = globalThis.fetch;
  globalThis.fetch = (url, init) =>
    realFetch(String(url).replace('https://auth.writ.test', HTTPS), init);
  try {
    const sales = await clAuthenticate('client_credentials', {
      clientId: C.pub.id,
      scope: 'market:1234',
      domain: 'writ.test',
    });
    assert.equal(sales.errors, undefined);
    assert.equal(sales.scope, 'market:1234');
    assert.equal(sales.tokenType, 'Bearer');
    assert.ok(sales.createdAt > 0);
    assert.ok(sales.expires instanceof Date && sales.expires > new Date());
    await verifyJwt(sales.accessToken, HTTPS, HTTPS);

    const integration = await clAuthenticate('client_credentials', {
      clientId: C.conf.id,
      clientSecret: C.conf.secret,
      domain: 'writ.test',
    });
    assert.equal(integration.scope, 'market:all');

    const denied = await clAuthenticate('client_credentials', {
      clientId: C.pub.id,
      scope: 'admin',
      domain: 'writ.test',
    });
    assert.ok(Array.isArray(denied.errors), JSON.stringify(denied));
    assert.equal(denied.errors[0].code, 'INVALID_SCOPE');
  } finally {
    globalThis.fetch = realFetch;
  }
});

test('auth0: clientCredentialsGrant over HTTPS with an audience, Auth0 claims', async () => {
  const auth0 = new AuthenticationClient({
    domain: new URL(HTTPS).host,
    clientId: C.conf.id,
    clientSecret: C.conf.secret,
  });
  const { data } = await auth0.oauth.clientCredentialsGrant({ audience: C.api });
  assert.equal(data.token_type, 'Bearer');
  assert.equal(data.expires_in, 600);
  const { payload } = await verifyJwt(data.access_token, C.api, HTTPS);
  assert.equal(payload.gty, 'client-credentials');
  assert.equal(payload.azp, C.conf.id);
  assert.equal(payload.sub, `${C.conf.id}@clients`);
  assert.equal(payload.scope, 'read:orders');

  const bad = new AuthenticationClient({
    domain: new URL(HTTPS).host,
    clientId: C.conf.id,
    clientSecret: 'writ_sk_wrong',
  });
  await assert.rejects(bad.oauth.clientCredentialsGrant({ audience: C.api }), (e) => {
    assert.equal(e.statusCode, 401);
    assert.equal(e.error, 'invalid_client');
    return true;
  });
});

test('openid-client: RFC 8414 discovery, then the client-credentials grant', async () => {
  for (const [base, options] of [
    [HTTP, { execute: [oidc.allowInsecureRequests] }],
    [HTTPS, {}],
  ]) {
    const config = await oidc.discovery(
      new URL(base),
      C.conf.id,
      C.conf.secret,
      undefined,
      { algorithm: 'oauth2', ...options },
    );
    assert.equal(config.serverMetadata().token_endpoint, `${base}/oauth/token`);
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read' });
    assert.equal(tokens.scope, 'read');
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.equal(tokens.expiresIn() > 3500, true);
  }
});

// private_key_jwt (RFC 7523 §2.2): openid-client signs the assertion with
// `aud` set to the issuer, as draft-ietf-oauth-rfc7523bis asks; no secret.
test('openid-client: private_key_jwt with ES256 and RS256 keys', async () => {
  for (const [base, options] of [
    [HTTP, { execute: [oidc.allowInsecureRequests] }],
    [HTTPS, {}],
  ]) {
    for (const [pem, alg] of [
      [C.jwt.ec_pem, 'ES256'],
      [C.jwt.rsa_pem, 'RS256'],
    ]) {
      const key = await importPKCS8(pem, alg);
      const config = await oidc.discovery(
        new URL(base),
        C.jwt.id,
        {},
        oidc.PrivateKeyJwt(key),
        { algorithm: 'oauth2', ...options },
      );
      assert.ok(
        config.serverMetadata().token_endpoint_auth_methods_supported.includes('private_key_jwt'),
      );
      const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read' });
      assert.equal(tokens.scope, 'read');
      const { payload } = await verifyJwt(tokens.access_token, base, base);
      assert.equal(payload.client_id, C.jwt.id);
    }
  }
  // The key of another client: refused as invalid_client (RFC 6749 §5.2).
  const other = await importPKCS8(C.jwt.ec_pem, 'ES256');
  const config = await oidc.discovery(new URL(HTTP), C.conf.id, {}, oidc.PrivateKeyJwt(other), {
    algorithm: 'oauth2',
    execute: [oidc.allowInsecureRequests],
  });
  await assert.rejects(oidc.clientCredentialsGrant(config, {}), (e) => {
    assert.equal(e.error, 'invalid_client');
    return true;
  });
});

test('simple-oauth2: client credentials with Basic auth, and a wrong secret', async () => {
  const client = new ClientCredentials({
    client: { id: C.conf.id, secret: C.conf.secret },
    auth: { tokenHost: HTTP, tokenPath: '/oauth/token' },
  });
  const token = await client.getToken({ scope: 'read' });
  assert.equal(token.token.scope, 'read');
  assert.equal(token.expired(), false);
  const { payload } = await verifyJwt(token.token.access_token, HTTP, HTTP);
  assert.equal(payload.client_id, C.conf.id);
  assert.ok(payload.exp - payload.iat === 3600);

  const bad = new ClientCredentials({
    client: { id: C.conf.id, secret: 'writ_sk_wrong' },
    auth: { tokenHost: HTTP, tokenPath: '/oauth/token' },
  });
  await assert.rejects(bad.getToken({}), (e) => e.output?.statusCode === 401);
});

test('jose: a token with the wrong typ or audience is refused', async () => {
  const client = new ClientCredentials({
    client: { id: C.conf.id, secret: C.conf.secret },
    auth: { tokenHost: HTTP, tokenPath: '/oauth/token' },
  });
  const token = (await client.getToken({})).token.access_token;
  assert.equal(decodeJwt(token).iss, HTTP);
  const jwks = createRemoteJWKSet(new URL(`${HTTP}/.well-known/jwks.json`));
  await jwtVerify(token, jwks, { issuer: HTTP, typ: 'at+jwt' });
  await assert.rejects(jwtVerify(token, jwks, { issuer: HTTP, typ: 'JWT' }));
  await assert.rejects(jwtVerify(token, jwks, { issuer: HTTP, audience: 'https://other/' }));
});
