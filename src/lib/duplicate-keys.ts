/** One open object or array while scanning JSON text. */
type Frame = { kind: 'object'; keys: Set<string>; key: string | undefined; expectingKey: boolean } | { kind: 'array'; index: number };

/**
 * Finds the first key that appears twice in one object of valid JSON text, and returns its path: the keys
 * and array indexes that lead to it, ending with the key itself (`['provider_config', 'test', 'url']`), or
 * undefined when every key is unique. Keys are compared after unescaping, so `"a"` and `"\u0061"` are the
 * same key.
 *
 * JSON.parse keeps the last of two equal keys, while another reader of the same text (a proxy, a log
 * filter, grep) may keep the first, so a text with a repeated key is ambiguous. The text must already be
 * valid JSON, because the scan only tracks brackets, commas and strings.
 */
export function findDuplicateKey(text: string): string[] | undefined {
  const frames: Frame[] = [];
  let i = 0;
  while (i < text.length) {
    const char = text[i];
    if (char === '"') {
      const end = stringEnd(text, i);
      const frame = frames[frames.length - 1];
      if (frame?.kind === 'object' && frame.expectingKey) {
        const key = JSON.parse(text.slice(i, end)) as string;
        if (frame.keys.has(key)) return [...frames.slice(0, -1).map(framePathPart), key];
        frame.keys.add(key);
        frame.key = key;
        frame.expectingKey = false;
      }
      i = end;
      continue;
    }

    if (char === '{') frames.push({ kind: 'object', keys: new Set(), key: undefined, expectingKey: true });
    else if (char === '[') frames.push({ kind: 'array', index: 0 });
    else if (char === '}' || char === ']') frames.pop();
    else if (char === ',') {
      const frame = frames[frames.length - 1];
      if (frame?.kind === 'object') frame.expectingKey = true;
      else if (frame?.kind === 'array') frame.index += 1;
    }
    i += 1;
  }
  return undefined;
}

/** Returns the index just past the closing quote of the string that starts at `start`. */
function stringEnd(text: string, start: number): number {
  // A quote ends the string unless an odd number of backslashes escapes it.
  for (let quote = text.indexOf('"', start + 1); quote !== -1; quote = text.indexOf('"', quote + 1)) {
    let backslashes = 0;
    while (text[quote - 1 - backslashes] === '\\') backslashes += 1;
    if (backslashes % 2 === 0) return quote + 1;
  }
  return text.length;
}

function framePathPart(frame: Frame): string {
  return frame.kind === 'object' ? (frame.key ?? '') : String(frame.index);
}
