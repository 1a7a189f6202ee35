/**
 * Picks the known key an unknown one most likely means: a key with the same last part in another
 * section (`server.pool_max` for `storage.pool_max`), else the key within a small edit distance.
 * Returns undefined when nothing is close.
 */
export function closestKey(unknown: string, known: ReadonlyArray<string>): string | undefined {
  const leaf = unknown.split('.').pop()!;
  const sameLeaf = known.find((key) => key.split('.').pop() === leaf);
  if (sameLeaf) return sameLeaf;

  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(unknown.length / 3)) + 1;
  for (const key of known) {
    const distance = editDistance(unknown, key);
    if (distance < bestDistance) {
      best = key;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance: the fewest single-character insertions, deletions and substitutions from `a` to `b`. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}
