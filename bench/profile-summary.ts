import fs from 'node:fs';
import path from 'node:path';

/**
 * Prints the functions with the most self time in V8 CPU profiles (`node --cpu-prof`), summed over
 * every .cpuprofile file in the folder given as the first argument, then the same time summed by package or project file.
 * Used to write the "Limited by" notes of BENCHMARKS.md.
 * Usage: node --import tsx bench/profile-summary.ts <folder> [count]
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const folder = process.argv[2];
if (!folder) throw new Error('missing argument: the folder of .cpuprofile files');
const count = Number(process.argv[3] ?? 25);
const selfMicros = new Map<string, number>();
const groupMicros = new Map<string, number>();
let totalMicros = 0;
for (const file of fs.readdirSync(folder).filter((name) => name.endsWith('.cpuprofile'))) {
  const profile = JSON.parse(fs.readFileSync(path.join(folder, file), 'utf8')) as Profile;
  const labels = new Map(
    profile.nodes.map((node) => {
      const { functionName, url, lineNumber } = node.callFrame;
      const file = url.replace(/^.*\/(node_modules|src|bench)\//, '$1/');
      const where = url ? `${file}:${lineNumber + 1}` : '';
      // Packages are grouped by name, project files by file, and frames without a script as native code.
      const group = !url ? '(native code, GC and idle)' : file.startsWith('node_modules/') ? file.split('/').slice(0, file.startsWith('node_modules/@') ? 3 : 2).join('/') : file.startsWith('node:') ? 'node: internals' : file;
      return [node.id, { label: `${functionName || '(anonymous)'} ${where}`.trim(), group }];
    }),
  );
  profile.samples.forEach((nodeId, index) => {
    const micros = profile.timeDeltas[index] ?? 0;
    totalMicros += micros;
    const { label, group } = labels.get(nodeId) ?? { label: String(nodeId), group: '(unknown)' };
    selfMicros.set(label, (selfMicros.get(label) ?? 0) + micros);
    groupMicros.set(group, (groupMicros.get(group) ?? 0) + micros);
  });
}
const print = (title: string, totals: Map<string, number>) => {
  process.stdout.write(`${title}, ${(totalMicros / 1000).toFixed(0)} ms sampled:\n`);
  for (const [label, micros] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, count)) {
    process.stdout.write(`${((100 * micros) / totalMicros).toFixed(1).padStart(5)} %  ${(micros / 1000).toFixed(0).padStart(7)} ms  ${label}\n`);
  }
};
print('self time by function', selfMicros);
print('self time by package or project file', groupMicros);
