// HTML of the stand-in IdP: a sign-in form and an error page, both clearly labelled as a
// development identity provider so nobody mistakes them for PingOne.

export function escapeHtml(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;',
  })[c]);
}

function layout(title, body) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)} · Development identity provider</title>
<style>
  body { font-family: system-ui, sans-serif; background: #f4f4f5; margin: 0; color: #18181b; }
  .banner { background: #b45309; color: #fff; padding: .6rem 1rem; text-align: center; font-weight: 600; }
  main { max-width: 24rem; margin: 3rem auto; background: #fff; padding: 2rem; border-radius: .5rem;
         box-shadow: 0 1px 3px rgba(0,0,0,.15); }
  h1 { font-size: 1.3rem; margin-top: 0; }
  label { display: block; margin: 1rem 0 .3rem; font-weight: 600; }
  input[type=text], input[type=password] { width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; }
  .actions { display: flex; gap: .5rem; margin-top: 1.5rem; }
  button { padding: .55rem 1.1rem; font-size: 1rem; cursor: pointer; }
  .error { background: #fee2e2; color: #991b1b; padding: .6rem; border-radius: .3rem; }
  .hint { color: #52525b; font-size: .85rem; }
  code { background: #f4f4f5; padding: 0 .2rem; }
</style>
</head>
<body>
<div class="banner">Development identity provider — not PingOne</div>
<main>
${body}
</main>
</body>
</html>`;
}

/**
 * The sign-in form of interaction `uid`. `error` is shown above the form; `usernames` are
 * listed as a hint (this IdP only ever holds test users).
 */
export function loginPage({ uid, clientId, scope, error, username, usernames, actionBase }) {
  const action = `${actionBase}/${encodeURIComponent(uid)}`;
  return layout('Sign in', `<h1>Sign in</h1>
<p class="hint">Application <code>${escapeHtml(clientId)}</code> asks for: <code>${escapeHtml(scope)}</code></p>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${escapeHtml(`${action}/login`)}" autocomplete="off">
  <label for="username">Username</label>
  <input id="username" type="text" name="username" value="${escapeHtml(username)}" required autofocus>
  <label for="password">Password</label>
  <input id="password" type="password" name="password" required>
  <div class="actions">
    <button type="submit">Sign in</button>
  </div>
</form>
<form method="post" action="${escapeHtml(`${action}/abort`)}">
  <div class="actions"><button type="submit" name="cancel" value="cancel">Cancel</button></div>
</form>
<p class="hint">Test users: ${usernames.map((u) => `<code>${escapeHtml(u)}</code>`).join(', ')}</p>`);
}

export function errorPage(title, message) {
  return layout(title, `<h1>${escapeHtml(title)}</h1>
<p class="error" role="alert">${escapeHtml(message)}</p>
<p class="hint">Start the sign-in again from the application.</p>`);
}
