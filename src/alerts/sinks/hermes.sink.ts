import { postJson, type AlertSink } from './sink.js';

/** Creates the HERMES sink: `POST {HERMES_URL}/notify` with the message, priority and channel. */
export function hermesSink(baseUrl: string, timeoutMs: number): AlertSink {
  const url = `${baseUrl}/notify`;
  return {
    name: 'hermes',
    async send(alert) {
      const body = JSON.stringify({ message: alert.message, priority: alert.priority, channel: alert.channel });
      await postJson(url, alert.id, body, timeoutMs);
    },
  };
}
