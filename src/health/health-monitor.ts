import { markAudited } from '../audit/audited-errors.js';
import { EnvelopeError, KeyUnavailableError } from '../crypto/keyring.js';
import { AegisError, ConflictError } from '../lib/errors.js';
import type { Credential } from '../registry/credential.types.js';
import { loadReachableCredential, requireReachable } from '../registry/credential-access.js';
import { credentialFromRow, findCredentialByName } from '../registry/credentials.repository.js';
import { callerReaches, type Caller } from '../tokens/caller.js';
import { healthDashboard, expiringCredentials, type DashboardPage, type Dashboard, type ExpiringList } from './dashboard.js';
import { evaluateExpiry } from './expiry.js';
import { CheckBatcher, recordChecks } from './check-recorder.js';
import { pruneHealthChecks } from './check-retention.js';
import { listHealthChecks, type HealthCheckEntry } from './health-checks.repository.js';
import type { CheckAllResult, ExpiryRun, HealthCheckResult, HealthMonitorDeps } from './health.types.js';
import { runProviderTest, testLimitMs, type ProviderTestOutcome } from './provider-test.js';

/** A credential with the envelope and number of its current version, as a check needs them. */
interface CheckTarget {
  credential: Credential;
  version: number | null;
  envelope: string | null;
}

/** Most checks written in one transaction; each binds about 20 parameters, far below either database's limit. */
const maxBatch = 200;
/** How long a finished check may wait for others to share its commit, in milliseconds. */
const batchLingerMs = 10;

/**
 * Runs health checks (one credential, or all of them a bounded number at a time), moves credentials
 * between `failed` and their expiry status, raises `health_check_failed`, `credential_expiring` and
 * `credential_expired` alerts once per condition, and serves the dashboard and expiring list.
 */
export class HealthMonitor {
  readonly #deps: HealthMonitorDeps;
  #checkAllRunning = false;

  constructor(deps: HealthMonitorDeps) {
    this.#deps = deps;
  }

  /** Tests one credential's current value at its provider and records the check. */
  async checkOne(caller: Caller, name: string): Promise<HealthCheckResult> {
    try {
      const loaded = await this.#loadTarget(name);
      requireReachable(caller, name, loaded?.credential);
      const target = loaded!;
      const outcome = await this.#test(target);
      const [result] = await recordChecks(this.#deps, caller, [{ credential: target.credential, version: target.version, outcome, trigger: 'manual' }]);
      return result!;
    } catch (error) {
      await this.#auditFailure(caller, 'tested', name, error);
      throw error;
    }
  }

  /**
   * Tests every non-retired credential the caller reaches, `healthConcurrency` at a time. Credentials are
   * read a page at a time and each value is decrypted just before its test, so besides the details it
   * returns, memory contains about one page of rows and `healthConcurrency` values. Runs side by side
   * multiplied the requests sent to every provider, and four of them with 20,000 credentials raised the
   * server's memory by 240 MB. So this process runs one at a time, and a second run gets 409.
   */
  async checkAll(caller: Caller): Promise<CheckAllResult> {
    if (this.#checkAllRunning) {
      throw new ConflictError('check_all_in_progress', "A check of every credential is already running in this process. Retry after it has finished, or read its results as each credential's latest health check.");
    }
    this.#checkAllRunning = true;
    try {
      return await this.#checkAll(caller);
    } finally {
      this.#checkAllRunning = false;
    }
  }

  async #checkAll(caller: Caller): Promise<CheckAllResult> {
    const feed = new CheckFeed((after, limit) => this.#loadPage(after, limit), Math.max(100, 2 * this.#deps.config.healthConcurrency));
    const batcher = new CheckBatcher((checks) => recordChecks(this.#deps, caller, checks), { maxBatch, lingerMs: batchLingerMs });
    const details: CheckAllResult['details'] = [];
    // A failed write (the database or the audit log) ends the run: the other workers stop taking credentials.
    let stopped = false;
    const worker = async () => {
      for (let target = await feed.next(); target !== undefined && !stopped; target = await feed.next()) {
        if (!callerReaches(caller, target.credential)) continue;
        const outcome = await this.#test(target);
        details.push({ name: target.credential.name, status: outcome.status, response_time_ms: outcome.responseTimeMs, error: outcome.error });
        try {
          await batcher.submit({ credential: target.credential, version: target.version, outcome, trigger: 'check_all' });
        } catch (error) {
          stopped = true;
          throw error;
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: this.#deps.config.healthConcurrency }, worker));
    } finally {
      stopped = true;
    }
    await batcher.flush();
    details.sort((a, b) => compareNames(a.name, b.name));

    const summary = {
      checked: details.length,
      healthy: details.filter((detail) => detail.status === 'healthy').length,
      unhealthy: details.filter((detail) => detail.status === 'unhealthy').length,
    };
    await this.#deps.audit.record({ credentialName: '*', action: 'checked_all', actor: caller.actor, ipAddress: caller.ipAddress, success: true, details: summary });
    this.#deps.log.info({ ...summary, unknown: summary.checked - summary.healthy - summary.unhealthy, actor: caller.actor }, 'health checks finished');
    return { ...summary, details };
  }

  /** Lists a credential's stored checks, newest first, and records the read in the audit log. */
  async history(caller: Caller, name: string, page: { limit: number; offset: number }): Promise<{ credential: Credential; checks: HealthCheckEntry[]; total: number }> {
    try {
      return await this.#deps.db.kysely.transaction().execute(async (trx) => {
        const credential = await loadReachableCredential(trx, caller, name);
        const { checks, total } = await listHealthChecks(trx, credential.id, page);
        await this.#deps.audit.recordIn(trx, {
          credentialId: credential.id,
          credentialName: credential.name,
          action: 'health_checks_read',
          actor: caller.actor,
          ipAddress: caller.ipAddress,
          success: true,
          details: { returned: checks.length, total },
        });
        return { credential, checks, total };
      });
    } catch (error) {
      await this.#auditFailure(caller, 'health_checks_read', name, error);
      throw error;
    }
  }

  /** Removes health checks older than `AEGIS_HEALTH_CHECK_RETENTION_DAYS`, except each credential's newest, and returns how many. */
  retention(): Promise<number> {
    return pruneHealthChecks(this.#deps, this.#deps.config.healthCheckRetentionDays);
  }

  /** Moves stored statuses to expiring or expired as time passes and raises the expiry alerts that are due. */
  evaluateExpiry(): Promise<ExpiryRun> {
    return evaluateExpiry(this.#deps);
  }

  /** Counts by status, a page of credentials with their colour, and the newest alerts, limited to what the caller reaches. */
  async dashboard(caller: Caller, page: DashboardPage): Promise<Dashboard> {
    const dashboard = await healthDashboard(this.#deps, caller, page);
    await this.#deps.audit.record({
      credentialName: '*',
      action: 'dashboard_read',
      actor: caller.actor,
      ipAddress: caller.ipAddress,
      success: true,
      details: { returned: dashboard.credentials.length, status: page.status ?? null },
    });
    return dashboard;
  }

  /** Credentials that expire within `thresholdHours`, or within their own alert threshold when it is undefined. */
  async expiring(caller: Caller, query: { thresholdHours: number | undefined; limit: number; offset: number }): Promise<ExpiringList> {
    const list = await expiringCredentials(this.#deps, caller, query);
    await this.#deps.audit.record({
      credentialName: '*',
      action: 'expiring_read',
      actor: caller.actor,
      ipAddress: caller.ipAddress,
      success: true,
      details: { threshold_hours: query.thresholdHours ?? null, count: list.count },
    });
    return list;
  }

  /** Decrypts the value and runs the provider test; a value that cannot be decrypted makes the check unhealthy. */
  async #test(target: CheckTarget): Promise<ProviderTestOutcome> {
    const { credential } = target;
    try {
      const value = await this.#open(target);
      return await runProviderTest(this.#deps.adapters[credential.provider], credential, value, testLimitMs(credential, this.#deps.config.providerTimeoutMs));
    } catch (error) {
      if (!(error instanceof AegisError)) throw error;
      return { status: 'unhealthy', responseTimeMs: null, details: {}, error: error.message };
    }
  }

  /** Decrypts the current version's value; null when AEGIS stores none (the provider keeps it). */
  async #open(target: CheckTarget): Promise<string | null> {
    if (target.envelope === null || target.version === null) return null;
    const { credential, version } = target;
    try {
      return await this.#deps.keyring.open(target.envelope, { credentialId: credential.id, version }, this.#deps.db.kysely);
    } catch (error) {
      if (error instanceof KeyUnavailableError) {
        throw new AegisError(500, 'key_unavailable', `version ${version} is sealed under master key ${error.keyId}, which this process does not hold`);
      }
      if (error instanceof EnvelopeError) {
        throw new AegisError(500, 'decryption_failed', `the stored value of version ${version} failed to decrypt; restore it from a backup`);
      }
      throw error;
    }
  }

  #targetQuery() {
    return this.#deps.db.kysely
      .selectFrom('aegis_credentials as c')
      .leftJoin('aegis_credential_versions as v', (join) => join.onRef('v.credential_id', '=', 'c.id').on('v.is_current', '=', true))
      .selectAll('c')
      .select(['v.version as current_version', 'v.encrypted_value as current_envelope']);
  }

  async #loadTarget(name: string): Promise<CheckTarget | undefined> {
    const row = await this.#targetQuery().where('c.name', '=', name).executeTakeFirst();
    return row ? { credential: credentialFromRow(row), version: row.current_version, envelope: row.current_envelope } : undefined;
  }

  /** The next page of non-retired credentials after `after` in name order (keyset paging, so each page is one index range). */
  async #loadPage(after: string | null, limit: number): Promise<CheckTarget[]> {
    let query = this.#targetQuery().where('c.status', '!=', 'retired');
    if (after !== null) query = query.where('c.name', '>', after);
    const rows = await query.orderBy('c.name').limit(limit).execute();
    return rows.map((row) => ({ credential: credentialFromRow(row), version: row.current_version, envelope: row.current_envelope }));
  }

  async #auditFailure(caller: Caller, action: string, name: string, error: unknown): Promise<void> {
    const credential = await findCredentialByName(this.#deps.db.kysely, name).catch(() => undefined);
    await this.#deps.audit.record({
      // A limited token reads its own actor's entries, so the id of a credential it does not reach stays out.
      credentialId: credential !== undefined && callerReaches(caller, credential) ? credential.id : null,
      credentialName: name,
      action,
      actor: caller.actor,
      ipAddress: caller.ipAddress,
      success: false,
      errorMessage: error instanceof AegisError ? `${error.code}: ${error.message}` : 'internal error',
    });
    markAudited(error);
  }
}

/** Orders names by UTF-16 code unit, so the result does not depend on the process locale. */
function compareNames(a: string, b: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

/**
 * Hands out check targets one at a time to concurrent workers, loading the next page only when the
 * current one is used up. Only one page load runs at a time.
 */
class CheckFeed {
  readonly #load: (after: string | null, limit: number) => Promise<CheckTarget[]>;
  readonly #pageSize: number;
  #buffer: CheckTarget[] = [];
  #after: string | null = null;
  #exhausted = false;
  #loading: Promise<void> | null = null;

  constructor(load: (after: string | null, limit: number) => Promise<CheckTarget[]>, pageSize: number) {
    this.#load = load;
    this.#pageSize = pageSize;
  }

  async next(): Promise<CheckTarget | undefined> {
    while (this.#buffer.length === 0 && !this.#exhausted) {
      this.#loading ??= this.#fill().finally(() => {
        this.#loading = null;
      });
      await this.#loading;
    }
    return this.#buffer.shift();
  }

  async #fill(): Promise<void> {
    const page = await this.#load(this.#after, this.#pageSize);
    if (page.length < this.#pageSize) this.#exhausted = true;
    if (page.length > 0) this.#after = page[page.length - 1]!.credential.name;
    this.#buffer.push(...page);
  }
}
