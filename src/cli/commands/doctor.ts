import type { Command } from 'commander';
import { runDoctor } from '../../doctor/doctor.js';
import { formatReport } from '../../doctor/report.js';
import { printJson } from '../context.js';

/** Registers `aegis doctor`, which checks a deployment and prints what to fix. */
export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('Check the configuration, database, master key, file modes, TLS and alert sinks; writes nothing. Exits with 1 when a check fails')
    .option('--json', 'print the results as JSON')
    .action(async (options: { json?: boolean }) => {
      const results = await runDoctor({ env: process.env, cwd: process.cwd() });
      const failed = results.some((result) => result.status === 'fail');
      if (options.json) printJson({ ok: !failed, checks: results });
      else process.stdout.write(formatReport(results));
      if (failed) process.exitCode = 1;
    });
}
