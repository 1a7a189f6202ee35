import type { Command } from 'commander';
import { escapeControls } from '../../lib/text.js';
import { historyEntryView } from '../../rotation/history-view.js';
import { cliCaller, integerAtLeast, printJson, printTable, readStdin, withVault } from '../context.js';
import { checkRotateInput, nameCredentialOption } from '../input-check.js';

export function registerRotationCommands(program: Command): void {
  program
    .command('rotate <name>')
    .description('Rotate a credential now: a new value is generated, issued by the provider, or read from stdin')
    .option('--emergency', 'rotate as an emergency: revoke the old value where the provider can, alert as critical')
    .option('--reason <text>', 'why, recorded in the history and the audit log')
    .option('--value-stdin', 'take the new value from standard input instead of generating one')
    .option('--json', 'print JSON')
    .action(async (name: string, options: { emergency?: boolean; reason?: string; valueStdin?: boolean; json?: boolean }) => {
      const value = options.valueStdin ? await readStdin() : undefined;
      const request = {
        trigger: options.emergency ? ('emergency' as const) : ('manual' as const),
        ...(options.reason !== undefined ? { reason: options.reason } : {}),
        ...(value !== undefined ? { value } : {}),
      };
      checkRotateInput(request);
      await withVault(async (vault) => {
        const outcome = await finishBeforeExit(`the rotation of ${name}`, () => vault.rotation.engine.rotate(cliCaller(), name, request)).catch(nameCredentialOption);
        const result = {
          status: 'rotated',
          previous_version: outcome.previousVersion,
          new_version: outcome.newVersion,
          duration_ms: outcome.durationMs,
          attempts: outcome.attempts,
          revoked_old_value: outcome.revoked,
        };
        if (options.json) return printJson(result);
        process.stdout.write(`rotated ${name}: version ${outcome.previousVersion} -> ${outcome.newVersion} in ${outcome.durationMs} ms\n`);
      });
    });

  program
    .command('rollback <name>')
    .description('Make an earlier version current again, at the provider too (the previous version by default)')
    .option('--version <number>', 'the version to go back to', integerAtLeast(1))
    .option('--json', 'print JSON')
    .action(async (name: string, options: { version?: number; json?: boolean }) => {
      await withVault(async (vault) => {
        const outcome = await finishBeforeExit(`the rollback of ${name}`, () => vault.rotation.rollback(cliCaller(), name, options.version));
        if (options.json) return printJson({ status: 'rolled_back', from_version: outcome.fromVersion, to_version: outcome.toVersion });
        process.stdout.write(`rolled back ${name}: version ${outcome.fromVersion} -> ${outcome.toVersion}\n`);
      });
    });

  const rotation = program.command('rotation').description('Scheduled rotations: what is due, run them, history, retention');

  rotation
    .command('schedule')
    .description('List upcoming and overdue automatic rotations')
    .option('--limit <count>', 'at most this many of each', integerAtLeast(1), 100)
    .option('--json', 'print JSON')
    .action(async (options: { limit: number; json?: boolean }) => {
      await withVault(async (vault) => {
        const schedule = await vault.rotation.schedule(cliCaller(), options.limit);
        if (options.json) return printJson({ upcoming_rotations: schedule.upcoming, overdue_rotations: schedule.overdue });
        const rows = [...schedule.overdue.map((entry) => ({ ...entry, when: 'overdue' })), ...schedule.upcoming.map((entry) => ({ ...entry, when: 'upcoming' }))];
        printTable(['NAME', 'PROVIDER', 'STRATEGY', 'NEXT ROTATION', 'STATE'], rows.map((entry) => [entry.name, entry.provider, entry.rotation_strategy, entry.next_rotation_at, entry.when]));
      });
    });

  rotation
    .command('run')
    .description('Rotate every credential whose scheduled or expiry rotation is due, as POST /rotation/run-scheduled does')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withVault(async (vault) => {
        const run = await vault.rotation.runScheduled(cliCaller());
        if (options.json) return printJson(run);
        process.stdout.write(`${run.rotated} rotated, ${run.failed} failed, ${run.skipped} skipped\n`);
        for (const detail of run.details) process.stdout.write(`  ${detail.status.padEnd(8)} ${escapeControls(detail.credential)}${detail.error ? `: ${escapeControls(detail.error)}` : ''}\n`);
        if (run.failed > 0) process.exitCode = 1;
      });
    });

  rotation
    .command('history')
    .description('List rotations, rollbacks and failures, newest first')
    .option('--credential <name>', 'only this credential')
    .option('--limit <count>', 'at most this many', integerAtLeast(1), 50)
    .option('--json', 'print JSON')
    .action(async (options: { credential?: string; limit: number; json?: boolean }) => {
      await withVault(async (vault) => {
        const { history, total } = await vault.rotation.history(cliCaller(), { credentialName: options.credential, limit: options.limit, offset: 0 });
        if (options.json) return printJson({ history: history.map(historyEntryView), total });
        printTable(
          ['WHEN', 'CREDENTIAL', 'TRIGGER', 'FROM', 'TO', 'RESULT', 'MS'],
          history.map((entry) => [entry.rotatedAt, entry.credentialName, entry.trigger, entry.previousVersion, entry.newVersion, entry.success ? (entry.rolledBack ? 'rolled back' : 'ok') : `failed: ${entry.errorMessage}`, entry.durationMs]),
        );
      });
    });

  rotation
    .command('prune')
    .description('Apply retention: remove old non-current versions (never the current one or the rollback target) and old history')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withVault(async (vault) => {
        const result = await vault.rotation.retention();
        if (options.json) return printJson({ versions_removed: result.versionsRemoved, history_removed: result.historyRemoved });
        process.stdout.write(`removed ${result.versionsRemoved} versions and ${result.historyRemoved} history rows\n`);
      });
    });
}

/**
 * Runs `operation` with the first SIGINT or SIGTERM held back until it ends. A rotation or rollback
 * stopped between its steps leaves the credential `rotating`, and every retry fails as "already in
 * progress" until the rotation lease expires (AEGIS_ROTATION_LEASE_SECONDS). A second signal exits at once.
 */
async function finishBeforeExit<T>(what: string, operation: () => Promise<T>): Promise<T> {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals === 1) {
      process.stderr.write(`aegis: ${signal} received; finishing ${escapeControls(what)} first. Send it again to stop now and leave the credential rotating until its lease expires.\n`);
      return;
    }
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await operation();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
