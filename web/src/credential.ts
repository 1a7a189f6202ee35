import { api, ApiError, errorText, getSection, namePath, query } from './api.js';
import { confirmAction, field, message, select, statusBadge, table } from './components.js';
import { h, replaceContent, timeCell, utc } from './dom.js';
import { healthHistory, type HealthCheck } from './health-history.js';
import { RejectedRequests } from './rejections.js';
import { expiryFieldValue, settingsPatch, type ExpiryFields } from './settings.js';
import type { View } from './view.js';

interface CredentialDetails {
  credential_details: {
    name: string;
    credential_type: string;
    provider: string;
    description: string | null;
    provider_credential_id: string | null;
    status: string;
    created_at: string;
    updated_at: string;
    expires_at: string | null;
    last_rotated_at: string | null;
    last_used_at: string | null;
    last_health_check: string | null;
    rotation_enabled: boolean;
    rotation_interval_hours: number;
    rotation_strategy: string;
    next_rotation_at: string | null;
    rotation_cron: string | null;
    rotation_timezone: string | null;
    alert_threshold_hours: number;
    has_value: boolean;
    tags: string[];
    metadata: Record<string, unknown>;
  };
  health_status: { status: string; checked_at: string | null; response_time_ms: number | null; error_message: string | null };
  rotation_info: { current_version: number | null; version_count: number };
}

interface Version {
  version: number;
  created_at: string;
  created_by: string | null;
  reason: string | null;
  is_current: boolean;
  state: string;
}

interface HistoryEntry {
  rotated_at: string;
  previous_version: number | null;
  new_version: number | null;
  trigger: string;
  success: boolean;
  error_message: string | null;
  rolled_back: boolean;
  actor: string | null;
  reason: string | null;
  duration_ms: number | null;
}

interface AuditEntry {
  seq: number;
  timestamp: string;
  action: string;
  actor: string;
  target: string | null;
  details: Record<string, unknown>;
  success: boolean;
  error_message: string | null;
  ip_address: string | null;
}

/** One workflow node the credential was applied to, from the audit log's `applied` entries. */
interface Application {
  workflow: string;
  node: string;
  lastAppliedAt: string;
  actor: string;
}

/** Groups successful `applied` audit entries (newest first) by workflow and node, keeping the newest of each. */
function applications(entries: AuditEntry[]): Application[] {
  const seen = new Map<string, Application>();
  for (const entry of entries) {
    const workflow = String(entry.details.workflow_id ?? entry.target ?? '—');
    const node = String(entry.details.node_name ?? entry.details.node ?? '—');
    const key = `${workflow}\u0000${node}`;
    if (!seen.has(key)) seen.set(key, { workflow, node, lastAppliedAt: entry.timestamp, actor: entry.actor });
  }
  return [...seen.values()];
}

/** Describes how a rotation history entry ended. */
function rotationOutcome(entry: HistoryEntry): string {
  if (!entry.success) return `failed: ${entry.error_message ?? 'no message'}`;
  return entry.rolled_back ? 'succeeded, later rolled back' : 'succeeded';
}

/** Versions the page lists and offers for rollback, newest first. */
const versionsShown = 100;

/**
 * Builds the page of one credential: details, versions, rotation history, the latest health check with the 50 newest
 * checks as a chart and a table, the workflow nodes it was applied to, recent audit entries, and the actions. The server decides what the token may do; a refused action shows its problem.
 * Values are shown only through reveal, after a confirmation, and are never re-rendered by a poll.
 */
export function credentialView(name: string): View {
  const path = `/credentials/${namePath(name)}`;
  let current: CredentialDetails | null = null;
  let versions: Version[] = [];
  let versionsTotal = 0;

  const heading = h('h1', { id: 'credential-title', tabindex: '-1' }, name);
  const badge = h('span', { class: 'heading-status' });
  const details = h('div', { class: 'details' });
  const result = h('div', { class: 'result', 'aria-live': 'polite' });
  const versionsArea = h('div');
  const historyArea = h('div');
  const healthArea = h('div');
  const healthHistoryArea = h('div');
  const auditArea = h('div');
  const appliedArea = h('div');
  const rollbackSelect = h('select', { name: 'version' });
  const settingsArea = h('div');
  const revealArea = h('div');

  function showResult(kind: 'success' | 'error' | 'info', text: string): void {
    replaceContent(result, message(kind, text));
  }

  /** Runs an action, shows its result or problem, and reloads the page's data. */
  async function run(label: string, action: () => Promise<string>): Promise<void> {
    showResult('info', `${label}…`);
    try {
      showResult('success', await action());
    } catch (error) {
      showResult('error', `${label} failed: ${errorText(error)}`);
    }
    await load();
  }

  const reasonInput = h('input', { type: 'text', name: 'reason', maxlength: '500', autocomplete: 'off' });

  const testButton = h('button', { type: 'button' }, 'Test now');
  testButton.addEventListener('click', () =>
    run('Test', async () => {
      const outcome = await api<{ status: string; response_time_ms: number | null; error: string | null }>('POST', `${path}/test`);
      const time = outcome.response_time_ms === null ? '' : ` in ${outcome.response_time_ms} ms`;
      return `Health check: ${outcome.status}${time}${outcome.error ? `: ${outcome.error}` : ''}`;
    }),
  );

  async function rotate(trigger: 'manual' | 'emergency'): Promise<void> {
    const emergency = trigger === 'emergency';
    const reasonField = field('Reason (recorded in the history)', reasonInput);
    const confirmed = await confirmAction(
      emergency ? 'Emergency rotation' : 'Rotate credential',
      emergency
        ? `Rotate ${name} now, revoke the old value where the provider can, and send a critical alert?`
        : `Rotate ${name} now? A new value is set at the provider and becomes the current version.`,
      emergency ? 'Rotate and revoke' : 'Rotate',
      reasonField,
    );
    if (!confirmed) return;
    const reason = reasonInput.value.trim();
    reasonInput.value = '';
    await run(emergency ? 'Emergency rotation' : 'Rotation', async () => {
      const outcome = await api<{ previous_version: number; new_version: number; attempts: number; revoked_old_value: boolean }>(
        'POST',
        `${path}/rotate`,
        { trigger, ...(reason ? { reason } : {}) },
      );
      let revoked = '';
      if (outcome.revoked_old_value) revoked = '; the old value was revoked';
      else if (emergency) revoked = '; the provider cannot revoke the old value';
      return `Rotated: version ${outcome.previous_version} → ${outcome.new_version}${revoked}.`;
    });
  }

  const rotateButton = h('button', { type: 'button' }, 'Rotate');
  rotateButton.addEventListener('click', () => void rotate('manual'));
  const emergencyButton = h('button', { type: 'button', class: 'danger' }, 'Emergency rotate');
  emergencyButton.addEventListener('click', () => void rotate('emergency'));

  const rollbackButton = h('button', { type: 'button' }, 'Roll back');
  rollbackButton.addEventListener('click', async () => {
    const version = Number(rollbackSelect.value);
    if (!version) {
      showResult('error', 'Choose a version to roll back to.');
      return;
    }
    const confirmed = await confirmAction('Roll back', `Make version ${version} of ${name} current again? Its value is set at the provider.`, `Roll back to ${version}`);
    if (!confirmed) return;
    await run('Rollback', async () => {
      const outcome = await api<{ from_version: number; to_version: number }>('POST', `${path}/rollback`, { version });
      return `Rolled back: version ${outcome.from_version} → ${outcome.to_version}.`;
    });
  });

  const retireButton = h('button', { type: 'button', class: 'danger' }, 'Retire');
  retireButton.addEventListener('click', async () => {
    const confirmed = await confirmAction('Retire credential', `Retire ${name}? It stays in the vault with its history but is no longer served or rotated.`, 'Retire');
    if (!confirmed) return;
    await run('Retire', async () => {
      await api('DELETE', path);
      return `${name} is retired.`;
    });
  });

  const revealButton = h('button', { type: 'button', class: 'secondary' }, 'Reveal value');
  revealButton.addEventListener('click', async () => {
    const confirmed = await confirmAction('Reveal value', `Show the current value of ${name} on this screen? The reveal is recorded in the audit log under your token.`, 'Reveal');
    if (!confirmed) return;
    try {
      const revealed = await api<{ version: number; value: string }>('GET', `${path}/value`);
      const hide = h('button', { type: 'button', class: 'secondary' }, 'Hide value');
      hide.addEventListener('click', () => {
        replaceContent(revealArea);
        // The Hide button is gone, so focus returns to the button that revealed the value.
        revealButton.focus();
      });
      replaceContent(revealArea, h('div', { class: 'revealed' },
        h('p', {}, `Value of version ${revealed.version}:`),
        h('pre', { class: 'value', tabindex: '0', 'aria-label': 'Revealed value' }, revealed.value),
        hide,
      ));
      hide.focus();
    } catch (error) {
      replaceContent(revealArea, message('error', `Reveal failed: ${errorText(error)}`));
    }
  });

  const actions = h('section', { 'aria-labelledby': 'actions-title', class: 'panel' },
    h('h2', { id: 'actions-title' }, 'Actions'),
    h('div', { class: 'actions' }, testButton, rotateButton, emergencyButton, retireButton, revealButton),
    h('div', { class: 'actions' }, field('Version to roll back to', rollbackSelect), rollbackButton),
    result,
    revealArea,
  );

  function renderSettings(credential: CredentialDetails['credential_details']): void {
    const expires = h('input', { type: 'datetime-local', name: 'expires_at', step: '60', value: expiryFieldValue(credential.expires_at), disabled: credential.expires_at === null });
    const noExpiry = h('input', { type: 'checkbox', name: 'no_expiry', checked: credential.expires_at === null });
    // A ticked box discards the date, so the date field is disabled while the box is ticked.
    noExpiry.addEventListener('change', () => {
      expires.disabled = noExpiry.checked;
    });
    // The expiry as the field shows it. Saving compares with this, because the field cannot show the stored seconds.
    const filledExpiry: ExpiryFields = { date: expires.value, never: noExpiry.checked };
    const enabled = h('input', { type: 'checkbox', name: 'rotation_enabled', checked: credential.rotation_enabled });
    const strategy = select('rotation_strategy', [['manual', 'manual'], ['scheduled', 'scheduled'], ['on_expiry', 'on_expiry']], credential.rotation_strategy);
    const interval = h('input', { type: 'number', name: 'rotation_interval_hours', min: '1', max: '87600', value: String(credential.rotation_interval_hours) });
    const cron = h('input', { type: 'text', name: 'rotation_cron', value: credential.rotation_cron ?? '', autocomplete: 'off', spellcheck: 'false' });
    const timezone = h('input', { type: 'text', name: 'rotation_timezone', value: credential.rotation_timezone ?? '', autocomplete: 'off', spellcheck: 'false' });
    const threshold = h('input', { type: 'number', name: 'alert_threshold_hours', min: '0', max: '87600', value: String(credential.alert_threshold_hours) });
    const form = h('form', { class: 'settings' },
      field('Expires at (UTC)', expires),
      h('div', { class: 'field checkbox' }, noExpiry, h('label', {}, 'Never expires')),
      h('div', { class: 'field checkbox' }, enabled, h('label', {}, 'Automatic rotation enabled')),
      field('Rotation strategy', strategy),
      field('Rotation interval (hours)', interval),
      field('Rotation cron expression', cron, 'Leave empty to rotate every interval.'),
      field('Cron time zone (IANA)', timezone, 'For example Europe/Berlin; empty means UTC.'),
      field('Alert threshold (hours before expiry)', threshold),
      h('button', { type: 'submit' }, 'Save settings'),
    );
    // The checkbox labels wrap no control, so they are tied by id.
    for (const box of [noExpiry, enabled]) {
      box.id = `settings-${box.getAttribute('name')}`;
      box.nextElementSibling?.setAttribute('for', box.id);
    }
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const patch = settingsPatch(credential, filledExpiry, {
        expiry: { date: expires.value, never: noExpiry.checked },
        rotationEnabled: enabled.checked,
        strategy: strategy.value,
        interval: interval.value,
        cron: cron.value,
        timezone: timezone.value,
        threshold: threshold.value,
      });
      if (Object.keys(patch).length === 0) {
        showResult('info', 'No setting changed.');
        return;
      }
      void run('Saving settings', async () => {
        const saved = await api<{ updated_fields: string[] }>('PATCH', path, patch);
        renderedSettingsFor = '';
        return `Saved: ${saved.updated_fields.join(', ')}.`;
      });
    });
    replaceContent(settingsArea, form);
  }

  // The settings form is rebuilt only when the stored settings change, so a poll never discards an edit.
  let renderedSettingsFor = '';

  function renderDetails(detail: CredentialDetails): void {
    const credential = detail.credential_details;
    replaceContent(badge, statusBadge(credential.status));
    const rows: Array<[string, Node | string]> = [
      ['Provider', credential.provider],
      ['Type', credential.credential_type],
      ['Description', credential.description ?? '—'],
      ['Provider credential id', credential.provider_credential_id ?? '—'],
      ['Tags', credential.tags.length ? credential.tags.join(', ') : '—'],
      ['Current version', `${detail.rotation_info.current_version ?? '—'} of ${detail.rotation_info.version_count}`],
      ['Stored value', credential.has_value ? 'yes (hidden)' : 'none'],
      ['Expires', credential.expires_at ? `${utc(credential.expires_at)}` : 'no expiry'],
      ['Rotation', `${credential.rotation_enabled ? 'enabled' : 'disabled'}, ${credential.rotation_strategy}, every ${credential.rotation_interval_hours} h${credential.rotation_cron ? `, cron ${credential.rotation_cron} ${credential.rotation_timezone ?? 'UTC'}` : ''}`],
      ['Next rotation', credential.next_rotation_at ? utc(credential.next_rotation_at) : 'not scheduled'],
      ['Last rotated', credential.last_rotated_at ? utc(credential.last_rotated_at) : 'never'],
      ['Last used', credential.last_used_at ? utc(credential.last_used_at) : 'never'],
      ['Alert threshold', `${credential.alert_threshold_hours} h before expiry`],
      ['Created', utc(credential.created_at)],
      ['Updated', utc(credential.updated_at)],
      ['Metadata', Object.keys(credential.metadata).length ? h('code', {}, JSON.stringify(credential.metadata)) : '—'],
    ];
    replaceContent(details, h('dl', {}, rows.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])));

    const health = detail.health_status;
    replaceContent(healthArea, health.checked_at
      ? h('p', {}, `${health.status}, checked ${utc(health.checked_at)}`, health.response_time_ms !== null ? ` in ${health.response_time_ms} ms` : '', health.error_message ? `: ${health.error_message}` : '')
      : h('p', { class: 'muted' }, 'Not checked yet.'));

    const settingsKey = JSON.stringify([credential.expires_at, credential.rotation_enabled, credential.rotation_strategy, credential.rotation_interval_hours, credential.rotation_cron, credential.rotation_timezone, credential.alert_threshold_hours]);
    if (settingsKey !== renderedSettingsFor) {
      renderedSettingsFor = settingsKey;
      renderSettings(credential);
    }
  }

  function renderVersions(): void {
    const chosen = rollbackSelect.value;
    const candidates = versions.filter((version) => !version.is_current && version.state !== 'pending' && version.state !== 'failed');
    replaceContent(rollbackSelect,
      h('option', { value: '' }, candidates.length ? 'Choose a version' : 'No earlier version'),
      candidates.map((version) => h('option', { value: String(version.version), selected: String(version.version) === chosen }, `Version ${version.version} (${version.reason ?? 'no reason'}, ${utc(version.created_at)})`)),
    );
    replaceContent(versionsArea, table('Versions, newest first', ['Version', 'State', 'Created', 'Created by', 'Reason'], versions.map((version) => [
      version.is_current ? h('strong', {}, `${version.version} (current)`) : String(version.version),
      version.state,
      utc(version.created_at),
      version.created_by ?? '—',
      version.reason ?? '—',
    ])), versionsTotal > versions.length
      ? h('p', { class: 'muted' }, `The ${versions.length} newest of ${versionsTotal} versions. To roll back to an older one, run aegis rotation rollback ${name} --version <number>.`)
      : null);
  }

  const rejected = new RejectedRequests();

  /** Loads one section into `area`, or shows the problem there. */
  function section<T>(area: HTMLElement, sectionPath: string, reloading: boolean, render: (data: T) => void): Promise<void> {
    return getSection(rejected, sectionPath, reloading, render, (error) => replaceContent(area, message('error', errorText(error))));
  }

  async function load(reloading = false): Promise<void> {
    let missing = false;
    await getSection<CredentialDetails>(rejected, path, reloading, (data) => {
      current = data;
      renderDetails(data);
    }, (error) => {
      replaceContent(details, message('error', errorText(error)));
      // A token limited to other names gets 403 for a name whether or not it exists, and every section would be denied too.
      missing = error instanceof ApiError && (error.status === 404 || error.status === 403);
    });
    if (missing) return;
    await Promise.all([
      section<{ versions: Version[]; total: number }>(versionsArea, `${path}/versions${query({ limit: versionsShown })}`, reloading, (data) => {
        versions = data.versions;
        versionsTotal = data.total;
        renderVersions();
      }),
      section<{ history: HistoryEntry[] }>(historyArea, `/rotation/history${query({ credential_name: name, limit: 20 })}`, reloading, (data) =>
        replaceContent(historyArea, table('Rotation history, newest first', ['When', 'Trigger', 'Versions', 'Outcome', 'Actor', 'Reason'], data.history.map((entry) => [
          utc(entry.rotated_at),
          entry.trigger,
          `${entry.previous_version ?? '—'} → ${entry.new_version ?? '—'}`,
          rotationOutcome(entry),
          entry.actor ?? '—',
          entry.reason ?? '—',
        ]), 'No rotation yet.'))),
      section<{ checks: HealthCheck[]; total: number }>(healthHistoryArea, `${path}/health-checks${query({ limit: 50 })}`, reloading, (data) =>
        replaceContent(healthHistoryArea, healthHistory(data.checks, data.total))),
      section<{ log: AuditEntry[] }>(appliedArea, `/audit/log${query({ credential_name: name, action: 'applied', success: true, limit: 500 })}`, reloading, (data) =>
        replaceContent(appliedArea, table('Workflow nodes it was applied to, most recent first', ['Workflow', 'Node', 'Last applied', 'By'], applications(data.log).map((entry) => [
          entry.workflow,
          entry.node,
          timeCell(entry.lastAppliedAt),
          entry.actor,
        ]), 'Not applied to any workflow node through AEGIS.'))),
      section<{ log: AuditEntry[] }>(auditArea, `/audit/log${query({ credential_name: name, limit: 20 })}`, reloading, (data) =>
        replaceContent(auditArea, table('Recent audit entries, newest first', ['When', 'Action', 'Actor', 'Outcome', 'Address'], data.log.map((entry) => [
          timeCell(entry.timestamp),
          entry.action,
          entry.actor,
          entry.success ? 'success' : `failed: ${entry.error_message ?? ''}`,
          entry.ip_address ?? '—',
        ]), 'No audit entries.'))),
    ]);
  }

  const root = h('section', { 'aria-labelledby': 'credential-title' },
    h('p', {}, h('a', { href: '#/' }, '← All credentials')),
    h('div', { class: 'heading-row' }, heading, badge),
    details,
    actions,
    h('section', { 'aria-labelledby': 'settings-title', class: 'panel' }, h('h2', { id: 'settings-title' }, 'Expiry and rotation settings'), settingsArea),
    h('section', { 'aria-labelledby': 'versions-title' }, h('h2', { id: 'versions-title' }, 'Versions'), versionsArea),
    h('section', { 'aria-labelledby': 'history-title' }, h('h2', { id: 'history-title' }, 'Rotation history'), historyArea),
    h('section', { 'aria-labelledby': 'health-title' }, h('h2', { id: 'health-title' }, 'Health checks'), healthArea, healthHistoryArea),
    h('section', { 'aria-labelledby': 'applied-title' }, h('h2', { id: 'applied-title' }, 'Where it is applied'), appliedArea),
    h('section', { 'aria-labelledby': 'audit-title' }, h('h2', { id: 'audit-title' }, 'Recent audit entries'), auditArea),
  );

  return { root, load: () => load(), refresh: () => load(true), title: name };
}
