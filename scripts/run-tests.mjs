#!/usr/bin/env node
// Runs every *.test.ts file under test/ with Node's test runner, TypeScript loaded through tsx.
// Node 20's runner does not expand globs itself, so the files are listed here.
// Extra arguments are passed on, e.g. `npm test -- --test-name-pattern=audit`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

function findTests(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return findTests(full);
    return entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

const args = process.argv.slice(2);
const explicit = args.filter((arg) => !arg.startsWith('--'));
const options = args.filter((arg) => arg.startsWith('--'));
const files = explicit.length > 0 ? explicit : findTests('test').sort();
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=300000', ...options, ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
