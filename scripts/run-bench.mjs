#!/usr/bin/env node
// Runs the benchmarks under bench/ (or those named as arguments) and writes their results into
// BENCHMARKS.md. Each benchmark prints one JSON line with its figures on stdout.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const names = process.argv.slice(2);
const files = (names.length > 0 ? names : fs.readdirSync('bench').filter((file) => file.endsWith('.bench.ts')).sort()).map((file) =>
  file.includes('/') ? file : path.join('bench', file),
);

const results = [];
for (const file of files) {
  process.stderr.write(`# ${file}\n`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (run.status !== 0) {
    process.stderr.write(`${file} failed with exit code ${run.status}\n`);
    process.exit(1);
  }
  // A benchmark may print several figures, one JSON line each (B5.1, B5.2, ...).
  for (const line of run.stdout.trim().split('\n')) if (line.startsWith('{')) results.push(JSON.parse(line));
}

const today = new Date().toISOString().slice(0, 10);
const previous = fs.existsSync('BENCHMARKS.md') ? fs.readFileSync('BENCHMARKS.md', 'utf8') : '';
const previousDate = /on (\d{4}-\d{2}-\d{2})/.exec(previous)?.[1] ?? 'unknown';

// Rows and baseline notes of benchmarks not run this time are kept. Rows written before the table had a
// date column get the date of the file's old heading.
const rows = new Map();
const notes = new Map([
  ['B7', 'B7 compares with one plain AES-256-GCM seal and open of the same value under a fixed key; the envelope does two of each (data key and value) and formats the stored text.'],
]);
for (const line of previous.split('\n')) {
  const cells = line.split('|').map((cell) => cell.trim());
  if (/^[A-Z]\d+(\.\d+)?$/.test(cells[1] ?? '')) rows.set(cells[1], cells.length >= 9 ? line : `${line} ${previousDate} |`);
  const note = /^- ([A-Z]\d+(?:\.\d+)?) (.*)$/.exec(line) ?? /^Baselines: ([A-Z]\d+) (.*)$/.exec(line);
  if (note) notes.set(note[1], `${note[1]} ${note[2]}`);
}
for (const result of results) {
  const figure = result.envelope_pairs_per_second ?? result.figure;
  rows.set(result.id, `| ${result.id} | ${result.workload} | ${result.bar} | ${figure} | ${result.ratio_to_baseline} | ${result.holds ? 'holds' : 'does not hold'} | ${today} |`);
  if (result.baseline_note) notes.set(result.id, result.baseline_note);
}
const byId = (a, b) => a[0].localeCompare(b[0], 'en', { numeric: true });
const machine = results[0]?.machine ?? {};
const text = `# Benchmarks

Measured by \`npm run bench\`; each row gives the date of its last run. The latest run used ${machine.cpus} cores (${machine.cpu}), ${machine.memory_gib} GiB, Node.js ${machine.node}.
These machines are shared, so each figure comes with a ratio against a baseline measured in the same run.

| id | workload | bar | figure | ratio to baseline | result | measured |
|---|---|---|---|---|---|---|
${[...rows].sort(byId).map(([, row]) => row).join('\n')}

Baselines:
${[...notes].sort(byId).map(([, note]) => `- ${note}`).join('\n')}
`;
fs.writeFileSync('BENCHMARKS.md', text);
process.stderr.write('wrote BENCHMARKS.md\n');
