/**
 * The outcome of one doctor check: `warn` needs attention, `fail` makes `aegis doctor` exit with 1, and
 * `skip` means the check did not run because a check it depends on failed.
 */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

/** One line of the doctor's report. */
export interface CheckResult {
  /** Short name of what was checked, e.g. `database` or `sink hermes`. */
  name: string;
  status: CheckStatus;
  /** The finding, without any secret value or URL credentials. */
  message: string;
  /** The remedy for a `warn` or `fail`: a command to run or a setting to change. */
  fix?: string;
  /** Name of the failed check that a `skip` depends on. Its fix applies first. */
  dependsOn?: string;
}

export function ok(name: string, message: string): CheckResult {
  return { name, status: 'ok', message };
}

export function warn(name: string, message: string, fix: string): CheckResult {
  return { name, status: 'warn', message, fix };
}

export function fail(name: string, message: string, fix: string): CheckResult {
  return { name, status: 'fail', message, fix };
}

/** Returns the result of a check that did not run because the check named `dependsOn` failed. */
export function skip(name: string, dependsOn: string): CheckResult {
  return { name, status: 'skip', message: `not run, because the ${dependsOn} check failed`, dependsOn };
}

/** Names a setting for a fix: its file key and its environment variable. */
export function setting(key: string, variable: string): string {
  return `${key} (${variable})`;
}

/** Returns a URL without user name, password, query and fragment, which may carry credentials. */
export function displayUrl(raw: string): string {
  try {
    const url = new URL(raw);
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** Returns the reason of a connection error, taking the first of an AggregateError (Node's connection attempts to each address). */
export function errorText(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return errorText(error.errors[0]);
  if (error instanceof Error) return error.message.replace(/\.$/, '') || ((error as NodeJS.ErrnoException).code ?? error.name);
  return String(error);
}
