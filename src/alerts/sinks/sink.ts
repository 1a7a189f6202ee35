/** An alert as the sinks send it, read from the outbox. */
export interface OutgoingAlert {
  id: string;
  alertType: string;
  credentialName: string;
  message: string;
  priority: string;
  channel: string;
  details: Record<string, unknown>;
  /** ISO-8601 UTC. */
  createdAt: string;
}

/** A destination for alerts. `send` resolves once the receiver responded with 2xx and rejects otherwise. */
export interface AlertSink {
  /** Stored in `aegis_alert_deliveries.sink`, so it must stay the same across restarts. */
  readonly name: string;
  send(alert: OutgoingAlert): Promise<void>;
}

/** A failed delivery. The message names the status or network error and never contains a response body. */
export class SinkError extends Error {
  override name = 'SinkError';
}

/**
 * POSTs a JSON body with an `idempotency-key` of the alert id, so a receiver can drop the copy sent
 * again after a crash between its 2xx and AEGIS's commit. Redirects are not followed and count as failures.
 */
export async function postJson(url: string, alertId: string, body: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': alertId, ...headers },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new SinkError(describeFetchError(error, timeoutMs));
  }
  // The body is not read: nothing in it is needed, and cancelling it releases the connection.
  await response.body?.cancel().catch(() => {});
  if (response.status < 200 || response.status > 299) throw new SinkError(`the receiver responded with HTTP ${response.status}`);
}

function describeFetchError(error: unknown, timeoutMs: number): string {
  const name = (error as { name?: string }).name;
  if (name === 'TimeoutError' || name === 'AbortError') return `the request timed out after ${timeoutMs} ms`;
  const code = (error as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === 'string' ? `the request failed (${code})` : 'the request failed';
}
