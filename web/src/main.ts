import { api, ApiError, clearToken, errorText, handleUnauthorized, storedToken, storeToken } from './api.js';
import { alertsView } from './alerts.js';
import { auditView } from './audit.js';
import { field, message } from './components.js';
import { credentialView } from './credential.js';
import { h, replaceContent } from './dom.js';
import { overviewView } from './overview.js';
import { routeOf } from './routes.js';
import { scheduleView } from './schedule.js';
import type { View } from './view.js';

/** How often the open page reloads its data. */
const POLL_INTERVAL_MS = 5_000;

const app = document.getElementById('app')!;
let view: View | null = null;
let polling = false;

/** Builds the page shown for a link that names no page, such as a credential name with a malformed escape. */
function invalidLinkView(): View {
  const root = h('section', { 'aria-labelledby': 'invalid-link-title' },
    h('h1', { id: 'invalid-link-title', tabindex: '-1' }, 'Page not found'),
    h('p', {}, 'This link is invalid: the credential name in it is not correctly encoded.'),
    h('p', {}, h('a', { href: '#/' }, '← All credentials')),
  );
  // The page shows no data, so it sends no request.
  const noRequest = async () => {};
  return { root, load: noRequest, refresh: noRequest, title: 'Page not found' };
}

/** Chooses the page from the location hash: #/, #/credential/NAME, #/alerts, #/schedule, #/audit. */
function viewForHash(hash: string): View {
  const route = routeOf(hash);
  switch (route.page) {
    case 'credential':
      return credentialView(route.name);
    case 'alerts':
      return alertsView();
    case 'schedule':
      return scheduleView();
    case 'audit':
      return auditView();
    case 'invalid-link':
      return invalidLinkView();
    case 'overview':
      return overviewView();
  }
}

function navigation(): HTMLElement {
  const links: Array<[string, string]> = [['#/', 'Credentials'], ['#/alerts', 'Alerts'], ['#/schedule', 'Rotation schedule'], ['#/audit', 'Audit log']];
  const current = location.hash || '#/';
  const signOut = h('button', { type: 'button', class: 'secondary' }, 'Sign out');
  signOut.addEventListener('click', () => signOutWith('You are signed out.'));
  return h('header', { class: 'top' },
    h('span', { class: 'brand' }, 'AEGIS'),
    h('nav', { 'aria-label': 'Main' }, h('ul', {}, links.map(([href, text]) =>
      h('li', {}, h('a', { href, 'aria-current': current === href ? 'page' : false }, text))))),
    signOut,
  );
}

function showView(): void {
  view = viewForHash(location.hash);
  const main = h('main', { id: 'main' }, view.root);
  replaceContent(app, navigation(), main);
  document.title = `${view.title} · AEGIS`;
  void view.load();
  // Move focus to the new page's heading so keyboard and screen-reader users land on it.
  view.root.querySelector<HTMLElement>('h1')?.focus();
}

/**
 * Returns whether a token can be an AEGIS token: printable ASCII only. The browser cannot send other
 * characters in a header, so fetch would fail with an error about the header instead.
 */
function tokenCharactersValid(token: string): boolean {
  return /^[\x21-\x7e]+$/.test(token);
}

function showSignIn(notice?: string): void {
  view = null;
  const tokenInput = h('input', { type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true });
  const feedback = h('div', { 'aria-live': 'polite' }, notice ? message('info', notice) : null);
  const form = h('form', { class: 'sign-in', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title' }, 'Sign in to AEGIS'),
    h('p', {}, 'Paste an API token. It is kept in this tab only (sessionStorage) and sent as the Authorization header.'),
    field('API token', tokenInput),
    feedback,
    h('button', { type: 'submit' }, 'Sign in'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = tokenInput.value.trim();
    if (!tokenCharactersValid(token)) {
      replaceContent(feedback, message('error', 'Sign-in failed: the token is invalid, because it contains characters that no AEGIS token has. Paste the token again.'));
      tokenInput.focus();
      return;
    }
    try {
      // Any token the server accepts may sign in; a 403 only means it lacks credentials:read.
      await api('GET', '/credentials?limit=1', undefined, token);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 403) {
        replaceContent(feedback, message('error', `Sign-in failed: ${errorText(error)}`));
        tokenInput.focus();
        return;
      }
    }
    storeToken(token);
    tokenInput.value = '';
    showView();
  });
  replaceContent(app, h('main', { id: 'main' }, form));
  document.title = 'Sign in · AEGIS';
  tokenInput.focus();
}

function signOutWith(notice: string): void {
  clearToken();
  showSignIn(notice);
}

handleUnauthorized((problem) => signOutWith(`Your token was rejected (${problem.detail ?? problem.status}). Sign in again.`));

window.addEventListener('hashchange', () => {
  if (storedToken()) showView();
});

setInterval(async () => {
  if (!view || polling || document.hidden || document.querySelector('dialog[open]')) return;
  polling = true;
  try {
    await view.refresh();
  } finally {
    polling = false;
  }
}, POLL_INTERVAL_MS);

if (storedToken()) showView();
else showSignIn();
