import { api, errorText, getSection, query } from './api.js';
import { field, message, select, table } from './components.js';
import { download, h, replaceContent, utc } from './dom.js';
import { RejectedRequests } from './rejections.js';
import type { View } from './view.js';

interface AuditEntry {
  id: string;
  seq: number;
  timestamp: string;
  credential_name: string;
  action: string;
  actor: string;
  target: string | null;
  details: Record<string, unknown>;
  ip_address: string | null;
  success: boolean;
  error_message: string | null;
  entry_hash: string;
}

interface AuditFilters {
  credential_name: string;
  action: string;
  actor: string;
  start_date: string;
  end_date: string;
  success: string;
}

const PAGE = 100;
/** The API's maximum page size, used when exporting. */
const EXPORT_PAGE = 1000;
const CSV_COLUMNS: Array<keyof AuditEntry> = ['seq', 'timestamp', 'credential_name', 'action', 'actor', 'target', 'ip_address', 'success', 'error_message', 'details', 'entry_hash', 'id'];

/** Quotes a CSV field (RFC 4180), and prefixes text that a spreadsheet would run as a formula with a quote. */
function csvField(value: unknown): string {
  let text = '';
  if (typeof value === 'object' && value !== null) text = JSON.stringify(value);
  else if (value !== null && value !== undefined) text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(entries: AuditEntry[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const entry of entries) lines.push(CSV_COLUMNS.map((column) => csvField(entry[column])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** Converts a datetime-local value, read as UTC, to ISO-8601; empty stays empty. */
function utcInput(value: string): string {
  return value ? new Date(`${value}:00Z`).toISOString() : '';
}

/** Builds the audit viewer: filters, paging, export of every filtered entry as CSV or JSON lines, and the chain check. */
export function auditView(): View {
  let filters: AuditFilters = { credential_name: '', action: '', actor: '', start_date: '', end_date: '', success: '' };
  let offset = 0;
  const area = h('div');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages of audit entries' });
  const exportResult = h('div', { 'aria-live': 'polite' });
  const verifyResult = h('div', { 'aria-live': 'polite' });

  const credentialInput = h('input', { type: 'text', name: 'credential_name', autocomplete: 'off', spellcheck: 'false' });
  const actionInput = h('input', { type: 'text', name: 'action', autocomplete: 'off', spellcheck: 'false' });
  const actorInput = h('input', { type: 'text', name: 'actor', autocomplete: 'off', spellcheck: 'false' });
  const startInput = h('input', { type: 'datetime-local', name: 'start_date', step: '60' });
  const endInput = h('input', { type: 'datetime-local', name: 'end_date', step: '60' });
  const successSelect = select('success', [['', 'Any outcome'], ['true', 'Succeeded'], ['false', 'Failed']]);
  const form = h('form', { class: 'filters', role: 'search' },
    field('Credential', credentialInput),
    field('Action', actionInput, 'For example rotated, revealed, read.'),
    field('Actor', actorInput),
    field('From (UTC)', startInput),
    field('To (UTC)', endInput),
    field('Outcome', successSelect),
    h('button', { type: 'submit' }, 'Apply filters'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    filters = {
      credential_name: credentialInput.value.trim(),
      action: actionInput.value.trim(),
      actor: actorInput.value.trim(),
      start_date: utcInput(startInput.value),
      end_date: utcInput(endInput.value),
      success: successSelect.value,
    };
    offset = 0;
    void load();
  });

  const rejected = new RejectedRequests();

  async function load(reloading = false): Promise<void> {
    await getSection<{ log: AuditEntry[]; total: number }>(rejected, `/audit/log${query({ ...filters, limit: PAGE, offset })}`, reloading, (data) => {
      replaceContent(area, table('Audit entries, newest first', ['Seq', 'When (UTC)', 'Credential', 'Action', 'Actor', 'Outcome', 'Address'], data.log.map((entry) => [
        String(entry.seq),
        utc(entry.timestamp),
        entry.credential_name,
        entry.action,
        entry.actor,
        entry.success ? 'success' : `failed: ${entry.error_message ?? ''}`,
        entry.ip_address ?? '—',
      ]), 'No audit entry matches these filters.'));
      renderPager(data.total);
    }, (error) => {
      replaceContent(area, message('error', errorText(error)));
      replaceContent(pager);
    });
  }

  function renderPager(total: number): void {
    const previous = h('button', { type: 'button', disabled: offset === 0, 'data-focus-key': 'previous' }, 'Previous page');
    const next = h('button', { type: 'button', disabled: offset + PAGE >= total, 'data-focus-key': 'next' }, 'Next page');
    previous.addEventListener('click', () => {
      offset = Math.max(0, offset - PAGE);
      void load();
    });
    next.addEventListener('click', () => {
      offset += PAGE;
      void load();
    });
    replaceContent(pager, previous, h('span', { class: 'page-summary' }, `${total === 0 ? 0 : offset + 1}–${Math.min(offset + PAGE, total)} of ${total}`), next);
  }

  /** Reads every entry that matches the filters, a page at a time. Entries written meanwhile can shift pages, so seqs seen twice are dropped. */
  async function allFiltered(): Promise<AuditEntry[]> {
    const entries: AuditEntry[] = [];
    const seen = new Set<number>();
    for (let page = 0; ; page += EXPORT_PAGE) {
      const data = await api<{ log: AuditEntry[]; total: number }>('GET', `/audit/log${query({ ...filters, limit: EXPORT_PAGE, offset: page })}`);
      for (const entry of data.log) {
        if (seen.has(entry.seq)) continue;
        seen.add(entry.seq);
        entries.push(entry);
      }
      if (data.log.length < EXPORT_PAGE || page + EXPORT_PAGE >= data.total) return entries;
    }
  }

  async function exportAs(format: 'csv' | 'jsonl'): Promise<void> {
    replaceContent(exportResult, message('info', 'Exporting…'));
    try {
      const entries = await allFiltered();
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      if (format === 'csv') download(`aegis-audit-${stamp}.csv`, toCsv(entries), 'text/csv');
      else download(`aegis-audit-${stamp}.jsonl`, entries.map((entry) => JSON.stringify(entry)).join('\n') + (entries.length ? '\n' : ''), 'application/x-ndjson');
      replaceContent(exportResult, message('success', `Exported ${entries.length} entries as ${format === 'csv' ? 'CSV' : 'JSON lines'}.`));
    } catch (error) {
      replaceContent(exportResult, message('error', `Export failed: ${errorText(error)}`));
    }
  }

  const csvButton = h('button', { type: 'button', class: 'secondary' }, 'Export CSV');
  csvButton.addEventListener('click', () => void exportAs('csv'));
  const jsonButton = h('button', { type: 'button', class: 'secondary' }, 'Export JSON lines');
  jsonButton.addEventListener('click', () => void exportAs('jsonl'));
  const verifyButton = h('button', { type: 'button' }, 'Verify hash chain');
  verifyButton.addEventListener('click', async () => {
    replaceContent(verifyResult, message('info', 'Checking the chain…'));
    try {
      const report = await api<{ ok: boolean; checked: number; problem: { seq: number; message: string } | null }>('GET', '/audit/verify');
      replaceContent(verifyResult, report.ok
        ? message('success', `The chain verifies: ${report.checked} entries checked.`)
        : message('error', `The chain is broken at entry ${report.problem?.seq}: ${report.problem?.message ?? 'no detail'}`));
    } catch (error) {
      replaceContent(verifyResult, message('error', `Verification failed: ${errorText(error)}`));
    }
  });

  const root = h('section', { 'aria-labelledby': 'audit-log-title' },
    h('h1', { id: 'audit-log-title', tabindex: '-1' }, 'Audit log'),
    form,
    h('div', { class: 'actions' }, csvButton, jsonButton, verifyButton),
    exportResult,
    verifyResult,
    area,
    pager,
  );
  return { root, load: () => load(), refresh: () => load(true), title: 'Audit log' };
}
