import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidCredentialType } from '../../src/lib/names.js';
import { builtinTemplates } from '../../src/templates/catalogue.js';

describe('isValidCredentialType', () => {
  it('accepts every built-in template type', () => {
    for (const template of builtinTemplates) assert.ok(isValidCredentialType(template.credential_type), template.credential_type);
  });

  it('accepts type names with separators', () => {
    // Types of the docs, the tests and the legacy service, and names of other shapes that stay allowed.
    const accepted = ['apiKey', 'env_var', 'postgres_password', 'acme_api_key', 'api_key', 'x', '_private', '2fa', 'n8n-nodes-base.httpRequest', 'aws:iam', 'vendor/apiKey', 'a.b:c/d', 'ends-'];
    for (const type of accepted) assert.ok(isValidCredentialType(type), type);
    assert.ok(isValidCredentialType('t'.repeat(128)), '128 characters');
  });

  it('rejects paths and stray separators', () => {
    const rejected = ['', '..', '.', '/', ':', '-', '../etc/passwd', '/etc/passwd', 'a/../b', 'a//b', 'a..b', 'a.:b', 'slackApi/', 'slackApi.', '.slackApi', '-slackApi', 'a.-b', 'slack Api', 'tab\there', 'ключ'];
    for (const type of rejected) assert.equal(isValidCredentialType(type), false, JSON.stringify(type));
    assert.equal(isValidCredentialType('t'.repeat(129)), false, '129 characters');
  });
});
