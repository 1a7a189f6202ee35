import type { Command } from 'commander';
import type { CheckResult } from '../../doctor/check.js';
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
      if (options.json) printJson({ ok: !failed, checks: results.map(checkView) });
      else process.stdout.write(formatReport(results));
      if (failed) process.exitCode = 1;
    });
}

/** Converts a check result to snake_case JSON; `fix` and `depends_on` appear only when set. */
function checkView(result: CheckResult) {
  return {
    name: result.name,
    status: result.status,
    message: result.message,
    ...(result.fix !== undefined ? { fix: result.fix } : {}),
    ...(result.dependsOn !== undefined ? { depends_on: result.dependsOn } : {}),
  };
}
