import { ALERT_TYPES } from '../../src/alerts/alert-types.js';
import { errorText, getSection, query } from './api.js';
import { field, message, select, table } from './components.js';
import { h, replaceContent, timeCell } from './dom.js';
import { RejectedRequests } from './rejections.js';
import type { View } from './view.js';

interface Alert {
  alert_type: string;
  credential_name: string;
  message: string;
  priority: string;
  created_at: string;
  state: string;
  deliveries: Array<{ sink: string; state: string; attempts: number; last_error: string | null }>;
}

const PAGE = 50;

/** Builds the credential cell: a link to the credential's page, or the text alone for `*`, which names no credential. */
function credentialCell(name: string): Node | string {
  if (name === '*') return name;
  return h('a', { href: `#/credential/${encodeURIComponent(name)}` }, name);
}

/** Builds the alerts page: alerts, newest first, with each sink's delivery state (GET /alerts, which needs audit:read). */
export function alertsView(): View {
  const state = { alert_type: '', state: '', credential_name: '', offset: 0 };
  const area = h('div');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages of alerts' });

  const typeSelect = select('alert_type', [['', 'All types'], ...Object.keys(ALERT_TYPES).map((type): [string, string] => [type, type])]);
  const stateSelect = select('state', [['', 'Any delivery state'], ['pending', 'pending'], ['delivered', 'delivered'], ['dead', 'dead']]);
  const nameInput = h('input', { type: 'text', name: 'credential_name', autocomplete: 'off', spellcheck: 'false' });
  const form = h('form', { class: 'filters' },
    field('Alert type', typeSelect),
    field('Delivery state', stateSelect),
    field('Credential', nameInput),
    h('button', { type: 'submit' }, 'Apply filters'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    state.alert_type = typeSelect.value;
    state.state = stateSelect.value;
    state.credential_name = nameInput.value.trim();
    state.offset = 0;
    void load();
  });

  const rejected = new RejectedRequests();

  async function load(reloading = false): Promise<void> {
    await getSection<{ alerts: Alert[]; total: number }>(rejected, `/alerts${query({ ...state, limit: PAGE })}`, reloading, (data) => {
      replaceContent(area, table('Alerts, newest first', ['When', 'Type', 'Credential', 'Message', 'Priority', 'Delivery'], data.alerts.map((alert) => [
        timeCell(alert.created_at),
        alert.alert_type,
        credentialCell(alert.credential_name),
        alert.message,
        alert.priority,
        `${alert.state}: ${alert.deliveries.map((delivery) => `${delivery.sink} ${delivery.state} after ${delivery.attempts} attempts${delivery.last_error ? ` (${delivery.last_error})` : ''}`).join('; ') || 'no sink configured'}`,
      ]), 'No alerts.'));
      renderPager(data.total);
    }, (error) => {
      replaceContent(area, message('error', errorText(error)));
      replaceContent(pager);
    });
  }

  function renderPager(total: number): void {
    const previous = h('button', { type: 'button', disabled: state.offset === 0, 'data-focus-key': 'previous' }, 'Previous page');
    const next = h('button', { type: 'button', disabled: state.offset + PAGE >= total, 'data-focus-key': 'next' }, 'Next page');
    previous.addEventListener('click', () => {
      state.offset = Math.max(0, state.offset - PAGE);
      void load();
    });
    next.addEventListener('click', () => {
      state.offset += PAGE;
      void load();
    });
    replaceContent(pager, previous, h('span', { class: 'page-summary' }, `${total === 0 ? 0 : state.offset + 1}–${Math.min(state.offset + PAGE, total)} of ${total}`), next);
  }

  const root = h('section', { 'aria-labelledby': 'alerts-title' }, h('h1', { id: 'alerts-title', tabindex: '-1' }, 'Alerts'), form, area, pager);
  return { root, load: () => load(), refresh: () => load(true), title: 'Alerts' };
}
