import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { entryHash } from '../../src/audit/chain.js';
import { verifyExportFile } from '../../src/audit/verify-file.js';
import { ManualClock } from '../../src/lib/clock.js';
import { runCli } from '../helpers/cli.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

const secret = 'seeded-export-secret-5d21';

/**
 * Seeds a credential with a value, entries with awkward text (quotes, commas, a line break, an empty
 * string, Unicode) and 2,500 plain entries, so the export spans several pages.
 */
async function seed(t: TestVault): Promise<void> {
  const created = await call(t.app, 'POST', '/credentials', {
    token: t.adminToken,
    body: { name: 'stripe/live', credential_type: 'openAiApi', provider: 'n8n', value: secret },
  });
  assert.equal(created.status, 201, created.body);
  t.clock.advanceHours(1);
  await t.vault.audit.record({
    credentialName: 'stripe/live',
    action: 'rotated',
    actor: 'OPS',
    success: false,
    target: '',
    errorMessage: 'provider said "no", then\nclosed, the connection — ünïcode',
    details: { trigger: 'manual', nested: { list: [1, 'two', null] } },
  });
  const bulk = Array.from({ length: 2_500 }, (_, index) => ({
    credentialName: index % 2 === 0 ? 'alpha' : 'beta',
    action: 'read',
    actor: index % 3 === 0 ? 'ARIA' : 'HEPHAESTUS',
    success: true,
    ipAddress: '10.0.0.1',
    details: { index },
  }));
  t.clock.advanceHours(1);
  await t.vault.audit.record(...bulk);
}

/** Replaces the first match of `pattern` on line `lineNumber` (from 1) of a file. */
function editLine(file: string, lineNumber: number, pattern: RegExp, replacement: string): void {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const edited = lines[lineNumber - 1]!.replace(pattern, replacement);
  assert.notEqual(edited, lines[lineNumber - 1], `line ${lineNumber} has no match for ${pattern}`);
  lines[lineNumber - 1] = edited;
  fs.writeFileSync(file, lines.join('\n'));
}

for (const dialect of await testDialects()) {
  describe(`audit export on ${dialect}`, () => {
    let t: TestVault;
    let total: number;

    before(async () => {
      t = await openTestVault(dialect, { clock: new ManualClock('2026-04-01T08:00:00.000Z') });
      await seed(t);
      const head = await t.vault.db.kysely.selectFrom('aegis_audit_head').select('seq').executeTakeFirstOrThrow();
      total = Number(head.seq);
    });
    after(async () => destroyTestVault(t));

    for (const format of ['jsonl', 'csv'] as const) {
      it(`${format} export verifies offline`, async () => {
        const file = path.join(t.dir, `all.${format}`);
        const exported = await runCli(['audit', 'export', '--format', format, '--output', file], t.env);
        assert.equal(exported.code, 0, exported.stderr);
        assert.equal(fs.statSync(file).mode & 0o077, 0, 'the export is readable by its owner only');

        const report = await verifyExportFile(file);
        assert.equal(report.ok, true, report.problem?.message);
        assert.equal(report.format, format);
        assert.equal(report.firstSeq, 1);
        assert.ok(report.entries >= total, `${report.entries} entries exported, head was ${total}`);
        assert.equal(report.gaps, 0);
        assert.equal(report.linksChecked, report.entries);

        const cli = await runCli(['audit', 'verify', '--file', file], {});
        assert.equal(cli.code, 0, cli.stdout + cli.stderr);
        assert.match(cli.stdout, /verified; every link between consecutive lines checked/);
      });

      it(`${format} edited line fails`, async () => {
        const file = path.join(t.dir, `edited.${format}`);
        assert.equal((await runCli(['audit', 'export', '--format', format, '--output', file], t.env)).code, 0);
        // The header takes line 1 of the CSV, and the rotation entry's error message spans two lines.
        const line = format === 'csv' ? 1_000 : 999;
        editLine(file, line, /HEPHAESTUS|ARIA/, 'MALLORY');
        const cli = await runCli(['audit', 'verify', '--file', file], {});
        assert.equal(cli.code, 1);
        assert.match(cli.stdout, new RegExp(`Line ${line} \\(entry \\d+\\) was changed after it was exported`));
      });
    }

    it('removed line breaks link', async () => {
      const file = path.join(t.dir, 'removed.jsonl');
      assert.equal((await runCli(['audit', 'export', '--format', 'jsonl', '--output', file], t.env)).code, 0);
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      lines.splice(10, 1);
      fs.writeFileSync(file, lines.join('\n'));
      const report = await verifyExportFile(file);
      // A removed line is a gap the offline check cannot tell from a filter, so it is counted as one.
      assert.equal(report.ok, true);
      assert.equal(report.gaps, 1);

      const swapped = path.join(t.dir, 'swapped.jsonl');
      const original = fs.readFileSync(file, 'utf8').split('\n');
      [original[20], original[21]] = [original[21]!, original[20]!];
      fs.writeFileSync(swapped, original.join('\n'));
      const swappedReport = await verifyExportFile(swapped);
      assert.equal(swappedReport.ok, false);
      assert.equal(swappedReport.problem?.line, 22);
    });

    it('jsonl extra or repeated key fails', async () => {
      const file = path.join(t.dir, 'keys.jsonl');
      assert.equal((await runCli(['audit', 'export', '--format', 'jsonl', '--output', file], t.env)).code, 0);
      const original = fs.readFileSync(file, 'utf8');
      const cases: Array<[number, RegExp, string, RegExp]> = [
        [5, /}$/, ',"note":"hi"}', /field "note" is not an export column/],
        // JSON.parse keeps the last actor, which the hash covers, while a reader sees MALLORY first.
        [6, /^{/, '{"actor":"MALLORY",', /key "actor" appears twice in one object/],
        [900, /"details":{/, '"details":{"\\u0069ndex":-1,', /key "index" appears twice in one object/],
      ];
      for (const [line, pattern, replacement, message] of cases) {
        fs.writeFileSync(file, original);
        editLine(file, line, pattern, replacement);
        const report = await verifyExportFile(file);
        assert.equal(report.ok, false, `line ${line}`);
        assert.equal(report.problem?.line, line);
        assert.match(report.problem!.message, new RegExp(`^Line ${line} is not a valid export line: ${message.source}`));
      }
      const cli = await runCli(['audit', 'verify', '--file', file], {});
      assert.equal(cli.code, 1);
      assert.match(cli.stdout, /Line 900 is not a valid export line: key "index" appears twice/);
    });

    it('rehashed offset timestamp fails', async () => {
      const file = path.join(t.dir, 'timestamp.jsonl');
      assert.equal((await runCli(['audit', 'export', '--format', 'jsonl', '--output', file], t.env)).code, 0);
      const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
      // The same instant with an offset, rehashed as by someone who rewrote the last row.
      const last = JSON.parse(lines.at(-1)!);
      last.timestamp = last.timestamp.replace('Z', '+00:00');
      const { entry_hash: _stale, ...fields } = last;
      last.entry_hash = entryHash({
        seq: fields.seq,
        id: fields.id,
        timestamp: fields.timestamp,
        credentialId: fields.credential_id,
        credentialName: fields.credential_name,
        action: fields.action,
        actor: fields.actor,
        target: fields.target,
        details: fields.details,
        ipAddress: fields.ip_address,
        success: fields.success,
        errorMessage: fields.error_message,
        prevHash: fields.prev_hash,
      });
      lines[lines.length - 1] = JSON.stringify(last);
      fs.writeFileSync(file, `${lines.join('\n')}\n`);

      const report = await verifyExportFile(file);
      assert.equal(report.ok, false);
      assert.equal(report.problem?.line, lines.length);
      assert.match(report.problem!.message, /its timestamp "[^"]+\+00:00" is not in the form AEGIS writes/);
    });

    it('filtered export reports gaps', async () => {
      const file = path.join(t.dir, 'aria.csv');
      const exported = await runCli(['audit', 'export', '--format', 'csv', '--actor', 'ARIA', '--action', 'read', '--output', file], t.env);
      assert.equal(exported.code, 0, exported.stderr);
      const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
      assert.equal(lines.length, 1 + 834, 'a header and one line per ARIA read');
      const cli = await runCli(['audit', 'verify', '--file', file], {});
      assert.equal(cli.code, 0, cli.stdout);
      assert.match(cli.stdout, /834 entries .* verified; .*the links across \d+ gap\(s\) .* were not checkable/);
    });

    it('verify of an empty export fails', async () => {
      const file = path.join(t.dir, 'nobody.jsonl');
      const exported = await runCli(['audit', 'export', '--format', 'jsonl', '--actor', 'nobody', '--output', file], t.env);
      assert.equal(exported.code, 0, exported.stderr);
      const files: Array<[string, string]> = [['nobody.jsonl', fs.readFileSync(file, 'utf8')], ['empty.jsonl', '']];
      for (const [name, text] of files) {
        const target = path.join(t.dir, `verify-${name}`);
        fs.writeFileSync(target, text);
        const report = await verifyExportFile(target);
        assert.equal(report.ok, false, name);
        assert.equal(report.problem?.message, 'The file holds no entries, so nothing was verified.', name);
        const cli = await runCli(['audit', 'verify', '--file', target], {});
        assert.equal(cli.code, 1, `${name}: ${cli.stdout}`);
      }
    });

    it('verify of a missing file says so', async () => {
      const missing = path.join(t.dir, 'missing.jsonl');
      const cli = await runCli(['audit', 'verify', '--file', missing], {});
      assert.equal(cli.code, 1);
      assert.equal(cli.stderr, `aegis: cannot read ${missing}: no such file\n`);
      const folder = await runCli(['audit', 'verify', '--file', t.dir], {});
      assert.equal(folder.stderr, `aegis: cannot read ${t.dir}: is a folder\n`);
    });

    it('export filters by success', async () => {
      const reader = await tokenWith(t, 'AUDITOR-SUCCESS', ['audit:read']);
      const failed = await call(t.app, 'GET', '/audit/export?success=false', { token: reader });
      assert.equal(failed.status, 200, failed.body);
      const failedLines = failed.body.trim().split('\n').map((line) => JSON.parse(line));
      const logged = await call(t.app, 'GET', '/audit/log?success=false&limit=1000', { token: reader });
      assert.equal(failedLines.length, logged.json.total);
      assert.ok(failedLines.length >= 1);
      assert.ok(failedLines.every((entry) => entry.success === false));

      const file = path.join(t.dir, 'succeeded.jsonl');
      const cli = await runCli(['audit', 'export', '--format', 'jsonl', '--success', 'true', '--output', file], t.env);
      assert.equal(cli.code, 0, cli.stderr);
      const succeeded = fs.readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
      assert.ok(succeeded.length > 2_500);
      assert.ok(succeeded.every((entry) => entry.success === true));
    });

    it('http export streams csv', async () => {
      const reader = await tokenWith(t, 'AUDITOR', ['audit:read']);
      const response = await call(t.app, 'GET', '/audit/export?format=csv&credential_name=stripe%2Flive', { token: reader });
      assert.equal(response.status, 200, response.body);
      assert.match(String(response.headers['content-type']), /^text\/csv/);
      const file = path.join(t.dir, 'http.csv');
      fs.writeFileSync(file, response.body);
      const report = await verifyExportFile(file);
      assert.equal(report.ok, true, report.problem?.message);
      assert.equal(report.entries, 3, 'the creation, the failed rotation and this export of stripe/live');

      const jsonl = await call(t.app, 'GET', '/audit/export?start_date=2026-04-01T10:00:00Z&action=read', { token: reader });
      assert.equal(jsonl.status, 200);
      assert.match(String(jsonl.headers['content-type']), /^application\/x-ndjson/);
      assert.equal(jsonl.body.trim().split('\n').length, 2_500);

      const bad = await call(t.app, 'GET', '/audit/export?format=xml', { token: reader });
      assert.equal(bad.status, 400);
      assert.match(bad.json.detail, /format/);
    });

    it('exports hold no values', async () => {
      for (const format of ['jsonl', 'csv']) {
        const result = await runCli(['audit', 'export', '--format', format], t.env);
        assert.equal(result.code, 0, result.stderr);
        for (const form of [secret, Buffer.from(secret).toString('base64'), encodeURIComponent(secret)]) {
          assert.equal(result.stdout.includes(form), false, `found the seeded value in ${format} as ${form}`);
        }
      }
    });
  });
}
