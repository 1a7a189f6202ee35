import { postJson, type AlertSink } from './sink.js';

/**
 * Creates the event bus sink: `POST {EVENT_BUS_URL}/events` with the alert type as the action and the credential
 * as the target. The alert's own details come first, so a detail named `message`, `priority` or
 * `alert_id` cannot hide the alert's values.
 */
export function eventBusSink(baseUrl: string, timeoutMs: number): AlertSink {
  const url = `${baseUrl}/events`;
  return {
    name: 'event_bus',
    async send(alert) {
      const body = JSON.stringify({
        source_agent: 'AEGIS',
        action: alert.alertType,
        target: alert.credentialName,
        details: { ...alert.details, message: alert.message, priority: alert.priority, alert_id: alert.id },
      });
      await postJson(url, alert.id, body, timeoutMs);
    },
  };
}
