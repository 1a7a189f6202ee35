import type { EventEmitter } from 'node:events';
import type { Command, Option } from 'commander';
import { collect, collectTag, USAGE_EXIT_CODE } from './context.js';

/**
 * Option parsers that add each value to a list, so their options (`--tag`, `--scope`) may repeat.
 * NOTE: a new collecting parser must be added here, or its option is rejected when given twice.
 */
const collectingParsers: ReadonlySet<unknown> = new Set([collect, collectTag]);

/**
 * Makes `command` reject an option given more than once, because commander keeps only the last value.
 * Variadic options and options with a collecting parser may repeat. The two forms of a negatable option
 * (`--rotation` and `--no-rotation`) set one value, so giving both is rejected too. A repeated flag that
 * takes no value, such as `--json --json`, loses nothing and is accepted.
 */
export function rejectRepeatedOptions(command: Command): void {
  // The flag that last set each option value on this command line, by attribute name.
  const givenFlags = new Map<string, string>();
  for (const option of command.options) {
    if (!option.variadic && !collectingParsers.has(option.parseArg)) watchOption(command, option, givenFlags);
  }
}

function watchOption(command: Command, option: Option, givenFlags: Map<string, string>): void {
  const attribute = option.attributeName();
  const flag = option.long ?? option.short ?? option.flags;
  // Prepended, so it runs before commander's own listener stores this occurrence. Commander resets
  // every value source before a parse, so a source of 'cli' means an earlier flag of this parse set it.
  // Command extends EventEmitter at run time (commander 14), but its typings declare only `on`.
  (command as unknown as EventEmitter).prependListener(`option:${option.name()}`, () => {
    const earlier = command.getOptionValueSource(attribute) === 'cli' ? givenFlags.get(attribute) : undefined;
    givenFlags.set(attribute, flag);
    if (earlier === undefined) return;
    if (earlier !== flag) {
      command.error(`error: options ${earlier} and ${flag} contradict each other. Give one of them.`, { code: 'aegis.conflictingOptions', exitCode: USAGE_EXIT_CODE });
    } else if (option.required || option.optional) {
      command.error(`error: option ${flag} is given more than once, but it takes one value. Give it once.`, { code: 'aegis.repeatedOption', exitCode: USAGE_EXIT_CODE });
    }
  });
}
