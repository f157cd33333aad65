// node-oidc-provider configured for the benchmark: one confidential client
// (client_secret_basic), the client_credentials grant, opaque tokens by
// default and ES256 JWTs through a resource indicator (RFC 8707).
// Usage: node oidc-provider.mjs PORT CLIENT_ID CLIENT_SECRET
import Provider from 'oidc-provider';
import { generateKeyPair, exportJWK } from 'jose';

const [port, clientId, clientSecret] = process.argv.slice(2);
const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'bench' };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
    scope: 'read',
  }],
  jwks: { keys: [jwk] },
  scopes: ['read'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'read',
        audience: resource,
        accessTokenTTL: 3600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  ttl: { ClientCredentials: 3600 },
});
provider.listen(Number(port), '127.0.0.1', () => console.log(`listening on ${port}`));
