import crypto from 'node:crypto';
import type { Clock } from '../../lib/clock.js';
import { postJson, type AlertSink } from './sink.js';

/**
 * Creates a generic webhook sink: it POSTs the alert as JSON, signed with HMAC-SHA256 under the webhook's secret.
 * `x-aegis-timestamp` is the send time in Unix seconds and `x-aegis-signature` is
 * `sha256=<hex HMAC of "<timestamp>.<body>">`, so a receiver can reject altered and replayed bodies.
 */
export function webhookSink(webhook: { url: string; secret: string }, timeoutMs: number, clock: Clock): AlertSink {
  return {
    name: webhookSinkName(webhook.url),
    async send(alert) {
      const body = JSON.stringify({
        id: alert.id,
        alert_type: alert.alertType,
        credential_name: alert.credentialName,
        message: alert.message,
        priority: alert.priority,
        channel: alert.channel,
        details: alert.details,
        created_at: alert.createdAt,
      });
      const timestamp = String(Math.floor(clock.now().getTime() / 1000));
      await postJson(webhook.url, alert.id, body, timeoutMs, {
        'x-aegis-timestamp': timestamp,
        'x-aegis-signature': signWebhookBody(webhook.secret, timestamp, body),
      });
    },
  };
}

/** Computes the `x-aegis-signature` header value for a body sent at `timestamp` (Unix seconds). */
export function signWebhookBody(secret: string, timestamp: string, body: string): string {
  return `sha256=${crypto.createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * Names a webhook by its host and a hash of its URL. The full URL is not stored, because webhook URLs
 * often carry a token in their path. The hash keeps two webhooks on one host apart and stays the
 * same when the list is reordered.
 */
export function webhookSinkName(url: string): string {
  const hash = crypto.createHash('sha256').update(url).digest('hex').slice(0, 12);
  return `webhook:${new URL(url).host}:${hash}`;
}
