#!/usr/bin/env node
// Container health check: GET /health on this host's AEGIS and exit 0 on status 200, 1 otherwise.
// It connects to 127.0.0.1 on AEGIS_PORT (default 8012), over HTTPS when AEGIS_TLS_CERT_FILE is set.
// The certificate is not verified because it names the public host, not 127.0.0.1.
import http from 'node:http';
import https from 'node:https';

const port = Number(process.env.AEGIS_PORT || 8012);
const secure = Boolean(process.env.AEGIS_TLS_CERT_FILE);
const client = secure ? https : http;
// Below the HEALTHCHECK --timeout of 5 s, so a hung server is reported as unhealthy, not as a killed check.
const timeoutMs = 4000;

const request = client.get({ host: '127.0.0.1', port, path: '/health', timeout: timeoutMs, rejectUnauthorized: false }, (response) => {
  response.resume();
  process.stdout.write(`GET /health: ${response.statusCode}\n`);
  process.exitCode = response.statusCode === 200 ? 0 : 1;
});
request.on('timeout', () => request.destroy(new Error(`timed out after ${timeoutMs} ms`)));
request.on('error', (error) => {
  process.stdout.write(`GET /health failed: ${error.message}\n`);
  process.exitCode = 1;
});
