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
  results.push(JSON.parse(run.stdout.trim().split('\n').pop()));
}

const rows = results.map(
  (result) => `| ${result.id} | ${result.workload} | ${result.bar} | ${result.envelope_pairs_per_second ?? result.figure} | ${result.ratio_to_baseline} | ${result.holds ? 'holds' : 'does not hold'} |`,
);
const machine = results[0]?.machine ?? {};
const text = `# Benchmarks

Measured by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: ${machine.cpus} cores (${machine.cpu}), ${machine.memory_gib} GiB, Node.js ${machine.node}.
These machines are shared, so each figure comes with a ratio against a baseline measured in the same run.

| id | workload | bar | figure | ratio to baseline | result |
|---|---|---|---|---|---|
${rows.join('\n')}

Baselines: B7 compares with one plain AES-256-GCM seal and open of the same value under a fixed key; the envelope does two of each (data key and value) and formats the stored text.
`;
fs.writeFileSync('BENCHMARKS.md', text);
process.stderr.write('wrote BENCHMARKS.md\n');
