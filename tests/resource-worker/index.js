// A resource server in another worker, as the oauth-provider crate's ResourceServer behaves:
// its RFC 9728 metadata, the 401 challenge naming it, and token validation for exactly its
// resource by asking the authorization server over the AUTH_SERVER service binding.
// Settings: RESOURCE (its canonical URL), AUTH_ISSUER, REQUIRED_SCOPES, VALIDATION_SECRET.
const PRM = '/.well-known/oauth-protected-resource';

function within(path, prefix) {
  prefix = prefix.replace(/\/+$/, '');
  return prefix === '' || path === prefix || path.startsWith(`${prefix}/`);
}

async function validate(env, token, secret = env.VALIDATION_SECRET) {
  // Any host: the binding is not a URL on the internet. The path is the configured one.
  const res = await env.AUTH_SERVER.fetch('https://auth.internal/internal/oauth/validate', {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ resource: env.RESOURCE, token }),
  });
  return { status: res.status, body: res.headers.get('content-type')?.includes('json') ? await res.json() : null };
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const resource = new URL(env.RESOURCE);
    const scopes = (env.REQUIRED_SCOPES ?? '').split(/\s+/).filter(Boolean);
    const metadataUrl = `${url.origin}${PRM}${resource.pathname}`;
    if (url.pathname === `${PRM}${resource.pathname}`) {
      return Response.json({
        resource: env.RESOURCE, authorization_servers: [env.AUTH_ISSUER],
        scopes_supported: scopes, bearer_methods_supported: ['header'], resource_name: 'Test resource',
      });
    }
    // Test hook: a binding request carrying the wrong secret (what the AS answers).
    if (url.pathname === '/__wrong-secret') {
      const { status } = await validate(env, url.searchParams.get('token') ?? 'x:y:z', 'not-the-secret-not-the-secret-not-the');
      return Response.json({ status });
    }
    if (!within(url.pathname, resource.pathname)) return new Response('not found', { status: 404 });
    const challenge = (extra = '') => new Response(JSON.stringify({ error: 'invalid_token' }), {
      status: 401,
      headers: {
        'content-type': 'application/json',
        'www-authenticate': `Bearer realm="OAuth", resource_metadata="${metadataUrl}"${scopes.length ? `, scope="${scopes.join(' ')}"` : ''}${extra}`,
      },
    });
    const m = /^Bearer\s+(.+)$/i.exec(request.headers.get('authorization') ?? '');
    if (!m) return challenge();
    const { status, body } = await validate(env, m[1].trim());
    if (status !== 200) return Response.json({ error: 'temporarily_unavailable', status }, { status: 503 });
    if (!body.active) return challenge(', error="invalid_token"');
    // The host enforces audience and expiry too.
    const audOk = body.aud.length === 0 || body.aud.some((a) => {
      const u = new URL(a);
      return u.origin === url.origin && within(url.pathname, u.pathname);
    });
    if (!audOk || body.exp * 1000 <= Date.now()) return challenge(', error="invalid_token"');
    return Response.json({
      user_id: body.user_id, client_id: body.client_id, scope: body.scope, aud: body.aud,
      // The props are what the AS gives this resource of the grant's: say only whether an
      // upstream token came along, and which members did.
      has_upstream_token: typeof (body.props?.subjectToken ?? body.props?.subject_token) === 'string',
      username: body.props?.claims?.preferred_username ?? null,
      props_keys: Object.keys(body.props ?? {}).sort(),
    });
  },
};
