/**
 * Classification of statements by whether they may change rows that the read caches keep (see
 * ReadCache). Both database adapters count such statements, so a cache never serves a row this
 * process changed.
 */

/**
 * Tables whose writes leave cached reads valid. Every audited request appends to the audit log and
 * moves its head, so counting those as changes would empty every cache on every request. Every n8n
 * apply writes and deletes its intent, which no cache reads either.
 */
const tablesOutsideCaches = new Set(['aegis_audit_log', 'aegis_audit_head', 'aegis_apply_intents']);

const writeTarget = /\b(?:insert\s+into|update|delete\s+from)\s+"?([a-z_0-9]+)\b"?/gi;
const transactionControl = /^\s*(?:begin|start\s+transaction|commit|end|rollback|savepoint|release)\b/i;
const plainRead = /^\s*\(?\s*select\b/i;

/**
 * The statement that records when a token or credential was last used (`touchToken`,
 * `touchCredential`), as Kysely writes it on either database. Reads make it once a minute per token
 * and once a second per credential, and emptying every cache for it would leave the caches nearly
 * empty under many agents. The services update the cached row themselves instead.
 */
const lastUseTouch = /^update "(?:aegis_tokens|aegis_credentials)" set "last_used_at" = (?:\?|\$1) where "id" = (?:\?|\$2)$/;

/**
 * Tells whether a statement may change rows a cache holds, from its text alone: anything but a SELECT,
 * transaction control, the last-use update or a write that touches only the tables above. Unknown statements (DDL, raw SQL)
 * count as changes. A data-modifying WITH counts unless every table it writes is one of them. When a
 * transaction's changes become visible to other connections is the PostgreSQL adapter's concern.
 */
export function mayChangeCachedRows(sql: string): boolean {
  if (plainRead.test(sql) || transactionControl.test(sql) || lastUseTouch.test(sql)) return false;
  const targets = [...sql.matchAll(writeTarget)].map((match) => match[1]!.toLowerCase());
  return targets.length === 0 || !targets.every((table) => tablesOutsideCaches.has(table));
}
