import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { missingCheckpointSigners, missingFromBackup } from '../../src/backup/key-restore.js';
import type { StoredKeyCheck } from '../../src/backup/stored-key-checks.js';
import type { BackupKey } from '../../src/crypto/key-backup.js';

function backupKey(keyId: string, checkValue: string): BackupKey {
  return { keyId, state: 'current', checkValue, createdAt: '2026-12-01T00:00:00.000Z', key: crypto.randomBytes(32) };
}

function stored(keyId: string, state: string, signsCheckpoints = false): StoredKeyCheck {
  return { keyId, state, checkValue: `check-${keyId}`, signsCheckpoints };
}

describe('key restore check', () => {
  const vault = [stored('mk_current', 'current'), stored('mk_active', 'active'), stored('mk_signer', 'retired', true), stored('mk_old', 'retired')];

  it('needs current and active keys', () => {
    const missing = missingFromBackup([backupKey('mk_current', 'check-mk_current')], vault);
    assert.deepEqual(
      missing.map((record) => record.keyId),
      ['mk_active'],
    );
  });

  it('names missing checkpoint signers', () => {
    const keys = ['mk_current', 'mk_active'].map((keyId) => backupKey(keyId, `check-${keyId}`));
    assert.deepEqual(missingFromBackup(keys, vault), []);
    assert.deepEqual(
      missingCheckpointSigners(keys, vault).map((record) => record.keyId),
      ['mk_signer'],
    );
    assert.deepEqual(missingCheckpointSigners([...keys, backupKey('mk_signer', 'check-mk_signer')], vault), []);
  });
});
