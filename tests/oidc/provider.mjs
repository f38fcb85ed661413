// A real OpenID Connect provider (the npm package oidc-provider) for the test suite.
//
//   node provider.mjs PORT
//
// Listens on http://127.0.0.1:PORT (which is also its issuer identifier) and prints
// "ready <issuer>" once it answers. What it offers the tests:
//
// * Resource indicators (RFC 8707): a token requested for `resource=<RESOURCE_JWT>` (or any
//   https://*.commentguard.test resource) is an RFC 9068 JWT access token (`typ: at+jwt`,
//   RS256) whose `aud` is that resource; one for a resource whose host starts with
//   `opaque` is an opaque token, to be checked by introspection.
// * `cg-backend` / `cg-backend-secret`: a confidential client for client credentials and
//   for introspection (client_secret_basic). Any scope of RESOURCE_SCOPES may be asked
//   for, including the role scopes `commentguard:<site>:<role>`.
// * `cg-blog`: a public client for authorization code + PKCE (S256), redirecting to
//   REDIRECT_URI. The development login pages accept any login (it becomes `sub`) and
//   any password; access tokens carry the account's name and email.
// * Dynamic client registration (RFC 7591) at `/reg`, open to anyone: the web UI tests
//   register a confidential client for their live server's `/ui/callback`.
// * Roles: `PUT /_test/accounts/<login>` with `{"roles": [...]}` gives that account a
//   `roles` claim (scope `profile`), served by the userinfo endpoint as providers do.
// * Key rotation: `POST /_test/rotate` makes a new RS256 key, signs with it from then on
//   and publishes it first, followed by the previous key. `GET /_test/stats` tells how
//   often `/jwks` was fetched, how many introspection requests were made, and the
//   kids published, newest first.
// * Forgery: `POST /_test/sign` with `{"header": {...}, "payload": {...}}` answers
//   `{"token": ...}`, the JWS signed RS256 with the current signing key. The header is
//   used as given (no kid is added), so tests can build tokens the provider itself would
//   never issue: expired, not yet valid, from another issuer, naming an unknown kid.
//
// Everything is in memory; nothing here is fit for anything but tests.

import { createPrivateKey, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const port = Number.parseInt(process.argv[2] ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node provider.mjs PORT');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const SITES = ['blog', 'other'];
const ROLES = ['moderator', 'operator', 'admin'];
const RESOURCE_SCOPES = [
  'comments',
  ...SITES.flatMap((site) => ROLES.map((role) => `commentguard:${site}:${role}`)),
].join(' ');

function newSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

function isResource(indicator) {
  try {
    const url = new URL(indicator);
    return url.protocol === 'https:' && url.hostname.endsWith('.commentguard.test');
  } catch {
    return false;
  }
}

function configuration(keys) {
  return {
    clients: [
      {
        client_id: 'cg-backend',
        client_secret: 'cg-backend-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: 'cg-blog',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: [REDIRECT_URI],
        token_endpoint_auth_method: 'none',
      },
    ],
    jwks: { keys },
    // Fixed, so that sessions survive a rotation (which builds a new Provider).
    cookies: { keys: ['commentguard-test-cookie-key'] },
    claims: {
      openid: ['sub'],
      profile: ['name', 'roles'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          const claims = { sub: id, name: `User ${id}`, email: `${id}@example.org`, email_verified: true };
          if (accountRoles.has(id)) claims.roles = accountRoles.get(id);
          return claims;
        },
      };
    },
    async extraTokenClaims(_ctx, token) {
      // Access tokens for a signed-in reader carry who they are, as many providers do.
      if (!token.accountId) return undefined;
      return {
        name: `User ${token.accountId}`,
        email: `${token.accountId}@example.org`,
        email_verified: true,
      };
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      registration: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: () => true,
        getResourceServerInfo(_ctx, indicator) {
          if (!isResource(indicator)) {
            throw new Provider.errors.InvalidTarget();
          }
          const opaque = new URL(indicator).hostname.startsWith('opaque');
          return {
            scope: RESOURCE_SCOPES,
            audience: indicator,
            accessTokenTTL: 300,
            accessTokenFormat: opaque ? 'opaque' : 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    pkce: { required: () => true },
    ttl: {
      AccessToken: 300,
      AuthorizationCode: 60,
      ClientCredentials: 300,
      IdToken: 300,
      Grant: 600,
      Interaction: 600,
      Session: 600,
    },
  };
}

// Newest first: oidc-provider signs with the first key that fits the algorithm.
let keys = [newSigningKey()];
let handler = new Provider(issuer, configuration(keys)).callback();
let jwksFetches = 0;
// Roles by account id (PUT /_test/accounts/<id>), kept across rotations.
const accountRoles = new Map();
let introspections = 0;

function b64url(value) {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

function signWithCurrentKey({ header, payload }) {
  const input = `${b64url(header)}.${b64url(payload)}`;
  const key = createPrivateKey({ key: keys[0], format: 'jwk' });
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        reject(error);
      }
    });
    req.on('error', reject);
  });
}

function json(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = createServer((req, res) => {
  const path = new URL(req.url, issuer).pathname;
  if (path === '/_test/rotate' && req.method === 'POST') {
    // The memory adapter's store is module-wide, so grants and opaque tokens survive.
    keys = [newSigningKey(), keys[0]];
    handler = new Provider(issuer, configuration(keys)).callback();
    json(res, 200, { kids: keys.map((k) => k.kid) });
    return;
  }
  if (path === '/_test/sign' && req.method === 'POST') {
    readJson(req).then(
      (body) => json(res, 200, { token: signWithCurrentKey(body) }),
      (error) => json(res, 400, { error: String(error) }),
    );
    return;
  }
  if (path.startsWith('/_test/accounts/') && req.method === 'PUT') {
    const account = decodeURIComponent(path.slice('/_test/accounts/'.length));
    readJson(req).then(
      (body) => {
        accountRoles.set(account, Array.isArray(body.roles) ? body.roles.map(String) : []);
        json(res, 200, { account, roles: accountRoles.get(account) });
      },
      (error) => json(res, 400, { error: String(error) }),
    );
    return;
  }
  if (path === '/_test/stats') {
    json(res, 200, {
      jwks_fetches: jwksFetches,
      introspections,
      kids: keys.map((k) => k.kid),
    });
    return;
  }
  if (path === '/jwks') {
    jwksFetches += 1;
  } else if (path === '/token/introspection') {
    introspections += 1;
  }
  handler(req, res);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
