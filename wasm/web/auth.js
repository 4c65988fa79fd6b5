// Signing in to `backupctl serve` (SPEC §12): the job form and the console share this module.
//
// - `backupctl serve` prints a sign-in URL, `http://HOST:PORT/#token=…`. The fragment never
//   reaches a server, a log or a `Referer`; on load this module moves the token into
//   `sessionStorage` (this tab only, gone when it closes) and removes it from the address
//   bar with `history.replaceState`, so it is not bookmarked, shared or kept in history.
// - Tokens are kept per API origin, so a console pointed at another server (started with
//   `--cors-origin`) keeps that server's token apart. Pasting a sign-in URL stores its token
//   for the URL's origin; pasting a bare token stores it for the API the page talks to.
// - Every API call sends `Authorization: Bearer …`. No cookie is ever used: cookies ignore
//   ports, so another server on the same host would receive it.
// - Without a token the pages still work against an API that needs none; they show a small
//   sign-in prompt, and a 401 answer shows it again with the server's explanation.

const PREFIX = 'backupctl.token ';

function originOf(base) {
  try {
    return new URL(base || location.origin, location.href).origin;
  } catch {
    return location.origin;
  }
}

function read(key) {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return memory.get(key) ?? null;
  }
}

function write(key, value) {
  try {
    if (value) sessionStorage.setItem(key, value);
    else sessionStorage.removeItem(key);
  } catch {
    /* storage disabled: keep it for this page only */
  }
  if (value) memory.set(key, value);
  else memory.delete(key);
}

/** Tokens for this page when sessionStorage is unavailable. */
const memory = new Map();

/** A token is base64url text; anything else (spaces, quotes, newlines) is a paste mistake. */
const TOKEN_SHAPE = /^[A-Za-z0-9._~+/=-]{16,4096}$/;

/**
 * Reads `#token=…` from the address (the sign-in URL), stores it for this page's origin and
 * removes it from the address bar. Call once, as early as possible.
 */
export function captureToken() {
  const hash = location.hash.replace(/^#/, '');
  if (!hash) return;
  const params = new URLSearchParams(hash);
  const token = params.get('token');
  if (token === null) return;
  if (TOKEN_SHAPE.test(token)) write(PREFIX + location.origin, token);
  params.delete('token');
  const rest = params.toString();
  const clean = `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`;
  try {
    history.replaceState(history.state, '', clean);
  } catch {
    /* an unusual document: leave the address as it is */
  }
}

/** The token known for the API at `base` (empty: this page's server), or null. */
export function tokenFor(base) {
  return read(PREFIX + originOf(base));
}

/** `{authorization: 'Bearer …'}` for the API at `base`, or `{}` when no token is known. */
export function authHeaders(base) {
  const token = tokenFor(base);
  return token ? { authorization: `Bearer ${token}` } : {};
}

/**
 * Stores what the operator pasted: a sign-in URL (its token, for its origin) or a bare token
 * (for the API at `base`). Returns an error message, or null when it was stored.
 */
export function signIn(text, base) {
  const value = text.trim();
  if (!value) return 'Paste the token or the sign-in URL that backupctl serve printed.';
  if (value.includes('#token=')) {
    let url;
    try {
      url = new URL(value);
    } catch {
      return 'That is not a URL; paste the whole sign-in line, such as http://127.0.0.1:8080/#token=…';
    }
    const token = new URLSearchParams(url.hash.replace(/^#/, '')).get('token') ?? '';
    if (!TOKEN_SHAPE.test(token)) return 'The sign-in URL holds no token.';
    write(PREFIX + url.origin, token);
    if (url.origin !== originOf(base)) {
      return `Stored the token for ${url.origin}, but this page talks to ${originOf(base)}; change the API address, or paste that server's sign-in URL.`;
    }
    return null;
  }
  if (!TOKEN_SHAPE.test(value)) return 'That does not look like a token: paste it without spaces or quotes.';
  write(PREFIX + originOf(base), value);
  return null;
}

/** Forgets the token for the API at `base`. */
export function signOut(base) {
  write(PREFIX + originOf(base), null);
}

let serial = 0;

/**
 * A small sign-in form (a `<form>` element): one field for the token or the sign-in URL.
 * `onSignedIn` runs after a token was stored. `reason` (optional) says why it is shown.
 */
export function signInForm({ base, reason, onSignedIn }) {
  serial += 1;
  const id = `sign-in-${serial}`;
  const form = document.createElement('form');
  form.className = 'sign-in';
  form.setAttribute('aria-labelledby', `${id}-title`);
  form.noValidate = true;

  const title = document.createElement('p');
  title.className = 'sign-in-title';
  title.id = `${id}-title`;
  const strong = document.createElement('strong');
  strong.textContent = 'Sign in to the API. ';
  title.append(strong);
  title.append(
    reason ||
      `Open the sign-in URL that backupctl serve printed when it started, or paste it (or the token from its data directory's token file) here.`,
  );

  const label = document.createElement('label');
  label.htmlFor = `${id}-input`;
  label.textContent = 'Token or sign-in URL';
  const input = document.createElement('input');
  input.id = `${id}-input`;
  input.name = 'token';
  input.type = 'password';
  input.autocomplete = 'off';
  input.spellcheck = false;
  input.className = 'mono';
  input.setAttribute('aria-describedby', `${id}-title ${id}-message`);

  const button = document.createElement('button');
  button.type = 'submit';
  button.className = 'button';
  button.textContent = 'Sign in';

  const message = document.createElement('p');
  message.id = `${id}-message`;
  message.className = 'sign-in-message';
  message.setAttribute('role', 'status');

  const row = document.createElement('div');
  row.className = 'sign-in-row';
  row.append(input, button);
  form.append(title, label, row, message);

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const problem = signIn(input.value, base);
    input.value = '';
    if (problem) {
      message.textContent = problem;
      input.focus();
      return;
    }
    message.textContent = 'Signed in.';
    onSignedIn?.();
  });
  return form;
}
