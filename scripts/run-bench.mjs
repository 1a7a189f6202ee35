#!/usr/bin/env node
// Runs the benchmarks under bench/ and writes their results into BENCHMARKS.md. Each benchmark prints one
// JSON line per figure on stdout (id, workload, bar, figure, ratio_to_baseline, holds, baseline_note).
//
//   npm run bench                     every bench/*.bench.ts, then BENCHMARKS.md is rewritten
//   npm run bench -- B1 B5            the files that report these ids (B5 selects B5.1, B5.2, ...)
//   npm run bench -- bench/x.bench.ts one file
//   npm run bench -- --short          shorter runs (AEGIS_BENCH_SHORT=1) to check that the benchmarks
//                                     work; the table goes to stdout and BENCHMARKS.md stays as it is
//
// BENCHMARKS.md keeps the rows of benchmarks not run this time and every "## " section other than
// "## Baselines" verbatim. A "- ID: text" line under "## Limited by" fills the "limited by" cell of
// that id's row while its bar does not hold.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const args = process.argv.slice(2);
const short = args.includes('--short') || process.env.AEGIS_BENCH_SHORT === '1';
const selectors = args.filter((arg) => arg !== '--short');
const benchFiles = fs.readdirSync('bench').filter((file) => file.endsWith('.bench.ts')).sort().map((file) => path.join('bench', file));

/** Lists the ids a benchmark file reports, read from its `id: 'B1'` literals. */
function idsOf(file) {
  return [...fs.readFileSync(file, 'utf8').matchAll(/\bid: '([A-Z]\d+(?:\.\d+)?)'/g)].map((match) => match[1]);
}

function select() {
  if (selectors.length === 0) return benchFiles;
  const files = new Set();
  for (const selector of selectors) {
    if (selector.includes('/') || selector.endsWith('.ts')) {
      files.add(selector.includes('/') ? selector : path.join('bench', selector));
      continue;
    }
    const matching = benchFiles.filter((file) => idsOf(file).some((id) => id === selector || id.startsWith(`${selector}.`)));
    if (matching.length === 0) {
      process.stderr.write(`no benchmark reports the id ${selector}; known ids: ${benchFiles.flatMap(idsOf).join(', ')}\n`);
      process.exit(2);
    }
    for (const file of matching) files.add(file);
  }
  return [...files];
}

const results = [];
const failed = [];
for (const file of select()) {
  process.stderr.write(`# ${file}${short ? ' (short)' : ''}\n`);
  const started = Date.now();
  const run = spawnSync(process.execPath, ['--import', 'tsx', file], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...(short ? { AEGIS_BENCH_SHORT: '1' } : {}) },
    maxBuffer: 64 * 2 ** 20,
  });
  // A benchmark may print several figures, one JSON line each (B5.1, B5.2, ...).
  const lines = (run.stdout ?? '').split('\n').filter((line) => line.startsWith('{'));
  for (const line of lines) results.push(JSON.parse(line));
  process.stderr.write(`# ${file}: ${lines.length} figures in ${Math.round((Date.now() - started) / 1000)} s\n`);
  if (run.status !== 0) {
    failed.push(file);
    process.stderr.write(`${file} failed with exit code ${run.status ?? run.signal}; its rows keep their last figures\n`);
  }
}

const text = render(fs.existsSync('BENCHMARKS.md') ? fs.readFileSync('BENCHMARKS.md', 'utf8') : '', results);
if (short) {
  process.stdout.write(text);
  process.stderr.write('short mode: BENCHMARKS.md left unchanged\n');
} else {
  fs.writeFileSync('BENCHMARKS.md', text);
  process.stderr.write('wrote BENCHMARKS.md\n');
}
if (failed.length > 0) {
  process.stderr.write(`failed: ${failed.join(', ')}\n`);
  process.exit(1);
}

/** Splits a markdown file into the part before the first "## " heading and its "## " sections. */
function sections(markdown) {
  const parts = markdown.split(/^(?=## )/m);
  const head = parts[0].startsWith('## ') ? '' : parts.shift();
  return { head, sections: parts.map((part) => ({ title: part.split('\n', 1)[0].slice(3).trim(), text: part.trimEnd() })) };
}

/** Builds the new BENCHMARKS.md from the previous one and this run's results. */
function render(previous, current) {
  const today = new Date().toISOString().slice(0, 10);
  const { head, sections: previousSections } = sections(previous);
  const rows = new Map();
  for (const line of head.split('\n')) {
    const cells = line.split('|').slice(1, -1).map((cell) => cell.trim());
    if (/^[A-Z]\d+(\.\d+)?$/.test(cells[0] ?? '')) rows.set(cells[0], cells.slice(0, 7));
  }
  const baselines = new Map();
  const limits = new Map();
  for (const section of previousSections) {
    for (const line of section.text.split('\n')) {
      const bullet = /^- ([A-Z]\d+(?:\.\d+)?):? (.*)$/.exec(line);
      if (!bullet) continue;
      if (section.title === 'Baselines') baselines.set(bullet[1], `${bullet[1]} ${bullet[2]}`);
      if (section.title === 'Limited by') limits.set(bullet[1], bullet[2]);
    }
  }
  for (const result of current) {
    const figure = result.figure ?? result.envelope_pairs_per_second;
    rows.set(result.id, [result.id, result.workload, result.bar, String(figure), String(result.ratio_to_baseline), result.holds ? 'holds' : 'does not hold', today]);
    if (result.baseline_note) baselines.set(result.id, result.baseline_note);
  }

  const byId = (a, b) => a[0].localeCompare(b[0], 'en', { numeric: true });
  /** The limit note of an id, or of its parent (B5 for B5.1). */
  const limitOf = (id) => limits.get(id) ?? limits.get(id.split('.')[0]) ?? 'not profiled yet';
  const table = [...rows]
    .sort(byId)
    .map(([id, cells]) => `| ${cells.join(' | ')} | ${cells[5] === 'does not hold' ? limitOf(id) : '-'} |`)
    .join('\n');
  const cpus = os.cpus();
  const machine = `${cpus.length} cores (${cpus[0]?.model ?? 'unknown CPU'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB of memory, Node.js ${process.version}`;
  const kept = previousSections.filter((section) => section.title !== 'Baselines').map((section) => section.text);
  return `# Benchmarks

Measured by \`npm run bench\` (scripts/run-bench.mjs); each row gives the date of its last run.
The latest run, on ${today}, used ${machine}.
These machines are shared, so each figure comes with a ratio against a baseline measured in the same run.

| id | workload | bar | figure | ratio to baseline | result | measured | limited by |
|---|---|---|---|---|---|---|---|
${table}

## Baselines

${[...baselines].sort(byId).map(([, note]) => `- ${note}`).join('\n')}
${kept.map((section) => `\n${section}\n`).join('')}`;
}
