// The oidc-provider configuration that makes the stand-in behave like a PingOne environment:
// PingOne's endpoint names under `/as`, one confidential client for the MCP worker, PKCE
// required, RS256 JWT access tokens for the Todo API resource, and PingOne's scopes.
import Provider, { errors } from 'oidc-provider';
import { registerIdJagGrant, TOKEN_EXCHANGE } from './id-jag.mjs';
import { errorPage } from './pages.mjs';
import { adapterFor } from './store.mjs';
import { userClaims } from './users.mjs';

export const API_SCOPES = ['todo_api:read', 'todo_api:write'];

/** PingOne's endpoint paths, relative to the issuer. */
export const ROUTES = {
  authorization: '/authorize',
  token: '/token',
  userinfo: '/userinfo',
  jwks: '/jwks',
  revocation: '/revoke',
  introspection: '/introspect',
  end_session: '/signoff',
};

function sameResource(a, b) {
  return URL.parse(a)?.href === URL.parse(b)?.href;
}

/**
 * A Provider for `settings`: { issuer, issuerPath, jwks (private), client: { clientId,
 * clientSecret, redirectUris }, users, apiIdentifier, accessTokenTtl, refreshTokenTtl,
 * cookieKeys, store, clockTolerance, groupsClaim, emaClients (see id-jag.mjs; each also signs
 * users in with the authorization code flow, for the ID token it exchanges) }.
 */
export function createProvider(s) {
  const resourceServer = {
    scope: API_SCOPES.join(' '),
    audience: s.apiIdentifier,
    accessTokenTTL: s.accessTokenTtl,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  };

  const provider = new Provider(s.issuer, {
    adapter: adapterFor(s.store),
    jwks: s.jwks,
    clients: [{
      client_id: s.client.clientId,
      client_secret: s.client.clientSecret,
      client_name: 'MCP worker',
      redirect_uris: s.client.redirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
      scope: 'openid profile email offline_access',
    }, ...(s.emaClients ?? []).map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      client_name: `Enterprise client ${c.client_id}`,
      redirect_uris: c.redirect_uris,
      grant_types: ['authorization_code', TOKEN_EXCHANGE],
      response_types: ['code'],
      // The MCP SDK's ID-JAG request sends client_id and client_secret in the form.
      token_endpoint_auth_method: 'client_secret_post',
      id_token_signed_response_alg: 'RS256',
      scope: 'openid profile email',
    }))],
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    // Authorization code flow only, as the PingOne application is configured.
    responseTypes: ['code'],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
    claims: {
      // The groups claim rides with openid: always there for users who have groups.
      openid: ['sub', s.groupsClaim],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    // The ID token carries the profile claims even though an access token is issued too.
    conformIdTokenClaims: false,
    async findAccount(_ctx, sub) {
      const user = s.users.findBySub(sub);
      return user ? { accountId: sub, claims: () => userClaims(user, s.groupsClaim) } : undefined;
    },
    routes: ROUTES,
    pkce: { required: () => true },
    clockTolerance: s.clockTolerance,
    cookies: {
      keys: s.cookieKeys,
      // Distinct names: the MCP worker shares the host (cookies ignore ports).
      names: { session: 'idp_session', interaction: 'idp_interaction', resume: 'idp_interaction_resume' },
    },
    interactions: {
      url: (_ctx, interaction) => `${s.issuerPath}/interaction/${interaction.uid}`,
    },
    // PingOne issues refresh tokens whenever the app has the refresh_token grant, without
    // offline_access, and they outlive the browser session.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // PingOne rotates the refresh token on every use; presenting a used one again is
    // refused and revokes the whole grant (its replay protection, on by default).
    rotateRefreshToken: () => true,
    expiresWithSession: async () => false,
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true },
      revocation: { enabled: true },
      // Served by the IdP's own handler (see userinfo.mjs); kept enabled so discovery lists it.
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // PingOne binds the application to its resource: a request without `resource`
        // gets a token for the Todo API, exactly as if it had named it.
        defaultResource: async (_ctx, _client, oneOf) => {
          if (!oneOf) return s.apiIdentifier;
          return oneOf.find((r) => sameResource(r, s.apiIdentifier)) ?? oneOf[0];
        },
        // The code and refresh token keep the audience they were granted for.
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          if (sameResource(indicator, s.apiIdentifier)) return resourceServer;
          throw new errors.InvalidTarget(`unknown resource; this IdP only issues tokens for ${s.apiIdentifier}`);
        },
      },
    },
    ttl: {
      AccessToken: s.accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      RefreshToken: s.refreshTokenTtl,
      Session: 14 * 24 * 3600,
      Grant: 365 * 24 * 3600,
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = errorPage('Sign-in error', out.error_description ? `${out.error}: ${out.error_description}` : out.error);
    },
  });
  if (s.emaClients?.length) {
    registerIdJagGrant(provider, {
      issuer: s.issuer, jwks: s.jwks, users: s.users, groupsClaim: s.groupsClaim, apiScopes: API_SCOPES,
      emaClients: new Map(s.emaClients.map((c) => [c.client_id, c.connections])),
    });
  }
  return provider;
}
