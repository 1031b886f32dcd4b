// `{issuer}/userinfo` the way PingOne serves it: it accepts the resource-audienced JWT access
// token the client got for the API (oidc-provider's own userinfo only accepts tokens audienced
// to itself). The token must be an access token (`typ: at+jwt`) signed by one of this IdP's
// keys, issued by it, and unexpired; the answer is the user's OpenID claims.
import { createLocalJWKSet, jwtVerify } from 'jose';
import { userClaims } from './users.mjs';

function send(res, status, body, headers = {}) {
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    pragma: 'no-cache',
    ...headers,
  });
  res.end(JSON.stringify(body));
}

function challenge(res, error, description) {
  // RFC 6750 §3.1: no error code when the request carried no token at all.
  const value = error
    ? `Bearer realm="userinfo", error="${error}", error_description="${description}"`
    : 'Bearer realm="userinfo"';
  send(res, 401, error ? { error, error_description: description } : { error: 'invalid_request', error_description: description }, {
    'www-authenticate': value,
  });
}

function bearerToken(req) {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)$/i.exec(header.trim());
  return match ? match[1] : null;
}

/**
 * Handles GET/POST `{issuer}/userinfo`. `ctx`: { issuer, publicJwks() -> JWKS, users,
 * clockTolerance (seconds), groupsClaim }.
 */
export async function handleUserinfo(req, res, { issuer, publicJwks, users, clockTolerance, groupsClaim }) {
  if (req.method === 'OPTIONS') {
    res.writeHead(204, {
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'GET, POST',
      'access-control-allow-headers': 'authorization',
    });
    res.end();
    return;
  }
  res.setHeader('access-control-allow-origin', '*');
  if (req.method !== 'GET' && req.method !== 'POST') {
    send(res, 405, { error: 'invalid_request', error_description: 'use GET or POST' }, { allow: 'GET, POST' });
    return;
  }
  const token = bearerToken(req);
  if (!token) {
    challenge(res, null, 'no access token in the Authorization header');
    return;
  }
  let payload;
  try {
    ({ payload } = await jwtVerify(token, createLocalJWKSet(publicJwks()), {
      issuer,
      algorithms: ['RS256'],
      typ: 'at+jwt',
      clockTolerance,
      requiredClaims: ['sub', 'exp'],
    }));
  } catch {
    challenge(res, 'invalid_token', 'the access token is invalid or expired');
    return;
  }
  const user = users.findBySub(payload.sub);
  if (!user) {
    challenge(res, 'invalid_token', 'the access token names no known user');
    return;
  }
  send(res, 200, userClaims(user, groupsClaim));
}
