import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { alertMessages } from '../../src/alerts/alert-types.js';

describe('alert messages', () => {
  it('expiring message counts hours', () => {
    assert.equal(alertMessages.credentialExpiring('billing/stripe', 168), "🔐 Credential 'billing/stripe' expires in 168 hours");
    assert.equal(alertMessages.credentialExpiring('billing/stripe', 1), "🔐 Credential 'billing/stripe' expires in 1 hour");
    assert.equal(alertMessages.credentialExpiring('billing/stripe', 0), "🔐 Credential 'billing/stripe' expires in less than an hour");
  });
});
