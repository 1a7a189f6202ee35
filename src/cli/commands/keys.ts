import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { AuditAction } from '../../audit/audit.types.js';
import { collectKeys } from '../../backup/collect-keys.js';
import { formatKeyFile, missingCheckpointSigners, missingFromBackup } from '../../backup/key-restore.js';
import { backupLocationProblem, databaseFileProblem } from '../../backup/locations.js';
import { readRecoveryPassphrase } from '../../backup/recovery-passphrase.js';
import { rejectExisting, writeSecretFile } from '../../backup/secret-file.js';
import { readStoredKeyChecks } from '../../backup/stored-key-checks.js';
import { loadConfig, type Config } from '../../config/config.js';
import { KeyBackupError, RECOVERY_PASSPHRASE_VARIABLE, openKeyBackup, sealKeyBackup, type KeyBackupContents } from '../../crypto/key-backup.js';
import { generateMasterKey, rejectWeakPassphrase } from '../../crypto/key-material.js';
import { listMasterKeys, type MasterKeyRecord } from '../../crypto/master-keys.repository.js';
import { rotateMasterKey } from '../../crypto/master-key-rotation.js';
import { StartupError } from '../../lib/errors.js';
import { CommandError, cliCaller, integerAtLeast, integerBetween, printJson, printTable, withVault } from '../context.js';
import { recordWithoutVault } from '../database-audit.js';

export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('Manage master keys');

  keys
    .command('rotate')
    .description('Add a new master key, make it current and re-wrap every data key under it while servers keep serving')
    .option('--batch-size <rows>', 'rows re-wrapped per transaction', integerAtLeast(1), 200)
    // Node's timers hold at most 2^31-1 ms and fire after 1 ms when given more.
    .option('--settle-ms <ms>', 'wait before the final pass, so writes begun under the old key are caught', integerBetween(0, 2_147_483_647), 2000)
    .option('--json', 'print JSON')
    .action(async (options: { batchSize: number; settleMs: number; json?: boolean }) => {
      await withVault(async (vault) => {
        const caller = cliCaller();
        const result = await rotateMasterKey(vault.db, vault.keyring, vault.config.keySource, vault.clock, {
          batchSize: options.batchSize,
          settleMs: options.settleMs,
          // Audited as soon as the new key is current, so a rotation stopped part-way is on record too.
          onKeyCurrent: async (keyId) => {
            await vault.audit.record({
              credentialName: '*',
              action: AuditAction.keyRotationStarted,
              actor: caller.actor,
              target: `key:${keyId}`,
              success: true,
              details: { new_key_id: keyId },
            });
          },
        });
        await vault.audit.record({
          credentialName: '*',
          action: AuditAction.keyRotated,
          actor: caller.actor,
          target: `key:${result.newKeyId}`,
          success: true,
          details: { new_key_id: result.newKeyId, rewrapped: result.rewrapped, retired_key_ids: result.retiredKeyIds },
        });
        if (options.json) return printJson({ new_key_id: result.newKeyId, rewrapped: result.rewrapped, retired_key_ids: result.retiredKeyIds });
        process.stdout.write(
          `master key ${result.newKeyId} is current; ${result.rewrapped} values re-wrapped; retired ${result.retiredKeyIds.join(', ') || 'none'}\n`,
        );
        if (vault.config.keySource.kind === 'file') {
          process.stdout.write(
            `The retired keys stay in ${vault.config.keySource.path}. Keep them while backups made before now may be restored, and for as long as the audit log has checkpoints they signed (pruned entries): aegis audit verify needs those keys.\n`,
          );
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
        if (options.json) return printJson({ keys: records.map(masterKeyView) });
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

  registerBackupCommand(keys);
  registerRestoreCommand(keys);
}

/** Converts a master key record to snake_case JSON, without its scrypt salt. */
function masterKeyView(record: MasterKeyRecord) {
  return {
    key_id: record.keyId,
    state: record.state,
    source: record.source,
    check_value: record.checkValue,
    created_at: record.createdAt,
    retired_at: record.retiredAt,
  };
}

function registerBackupCommand(keys: Command): void {
  keys
    .command('backup')
    .description(
      `Write every master key to a file sealed with AES-256-GCM under a key derived with scrypt from a recovery passphrase (${RECOVERY_PASSPHRASE_VARIABLE} or --passphrase-file); store the file apart from the data`,
    )
    .requiredOption('--to <file>', 'the backup file to write (mode 0600), outside the data folder and not beside the SQLite file or the key file')
    .option('--passphrase-file <file>', `read the recovery passphrase from this file (mode 0600) instead of ${RECOVERY_PASSPHRASE_VARIABLE}`)
    .option('--force', 'replace the file if it exists')
    .option('--json', 'print JSON')
    .action(async (options: { to: string; passphraseFile?: string; force?: boolean; json?: boolean }) => {
      const config = loadConfig();
      const passphrase = readRecoveryPassphrase(options.passphraseFile);
      rejectWeakPassphrase(passphrase, options.passphraseFile ?? RECOVERY_PASSPHRASE_VARIABLE);
      checkOutputFolder(options.to);
      const problem = backupLocationProblem(options.to, config, { outsideDataDir: true, apartFromSqliteFile: true, apartFromKeyFile: true });
      if (problem) throw new CommandError(`${problem} Nothing was written.`);
      rejectExisting(options.to, options.force === true);

      await withVault(async (vault) => {
        const { keys: collected, missingRetired } = await withBackupErrors(() => collectKeys(vault.db.kysely, vault.keyring));
        const text = await withBackupErrors(async () => sealKeyBackup(collected, passphrase, vault.clock.now()));
        writeSecretFile(options.to, text, options.force === true);
        const summary = collected.map((entry) => ({ key_id: entry.keyId, state: entry.state }));
        await vault.audit.record({
          credentialName: '*',
          action: AuditAction.keysBackedUp,
          actor: cliCaller().actor,
          target: `file:${path.resolve(options.to)}`,
          success: true,
          details: { keys: summary, missing_retired_key_ids: missingRetired },
        });
        if (options.json) return printJson({ file: path.resolve(options.to), keys: summary, missing_retired_key_ids: missingRetired });
        process.stdout.write(`wrote ${collected.length} master key(s) (${summary.map((entry) => `${entry.key_id} ${entry.state}`).join(', ')}) to ${options.to}, sealed, mode 0600\n`);
        if (missingRetired.length > 0) {
          process.stdout.write(`The key source no longer contains the retired key(s) ${missingRetired.join(', ')}; database backups made before they were retired cannot be opened with this file, and aegis audit verify fails on audit checkpoints they signed (entries pruned before they were retired).\n`);
        }
        process.stdout.write('Store the file and the recovery passphrase apart from each other and from the data, e.g. on another machine or in a safe.\n');
      }, config);
    });
}

function registerRestoreCommand(keys: Command): void {
  keys
    .command('restore')
    .description('Open a key backup with its recovery passphrase and write the keys as a key file (mode 0600) for AEGIS_MASTER_KEY_FILE, after checking them against the configured database when it is reachable')
    .requiredOption('--from <file>', 'the file `aegis keys backup` wrote')
    .requiredOption('--to-key-file <file>', 'the key file to write')
    .option('--passphrase-file <file>', `read the recovery passphrase from this file (mode 0600) instead of ${RECOVERY_PASSPHRASE_VARIABLE}`)
    .option('--force', 'replace the key file if it exists')
    .option('--no-database-check', 'write the key file without comparing its keys with the configured database')
    .option('--json', 'print JSON')
    .action(async (options: { from: string; toKeyFile: string; passphraseFile?: string; force?: boolean; databaseCheck: boolean; json?: boolean }) => {
      const passphrase = readRecoveryPassphrase(options.passphraseFile);
      let text: string;
      try {
        text = fs.readFileSync(options.from, 'utf8');
      } catch {
        throw new CommandError(`Key backup ${options.from} does not exist or cannot be read.`);
      }
      checkOutputFolder(options.toKeyFile);
      const overwritesDatabase = databaseFileProblem(options.toKeyFile, loadConfig());
      if (overwritesDatabase) throw new CommandError(`${overwritesDatabase} Nothing was written.`);
      rejectExisting(options.toKeyFile, options.force === true);
      const contents = await withBackupErrors(async () => openKeyBackup(text, passphrase), `Could not open key backup ${options.from}: `);

      const check = options.databaseCheck ? await checkAgainstDatabase(contents) : undefined;
      writeSecretFile(options.toKeyFile, formatKeyFile(contents, new Date()), options.force === true);

      const keyFile = path.resolve(options.toKeyFile);
      const summary = contents.keys.map((entry) => ({ key_id: entry.keyId, state: entry.state }));
      const audit = check?.matched
        ? await recordWithoutVault(
            { credentialName: '*', action: AuditAction.keysRestored, target: `file:${keyFile}`, success: true, details: { keys: summary, backup_created_at: contents.createdAt } },
            'restore',
          )
        : 'not written: the keys were not checked against the database';
      const checkText = check?.text ?? 'not checked (--no-database-check)';
      const dataDir = path.resolve(loadConfig().dataDir);
      const insideData = keyFile.startsWith(`${dataDir}${path.sep}`);
      if (options.json) {
        return printJson({ key_file: keyFile, backup_created_at: contents.createdAt, keys: summary, database_check: checkText, audit_entry: audit, inside_data_folder: insideData });
      }
      process.stdout.write(
        `wrote ${contents.keys.length} master key(s) (${contents.keys.map((entry) => entry.keyId).join(', ')}) to ${options.toKeyFile}, mode 0600\n` +
          `database check: ${checkText}\n` +
          `audit entry: ${audit}\n` +
          (insideData ? `warning: ${keyFile} is inside the data folder ${dataDir}, so a copy of the data contains its key; move it elsewhere for production.\n` : '') +
          `Next: set AEGIS_MASTER_KEY_FILE=${keyFile} (and unset AEGIS_MASTER_KEY and AEGIS_MASTER_PASSPHRASE), restore the database first if it was lost, then start AEGIS.\n`,
      );
    });
}

/**
 * Compares the backup with the configured database's key check values and describes the result.
 * `matched` is true only when the database has registered keys and the backup holds each one it needs.
 * Throws, so nothing is written, when the database needs a key the backup does not hold.
 */
async function checkAgainstDatabase(contents: KeyBackupContents): Promise<{ text: string; matched: boolean }> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof StartupError)) throw error;
    return { text: `not checked: the configuration is invalid (${error.message})`, matched: false };
  }
  const stored = await readStoredKeyChecks(config);
  if ('unavailable' in stored) return { text: `not checked: ${stored.unavailable}`, matched: false };
  if (stored.records.length === 0) return { text: `not checked: the vault at ${stored.location} has no registered master key`, matched: false };
  const missing = missingFromBackup(contents.keys, stored.records);
  if (missing.length > 0) {
    const list = missing.map((record) => `${record.state} master key ${record.keyId} (key check value ${record.checkValue.slice(0, 8)}...)`).join(', ');
    throw new CommandError(
      `The key backup does not match the vault at ${stored.location}: it contains no key for the ${list}. Restore the key backup made for this vault, or pass --no-database-check to write the key file anyway. Nothing was written.`,
    );
  }
  const signers = missingCheckpointSigners(contents.keys, stored.records).map((record) => record.keyId);
  const warning = signers.length === 0 ? '' : `; warning: the backup lacks the retired key(s) ${signers.join(', ')}, which signed audit checkpoints, so aegis audit verify will fail on those until the keys are added to the key file`;
  return { text: `every current and active key of the vault at ${stored.location} matches its key check value${warning}`, matched: true };
}

function checkOutputFolder(file: string): void {
  const folder = path.dirname(path.resolve(file));
  if (!fs.existsSync(folder)) throw new CommandError(`The folder ${folder} does not exist; create it (mode 0700) first.`);
}

/** Turns a KeyBackupError into a CommandError, so the CLI prints its message without a stack trace. */
async function withBackupErrors<T>(run: () => Promise<T>, prefix = ''): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof KeyBackupError) throw new CommandError(`${prefix}${error.message} Nothing was written.`);
    throw error;
  }
}
