import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { HealthStatus } from '../health/health.types.js';
import type { DatabaseState } from './database-state.js';

/** The outcome label of `aegis_rotations_total`. */
export type RotationOutcomeLabel = 'success' | 'failure';

/** Receiver of each rotation's outcome, called by the rotation engine. */
export interface RotationMetrics {
  recordRotation(trigger: string, outcome: RotationOutcomeLabel, durationMs: number): void;
}

/** Receiver of each stored health check's result, called by the health monitor. */
export interface HealthCheckMetrics {
  recordHealthCheck(result: string): void;
}

/** The route label of requests that matched no route, so probes of random paths add one series, not one per path. */
export const UNMATCHED_ROUTE = 'unmatched';

/** HTTP methods kept as their own label value; anything else is counted as `OTHER`. */
const knownMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The triggers of `RotateRequest`. A trigger added there still counts, as a series that appears at its first rotation. */
const rotationTriggers = ['manual', 'emergency', 'scheduled', 'expiry'] as const;
const rotationOutcomes: ReadonlyArray<RotationOutcomeLabel> = ['success', 'failure'];
const healthResults: ReadonlyArray<HealthStatus> = ['healthy', 'unhealthy', 'unknown'];

/** Request durations, in seconds: 1 ms to 10 s. Provider calls (rotations, tests) make the long tail. */
const requestBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Rotation durations, in seconds: an env file write takes milliseconds, while a vendor API with retries can take minutes. */
const rotationBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * The Prometheus metrics of one vault, on a registry of its own, so two vaults in one process (tests, or
 * a CLI command next to a server) never share a series or collide on registration. Counters move when the
 * services report events; the gauges that describe stored state are set from `DatabaseState` before each
 * scrape. No label carries a credential name, a value or a raw URL, so the number of series stays bounded.
 */
export class VaultMetrics implements RotationMetrics, HealthCheckMetrics {
  readonly registry = new Registry();
  #defaultMetricsStarted = false;

  readonly #httpRequests = new Counter({
    name: 'aegis_http_requests_total',
    help: 'HTTP responses sent, by request method, route pattern and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });

  readonly #httpDuration = new Histogram({
    name: 'aegis_http_request_duration_seconds',
    help: 'Time from receiving a request to sending its response, by method and route pattern.',
    labelNames: ['method', 'route'] as const,
    buckets: requestBuckets,
    registers: [this.registry],
  });

  readonly #rotations = new Counter({
    name: 'aegis_rotations_total',
    help: 'Rotations that ran the rotation protocol to its end, by trigger and outcome (success or failure).',
    labelNames: ['trigger', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly #rotationDuration = new Histogram({
    name: 'aegis_rotation_duration_seconds',
    help: 'Duration of rotations from taking the lease until the outcome is known, retries included (duration_ms of the rotation history).',
    labelNames: ['outcome'] as const,
    buckets: rotationBuckets,
    registers: [this.registry],
  });

  readonly #healthChecks = new Counter({
    name: 'aegis_health_checks_total',
    help: 'Health checks stored by this process, by result (healthy, unhealthy or unknown).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly #databaseUp = new Gauge({
    name: 'aegis_database_up',
    help: '1 when every database read of the last scrape succeeded, 0 when one failed.',
    registers: [this.registry],
  });

  readonly #credentials = new Gauge({
    name: 'aegis_credentials',
    help: 'Credentials by status as of the scrape (the status the API reports, expiry included).',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  readonly #alertQueueDepth = new Gauge({
    name: 'aegis_alert_queue_depth',
    help: 'Alerts waiting for delivery to each configured sink.',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  readonly #auditEntries = new Counter({
    name: 'aegis_audit_entries_total',
    help: 'Audit entries written to the vault by every process since it was created (the hash chain head sequence).',
    registers: [this.registry],
  });

  readonly #schedulerLeader = new Gauge({
    name: 'aegis_scheduler_leader',
    help: '1 when this process is the scheduler leader, 0 otherwise.',
    registers: [this.registry],
  });

  constructor() {
    // Every known series starts at zero, so rate() and alert rules see the first event instead of a new series.
    for (const trigger of rotationTriggers) {
      for (const outcome of rotationOutcomes) this.#rotations.inc({ trigger, outcome }, 0);
    }
    for (const outcome of rotationOutcomes) this.#rotationDuration.zero({ outcome });
    for (const result of healthResults) this.#healthChecks.inc({ result }, 0);
  }

  /** The content type of `render`'s output: Prometheus text format 0.0.4. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Counts one completed request. `route` is the route pattern, or undefined when no route matched. */
  recordRequest(method: string, route: string | undefined, status: number, durationMs: number): void {
    const methodLabel = knownMethods.has(method) ? method : 'OTHER';
    const routeLabel = route ?? UNMATCHED_ROUTE;
    this.#httpRequests.inc({ method: methodLabel, route: routeLabel, status: String(status) });
    this.#httpDuration.observe({ method: methodLabel, route: routeLabel }, durationMs / 1000);
  }

  recordRotation(trigger: string, outcome: RotationOutcomeLabel, durationMs: number): void {
    this.#rotations.inc({ trigger, outcome });
    this.#rotationDuration.observe({ outcome }, durationMs / 1000);
  }

  recordHealthCheck(result: string): void {
    this.#healthChecks.inc({ result });
  }

  /**
   * Sets the gauges read at scrape time and returns the exposition text. `state` is null when the
   * database could not be read: then `aegis_database_up` is 0, the credential and alert queue gauges are
   * left out rather than repeating an earlier scrape's values, and the audit counter keeps its last value.
   */
  async render(state: DatabaseState | null, isSchedulerLeader: boolean): Promise<string> {
    this.#startDefaultMetrics();
    this.#credentials.reset();
    this.#alertQueueDepth.reset();
    this.#schedulerLeader.set(isSchedulerLeader ? 1 : 0);
    this.#databaseUp.set(state ? 1 : 0);
    if (state) {
      for (const [status, count] of Object.entries(state.credentialsByStatus)) this.#credentials.set({ status }, count);
      for (const [sink, depth] of Object.entries(state.alertQueueDepth)) this.#alertQueueDepth.set({ sink }, depth);
      // The head sequence only grows (pruning keeps it), so the counter is set to it rather than incremented.
      this.#auditEntries.reset();
      this.#auditEntries.inc(state.auditEntries);
    }
    return this.registry.metrics();
  }

  /**
   * Adds Node's process metrics (CPU, memory, event loop lag, GC) to this registry at the first scrape.
   * prom-client starts an event-loop-delay monitor and a GC observer for each registry and never stops
   * them, so vaults that are never scraped (CLI commands, most tests) do not start any.
   */
  #startDefaultMetrics(): void {
    if (this.#defaultMetricsStarted) return;
    this.#defaultMetricsStarted = true;
    collectDefaultMetrics({ register: this.registry });
  }
}
