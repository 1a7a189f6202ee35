/** The expiry and rotation settings form of a credential page as plain data, without DOM calls, so unit tests can load it. */

/** The stored settings the form starts from, as GET /credentials/{name} returns them. */
export interface StoredSettings {
  expires_at: string | null;
  rotation_enabled: boolean;
  rotation_strategy: string;
  rotation_interval_hours: number;
  rotation_cron: string | null;
  rotation_timezone: string | null;
  alert_threshold_hours: number;
}

/** Settings the edit form changes with PATCH /credentials/{name}. */
export interface SettingsPatch {
  expires_at?: string | null;
  rotation_enabled?: boolean;
  rotation_strategy?: string;
  rotation_interval_hours?: number;
  rotation_cron?: string | null;
  rotation_timezone?: string | null;
  alert_threshold_hours?: number;
}

/** The expiry controls: the datetime-local field (UTC, to the minute) and the "Never expires" box. */
export interface ExpiryFields {
  date: string;
  never: boolean;
}

/** The values of the form's controls, as the browser reads them. */
export interface SettingsForm {
  expiry: ExpiryFields;
  rotationEnabled: boolean;
  strategy: string;
  interval: string;
  cron: string;
  timezone: string;
  threshold: string;
}

/** Returns the datetime-local value for a stored expiry: its UTC minute, because the field shows no seconds. */
export function expiryFieldValue(expiresAt: string | null): string {
  return expiresAt ? expiresAt.slice(0, 16) : '';
}

/** Returns the expiry the controls ask for: the field's text, or null for no expiry. */
function chosenExpiry(fields: ExpiryFields): string | null {
  return fields.never || !fields.date ? null : fields.date;
}

/**
 * Returns the expires_at to send, or undefined when the controls ask for the same expiry as when the
 * form was filled. The comparison is with the filled controls, not with the stored instant, because the
 * field drops the seconds: a stored 12:00:30 shows as 12:00 and must not be sent back as 12:00:00.
 */
export function expiryChange(filled: ExpiryFields, current: ExpiryFields): string | null | undefined {
  const requested = chosenExpiry(current);
  if (requested === chosenExpiry(filled)) return undefined;
  if (requested === null) return null;
  // The field gives minutes, or seconds when the user types them. Both are read as UTC.
  return new Date(`${requested}${requested.length === 16 ? ':00' : ''}Z`).toISOString();
}

/** Builds the PATCH body: only the settings the user changed. `filled` is the expiry the form was filled with. */
export function settingsPatch(stored: StoredSettings, filled: ExpiryFields, form: SettingsForm): SettingsPatch {
  const patch: SettingsPatch = {};
  const expiresAt = expiryChange(filled, form.expiry);
  if (expiresAt !== undefined) patch.expires_at = expiresAt;
  if (form.rotationEnabled !== stored.rotation_enabled) patch.rotation_enabled = form.rotationEnabled;
  if (form.strategy !== stored.rotation_strategy) patch.rotation_strategy = form.strategy;
  if (Number(form.interval) !== stored.rotation_interval_hours) patch.rotation_interval_hours = Number(form.interval);
  if ((form.cron.trim() || null) !== stored.rotation_cron) patch.rotation_cron = form.cron.trim() || null;
  if ((form.timezone.trim() || null) !== stored.rotation_timezone) patch.rotation_timezone = form.timezone.trim() || null;
  if (Number(form.threshold) !== stored.alert_threshold_hours) patch.alert_threshold_hours = Number(form.threshold);
  return patch;
}
