import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { StartupError } from '../lib/errors.js';

/** A certificate chain and its private key, both PEM, as read from the configured files. */
export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

/** The files named by AEGIS_TLS_CERT_FILE and AEGIS_TLS_KEY_FILE. */
export type TlsFiles = NonNullable<Config['tls']>;

/**
 * Reads the certificate and key files and checks that they form a usable pair, so a mismatched or
 * malformed pair fails here and not at the first handshake. Error messages name the files, never
 * their contents.
 */
export function readTlsPair(files: TlsFiles): TlsPair {
  const cert = readPem(files.certFile, 'AEGIS_TLS_CERT_FILE');
  const key = readPem(files.keyFile, 'AEGIS_TLS_KEY_FILE');
  let matches: boolean;
  try {
    tls.createSecureContext({ cert, key });
    // createSecureContext accepts a key of another type (an EC key with an RSA certificate), and every
    // handshake would then fail, so the pair is also checked directly.
    matches = new crypto.X509Certificate(cert).checkPrivateKey(crypto.createPrivateKey(key));
  } catch (error) {
    throw new Error(
      `the certificate ${files.certFile} and key ${files.keyFile} are not a usable pair (${(error as Error).message}); check that both are PEM and that the key belongs to the certificate`,
    );
  }
  if (!matches) {
    throw new Error(`the key ${files.keyFile} does not belong to the certificate ${files.certFile}; use the key the certificate was issued for`);
  }
  return { cert, key };
}

function readPem(file: string, variable: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw new Error(`cannot read ${variable} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** Reads the TLS pair at start-up, turning a failure into a StartupError. */
export function loadTlsPairAtStartup(files: TlsFiles): TlsPair {
  try {
    return readTlsPair(files);
  } catch (error) {
    throw new StartupError(`TLS is not usable: ${(error as Error).message}.`);
  }
}

/** Describes the first certificate of a PEM chain for logs: subject, expiry and SHA-256 fingerprint. */
export function describeCertificate(cert: Buffer): { subject: string; validTo: string; fingerprint256: string } {
  const parsed = new crypto.X509Certificate(cert);
  return { subject: parsed.subject.replaceAll('\n', ', '), validTo: parsed.validTo, fingerprint256: parsed.fingerprint256 };
}

/**
 * Returns why clients would reject the first certificate of a PEM chain at `now` (it has expired or is
 * not valid yet), or undefined while it is valid. AEGIS still serves such a pair, so the operator can
 * replace it and send SIGHUP without a restart.
 */
export function certificateValidityProblem(cert: Buffer, now: Date): string | undefined {
  const parsed = new crypto.X509Certificate(cert);
  const validFrom = new Date(parsed.validFrom);
  const validTo = new Date(parsed.validTo);
  if (now.getTime() > validTo.getTime()) return `the certificate expired on ${validTo.toISOString()}`;
  if (now.getTime() < validFrom.getTime()) return `the certificate is not valid before ${validFrom.toISOString()}`;
  return undefined;
}

/** Logs a warning when the certificate just loaded has expired or is not valid yet. */
export function warnAboutCertificateValidity(cert: Buffer, certFile: string, log: Logger, now: Date = new Date()): void {
  const problem = certificateValidityProblem(cert, now);
  if (problem === undefined) return;
  log.warn({ certFile, problem }, 'clients will reject the TLS certificate; replace the files and send SIGHUP, and check the local clock');
}

/**
 * Re-reads the certificate and key and swaps them into the running server. Open connections keep
 * the context of their handshake, and new handshakes get the new pair. A pair that cannot be read or
 * does not match is logged and the server keeps the previous one.
 */
export function reloadTlsPair(server: tls.Server, files: TlsFiles, log: Logger): boolean {
  let pair: TlsPair;
  try {
    pair = readTlsPair(files);
  } catch (error) {
    log.error({ certFile: files.certFile, keyFile: files.keyFile, error: (error as Error).message }, 'reloading the TLS certificate failed; the previous certificate stays in use');
    return false;
  }
  server.setSecureContext({ cert: pair.cert, key: pair.key });
  log.info({ certFile: files.certFile, certificate: describeCertificate(pair.cert) }, 'reloaded the TLS certificate');
  warnAboutCertificateValidity(pair.cert, files.certFile, log);
  return true;
}

/** Tells whether `host` is a loopback address: localhost, 127.0.0.0/8, ::1 or 127.x mapped into IPv6. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare.toLowerCase() === 'localhost') return true;
  if (net.isIPv4(bare)) return bare.split('.')[0] === '127';
  if (!net.isIPv6(bare)) return false;
  const blockList = new net.BlockList();
  blockList.addAddress('::1', 'ipv6');
  blockList.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');
  return blockList.check(bare, 'ipv6');
}

/**
 * Rejects listening on a non-loopback address over plain HTTP, where tokens and values would cross the
 * network unencrypted, unless the operator turned the check off (e.g. behind a TLS-terminating proxy).
 */
export function checkListenAddress(host: string, config: Pick<Config, 'tls' | 'allowInsecureListen'>): void {
  if (config.tls || config.allowInsecureListen || isLoopbackHost(host)) return;
  throw new StartupError(
    `AEGIS does not serve plain HTTP on ${host}, because it is not a loopback address and tokens and values would cross the network unencrypted. ` +
      'Either listen on 127.0.0.1 (AEGIS_HOST or --host), set AEGIS_TLS_CERT_FILE and AEGIS_TLS_KEY_FILE to serve HTTPS, ' +
      'or set AEGIS_ALLOW_INSECURE_LISTEN=on when a TLS-terminating proxy sits in front of AEGIS.',
  );
}
