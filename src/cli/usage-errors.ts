import { CommanderError, type Command } from 'commander';
import { escapeControls } from '../lib/text.js';
import { USAGE_EXIT_CODE } from './context.js';

/**
 * Makes `command` report a usage error (an unknown command or option, a missing or extra argument, an
 * invalid or repeated option value) as one line on stderr that names the problem and the command's
 * help, and exit with USAGE_EXIT_CODE. Commander's default is the whole help and exit code 1.
 */
export function reportUsageErrors(command: Command): void {
  command.configureOutput({ outputError: (message, write) => write(usageLine(command, message)) });
  command.exitOverride(exitWithUsageCode);
}

/**
 * Rewrites a commander message such as "error: unknown option '--colour'", which may end with a line
 * "(Did you mean --color?)", as one line.
 */
function usageLine(command: Command, message: string): string {
  const joined = message.trim().replace(/^error: /, '').replace(/\n\(Did you mean (?=[^\n]*\)$)/, ' (did you mean ');
  // The message quotes what the user typed, which may contain terminal escapes.
  const problem = escapeControls(joined);
  const end = /[.?!]$/.test(problem) ? '' : '.';
  return `aegis: ${problem}${end} See \`${commandPath(command)} --help\`.\n`;
}

/** Returns the command line that names `command`, such as `aegis credentials list`. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let current: Command | null = command; current !== null; current = current.parent) names.unshift(current.name());
  return names.join(' ');
}

/**
 * Replaces commander's exit code for a usage error, 1, with USAGE_EXIT_CODE. The exits after --help
 * and --version keep their 0.
 */
function exitWithUsageCode(error: CommanderError): never {
  if (error.exitCode === 0) throw error;
  throw new CommanderError(USAGE_EXIT_CODE, error.code, error.message);
}
