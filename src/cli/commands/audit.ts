import type { Command } from 'commander';
import { AuditAction } from '../../audit/audit.types.js';
import { verifyAuditChain } from '../../audit/verify.js';
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
        const caller = cliCaller();
        await vault.audit.record({
          credentialName: '*',
          action: AuditAction.auditRead,
          actor: caller.actor,
          target: 'chain',
          success: true,
          details: { verified: report.ok, checked: report.checked },
        });
        if (options.json) printJson(report);
        else if (report.ok) process.stdout.write(`audit chain verified: ${report.checked} entries, head ${report.headSeq}\n`);
        else process.stdout.write(`audit chain BROKEN after ${report.checked} good entries: ${report.problem!.message}\n`);
        if (!report.ok) process.exitCode = 1;
      });
    });
}
