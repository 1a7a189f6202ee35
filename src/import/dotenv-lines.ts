/**
 * The assignment pattern of dotenv 17.4.2 (`LINE` in lib/main.js), copied because dotenv's `parse` returns
 * only the variables, not the lines it read. test/unit/dotenv-lines.test.ts checks that both read the same
 * variables, so a dotenv update that changes the pattern fails there.
 */
const dotenvAssignment = /(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)/gm;

/** The assignments dotenv finds in a .env file and the lines it skips. Line numbers start at 1. */
export interface DotenvLines {
  /** Each assignment in file order: its variable and the line its name is on. */
  assignments: Array<{ variable: string; line: number }>;
  /** Lines with text that is neither a comment nor part of an assignment. dotenv skips them without an error. */
  unparsed: number[];
}

/**
 * Finds the assignments and the skipped lines of a .env file as dotenv 17 reads it. Like dotenv, it counts
 * CRLF and a lone CR as line breaks. A multi-line quoted value covers the lines it spans.
 */
export function scanDotenvLines(text: string): DotenvLines {
  const normalized = text.replace(/\r\n?/g, '\n');
  const lineStarts = [0];
  for (let index = normalized.indexOf('\n'); index !== -1; index = normalized.indexOf('\n', index + 1)) lineStarts.push(index + 1);
  const lineAt = (offset: number) => {
    let low = 0;
    let high = lineStarts.length - 1;
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if (lineStarts[middle]! <= offset) low = middle;
      else high = middle - 1;
    }
    return low + 1;
  };

  const assignments: DotenvLines['assignments'] = [];
  const covered: Array<[start: number, end: number]> = [];
  for (const match of normalized.matchAll(dotenvAssignment)) {
    const start = match.index;
    // The pattern's leading \s* may take blank lines before the name, so the name's line is that of the first other character.
    assignments.push({ variable: match[1]!, line: lineAt(start + match[0].search(/\S/)) });
    covered.push([start, start + match[0].length]);
  }

  const unparsed: number[] = [];
  let span = 0;
  for (const [index, lineStart] of lineStarts.entries()) {
    const lineEnd = lineStarts[index + 1] ?? normalized.length + 1;
    const firstText = normalized.slice(lineStart, lineEnd - 1).search(/\S/);
    if (firstText === -1) continue;
    const offset = lineStart + firstText;
    if (normalized[offset] === '#') continue;
    while (span < covered.length && covered[span]![1] <= offset) span += 1;
    const inside = span < covered.length && covered[span]![0] <= offset;
    if (!inside) unparsed.push(index + 1);
  }
  return { assignments, unparsed };
}
