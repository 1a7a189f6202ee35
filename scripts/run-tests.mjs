#!/usr/bin/env node
// Runs every *.test.ts file under test/ with Node's test runner, TypeScript loaded through tsx.
// Node 20's runner does not expand globs itself, so the files are listed here.
// Extra arguments are passed on, e.g. `npm test -- --test-name-pattern=audit`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';

const testDatabaseUrl = process.env.AEGIS_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Drops the schemas test files create (all named aegis_...) in the test database. Runs before and after
 * the tests rather than during them, because a drop while another file migrates breaks that migration.
 */
async function dropTestSchemas() {
  const client = new pg.Client({ connectionString: testDatabaseUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
  } catch {
    return;
  }
  try {
    const { rows } = await client.query("select nspname from pg_namespace where nspname like 'aegis\\_%'");
    for (const row of rows) await client.query(`drop schema if exists "${row.nspname}" cascade`);
  } finally {
    await client.end();
  }
}

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
await dropTestSchemas();
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=300000', ...options, ...files],
  { stdio: 'inherit' },
);
await dropTestSchemas();
process.exit(result.status ?? 1);
