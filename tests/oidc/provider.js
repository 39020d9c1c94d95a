// A real OpenID Connect provider for Steward's single sign-on tests: npm `oidc-provider` on
// 127.0.0.1, with its development login and consent forms, which a test drives over plain HTTP.
//
//   node provider.js PORT [--id-token-ttl=SECONDS] [--kid=KEY_ID]
//
// PORT 0 picks a free port. The first line on stdout is `{"issuer": "http://127.0.0.1:PORT"}`,
// printed once the provider answers. Without --kid it signs with oidc-provider's built-in
// development key (the same in every instance, so two instances differ only by issuer); with
// --kid it signs with a fresh RSA key of that id (a key rotation, seen from a relying party).
// Two clients:
//   - `steward`: confidential (client_secret_basic), authorization code with PKCE required, a
//     native application so that its loopback redirect `http://127.0.0.1/auth/callback` matches
//     whatever port the test's Steward listens on (RFC 8252);
//   - `pipeline` (and `pipeline-2`): client_credentials, whose access tokens are JWTs for the
//     resource (audience) the request names (resource indicators, RFC 8707).
// Accounts are whatever login the form is given (any password); their `groups` claim and
// `preferred_username` come from a table the test sets through the `/test/…` routes below,
// which are not part of the provider:
//   PUT /test/accounts/ID   {"groups": [...], "preferred_username": "..."}
//   PUT /test/clients/ID    {"groups": [...]}   (the groups a client's access tokens carry)
//   GET /test/stats         {"jwks_requests": N}

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { Provider } from 'oidc-provider';

// stdout carries the one line the test reads; oidc-provider's own notices go to stderr, so a
// test that stopped reading stdout cannot make the provider fail on a closed pipe.
console.log = console.error;
console.info = console.error;
process.stdout.on('error', () => {});

const args = process.argv.slice(2);
const port = Number(args.find((a) => !a.startsWith('--')) ?? 0);
const option = (name, fallback) => {
  const found = args.find((a) => a.startsWith(`--${name}=`));
  return found ? Number(found.split('=')[1]) : fallback;
};
const idTokenTtl = option('id-token-ttl', 3600);
const kid = args.find((a) => a.startsWith('--kid='))?.split('=')[1];

const accounts = new Map();
const clientGroups = new Map([['pipeline', ['ml-pipelines']], ['pipeline-2', []]]);
let jwksRequests = 0;

const configuration = {
  clients: [
    {
      client_id: 'steward',
      client_secret: 'steward-test-secret',
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/auth/callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    ...['pipeline', 'pipeline-2'].map((id) => ({
      client_id: id,
      client_secret: `${id}-test-secret`,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
  ],
  pkce: { required: () => true },
  // Claims of the granted scopes go into the ID token too (Steward reads the groups there).
  conformIdTokenClaims: false,
  scopes: ['openid', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    groups: ['groups'],
  },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        const account = accounts.get(id) ?? {};
        return {
          sub: id,
          preferred_username: account.preferred_username ?? id,
          name: id,
          groups: account.groups ?? [],
        };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: () => false,
      getResourceServerInfo: (_ctx, resource) => ({
        scope: 'api',
        audience: resource,
        accessTokenTTL: 600,
        accessTokenFormat: 'jwt',
      }),
    },
  },
  async extraTokenClaims(_ctx, token) {
    if (token.kind === 'ClientCredentials') {
      return { groups: clientGroups.get(token.clientId) ?? [] };
    }
    return undefined;
  },
  ttl: {
    IdToken: idTokenTtl,
    AccessToken: 600,
    ClientCredentials: 600,
  },
  cookies: { keys: ['steward-test-cookie-key'] },
};

if (kid) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  configuration.jwks = {
    keys: [{ ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }],
  };
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      try { resolve(body ? JSON.parse(body) : {}); } catch (e) { reject(e); }
    });
  });
}

async function testRoute(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const send = (status, value) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  const account = url.pathname.match(/^\/test\/accounts\/([^/]+)$/);
  const client = url.pathname.match(/^\/test\/clients\/([^/]+)$/);
  if (req.method === 'PUT' && account) {
    const body = await readJson(req);
    accounts.set(decodeURIComponent(account[1]), body);
    return send(200, body);
  }
  if (req.method === 'PUT' && client) {
    const body = await readJson(req);
    clientGroups.set(decodeURIComponent(client[1]), body.groups ?? []);
    return send(200, body);
  }
  if (req.method === 'GET' && url.pathname === '/test/stats') {
    return send(200, { jwks_requests: jwksRequests });
  }
  return send(404, { error: 'no such test route' });
}

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.url.startsWith('/test/')) {
      testRoute(req, res).catch((e) => { res.writeHead(400); res.end(String(e)); });
      return;
    }
    if (req.url.startsWith('/jwks')) jwksRequests += 1;
    callback(req, res);
  });
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});
