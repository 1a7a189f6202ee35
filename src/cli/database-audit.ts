import { AuditLog } from '../audit/audit.service.js';
import type { AuditEntryInput } from '../audit/audit.types.js';
import { loadConfig } from '../config/config.js';
import { openDatabase } from '../db/database.js';
import { pendingMigrations } from '../db/migrate.js';
import { systemClock } from '../lib/clock.js';
import { cliCaller } from './context.js';

/**
 * Records one audit entry for a CLI command that works without the vault (a database copy, a key
 * restore) and returns what happened, for the command to print. It opens only the database: it runs
 * no migration and registers no key, and it writes nothing when the schema is behind this version.
 * `event` names the action in the messages it returns ("backup", "restore"). A failure sets exit code 1 and is
 * described, not raised, because the command's file is written by then.
 */
export async function recordWithoutVault(entry: Omit<AuditEntryInput, 'actor'>, event: string): Promise<string> {
  let written = false;
  try {
    const db = await openDatabase(loadConfig());
    try {
      const pending = await pendingMigrations(db);
      if (pending.length > 0) {
        process.exitCode = 1;
        return `not written: the database lacks migrations ${pending.join(', ')}; start this version of AEGIS once, then record the ${event} by hand`;
      }
      await new AuditLog({ db, clock: systemClock }).record({ ...entry, actor: cliCaller().actor });
      written = true;
    } finally {
      await db.close();
    }
    return `written (${entry.action})`;
  } catch (error) {
    process.exitCode = 1;
    const reason = error instanceof Error ? error.message : 'unknown error';
    return written ? `written (${entry.action}), but closing the database failed: ${reason}` : `not written: ${reason}. Record the ${event} by hand, e.g. in your incident log`;
  }
}
