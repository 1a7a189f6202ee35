import { api, errorText, failedStatus, namePath, query } from './api.js';
import { field, message, select, statusBadge } from './components.js';
import { h, replaceContent, timeCell } from './dom.js';
import { RejectedRequests } from './rejections.js';
import { PROVIDERS, STATUS_DISPLAY, STATUSES, TILES, type CredentialStatus } from './status.js';
import type { View } from './view.js';

/** One credential as GET /credentials lists it (the fields the overview shows). */
interface CredentialRow {
  name: string;
  provider: string;
  credential_type: string;
  status: CredentialStatus;
  expires_at: string | null;
  last_used_at: string | null;
  last_rotated_at: string | null;
  next_rotation_at: string | null;
  last_health_check: string | null;
  tags: string[];
}

interface CredentialList {
  credentials: CredentialRow[];
  total: number;
  healthy: number;
  expiring: number;
  expired: number;
  failed: number;
  rotating: number;
  retired: number;
}

/** The columns GET /credentials can sort by (its `sort` parameter). */
type SortKey = 'name' | 'provider' | 'credential_type' | 'expires_at' | 'last_used_at' | 'last_rotated_at' | 'next_rotation_at' | 'last_health_check';

/** The sortable columns after the status column, which the API cannot sort by. */
const COLUMNS: Array<{ key: SortKey; label: string }> = [
  { key: 'name', label: 'Name' },
  { key: 'provider', label: 'Provider' },
  { key: 'credential_type', label: 'Type' },
  { key: 'expires_at', label: 'Expires' },
  { key: 'last_used_at', label: 'Last used' },
  { key: 'last_rotated_at', label: 'Last rotated' },
  { key: 'next_rotation_at', label: 'Next rotation' },
  { key: 'last_health_check', label: 'Last health check' },
];

const countOf: Record<CredentialStatus, keyof CredentialList> = {
  active: 'healthy',
  expiring: 'expiring',
  expired: 'expired',
  failed: 'failed',
  rotating: 'rotating',
  retired: 'retired',
};

/** How long the search box waits after the last keystroke before it reloads, in milliseconds. */
const SEARCH_DELAY_MS = 300;

/**
 * Builds the overview: summary tiles by colour and one page of credentials. Status, provider and tag filters,
 * the name search, the sort and paging go to GET /credentials, so they cover every credential and a vault of
 * any size loads one page at a time.
 * GET /health/dashboard filters by status only, which is why the overview reads GET /credentials.
 */
export function overviewView(): View {
  const state = { status: '', provider: '', tag: '', search: '', limit: 50, offset: 0, sort: 'name' as SortKey, descending: false };
  let rows: CredentialRow[] = [];
  let total = 0;

  const tiles = h('ul', { class: 'tiles', 'aria-label': 'Credentials by status' });
  const tableArea = h('div', { class: 'credential-table', 'aria-live': 'off' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages of credentials' });
  const problemArea = h('div');

  const statusSelect = select('status', [['', 'All statuses'], ...STATUSES.map((status): [string, string] => [status, `${STATUS_DISPLAY[status].label} (${status})`])]);
  const providerSelect = select('provider', [['', 'All providers'], ...PROVIDERS.map((provider): [string, string] => [provider, provider])]);
  const tagInput = h('input', { type: 'text', name: 'tag', autocomplete: 'off', spellcheck: 'false' });
  const searchInput = h('input', { type: 'search', name: 'search', maxlength: '128', autocomplete: 'off', spellcheck: 'false' });
  const pageSize = select('limit', [['50', '50'], ['100', '100'], ['250', '250'], ['500', '500']], '50');

  statusSelect.addEventListener('change', () => {
    state.status = statusSelect.value;
    state.offset = 0;
    void load();
  });
  providerSelect.addEventListener('change', () => {
    state.provider = providerSelect.value;
    state.offset = 0;
    void load();
  });
  tagInput.addEventListener('change', () => {
    state.tag = tagInput.value.trim();
    state.offset = 0;
    void load();
  });
  let searchTimer: ReturnType<typeof setTimeout> | undefined;
  searchInput.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      const search = searchInput.value.trim();
      if (search === state.search) return;
      state.search = search;
      state.offset = 0;
      void load();
    }, SEARCH_DELAY_MS);
  });
  pageSize.addEventListener('change', () => {
    state.limit = Number(pageSize.value);
    state.offset = 0;
    void load();
  });

  const filters = h('form', { class: 'filters', role: 'search', onsubmit: (event: Event) => event.preventDefault() },
    field('Status', statusSelect),
    field('Provider', providerSelect),
    field('Tag', tagInput, 'Press Enter to apply.'),
    field('Search names', searchInput, 'Finds names that contain this text, in any case.'),
    field('Rows per page', pageSize),
  );

  const root = h('section', { 'aria-labelledby': 'overview-title' },
    h('h1', { id: 'overview-title', tabindex: '-1' }, 'Credentials'),
    tiles,
    filters,
    problemArea,
    tableArea,
    pager,
  );

  function renderTiles(list: CredentialList): void {
    replaceContent(tiles, TILES.map((tile) => {
      const count = tile.statuses.reduce((sum, status) => sum + Number(list[countOf[status]]), 0);
      const breakdown = tile.statuses.length > 1 ? tile.statuses.map((status) => `${Number(list[countOf[status]])} ${status}`).join(', ') : '';
      return h('li', { class: `tile tile-${tile.colour}`, 'data-colour': tile.colour },
        h('span', { class: `light light-${tile.colour}`, 'aria-hidden': 'true' }),
        h('span', { class: 'tile-count' }, String(count)),
        h('span', { class: 'tile-label' }, tile.label),
        breakdown ? h('span', { class: 'tile-detail muted' }, breakdown) : null,
      );
    }));
  }

  function headerCell(column: { key: SortKey; label: string }): HTMLElement {
    const active = state.sort === column.key;
    const button = h('button', { type: 'button', class: 'sort', 'data-focus-key': `sort-${column.key}` }, column.label, active ? (state.descending ? ' ▼' : ' ▲') : '');
    button.addEventListener('click', () => {
      state.descending = active ? !state.descending : false;
      state.sort = column.key;
      state.offset = 0;
      void load();
    });
    return h('th', { scope: 'col', 'aria-sort': active ? (state.descending ? 'descending' : 'ascending') : 'none' }, button);
  }

  function renderTable(): void {
    if (rows.length === 0) {
      replaceContent(tableArea, h('p', { class: 'muted' }, state.search ? 'No credential name matches the search and filters.' : 'No credentials match these filters.'));
      return;
    }
    replaceContent(tableArea, h('div', { class: 'table-wrap' },
      h('table', { 'aria-describedby': 'page-summary' },
        h('caption', { class: 'visually-hidden' }, 'Credentials, one page. Sort all credentials by a column with its header button.'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Status'), COLUMNS.map(headerCell))),
        h('tbody', {}, rows.map((row) => h('tr', { 'data-name': row.name },
          h('td', {}, statusBadge(row.status)),
          h('th', { scope: 'row' }, h('a', { href: `#/credential/${namePath(row.name)}`, 'data-focus-key': `name-${row.name}` }, row.name)),
          h('td', {}, row.provider),
          h('td', {}, row.credential_type),
          h('td', {}, timeCell(row.expires_at, 'no expiry')),
          h('td', {}, timeCell(row.last_used_at)),
          h('td', {}, timeCell(row.last_rotated_at)),
          h('td', {}, timeCell(row.next_rotation_at, 'not scheduled')),
          h('td', {}, timeCell(row.last_health_check)),
        ))),
      ),
    ));
  }

  function renderPager(): void {
    const first = total === 0 ? 0 : state.offset + 1;
    const last = Math.min(state.offset + state.limit, total);
    const previous = h('button', { type: 'button', disabled: state.offset === 0, 'data-focus-key': 'previous' }, 'Previous page');
    const next = h('button', { type: 'button', disabled: last >= total, 'data-focus-key': 'next' }, 'Next page');
    previous.addEventListener('click', () => {
      state.offset = Math.max(0, state.offset - state.limit);
      void load();
    });
    next.addEventListener('click', () => {
      state.offset += state.limit;
      void load();
    });
    replaceContent(pager, previous, h('span', { id: 'page-summary', class: 'page-summary' }, `${first}–${last} of ${total}`), next);
  }

  // Numbers each load, so a slow response to an older search, sort or page never replaces a newer one.
  let latestLoad = 0;
  const rejected = new RejectedRequests();
  // The request whose results are on screen, so a failed request for other filters clears them.
  let shownPath = '';

  async function load(reloading = false): Promise<void> {
    const path = `/credentials${query({
      status: state.status,
      provider: state.provider,
      tag: state.tag,
      search: state.search,
      sort: state.sort,
      order: state.descending ? 'desc' : 'asc',
      limit: state.limit,
      offset: state.offset,
    })}`;
    if (rejected.skips(path, reloading)) return;
    const thisLoad = ++latestLoad;
    try {
      const list = await api<CredentialList>('GET', path);
      if (thisLoad !== latestLoad) return;
      rejected.record(path, null);
      shownPath = path;
      rows = list.credentials;
      total = list.total;
      replaceContent(problemArea);
      renderTiles(list);
      renderTable();
      renderPager();
    } catch (error) {
      if (thisLoad !== latestLoad) return;
      rejected.record(path, failedStatus(error));
      if (path !== shownPath) {
        shownPath = '';
        replaceContent(tiles);
        replaceContent(tableArea);
        replaceContent(pager);
      }
      replaceContent(problemArea, message('error', errorText(error)));
    }
  }

  return { root, load: () => load(), refresh: () => load(true), title: 'Credentials' };
}
