import type { CheckResult } from './check.js';

/**
 * Formats the results as aligned text: status, check name and message, the fix under each `warn` and
 * `fail`, and a count per status.
 */
export function formatReport(results: ReadonlyArray<CheckResult>): string {
  const nameWidth = Math.max(...results.map((result) => result.name.length));
  const indent = ' '.repeat(6 + nameWidth + 2);
  const lines: string[] = [];
  for (const result of results) {
    lines.push(`${result.status.padEnd(6)}${result.name.padEnd(nameWidth)}  ${result.message}`);
    if (result.fix) lines.push(`${indent}fix: ${result.fix}`);
  }
  const count = (status: CheckResult['status']) => results.filter((result) => result.status === status).length;
  lines.push('', `${count('ok')} ok, ${count('warn')} warning(s), ${count('fail')} failed, ${count('skip')} skipped`);
  return `${lines.join('\n')}\n`;
}
