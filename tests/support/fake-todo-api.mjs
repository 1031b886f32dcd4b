// A tiny stand-in for the Todo API, for failure tests: it answers the same
// contract (GET/POST /api/todos, PATCH/DELETE /api/todos/:id, bearer token
// required) from memory, or misbehaves on demand: `api.mode = 'ok' | '500' |
// 'hang' | '401' | '403'`. `api.requests` records what it received.
import { createServer } from 'node:http';

export async function startFakeTodoApi({ port = 0 } = {}) {
  const lists = new Map();
  let next = 1;
  const api = { mode: 'ok', requests: [], url: '', close: null };
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    api.requests.push({ method: req.method, url: req.url, authorization: req.headers.authorization, body });
    const send = (status, json) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    };
    if (api.mode === 'hang') return; // never answers
    if (api.mode === '500') return send(500, { error: 'server_error', error_description: 'boom' });
    if (api.mode === '401') return send(401, { error: 'invalid_token', error_description: 'expired' });
    if (api.mode === '403') return send(403, { error: 'insufficient_scope', error_description: 'requires todo_api:write' });
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token) return send(401, { error: 'invalid_token' });
    const list = lists.get(token) ?? [];
    lists.set(token, list);
    const [, id] = /^\/api\/todos(?:\/([^/?]+))?/.exec(req.url) ?? [];
    const json = body ? JSON.parse(body) : {};
    if (req.method === 'GET' && !id) return send(200, { todos: list });
    if (req.method === 'POST' && !id) {
      list.push({ id: `f${next++}`, text: json.todoText, completed: false });
      return send(200, { todos: list });
    }
    const todo = list.find((t) => t.id === decodeURIComponent(id ?? ''));
    if (!todo) return send(404, { error: 'not_found', error_description: 'no such todo' });
    if (req.method === 'PATCH') todo.completed = json.completed;
    else if (req.method === 'DELETE') list.splice(list.indexOf(todo), 1);
    return send(200, { todos: list });
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  api.url = `http://127.0.0.1:${server.address().port}`;
  api.close = () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); });
  return api;
}
