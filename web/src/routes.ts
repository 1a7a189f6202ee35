/** The pages of the dashboard and the location hash of each, without DOM calls, so unit tests can load it. */

export type Route =
  | { page: 'overview' }
  | { page: 'credential'; name: string }
  | { page: 'alerts' }
  | { page: 'schedule' }
  | { page: 'audit' }
  | { page: 'invalid-link' };

/** Returns the page of a location hash: #/, #/credential/NAME, #/alerts, #/schedule or #/audit. */
export function routeOf(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  const credential = /^\/credential\/(.+)$/.exec(path);
  if (credential) {
    try {
      return { page: 'credential', name: decodeURIComponent(credential[1]!) };
    } catch {
      // A malformed escape such as %E0%A4%A cannot name a credential.
      return { page: 'invalid-link' };
    }
  }
  if (path === '/alerts') return { page: 'alerts' };
  if (path === '/schedule') return { page: 'schedule' };
  if (path === '/audit') return { page: 'audit' };
  return { page: 'overview' };
}
