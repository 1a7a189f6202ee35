import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { problem, sendProblem } from '../http/problem.js';

/**
 * The folder `npm run build` writes the dashboard into. This file compiles to dist/web/ and runs from
 * src/web/ under tsx; both lie two levels below the project root, so one relative path serves both.
 */
export const dashboardAssetsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/web');

/**
 * The files the dashboard consists of, with their content types. Only these are served, because
 * dist/web also contains this module's compiled JavaScript.
 */
const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
};

/**
 * The Content-Security-Policy of every dashboard response. Scripts, styles and requests come from this
 * origin only, so no inline script or style runs and the token in sessionStorage is sent nowhere else.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function setBrowserHeaders(reply: FastifyReply): void {
  reply.header('content-security-policy', DASHBOARD_CSP);
  reply.header('x-frame-options', 'DENY');
  reply.header('referrer-policy', 'no-referrer');
  reply.header('cross-origin-opener-policy', 'same-origin');
}

/**
 * Serves the web dashboard under /ui/ and redirects / to it. These routes need no token: the pages
 * hold no data, and every API call the dashboard makes sends the token the user signed in with.
 * Files are read on each request, so a rebuild shows up without a restart.
 */
export function registerDashboardRoutes(app: FastifyInstance, options: { assetsDir?: string } = {}): void {
  const assetsDir = options.assetsDir ?? dashboardAssetsDir;
  const routeOptions = { config: { scope: null }, schema: { hide: true } } as const;

  const sendAsset = async (reply: FastifyReply, file: string) => {
    setBrowserHeaders(reply);
    const contentType = ASSETS[file];
    if (!contentType) {
      return sendProblem(reply, problem(404, 'route_not_found', `The dashboard has no file ${file}.`));
    }
    let body: Buffer;
    try {
      body = await fs.promises.readFile(path.join(assetsDir, file));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      reply.log.error({ assetsDir, file }, 'dashboard file missing; run npm run build');
      return sendProblem(reply, problem(503, 'dashboard_not_built', `The dashboard file ${file} is missing from ${assetsDir}. Run npm run build.`));
    }
    return reply.type(contentType).send(body);
  };

  app.get('/', routeOptions, async (_request, reply) => reply.redirect('/ui/'));
  app.get('/ui', routeOptions, async (_request, reply) => reply.redirect('/ui/'));
  app.get('/ui/', routeOptions, async (_request, reply) => sendAsset(reply, 'index.html'));
  app.get<{ Params: { file: string } }>('/ui/:file', routeOptions, async (request, reply) => sendAsset(reply, request.params.file));
}
