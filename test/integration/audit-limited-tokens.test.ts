import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verifyExportFile } from '../../src/audit/verify-file.js';
import { testDialects } from '../helpers/databases.js';
import { setupCaller } from '../helpers/health-fixtures.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

/**
 * Credentials of two teams. team-b/api-6 carries team-a's tag, so the tag-limited token reaches it
 * and the name-limited one does not.
 */
const credentials = [
  { name: 'team-a/api-1', tags: ['team-a'] },
  { name: 'team-b/api-5', tags: ['team-b'] },
  { name: 'team-b/api-6', tags: ['team-a'] },
] as const;

const nameActor = 'team-a-names';
const tagActor = 'team-a-tags';

/** Seeded entries by case: who wrote it, about which credential, and whether it carries the credential's id. */
const cases = {
  revealedOtherTeam: { actor: 'TEAM-B', name: 'team-b/api-5', withId: true },
  revealedTaggedTeamA: { actor: 'TEAM-B', name: 'team-b/api-6', withId: true },
  revealedTeamA: { actor: 'TEAM-B', name: 'team-a/api-1', withId: true },
  rejectedTeamA: { actor: 'TEAM-B', name: 'team-a/api-1', withId: false },
  rejectedOtherTeam: { actor: 'TEAM-B', name: 'team-b/api-5', withId: false },
  rejectedUnknown: { actor: 'TEAM-B', name: 'team-a/missing', withId: false },
  listedByOther: { actor: 'TEAM-B', name: '*', withId: false },
  listedByNameToken: { actor: nameActor, name: '*', withId: false },
  rejectedForNameToken: { actor: nameActor, name: 'team-b/api-5', withId: false },
  listedByTagToken: { actor: tagActor, name: '*', withId: false },
} as const;

type Case = keyof typeof cases;

/** The cases each token reads: those about credentials it reaches, and its own actor's. */
const expected: Record<'name' | 'tag', Case[]> = {
  name: ['revealedTeamA', 'rejectedTeamA', 'listedByNameToken', 'rejectedForNameToken'],
  tag: ['revealedTaggedTeamA', 'revealedTeamA', 'rejectedTeamA', 'listedByTagToken'],
};

/** The `created` entries each token reads besides the seeded cases. */
const expectedCreated: Record<'name' | 'tag', string[]> = {
  name: ['team-a/api-1'],
  tag: ['team-a/api-1', 'team-b/api-6'],
};

for (const dialect of await testDialects()) {
  describe(`audit log with limited tokens on ${dialect}`, () => {
    let t: TestVault;
    const tokens: Record<'name' | 'tag' | 'all', string> = { name: '', tag: '', all: '' };

    before(async () => {
      t = await openTestVault(dialect);
      const ids = new Map<string, string>();
      for (const { name, tags } of credentials) {
        const created = await t.vault.registry.create(setupCaller, { name, credential_type: 'apiKey', provider: 'api', value: `value-of-${name}`, tags: [...tags] });
        ids.set(name, created.id);
      }
      for (const [key, entry] of Object.entries(cases)) {
        await t.vault.audit.record({
          credentialId: entry.withId ? ids.get(entry.name)! : null,
          credentialName: entry.name,
          action: entry.withId ? 'revealed' : 'read',
          actor: entry.actor,
          success: entry.withId,
          errorMessage: entry.withId ? null : `forbidden: seeded case ${key}`,
          details: { case: key },
        });
      }
      tokens.name = await tokenWith(t, nameActor, ['audit:read'], { namePatterns: ['team-a/*'] });
      tokens.tag = await tokenWith(t, tagActor, ['audit:read'], { tags: ['team-a'] });
      tokens.all = await tokenWith(t, 'auditor', ['audit:read']);
    });
    after(async () => destroyTestVault(t));

    /** Reads GET /audit/log and returns the seeded cases it lists, in chain order, and its total. */
    async function logCases(token: string, query = '') {
      const response = await call(t.app, 'GET', `/audit/log?limit=1000${query}`, { token });
      assert.equal(response.status, 200, response.body);
      const seeded = response.json.log.filter((entry: { details: { case?: string } }) => entry.details.case !== undefined);
      return { cases: seeded.map((entry: { details: { case: string } }) => entry.details.case).reverse(), total: response.json.total, listed: response.json.log.length };
    }

    it('unlimited token gets the report', async () => {
      const response = await call(t.app, 'GET', '/audit/report?start_date=2026-01-01T00:00:00Z&end_date=2027-01-01T00:00:00Z', { token: tokens.all });
      assert.equal(response.status, 200, response.body);
      assert.ok(response.json.summary.total_accesses >= Object.keys(cases).length);
    });

    it('unlimited token reads every entry', async () => {
      const read = await logCases(tokens.all);
      assert.deepEqual(read.cases, Object.keys(cases));
      assert.equal(read.total, read.listed);
    });

    for (const limit of ['name', 'tag'] as const) {
      it(`${limit}-limited token reads its entries`, async () => {
        const read = await logCases(tokens[limit]);
        assert.deepEqual(read.cases, expected[limit]);
        assert.equal(read.total, read.listed);
      });

      it(`${limit}-limited token filters within them`, async () => {
        const otherTeam = await logCases(tokens[limit], '&credential_name=team-b%2Fapi-5');
        assert.deepEqual(otherTeam.cases, limit === 'name' ? ['rejectedForNameToken'] : []);
        const byOtherActor = await logCases(tokens[limit], '&actor=TEAM-B');
        assert.deepEqual(byOtherActor.cases, expected[limit].filter((key) => cases[key].actor === 'TEAM-B'));
        assert.equal(byOtherActor.total, byOtherActor.cases.length);
      });

      it(`${limit}-limited token pages with its total`, async () => {
        const all = await logCases(tokens[limit]);
        const response = await call(t.app, 'GET', '/audit/log?limit=1&offset=1', { token: tokens[limit] });
        assert.equal(response.status, 200, response.body);
        assert.equal(response.json.log.length, 1);
        // The read before this one wrote an entry of the token's own actor, which it also reads.
        assert.equal(response.json.total, all.total + 1);
      });

      it(`${limit}-limited token exports its entries`, async () => {
        const response = await call(t.app, 'GET', '/audit/export?format=jsonl', { token: tokens[limit] });
        assert.equal(response.status, 200, response.body);
        const lines = response.body.trim().split('\n').map((line) => JSON.parse(line) as { actor: string; action: string; credential_name: string; details: { case?: string } });
        const exported = lines.filter((line) => line.details.case !== undefined).map((line) => line.details.case);
        assert.deepEqual(exported, expected[limit]);
        const ownActor = limit === 'name' ? nameActor : tagActor;
        const others = lines.filter((line) => line.details.case === undefined && line.actor !== ownActor);
        assert.deepEqual(
          others.map((line) => `${line.actor} ${line.action} ${line.credential_name}`),
          expectedCreated[limit].map((name) => `test-setup created ${name}`),
        );

        const file = path.join(t.dir, `${limit}-limited.jsonl`);
        fs.writeFileSync(file, response.body);
        const report = await verifyExportFile(file);
        assert.equal(report.ok, true, report.problem?.message);
        assert.equal(report.entries, lines.length);
        assert.ok(report.gaps > 0, 'the entries left out leave gaps');
      });

      it(`${limit}-limited token gets no report`, async () => {
        const response = await call(t.app, 'GET', '/audit/report?start_date=2026-01-01T00:00:00Z&end_date=2027-01-01T00:00:00Z', { token: tokens[limit] });
        assert.equal(response.status, 403, response.body);
        assert.equal(response.json.code, 'forbidden');
        assert.match(response.json.detail, /limited to names or tags/);
        assert.match(response.json.detail, /token without name or tag limits/);

        const denied = await t.vault.db.kysely
          .selectFrom('aegis_audit_log')
          .selectAll()
          .where('action', '=', 'audit_reported')
          .where('actor', '=', limit === 'name' ? nameActor : tagActor)
          .execute();
        assert.equal(denied.length, 1);
        assert.equal(Boolean(denied[0]!.success), false);
      });

      it(`${limit}-limited token verifies the chain`, async () => {
        const response = await call(t.app, 'GET', '/audit/verify', { token: tokens[limit] });
        assert.equal(response.status, 200, response.body);
        assert.equal(response.json.ok, true);
      });
    }
  });
}
