// The benchmark's floor: the least a worker can do per request (a small JSON body). Its CPU per
// request, measured like the real workers' in the same run, is the unit the benchmark reports in.
//
// `/kv` is a second yardstick: the local KV work of one refresh_token grant and nothing else (read
// the client, read the grant, write the grant and a new access token, with the record sizes the
// MCP worker's stack stores), so the share of a refresh that is the local KV simulator's, which
// runs in the same workerd and which production's CPU time does not include, can be told apart.
const SIZES = { client: 315, grant: 2334, token: 1928 };
const filler = (n) => 'x'.repeat(n);
let tokens = 0;

export default {
  async fetch(req, env) {
    if (!req.url.endsWith('/kv')) return Response.json({ ok: true, name: 'floor' });
    const client = await env.KV.get('client:bench');
    if (client === null) await env.KV.put('client:bench', filler(SIZES.client));
    const grant = await env.KV.get('grant:bench:grant');
    await Promise.all([
      env.KV.put('grant:bench:grant', grant ?? filler(SIZES.grant), { expirationTtl: 30 * 86400 }),
      env.KV.put(`token:bench:grant:${++tokens}`, filler(SIZES.token), { expirationTtl: 3600 }),
    ]);
    return Response.json({ ok: true, name: 'floor', kv: 4 });
  },
};
