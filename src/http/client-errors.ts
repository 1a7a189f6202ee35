import type { Socket } from 'node:net';
import { problem, type Problem } from './problem.js';

/**
 * Responds to a request that Node's HTTP parser rejected before Fastify saw it (a control character in a
 * header, a malformed chunk, headers over the size limit, a client too slow to send them) with a
 * problem document and the security headers, as every other error gets. Fastify's own handler sends
 * a JSON body without `code`. Hooks do not run for these requests, so nothing is logged or audited.
 */
export function clientErrorHandler(headers: Record<string, string>) {
  return (error: NodeJS.ErrnoException, socket: Socket): void => {
    // A reset connection can no longer receive a response.
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const answer = problemFor(error.code);
    const body = JSON.stringify(answer);
    if (socket.writable) {
      const lines = [
        `HTTP/1.1 ${answer.status} ${answer.title}`,
        'content-type: application/problem+json; charset=utf-8',
        `content-length: ${Buffer.byteLength(body)}`,
        'connection: close',
        ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
      ];
      socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
    }
    socket.destroy(error);
  };
}

function problemFor(code: string | undefined): Problem {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return problem(408, 'request_timeout', 'The request did not arrive in time. Send it again.');
    case 'HPE_HEADER_OVERFLOW':
      return problem(431, 'headers_too_large', 'headers: the request headers are larger than the server accepts (16 KiB in all). Send fewer or shorter headers.', { field: 'headers' });
    default:
      return problem(400, 'malformed_request', 'The request is not valid HTTP/1.1: a header name or value with a control character, a malformed chunk or a bad request line. Check the client that sent it.');
  }
}
