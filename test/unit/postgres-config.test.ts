import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValidationError } from '../../src/lib/errors.js';
import { createPostgresAdapter } from '../../src/providers/postgres/postgres.adapter.js';

describe('postgres checkConfig', () => {
  const adapter = createPostgresAdapter({ adminConnections: { default: 'postgres://aegis_admin@127.0.0.1:5432/test', reports: 'postgres://aegis_admin@127.0.0.1:5432/reports' } });

  it('accepts configured connections', () => {
    assert.deepEqual(adapter.checkConfig({ role: 'app_user' }), { role: 'app_user' });
    assert.deepEqual(adapter.checkConfig({ role: 'app_user', connection: 'reports' }), { role: 'app_user', connection: 'reports' });
  });

  it('rejects Object property names as connections', () => {
    for (const connection of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
      assert.throws(
        () => adapter.checkConfig({ role: 'app_user', connection }),
        (error: unknown) => error instanceof ValidationError && error.field === 'provider_config.connection' && error.message.includes(`named "${connection}"`),
        connection,
      );
    }
  });
});
