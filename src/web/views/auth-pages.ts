/** The two pages shown before login: first-start setup and login */
import { html } from 'hono/html';
import { csrfField, page, pathCode, type Html } from './layout.js';

interface AuthPageOptions {
  hostname: string;
  version: string;
  csrf: string;
  error?: string | undefined;
}

const problem = (error: string | undefined): Html =>
  error ? html`<div class="notice error" role="alert">${error}</div>` : html``;

export function setupPage(options: AuthPageOptions & { tokenFile: string }): Html {
  return page(
    { title: 'First start', hostname: options.hostname, version: options.version },
    html`<div class="login card"><h1>Welcome to edge-relay</h1>
<p>Choose the admin password for this page. To prove you run this box, enter the <strong>setup token</strong>:
it is printed in the service log (line "Admin password not set") and stored in ${pathCode(options.tokenFile)}.</p>
${problem(options.error)}
<form method="post" action="/setup" class="stack">${csrfField(options.csrf)}
<label for="token">Setup token</label><input type="text" id="token" name="token" autocomplete="off" required>
<label for="password">New admin password <span class="hint">(at least 8 characters)</span></label>
<input type="password" id="password" name="password" autocomplete="new-password" required minlength="8">
<label for="confirm">Repeat the password</label><input type="password" id="confirm" name="confirm" autocomplete="new-password" required>
<div class="actions"><button type="submit" class="primary">Set password and continue</button></div></form>
<p class="muted small">Or from a shell on the box: <code>edge-relay admin password --password-stdin</code></p></div>`,
  );
}

/** A refusal a person sees after clicking something (an expired form): what happened and the way back */
export function problemPage(options: {
  hostname: string;
  version: string;
  title: string;
  text: string;
}): Html {
  return page(
    { title: options.title, hostname: options.hostname, version: options.version },
    html`<div class="login card"><h1>${options.title}</h1>${problem(options.text)}<p><a href="/">Back to the dashboard</a></p></div>`,
  );
}

export function loginPage(options: AuthPageOptions): Html {
  return page(
    { title: 'Log in', hostname: options.hostname, version: options.version },
    html`<div class="login card"><h1>Log in</h1>${problem(options.error)}
<form method="post" action="/login" class="stack">${csrfField(options.csrf)}
<label for="password">Admin password</label><input type="password" id="password" name="password" autocomplete="current-password" required autofocus>
<div class="actions"><button type="submit" class="primary">Log in</button></div></form>
<p class="muted small">Forgot it? On the box run <code>edge-relay admin password --password-stdin</code>.</p></div>`,
  );
}
