import crypto from 'node:crypto';
import os from 'node:os';
import { gcmOpen, gcmSeal } from '../src/crypto/envelope.js';
import { Keyring } from '../src/crypto/keyring.js';

/**
 * B7: envelope seal + open of a 1 KiB value on one core, against a baseline of one plain AES-256-GCM
 * seal + open of the same value with a fixed key, measured in the same run.
 */
const value = crypto.randomBytes(768).toString('base64'); // 1,024 characters of ASCII = 1 KiB
const context = { credentialId: crypto.randomUUID(), version: 1 };
const masterKey = crypto.randomBytes(32);
const keyring = new Keyring(new Map([['mk_bench', masterKey]]));
const durationMs = Number(process.env.BENCH_DURATION_MS ?? (process.env.AEGIS_BENCH_SHORT === '1' ? 1_000 : 3_000));

async function measure(label: string, pair: () => Promise<void> | void): Promise<number> {
  const warmUntil = performance.now() + 300;
  while (performance.now() < warmUntil) await pair();
  let pairs = 0;
  const started = performance.now();
  while (performance.now() - started < durationMs) {
    for (let i = 0; i < 100; i += 1) await pair();
    pairs += 100;
  }
  const perSecond = pairs / ((performance.now() - started) / 1000);
  process.stderr.write(`${label}: ${Math.round(perSecond)} pairs/s\n`);
  return perSecond;
}

const plaintext = Buffer.from(value, 'utf8');
const aad = Buffer.from('bench');
const baseline = await measure('baseline (one AES-256-GCM seal + open)', () => {
  const iv = crypto.randomBytes(12);
  gcmOpen(masterKey, iv, gcmSeal(masterKey, iv, plaintext, aad), aad);
});
const envelope = await measure('envelope (data key + wrap, seal + open)', async () => {
  const sealed = await keyring.seal(value, context, 'mk_bench');
  await keyring.open(sealed, context);
});

const result = {
  id: 'B7',
  workload: 'envelope seal + open of a 1 KiB value, one core',
  bar: '>= 50,000 pairs/s',
  figure: `${Math.round(envelope)} pairs/s (plain AES-256-GCM: ${Math.round(baseline)} pairs/s)`,
  baseline_pairs_per_second: Math.round(baseline),
  envelope_pairs_per_second: Math.round(envelope),
  ratio_to_baseline: Number((envelope / baseline).toFixed(3)),
  holds: envelope >= 50_000,
  baseline_note: 'B7 compares with one plain AES-256-GCM seal and open of the same value under a fixed key; the envelope does two of each (data key and value) and formats the stored text.',
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memory_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version },
};
process.stdout.write(`${JSON.stringify(result)}\n`);
