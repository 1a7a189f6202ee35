import type { Config } from '../config/config.js';
import { displayUrl, errorText, fail, ok, setting, type CheckResult } from './check.js';

interface Target {
  name: string;
  url: string;
  setting: string;
}

/**
 * Sends one HEAD request to each alert sink and to n8n. Any HTTP response counts as reachable; a
 * connection error or no response within `timeoutMs` fails. Nothing is delivered.
 */
export async function checkSinks(config: Config, timeoutMs: number): Promise<CheckResult[]> {
  const targets: Target[] = [];
  if (config.hermesUrl) targets.push({ name: 'sink hermes', url: config.hermesUrl, setting: setting('sinks.hermes_url', 'HERMES_URL') });
  if (config.eventBusUrl) targets.push({ name: 'sink event bus', url: config.eventBusUrl, setting: setting('sinks.event_bus_url', 'EVENT_BUS_URL') });
  config.webhooks.forEach((webhook, index) => {
    targets.push({ name: `sink webhook ${index + 1}`, url: webhook.url, setting: setting(`sinks.webhooks[${index}].url`, 'AEGIS_WEBHOOKS') });
  });
  if (config.n8nUrl) targets.push({ name: 'n8n', url: config.n8nUrl, setting: setting('providers.n8n.url', 'N8N_URL') });
  return Promise.all(targets.map((target) => probe(target, timeoutMs)));
}

async function probe(target: Target, timeoutMs: number): Promise<CheckResult> {
  const shown = displayUrl(target.url);
  // fetch rejects URLs with user name or password, and its error message repeats the whole URL.
  const requestUrl = new URL(target.url);
  requestUrl.username = '';
  requestUrl.password = '';
  try {
    const response = await fetch(requestUrl, { method: 'HEAD', redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return ok(target.name, `${shown} answered with HTTP ${response.status}`);
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
    const detail = errorText((error as { cause?: unknown }).cause ?? error).replaceAll(requestUrl.href, shown).replaceAll(target.url, shown);
    const reason = timedOut ? `no response within ${timeoutMs} ms` : detail;
    return fail(target.name, `Cannot reach ${shown}: ${reason}.`, `Check that the service runs and that this host can reach it, or correct ${target.setting}.`);
  }
}
