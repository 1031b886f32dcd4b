// Enterprise-Managed Authorization on the stand-in IdP: RFC 8693 token exchange at the token
// endpoint minting Identity Assertion JWT Authorization Grants (ID-JAG,
// draft-ietf-oauth-identity-assertion-authz-grant; the MCP extension "Enterprise-Managed
// Authorization"), the request the MCP TypeScript SDK's `requestJwtAuthorizationGrant` sends:
//
//   grant_type=urn:ietf:params:oauth:grant-type:token-exchange
//   requested_token_type=urn:ietf:params:oauth:token-type:id-jag
//   subject_token=<the user's ID token, issued by this IdP to the requesting client>
//   subject_token_type=urn:ietf:params:oauth:token-type:id_token
//   audience=<the MCP authorization server's issuer>  resource=<the MCP server's URL>  scope=…
//   + client authentication (the requesting client's, here client_secret_post or _basic)
//
// The IdP decides, as an enterprise IdP's policy does, which authorization servers each client
// may get ID-JAGs for and under which client_id it is registered there (`ema` of the client).
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { errors } from 'oidc-provider';
import { userClaims } from './users.mjs';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ID_JAG_TYPE = 'urn:ietf:params:oauth:token-type:id-jag';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
export const ID_JAG_TYP = 'oauth-id-jag+jwt';
/** Lifetime of an ID-JAG: short, as the draft recommends (the MCP worker takes at most 300 s). */
export const ID_JAG_TTL = 300;

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const withoutSlash = (u) => String(u).replace(/\/+$/, '');

/** A compact RS256 JWS of `claims` with the IdP's signing key (a private JWK). */
function signJwt(jwk, typ, claims) {
  const header = { alg: 'RS256', typ, kid: jwk.kid };
  const input = `${b64url(header)}.${b64url(claims)}`;
  const signature = sign('sha256', Buffer.from(input), createPrivateKey({ key: jwk, format: 'jwk' }));
  return `${input}.${signature.toString('base64url')}`;
}

/**
 * Registers the token-exchange grant on `provider`. `s`: { issuer, jwks (private; the first key
 * signs), users, groupsClaim, apiScopes, emaClients: Map(clientId → { audience → client_id
 * there }) }.
 */
export function registerIdJagGrant(provider, s) {
  const { InvalidGrant, InvalidRequest, InvalidTarget, UnauthorizedClient } = errors;
  const handler = async (ctx) => {
    const { client, params } = ctx.oidc;
    const connections = s.emaClients.get(client.clientId);
    if (!connections) throw new UnauthorizedClient('this client may not request identity assertion grants');
    for (const p of ['subject_token', 'audience', 'resource']) {
      if (!params[p]) throw new InvalidRequest(`missing required parameter '${p}'`);
    }
    if (params.requested_token_type !== ID_JAG_TYPE) {
      throw new InvalidRequest(`requested_token_type must be ${ID_JAG_TYPE}`);
    }
    if (params.subject_token_type !== ID_TOKEN_TYPE) {
      throw new InvalidRequest(`subject_token_type must be ${ID_TOKEN_TYPE}`);
    }
    // The policy: only authorization servers this client has a connection to.
    const audience = Object.keys(connections).find((a) => withoutSlash(a) === withoutSlash(params.audience));
    if (!audience) throw new InvalidTarget('no enterprise connection of this client to that audience');
    const resource = URL.parse(params.resource);
    if (!resource || !['http:', 'https:'].includes(resource.protocol) || resource.hash) {
      throw new InvalidTarget('resource must be an absolute http(s) URL');
    }
    // The subject token: an ID token of this IdP, issued to this very client, not expired.
    let payload;
    try {
      ({ payload } = await provider.IdToken.validate(params.subject_token, client));
    } catch (err) {
      throw new InvalidGrant(`subject_token is not an ID token issued to this client: ${err.message}`);
    }
    const now = Math.floor(Date.now() / 1000);
    if (typeof payload.exp !== 'number' || payload.exp <= now) throw new InvalidGrant('subject_token has expired');
    const user = s.users.findBySub(payload.sub);
    if (!user) throw new InvalidGrant('subject_token names an unknown user');
    // Scopes: those asked for that the connected resource knows (unknown ones dropped).
    const scope = String(params.scope ?? '').split(' ').filter((x) => s.apiScopes.includes(x));
    const claims = {
      ...userClaims(user, s.groupsClaim),
      iss: s.issuer,
      sub: user.sub,
      aud: audience,
      client_id: connections[audience],
      resource: params.resource,
      jti: randomUUID(),
      iat: now,
      exp: now + ID_JAG_TTL,
      ...(scope.length ? { scope: [...new Set(scope)].join(' ') } : {}),
      ...(payload.auth_time ? { auth_time: payload.auth_time } : {}),
    };
    ctx.body = {
      access_token: signJwt(s.jwks.keys[0], ID_JAG_TYP, claims),
      issued_token_type: ID_JAG_TYPE,
      token_type: 'N_A',
      expires_in: ID_JAG_TTL,
      ...(claims.scope ? { scope: claims.scope } : {}),
    };
  };
  provider.registerGrantType(TOKEN_EXCHANGE, handler, [
    'audience', 'resource', 'scope', 'subject_token', 'subject_token_type', 'requested_token_type',
    'actor_token', 'actor_token_type',
  ]);
}

/**
 * Parses `IDP_EMA_CLIENTS`: JSON `[{ "client_id", "client_secret", "redirect_uris": [...],
 * "connections": { "<MCP authorization server issuer>": "<client_id there>" } }]`.
 */
export function emaClientsFromEnv(value) {
  if (!value) return [];
  let list;
  try { list = JSON.parse(value); } catch { list = null; }
  const ok = Array.isArray(list) && list.every((c) => c && typeof c.client_id === 'string' && c.client_id
    && typeof c.client_secret === 'string' && c.client_secret && Array.isArray(c.redirect_uris)
    && c.connections && typeof c.connections === 'object'
    && Object.values(c.connections).every((v) => typeof v === 'string' && v));
  if (!ok) {
    throw new Error('IDP_EMA_CLIENTS must be JSON: [{"client_id","client_secret","redirect_uris":[…],'
      + '"connections":{"<authorization server issuer>":"<client_id there>"}}]');
  }
  return list;
}
