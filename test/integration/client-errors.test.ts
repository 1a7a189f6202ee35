import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, REQUEST_TIMEOUT_MS } from '../../src/http/app.js';
import { destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

/** Sends raw bytes to the server and returns everything it writes back before it closes the connection. */
function sendRaw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
  });
}

function parse(response: string): { status: number; headers: Record<string, string>; body: any } {
  const [head = '', body = ''] = response.split('\r\n\r\n');
  const [statusLine = '', ...headerLines] = head.split('\r\n');
  const headers = Object.fromEntries(headerLines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(body) };
}

// Node's HTTP parser rejects these requests before routing, so one database is enough.
describe('requests the HTTP parser rejects', () => {
  let t: TestVault;
  let app: FastifyInstance;
  let port: number;

  before(async () => {
    t = await openTestVault('sqlite');
    app = await buildApp(t.vault);
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as net.AddressInfo).port;
  });

  after(async () => {
    await app?.close();
    if (t) await destroyTestVault(t);
  });

  it('get a problem for a control character', async () => {
    const response = parse(await sendRaw(port, 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad: a\u0001b\r\n\r\n'));
    assert.equal(response.status, 400);
    assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.equal(response.headers['x-content-type-options'], 'nosniff');
    assert.equal(response.body.code, 'malformed_request');
    assert.equal(response.body.status, 400);
  });

  it('get 431 for oversized headers', async () => {
    const response = parse(await sendRaw(port, `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Large: ${'a'.repeat(20_000)}\r\n\r\n`));
    assert.equal(response.status, 431);
    assert.equal(response.body.code, 'headers_too_large');
    assert.equal(response.body.field, 'headers');
    assert.equal(response.body.title, 'Request Header Fields Too Large');
  });

  // Node checks these limits every 30 s of real time, so the test reads the settings instead of waiting.
  it('limit the time to send a request', () => {
    assert.equal(app.server.requestTimeout, REQUEST_TIMEOUT_MS);
    assert.ok(REQUEST_TIMEOUT_MS > 0);
    assert.ok(app.server.headersTimeout <= app.server.requestTimeout);
  });
});
