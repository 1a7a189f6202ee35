import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a stub server received, with its body read in full. */
export interface RecordedRequest {
  method: string;
  /** The path and query, e.g. `/check?key=abc`. */
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export type StubHandler = (request: RecordedRequest, response: http.ServerResponse) => void;

export interface HttpStub {
  /** The base URL, e.g. `http://127.0.0.1:40123`. */
  url: string;
  requests: RecordedRequest[];
  /** Replaces the handler for the requests that follow. */
  handle(handler: StubHandler): void;
  close(): Promise<void>;
}

/**
 * Starts an HTTP server on 127.0.0.1 on a free port that records every request and answers through a
 * handler the test can swap. A handler that never writes a response leaves the request hanging until
 * `close`, which drops every open connection.
 */
export async function startHttpStub(handler: StubHandler): Promise<HttpStub> {
  let current = handler;
  const requests: RecordedRequest[] = [];
  const server = http.createServer((incoming, response) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const recorded = { method: incoming.method ?? '', url: incoming.url ?? '', headers: incoming.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(recorded);
      current(recorded, response);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    handle(next) {
      current = next;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Sends a JSON response. */
export function sendJson(response: http.ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}
