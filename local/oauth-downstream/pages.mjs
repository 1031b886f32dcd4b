// The downstream authorization server's sign-in + consent page. Stable ids and names for tests:
// form#consent (POST /consent), input#username [name=username], input#password [name=password],
// button#approve [name=action value=approve], button#deny [name=action value=deny], p#error.
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

export function consentPage({ requestId, client, resource, scopes, redirectUri, users, passwordHint = false, error, username = '' }) {
  const name = client.client_name || client.client_id;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Downstream sign-in — authorize ${esc(name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.3rem}code{background:#f3f3f3;padding:0 .2rem}label{display:block;margin:.6rem 0 .2rem}
input{width:100%;padding:.4rem;box-sizing:border-box}.buttons{margin-top:1rem;display:flex;gap:.6rem}
button{padding:.5rem 1.2rem}#error{color:#b00}.hint{color:#666;font-size:.85rem}</style></head>
<body>
<h1>Downstream Notes — sign in and authorize</h1>
<p><strong>${esc(name)}</strong> wants to use the Downstream Notes MCP server
(<code>${esc(resource)}</code>) on your behalf${scopes?.length ? ` with scopes <code>${esc(scopes.join(' '))}</code>` : ''}.</p>
<p class="hint">You will be sent back to <code>${esc(new URL(redirectUri).origin)}</code>.
This is the local stand-in for a third-party MCP server's own authorization server; its users are
${users.map((u) => `<code>${esc(u)}</code>`).join(', ')}${passwordHint ? ' (password: <code>&lt;name&gt;-password</code>)' : ''}.</p>
${error ? `<p id="error" role="alert">${esc(error)}</p>` : ''}
<form id="consent" method="post" action="/consent">
<input type="hidden" name="request_id" value="${esc(requestId)}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" value="${esc(username)}" list="known-users">
<datalist id="known-users">${users.map((u) => `<option value="${esc(u)}">`).join('')}</datalist>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
<div class="buttons">
<button id="approve" type="submit" name="action" value="approve">Approve</button>
<button id="deny" type="submit" name="action" value="deny" formnovalidate>Deny</button>
</div>
</form>
</body></html>`;
}

export function messagePage(title, text) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto"><h1>${esc(title)}</h1><p id="message">${esc(text)}</p></body></html>`;
}
