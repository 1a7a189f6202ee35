#!/usr/bin/env node
// Runs every *.test.ts file under test/ with Node's test runner, TypeScript loaded through tsx.
// Node 20's runner does not expand globs itself, so the files are listed here.
// Extra arguments are passed on, e.g. `npm test -- --test-name-pattern=audit`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

const testDatabaseUrl = process.env.AEGIS_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
// Test files list the PostgreSQL schemas they are done with here; they are dropped after the run.
const schemaLog = path.join(os.tmpdir(), `aegis-test-schemas-${process.pid}.txt`);

/**
 * Drops the schemas this run's test files finished with. It runs after the tests rather than during
 * them, because a drop while another file migrates breaks that migration, and it drops only this run's
 * schemas, so test runs side by side on one database leave each other alone.
 */
async function dropFinishedSchemas() {
  if (!fs.existsSync(schemaLog)) return;
  const schemas = [...new Set(fs.readFileSync(schemaLog, 'utf8').split('\n').filter(Boolean))];
  fs.rmSync(schemaLog, { force: true });
  const client = new pg.Client({ connectionString: testDatabaseUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
  } catch {
    return;
  }
  try {
    for (const schema of schemas) await client.query(`drop schema if exists "${schema.replace(/"/g, '')}" cascade`);
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
// The sustained-load test (bar R5) measures AEGIS's throughput, so it runs after the others, alone,
// instead of sharing the two cores with another test file.
const alone = files.filter((file) => file.endsWith('sustained-load.test.ts'));
const shared = files.filter((file) => !alone.includes(file));

function runTests(list) {
  if (list.length === 0) return 0;
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=300000', ...options, ...list],
    { stdio: 'inherit', env: { ...process.env, AEGIS_TEST_SCHEMA_LOG: schemaLog } },
  );
  return result.status ?? 1;
}

const sharedStatus = runTests(shared);
const aloneStatus = runTests(alone);
await dropFinishedSchemas();
process.exit(sharedStatus !== 0 ? sharedStatus : aloneStatus);
