import { AliasNode, SelectQueryNode, TableNode, type KyselyPlugin, type OperationNode, type PluginTransformQueryArgs, type PluginTransformResultArgs, type QueryId, type QueryResult, type RootOperationNode, type UnknownRow } from 'kysely';
import type { Db } from '../../src/db/database.js';
import type { RotationDeps } from '../../src/rotation/rotation-deps.js';
import type { TestVault } from './test-vault.js';

/** Builds the rotation dependencies of the test vault over `db`, for calling rollback and recovery with a database of the test's own. */
export function rotationDepsOn(t: TestVault, db: Db, owner: string): RotationDeps {
  return {
    db,
    clock: t.clock,
    keyring: t.vault.keyring,
    audit: t.vault.audit,
    log: t.vault.log,
    adapters: t.vault.adapters,
    owner,
    leaseTtlMs: t.config.rotationLeaseSeconds * 1000,
    unreleasedLeases: new Map(),
    attempts: t.config.rotationAttempts,
  };
}

/** Counts the rows of `aegis_credential_versions` that queries read with their ciphertext (`encrypted_value`). */
export class VersionValueReads implements KyselyPlugin {
  count = 0;
  readonly #versionQueries = new WeakSet<QueryId>();

  transformQuery({ node, queryId }: PluginTransformQueryArgs): RootOperationNode {
    if (SelectQueryNode.is(node) && (node.from?.froms ?? []).some(readsVersions)) this.#versionQueries.add(queryId);
    return node;
  }

  async transformResult({ result, queryId }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    if (this.#versionQueries.has(queryId)) this.count += result.rows.filter((row) => 'encrypted_value' in row).length;
    return result;
  }
}

function readsVersions(from: OperationNode): boolean {
  const table = AliasNode.is(from) ? from.node : from;
  return TableNode.is(table) && table.table.identifier.name === 'aegis_credential_versions';
}
