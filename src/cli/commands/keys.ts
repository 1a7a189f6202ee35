import type { Command } from 'commander';
import { AuditAction } from '../../audit/audit.types.js';
import { generateMasterKey } from '../../crypto/key-material.js';
import { listMasterKeys } from '../../crypto/master-keys.repository.js';
import { rotateMasterKey } from '../../crypto/master-key-rotation.js';
import { cliCaller, parseInteger, printJson, printTable, withVault } from '../context.js';

export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('Manage master keys');

  keys
    .command('rotate')
    .description('Add a new master key, make it current and re-wrap every data key under it while servers keep serving')
    .option('--batch-size <rows>', 'rows re-wrapped per transaction', parseInteger, 200)
    .option('--settle-ms <ms>', 'wait before the final pass, so writes begun under the old key are caught', parseInteger, 2000)
    .option('--json', 'print JSON')
    .action(async (options: { batchSize: number; settleMs: number; json?: boolean }) => {
      await withVault(async (vault) => {
        const result = await rotateMasterKey(vault.db, vault.keyring, vault.config.keySource, vault.clock, {
          batchSize: options.batchSize,
          settleMs: options.settleMs,
        });
        const caller = cliCaller();
        await vault.audit.record({
          credentialName: '*',
          action: AuditAction.keyRotated,
          actor: caller.actor,
          target: `key:${result.newKeyId}`,
          success: true,
          details: { new_key_id: result.newKeyId, rewrapped: result.rewrapped, retired_key_ids: result.retiredKeyIds },
        });
        if (options.json) return printJson(result);
        process.stdout.write(
          `master key ${result.newKeyId} is current; ${result.rewrapped} values re-wrapped; retired ${result.retiredKeyIds.join(', ') || 'none'}\n`,
        );
        if (vault.config.keySource.kind === 'file') {
          process.stdout.write(`The retired keys stay in ${vault.config.keySource.path}; remove their lines once backups made before now have expired.\n`);
        }
      });
    });

  keys
    .command('list')
    .description('List master keys by id and state (never the keys)')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withVault(async (vault) => {
        const records = await listMasterKeys(vault.db.kysely);
        if (options.json) return printJson(records.map(({ kdfSalt: _salt, ...record }) => record));
        printTable(
          ['KEY ID', 'STATE', 'SOURCE', 'CHECK VALUE', 'CREATED', 'RETIRED'],
          records.map((record) => [record.keyId, record.state, record.source, `${record.checkValue.slice(0, 12)}...`, record.createdAt, record.retiredAt]),
        );
      });
    });

  keys
    .command('generate')
    .description('Print a new random 256-bit master key in base64, for AEGIS_MASTER_KEY or a key file')
    .action(() => {
      process.stdout.write(`${generateMasterKey().toString('base64')}\n`);
    });
}
