// The MCP servers of the downstream stand-in (TypeScript SDK 1.x McpServer), one per path. Each
// request gets a fresh server and a stateless Streamable HTTP transport; the bearer middleware
// has put the verified token's AuthInfo on `req.auth`, which the SDK hands the tools as
// `extra.authInfo` (user in `extra.user`, resource in `resource`). Tools never echo the token.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import * as z from 'zod/v4';

const text = (value) => ({ content: [{ type: 'text', text: typeof value === 'string' ? value : JSON.stringify(value) }] });
const userOf = (extra) => extra.authInfo?.extra?.user;

/** The MCP server at /mcp: whoami, notes_add, notes_list. */
export function notesServer(store) {
  const server = new McpServer({ name: 'downstream-notes', version: '1.0.0' });
  server.registerTool('whoami', {
    description: 'Who the downstream server thinks you are: its own user name, and the resource your token was issued for.',
    inputSchema: {},
  }, async (_args, extra) => text({
    user: userOf(extra), resource: extra.authInfo?.resource?.href, client_id: extra.authInfo?.clientId,
    scopes: extra.authInfo?.scopes ?? [], server: 'downstream-notes',
  }));
  server.registerTool('notes_add', {
    description: 'Adds a note to your downstream notes.',
    inputSchema: { text: z.string().min(1).max(2000) },
  }, async ({ text: note }, extra) => text({ user: userOf(extra), count: store.addNote(userOf(extra), note) }));
  server.registerTool('notes_list', {
    description: 'Lists your downstream notes.',
    inputSchema: {},
  }, async (_args, extra) => text({ user: userOf(extra), notes: store.listNotes(userOf(extra)) }));
  return server;
}

/** The MCP server at /v1/mcp, a separate protected resource on the same origin. */
export function v1Server() {
  const server = new McpServer({ name: 'downstream-v1', version: '1.0.0' });
  server.registerTool('v1_echo', {
    description: 'Echoes the text back, with the downstream user it was called as (the /v1/mcp resource).',
    inputSchema: { text: z.string().max(2000) },
  }, async ({ text: said }, extra) => text({ user: userOf(extra), resource: extra.authInfo?.resource?.href, echo: said, server: 'downstream-v1' }));
  return server;
}

/** The MCP server at /public/mcp: no authorization at all. */
export function publicServer() {
  const server = new McpServer({ name: 'downstream-public', version: '1.0.0' });
  server.registerTool('public_time', {
    description: 'The current time at the downstream server (needs no sign-in).',
    inputSchema: {},
  }, async () => text({ now: new Date().toISOString(), server: 'downstream-public' }));
  return server;
}

/** An Express handler serving the MCP server `make()` builds, statelessly (POST only). */
export function mcpHandler(make) {
  return async (req, res) => {
    if (req.method !== 'POST') {
      res.set('Allow', 'POST').status(405).json({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Method not allowed: this server is stateless (POST only)' } });
      return;
    }
    const server = make();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => { transport.close().catch(() => {}); server.close().catch(() => {}); });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  };
}
