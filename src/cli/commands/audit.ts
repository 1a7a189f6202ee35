import type { Command } from 'commander';
import { recordVerification, verifyAuditChain } from '../../audit/verify.js';
import { cliCaller, printJson, withVault } from '../context.js';

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('Check the audit log');

  audit
    .command('verify')
    .description('Walk the audit hash chain; exit 1 and name the first bad entry if any entry was changed, inserted or removed')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withVault(async (vault) => {
        const report = await verifyAuditChain(vault.db.kysely);
        const auditError = await recordVerification(vault.audit, cliCaller(), report);
        // The JSON has the same fields as GET /audit/verify.
        if (options.json) printJson({ ok: report.ok, checked: report.checked, head_seq: report.headSeq, problem: report.problem });
        else if (report.ok) process.stdout.write(`audit chain verified: ${report.checked} entries, head ${report.headSeq}\n`);
        else process.stdout.write(`audit chain verification failed after ${report.checked} good entries: ${report.problem!.message}\n`);
        if (auditError) process.stderr.write(`aegis: writing the audit entry for this check failed too: ${auditError.message.split('\n')[0]}\n`);
        if (!report.ok) process.exitCode = 1;
      });
    });
}
