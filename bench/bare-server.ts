import fs from 'node:fs';
import Fastify from 'fastify';

/**
 * The baseline server of B1 to B3 and B8: a Fastify app with no logger, authentication, database or
 * audit that returns the JSON read from BARE_BODY_FILE for GET BARE_ROUTE. The body is serialized on
 * every request, as AEGIS serializes its own.
 */
const route = process.env.BARE_ROUTE ?? '/';
const body: unknown = process.env.BARE_BODY_FILE ? JSON.parse(fs.readFileSync(process.env.BARE_BODY_FILE, 'utf8')) : { ok: true };

const app = Fastify();
app.get(route, async () => body);
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(`${JSON.stringify({ msg: 'bare server listening', port: typeof address === 'object' && address !== null ? address.port : 0 })}\n`);

const stop = async () => {
  await app.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
