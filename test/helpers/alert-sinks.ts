import crypto from 'node:crypto';
import { enqueueAlert } from '../../src/alerts/outbox.repository.js';
import type { AlertType } from '../../src/alerts/alert-types.js';
import { sendJson, startHttpStub, type HttpStub, type RecordedRequest } from './http-stub.js';
import type { TestVault } from './test-vault.js';

/**
 * A stand-in alert receiver on 127.0.0.1 that responds with 200, or with 503 while `down` is true.
 * While `holding` is true it keeps requests unanswered until `release()` responds to them with 503.
 */
export interface SinkStub {
  stub: HttpStub;
  down: boolean;
  holding: boolean;
  /** Runs as each request arrives, before its response (e.g. to move a test clock). */
  onRequest?: () => void;
  /** Responds to the held requests with 503. */
  release(): void;
  /** Resolves once `count` requests have arrived, held ones included. */
  received(count: number): Promise<void>;
  /** Every request with the status of its response. */
  exchanges: Array<{ request: RecordedRequest; status: number }>;
  /** How often each alert id (the `idempotency-key` header) got a 200 response. */
  deliveredCounts(): Map<string, number>;
}

export async function startSinkStub(): Promise<SinkStub> {
  const exchanges: SinkStub['exchanges'] = [];
  const heldResponses: Array<() => void> = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  let arrived = 0;
  const sink: SinkStub = {
    stub: undefined as unknown as HttpStub,
    down: false,
    holding: false,
    exchanges,
    release() {
      for (const answer of heldResponses.splice(0)) answer();
    },
    received(count) {
      if (arrived >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    deliveredCounts() {
      const counts = new Map<string, number>();
      for (const entry of exchanges) {
        if (entry.status !== 200) continue;
        const key = String(entry.request.headers['idempotency-key']);
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      return counts;
    },
  };
  sink.stub = await startHttpStub((request, response) => {
    sink.onRequest?.();
    arrived += 1;
    for (const waiter of waiters.filter((entry) => arrived >= entry.count)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
    const answer = (status: number) => {
      exchanges.push({ request, status });
      sendJson(response, status, status === 200 ? { ok: true } : { error: 'unavailable' });
    };
    if (sink.holding) heldResponses.push(() => answer(503));
    else answer(sink.down ? 503 : 200);
  });
  return sink;
}

/** HERMES, the event bus and one webhook, each a stub, with the environment settings that point a vault at them. */
export interface SinkStubs {
  hermes: SinkStub;
  eventBus: SinkStub;
  webhook: SinkStub;
  webhookSecret: string;
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startSinkStubs(): Promise<SinkStubs> {
  const hermes = await startSinkStub();
  const eventBus = await startSinkStub();
  const webhook = await startSinkStub();
  const webhookSecret = crypto.randomBytes(24).toString('hex');
  return {
    hermes,
    eventBus,
    webhook,
    webhookSecret,
    env: {
      HERMES_URL: hermes.stub.url,
      EVENT_BUS_URL: eventBus.stub.url,
      AEGIS_WEBHOOKS: JSON.stringify([{ url: `${webhook.stub.url}/hook`, secret: webhookSecret }]),
    },
    async close() {
      await Promise.all([hermes.stub.close(), eventBus.stub.close(), webhook.stub.close()]);
    },
  };
}

/** Writes an alert to the outbox at the vault clock's time, with a new condition key; returns its id. */
export async function raiseAlert(
  t: TestVault,
  type: AlertType,
  credentialName: string,
  details: Record<string, unknown> = {},
): Promise<string> {
  const conditionKey = `${type}:${credentialName}:${crypto.randomUUID()}`;
  await enqueueAlert(
    t.vault.db.kysely,
    { type, conditionKey, credentialId: null, credentialName, message: `test alert ${type} for '${credentialName}'`, details },
    t.clock.now(),
  );
  const row = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').select('id').where('condition_key', '=', conditionKey).executeTakeFirstOrThrow();
  return row.id;
}
