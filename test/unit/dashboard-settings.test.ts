import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expiryChange, expiryFieldValue, settingsPatch, type SettingsForm, type StoredSettings } from '../../web/src/settings.js';

const stored: StoredSettings = {
  expires_at: '2026-06-01T12:00:30.500Z',
  rotation_enabled: false,
  rotation_strategy: 'manual',
  rotation_interval_hours: 720,
  rotation_cron: null,
  rotation_timezone: null,
  alert_threshold_hours: 168,
};

/** Returns the form as the page fills it from `settings`, with `changes` on top. */
function formOf(settings: StoredSettings, changes: Partial<SettingsForm> = {}): SettingsForm {
  return {
    expiry: { date: expiryFieldValue(settings.expires_at), never: settings.expires_at === null },
    rotationEnabled: settings.rotation_enabled,
    strategy: settings.rotation_strategy,
    interval: String(settings.rotation_interval_hours),
    cron: settings.rotation_cron ?? '',
    timezone: settings.rotation_timezone ?? '',
    threshold: String(settings.alert_threshold_hours),
    ...changes,
  };
}

describe('dashboard settings form', () => {
  it('keeps an expiry with seconds', () => {
    const filled = formOf(stored).expiry;
    assert.deepEqual(settingsPatch(stored, filled, formOf(stored, { threshold: '48' })), { alert_threshold_hours: 48 });
    assert.deepEqual(settingsPatch(stored, filled, formOf(stored)), {});
  });

  it('sends a typed expiry as UTC', () => {
    const filled = formOf(stored).expiry;
    assert.deepEqual(settingsPatch(stored, filled, formOf(stored, { expiry: { date: '2026-07-01T08:15', never: false } })), {
      expires_at: '2026-07-01T08:15:00.000Z',
    });
    assert.equal(expiryChange(filled, { date: '2026-07-01T08:15:45', never: false }), '2026-07-01T08:15:45.000Z');
  });

  it('sends null for no expiry', () => {
    const filled = formOf(stored).expiry;
    assert.equal(expiryChange(filled, { date: filled.date, never: true }), null);
    assert.equal(expiryChange(filled, { date: '', never: false }), null);
  });

  it('needs a date to add an expiry', () => {
    const never = { ...stored, expires_at: null };
    const filled = formOf(never).expiry;
    assert.deepEqual(filled, { date: '', never: true });
    assert.equal(expiryChange(filled, { date: '', never: false }), undefined);
    assert.equal(expiryChange(filled, { date: '2026-07-01T08:15', never: true }), undefined);
    assert.equal(expiryChange(filled, { date: '2026-07-01T08:15', never: false }), '2026-07-01T08:15:00.000Z');
  });
});
