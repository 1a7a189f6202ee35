import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { parse } from 'dotenv';
import { formatValue, readVariable, writeVariable } from '../../src/providers/env/env-file.js';

let dir: string;
let counter = 0;

/** Writes `text` to a new file in the test folder and returns its path. */
function envFile(text: string, mode = 0o600): string {
  counter += 1;
  const file = path.join(dir, `app-${counter}.env`);
  fs.writeFileSync(file, text, { mode });
  fs.chmodSync(file, mode);
  return file;
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-env-file-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('writeVariable layout', () => {
  it('keeps other lines byte for byte', () => {
    const before = [
      '# database settings',
      'DB_HOST=db.internal',
      '',
      'export API_KEY=old-key # rotated monthly',
      '   ',
      '  PORT = 8080',
      "QUOTED='a # not a comment'",
      '# trailing comment',
      '',
    ].join('\n');
    const file = envFile(before);

    writeVariable(file, 'API_KEY', 'new-key');

    const expected = before.replace('export API_KEY=old-key # rotated monthly', 'export API_KEY=new-key # rotated monthly');
    assert.equal(fs.readFileSync(file, 'utf8'), expected);
    assert.equal(readVariable(file, 'API_KEY'), 'new-key');
    assert.equal(readVariable(file, 'QUOTED'), 'a # not a comment');
  });

  it('keeps CRLF line endings', () => {
    const file = envFile('# comment\r\nA=1\r\nSECRET=old\r\n\r\nB=2\r\n');

    writeVariable(file, 'SECRET', 'new');
    assert.equal(fs.readFileSync(file, 'utf8'), '# comment\r\nA=1\r\nSECRET=new\r\n\r\nB=2\r\n');

    writeVariable(file, 'ADDED', 'x');
    assert.equal(fs.readFileSync(file, 'utf8'), '# comment\r\nA=1\r\nSECRET=new\r\n\r\nB=2\r\nADDED=x\r\n');
  });

  it('replaces the effective duplicate only', () => {
    // dotenv (and a shell sourcing the file) reads the last assignment, so that is the one to replace.
    const file = envFile('SECRET=first\nOTHER=1\nSECRET=second\n');

    writeVariable(file, 'SECRET', 'rotated');

    assert.equal(fs.readFileSync(file, 'utf8'), 'SECRET=first\nOTHER=1\nSECRET=rotated\n');
    assert.equal(readVariable(file, 'SECRET'), 'rotated');
  });

  it('replaces a single assignment once', () => {
    const file = envFile('A=1\nSECRET=old\nB=2\n');

    writeVariable(file, 'SECRET', 'new');

    assert.equal(fs.readFileSync(file, 'utf8'), 'A=1\nSECRET=new\nB=2\n');
  });

  it('leaves similar names alone', () => {
    const file = envFile('SECRET_OLD=keep\nMY_SECRET=keep\n# SECRET=commented\nSECRET=old\n');

    writeVariable(file, 'SECRET', 'new');

    assert.equal(fs.readFileSync(file, 'utf8'), 'SECRET_OLD=keep\nMY_SECRET=keep\n# SECRET=commented\nSECRET=new\n');
  });

  it('appends a missing variable', () => {
    const withNewline = envFile('A=1\n');
    writeVariable(withNewline, 'SECRET', 'v1');
    assert.equal(fs.readFileSync(withNewline, 'utf8'), 'A=1\nSECRET=v1\n');

    const withoutNewline = envFile('A=1');
    writeVariable(withoutNewline, 'SECRET', 'v1');
    assert.equal(fs.readFileSync(withoutNewline, 'utf8'), 'A=1\nSECRET=v1');
    assert.equal(readVariable(withoutNewline, 'A'), '1');

    const empty = envFile('');
    writeVariable(empty, 'SECRET', 'v1');
    assert.equal(fs.readFileSync(empty, 'utf8'), 'SECRET=v1\n');
  });

  it('rejects rewrite inside multi-line value', () => {
    const text = 'SECRET=real\nNOTE="first\nSECRET=inside\n"\n';
    const file = envFile(text);
    assert.equal(readVariable(file, 'SECRET'), 'real');

    assert.throws(() => writeVariable(file, 'SECRET', 'new'), /would change how NOTE is read/);
    assert.equal(fs.readFileSync(file, 'utf8'), text);
  });
});

describe('readVariable', () => {
  it('misses Object property names', () => {
    const file = envFile('API_KEY=key\n');
    for (const variable of ['constructor', 'toString', 'hasOwnProperty', 'prototype']) assert.equal(readVariable(file, variable), undefined, variable);
  });

  it('reads a variable named constructor', () => {
    const file = envFile('constructor=built\n');
    assert.equal(readVariable(file, 'constructor'), 'built');
    writeVariable(file, 'constructor', 'rebuilt');
    assert.equal(readVariable(file, 'constructor'), 'rebuilt');
  });
});

describe('writeVariable file metadata', () => {
  it('keeps the file mode', () => {
    const file = envFile('SECRET=old\n', 0o640);

    writeVariable(file, 'SECRET', 'new');

    assert.equal(fs.statSync(file).mode & 0o7777, 0o640);
  });

  it('keeps the file owner', (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('only root can create a file owned by another user');
      return;
    }
    const file = envFile('SECRET=old\n', 0o640);
    fs.chownSync(file, 4321, 4322);

    writeVariable(file, 'SECRET', 'new');

    const stat = fs.statSync(file);
    assert.equal(stat.uid, 4321);
    assert.equal(stat.gid, 4322);
  });

  it('leaves no temporary files', () => {
    const file = envFile('SECRET=old\n');
    for (let i = 0; i < 20; i += 1) writeVariable(file, 'SECRET', `value-${i}`);
    const leftovers = fs.readdirSync(dir).filter((name) => name.endsWith('.tmp'));
    assert.deepEqual(leftovers, []);
  });

  it('removes copies of stopped processes only', () => {
    const file = envFile('SECRET=old\n');
    const stopped = spawnSync(process.execPath, ['-e', '']).pid;
    const stale = path.join(dir, `.${path.basename(file)}.aegis-${stopped}-0123456789ab.tmp`);
    const running = path.join(dir, `.${path.basename(file)}.aegis-${process.ppid}-0123456789ab.tmp`);
    const otherFile = path.join(dir, `.other.env.aegis-${stopped}-0123456789ab.tmp`);
    for (const copy of [stale, running, otherFile]) fs.writeFileSync(copy, 'SECRET=attempted\n');

    writeVariable(file, 'SECRET', 'new');

    assert.equal(fs.existsSync(stale), false);
    assert.equal(fs.existsSync(running), true);
    assert.equal(fs.existsSync(otherFile), true);
    for (const copy of [running, otherFile]) fs.rmSync(copy);
  });
});

describe('writeVariable values', () => {
  const values = [
    '',
    'plain-Value_1.2:3/4+5=6@7,8%9!?*~^',
    'has space',
    ' leading and trailing ',
    'hash # inside',
    '#starts-with-hash',
    'dollar $HOME ${PATH}',
    'back\\slash\\n',
    "it's",
    'say "hi"',
    `both ' and "`,
    `quote ' and backslash \\n`,
    'tab\tinside',
    'symbols ;<>|&(){}[]',
    'ünïcödé ✓',
    '=leading-equals',
  ];

  for (const value of values) {
    it(`round-trips ${JSON.stringify(value)}`, () => {
      const file = envFile('BEFORE=1\nSECRET=old\nAFTER=2\n');

      writeVariable(file, 'SECRET', value);

      assert.equal(readVariable(file, 'SECRET'), value);
      assert.equal(readVariable(file, 'BEFORE'), '1');
      assert.equal(readVariable(file, 'AFTER'), '2');
    });
  }

  it('rejects values with a line break', () => {
    for (const value of ['line\nbreak', 'carriage\rreturn', 'trailing\n']) {
      const file = envFile('SECRET=old\n');
      assert.equal(formatValue(value), null);
      assert.throws(() => writeVariable(file, 'SECRET', value), /line break/);
      assert.equal(fs.readFileSync(file, 'utf8'), 'SECRET=old\n');
    }
  });

  it('rejects a NUL character', () => {
    const file = envFile('SECRET=old\n');
    assert.equal(formatValue('nul\u0000byte'), null);
    assert.throws(() => writeVariable(file, 'SECRET', 'nul\u0000byte'), /NUL character/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'SECRET=old\n');
  });

  it('rejects all three quote characters', () => {
    const file = envFile('SECRET=old\n');
    assert.throws(() => writeVariable(file, 'SECRET', `' " \``), /quote characters/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'SECRET=old\n');
  });

  it('keeps the value out of errors', () => {
    const file = envFile('SECRET=old\n');
    assert.throws(
      () => writeVariable(file, 'SECRET', 'do-not-show-this\nsecond line'),
      (error: Error) => !error.message.includes('do-not-show-this'),
    );
  });
});

/**
 * Reads `file` in a loop in a worker thread until `stop[0]` is set, parses each read with dotenv, and
 * reports every read whose text is not one of `allowed` in full.
 */
const readerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { parse } = require(workerData.dotenvPath);
const stop = new Int32Array(workerData.stop);
const allowed = new Set(workerData.allowed);
let reads = 0;
const bad = [];
parentPort.postMessage({ ready: true });
while (Atomics.load(stop, 0) === 0 && reads < 5000000) {
  let text;
  try {
    text = fs.readFileSync(workerData.file, 'utf8');
  } catch (error) {
    bad.push('read failed: ' + error.code);
    continue;
  }
  reads += 1;
  if (!allowed.has(text)) bad.push(JSON.stringify(parse(text)));
}
parentPort.postMessage({ reads, bad: bad.slice(0, 5), badCount: bad.length });
`;

describe('writeVariable atomicity', () => {
  it('keeps lines appended during a rewrite', (context) => {
    const file = envFile('API_KEY=old\nDB_HOST=db\n');
    // Another process appends a line while the temporary file is flushed, between the read and the rename.
    let appended = 0;
    const fsync = fs.fsyncSync;
    context.mock.method(fs, 'fsyncSync', (handle: number) => {
      if (appended < 2) {
        appended += 1;
        fs.appendFileSync(file, `APPENDED_${appended}=yes\n`);
      }
      fsync(handle);
    });
    writeVariable(file, 'API_KEY', 'new');
    assert.equal(appended, 2);
    assert.equal(fs.readFileSync(file, 'utf8'), 'API_KEY=new\nDB_HOST=db\nAPPENDED_1=yes\nAPPENDED_2=yes\n');
    assert.deepEqual(fs.readdirSync(dir).filter((name) => name.endsWith('.tmp')), []);
  });

  it('gives up on a file that keeps changing', (context) => {
    const file = envFile('API_KEY=old\n');
    let appended = 0;
    const fsync = fs.fsyncSync;
    context.mock.method(fs, 'fsyncSync', (handle: number) => {
      appended += 1;
      fs.appendFileSync(file, `APPENDED_${appended}=yes\n`);
      fsync(handle);
    });
    assert.throws(() => writeVariable(file, 'API_KEY', 'new'), /changed during each of 5 rewrites of API_KEY, so AEGIS left it as the other writer made it\. Retry once no other process writes the file\.$/);
    context.mock.restoreAll();
    assert.equal(readVariable(file, 'API_KEY'), 'old');
    assert.equal(readVariable(file, 'APPENDED_5'), 'yes');
    assert.deepEqual(fs.readdirSync(dir).filter((name) => name.endsWith('.tmp')), []);
  });

  it('concurrent reader sees whole files', async () => {
    const rewrites = 300;
    const textFor = (i: number) => `# header\nexport DB_URL=postgres://db/app\nSECRET=value-${i}-${'x'.repeat(2000)}\n\nTAIL=last\n`;
    const file = envFile(textFor(0));
    const allowed = Array.from({ length: rewrites + 1 }, (_, i) => textFor(i));
    const stop = new SharedArrayBuffer(4);
    const dotenvPath = createRequire(import.meta.url).resolve('dotenv');
    const worker = new Worker(readerSource, { eval: true, workerData: { file, allowed, stop, dotenvPath } });
    const messages: Array<{ ready?: boolean; reads?: number; bad?: string[]; badCount?: number }> = [];
    let onMessage: (() => void) | undefined;
    worker.on('message', (message) => {
      messages.push(message);
      onMessage?.();
    });
    const nextMessage = () =>
      new Promise<void>((resolve, reject) => {
        const count = messages.length;
        onMessage = () => {
          if (messages.length > count) resolve();
        };
        worker.once('error', reject);
      });

    await nextMessage();
    assert.equal(messages[0]?.ready, true);

    for (let i = 1; i <= rewrites; i += 1) {
      writeVariable(file, 'SECRET', `value-${i}-${'x'.repeat(2000)}`);
    }
    const finished = nextMessage();
    Atomics.store(new Int32Array(stop), 0, 1);
    await finished;
    await worker.terminate();

    const report = messages[1]!;
    assert.ok((report.reads ?? 0) > 0, 'the reader read the file at least once');
    assert.equal(report.badCount, 0, `partial or mixed reads: ${JSON.stringify(report.bad)}`);
    assert.equal(fs.readFileSync(file, 'utf8'), textFor(rewrites));
    assert.deepEqual(parse(fs.readFileSync(file, 'utf8')), {
      DB_URL: 'postgres://db/app',
      SECRET: `value-${rewrites}-${'x'.repeat(2000)}`,
      TAIL: 'last',
    });
  });
});
