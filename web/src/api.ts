/**
 * Calls to the AEGIS API with the signed-in token. The token lives in sessionStorage only: it is sent as
 * the Authorization header, never put in a URL or a cookie, and it is gone when the tab closes or the
 * user signs out.
 */

import type { RejectedRequests } from './rejections.js';

const TOKEN_KEY = 'aegis.token';

export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An RFC 9457 problem document as the API returns it. */
export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  code?: string;
  field?: string;
}

/** A failed API call, with the problem document the server returned (or one built from the status). */
export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(describeProblem(problem));
  }

  get status(): number {
    return this.problem.status;
  }
}

export function describeProblem(problem: Problem): string {
  const head = [problem.status, problem.title].filter(Boolean).join(' ');
  const code = problem.code ? ` (${problem.code})` : '';
  return problem.detail ? `${head}${code}: ${problem.detail}` : `${head}${code}`;
}

/** Returns the HTTP status of a failed API call, or null when it failed without a response. */
export function failedStatus(error: unknown): number | null {
  return error instanceof ApiError ? error.status : null;
}

/** Returns the text to show for any error of an API call. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return `Request failed: ${error.message}`;
  return 'Request failed.';
}

type QueryValue = string | number | boolean | null | undefined;

/** Builds a query string from the set values, e.g. "?limit=50&status=active"; empty when none is set. */
export function query(params: Record<string, QueryValue>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** Encodes a credential name for a path segment; a `/` inside a name becomes %2F, as the API requires. */
export function namePath(name: string): string {
  return encodeURIComponent(name);
}

let onUnauthorized: (problem: Problem) => void = () => {};

/** Sets what happens when the server rejects the token (401): the app signs out and shows the reason. */
export function handleUnauthorized(callback: (problem: Problem) => void): void {
  onUnauthorized = callback;
}

/** Sends one request and returns the parsed JSON body, or throws an ApiError with the problem document. */
export async function api<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, token = storedToken()): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? null : JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
    redirect: 'error',
  });
  const text = await response.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!response.ok) {
    const problem: Problem =
      data && typeof data === 'object' && 'status' in data ? (data as Problem) : { status: response.status, title: response.statusText, detail: text.slice(0, 200) };
    if (response.status === 401 && token === storedToken()) onUnauthorized(problem);
    throw new ApiError(problem);
  }
  return data as T;
}

/**
 * Sends GET `path` for one section of a page and passes its data to `render`, or its error to `fail`.
 * A reload skips a path that the server rejected before, so the poll repeats no audited failure.
 */
export async function getSection<T>(rejected: RejectedRequests, path: string, reloading: boolean, render: (data: T) => void, fail: (error: unknown) => void): Promise<void> {
  if (rejected.skips(path, reloading)) return;
  try {
    const data = await api<T>('GET', path);
    rejected.record(path, null);
    render(data);
  } catch (error) {
    rejected.record(path, failedStatus(error));
    fail(error);
  }
}
