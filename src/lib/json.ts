/** Serializes JSON with object keys sorted at every level, so equal data always hashes the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      sorted[key] = sortKeys((value as Record<string, unknown>)[key]);
    }
    return sorted;
  }
  return value;
}

/**
 * Describes where JSON.parse failed without quoting the text: V8's messages quote the start of the
 * input (`Unexpected token 's', "sk-live-12"... is not valid JSON`), which may be a secret.
 */
export function describeJsonError(error: unknown): string {
  const position = /at position (\d+)/.exec((error as Error | null)?.message ?? '')?.[1];
  return position === undefined ? 'not valid JSON' : `not valid JSON at character ${Number(position) + 1}`;
}
