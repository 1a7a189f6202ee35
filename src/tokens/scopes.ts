/** What a token may do. `admin` includes every other scope. Agents get no `credentials:reveal`. */
export const SCOPES = [
  'credentials:read',
  'credentials:write',
  'credentials:apply',
  'credentials:rotate',
  'credentials:reveal',
  'audit:read',
  'metrics:read',
  'admin',
] as const;

export type Scope = (typeof SCOPES)[number];

export function isScope(value: string): value is Scope {
  return (SCOPES as ReadonlyArray<string>).includes(value);
}

export function hasScope(scopes: ReadonlyArray<Scope>, needed: Scope): boolean {
  return scopes.includes('admin') || scopes.includes(needed);
}
