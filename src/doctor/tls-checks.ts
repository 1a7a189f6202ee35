import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import type { Config } from '../config/config.js';
import type { Clock } from '../lib/clock.js';
import { fail, ok, setting, skip, warn, type CheckResult } from './check.js';

/** A certificate that expires within this many days gets a warning. */
const expiryWarningDays = 30;

const certSetting = setting('server.tls.cert_file', 'AEGIS_TLS_CERT_FILE');
const keySetting = setting('server.tls.key_file', 'AEGIS_TLS_KEY_FILE');

/**
 * Checks the TLS files: both readable, the certificate parses and is valid now and for the next
 * 30 days, and the private key belongs to the certificate. The key is skipped when the certificate
 * cannot be read or parsed, because there is nothing to match it against.
 */
export function checkTls(config: Config, clock: Clock): CheckResult[] {
  if (!config.tls) return [ok('tls', 'not configured; `aegis serve` serves plain HTTP')];
  const { certFile, keyFile } = config.tls;

  const certText = readPem(certFile);
  if (typeof certText !== 'string') {
    return [
      fail('tls certificate', `Cannot read the certificate file ${certFile}: ${certText.reason}.`, `Set ${certSetting} to a readable PEM certificate file.`),
      skip('tls key', 'tls certificate'),
    ];
  }
  let certificate: crypto.X509Certificate;
  try {
    certificate = new crypto.X509Certificate(certText);
  } catch {
    return [
      fail('tls certificate', `The certificate file ${certFile} does not contain a PEM certificate.`, `Set ${certSetting} to the PEM certificate (chain) of this server.`),
      skip('tls key', 'tls certificate'),
    ];
  }

  const results = [checkValidity(certificate, certFile, clock)];
  const keyText = readPem(keyFile);
  if (typeof keyText !== 'string') {
    results.push(fail('tls key', `Cannot read the key file ${keyFile}: ${keyText.reason}.`, `Set ${keySetting} to a readable PEM private key file.`));
    return results;
  }
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(keyText);
  } catch {
    results.push(fail('tls key', `The key file ${keyFile} does not contain an unencrypted PEM private key.`, `Set ${keySetting} to the certificate's private key without a passphrase (e.g. \`openssl pkey -in KEY -out ${keyFile}\`).`));
    return results;
  }
  if (!certificate.checkPrivateKey(key)) {
    results.push(fail('tls key', `The key file ${keyFile} does not belong to the certificate in ${certFile}.`, `Set ${keySetting} to the private key the certificate was issued for, or reissue the certificate for this key.`));
  } else {
    results.push(ok('tls key', `${keyFile} matches the certificate`));
  }
  return results;
}

function checkValidity(certificate: crypto.X509Certificate, certFile: string, clock: Clock): CheckResult {
  const now = clock.now().getTime();
  const validFrom = new Date(certificate.validFrom);
  const validTo = new Date(certificate.validTo);
  const renew = `Renew the certificate, write it to ${certFile} and send SIGHUP to \`aegis serve\` (systemctl reload aegis), which loads it without a restart.`;
  if (validTo.getTime() <= now) return fail('tls certificate', `The certificate in ${certFile} expired on ${validTo.toISOString()}.`, renew);
  if (validFrom.getTime() > now) {
    return fail('tls certificate', `The certificate in ${certFile} is not valid before ${validFrom.toISOString()}.`, 'Check the local clock, or use a certificate that is valid now.');
  }
  const daysLeft = Math.floor((validTo.getTime() - now) / 86_400_000);
  if (daysLeft < expiryWarningDays) return warn('tls certificate', `The certificate in ${certFile} expires in ${daysLeft} day(s), on ${validTo.toISOString()}.`, renew);
  return ok('tls certificate', `${certFile} (${certificate.subject.replace(/\n/g, ', ')}) is valid until ${validTo.toISOString()}`);
}

/**
 * Fails when `aegis serve` would listen on a non-loopback address without TLS, and warns when
 * `server.allow_insecure_listen` permits it.
 */
export function checkListenAddress(config: Config): CheckResult {
  if (isLoopback(config.host)) return ok('listen address', `${config.host} accepts local connections only`);
  if (config.tls) return ok('listen address', `${config.host} is served over TLS`);
  const tlsFix = `set ${certSetting} and ${keySetting}`;
  const loopbackFix = `set ${setting('server.host', 'AEGIS_HOST')} to 127.0.0.1 behind a TLS proxy on this host`;
  if (config.allowInsecureListen) {
    return warn(
      'listen address',
      `${config.host} is not a loopback address and serves plain HTTP, because ${setting('server.allow_insecure_listen', 'AEGIS_ALLOW_INSECURE_LISTEN')} allows it; tokens and values cross the network unencrypted unless a proxy adds TLS.`,
      `Unless a TLS proxy guards every path to this port, ${tlsFix}, or ${loopbackFix}.`,
    );
  }
  return fail('listen address', `${config.host} is not a loopback address and no TLS is configured, so tokens and values would cross the network unencrypted.`, `Either ${tlsFix}, or ${loopbackFix}.`);
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const address = host.replace(/^\[|\]$/g, '').replace(/^::ffff:/i, '');
  if (net.isIPv4(address)) return address.startsWith('127.');
  return address === '::1';
}

function readPem(file: string): string | { reason: string } {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    return { reason: (error as NodeJS.ErrnoException).code ?? String(error) };
  }
}
