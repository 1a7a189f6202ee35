import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RouteOptions } from 'fastify';
import fastJsonStringify from 'fast-json-stringify';
import { buildApp } from '../../src/http/app.js';
import { patternDescriptions } from '../../src/http/problem.js';
import { validatorCompiler } from '../../src/http/validation.js';
import { destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const requestParts = ['body', 'querystring', 'params', 'headers'] as const;

/** Lists every `pattern` in a schema, at any depth. */
function patternsIn(schema: unknown): string[] {
  if (Array.isArray(schema)) return schema.flatMap(patternsIn);
  if (typeof schema !== 'object' || schema === null) return [];
  return Object.entries(schema).flatMap(([key, child]) => (key === 'pattern' && typeof child === 'string' ? [child] : patternsIn(child)));
}

/** Lists a route's response schemas, including those nested under a content type. */
function responseSchemas(route: RouteOptions): Array<{ status: string; schema: unknown }> {
  const response = (route.schema?.response ?? {}) as Record<string, unknown>;
  return Object.entries(response).flatMap(([status, schema]) => {
    const content = (schema as { content?: Record<string, { schema: unknown }> }).content;
    if (content === undefined) return [{ status, schema }];
    return Object.values(content).map((entry) => ({ status, schema: entry.schema }));
  });
}

// Route schemas compile on a route's first request, not at start-up, so a schema that cannot compile
// would only show as a 500 on that route. This builds each of them up front.
describe('route schemas', () => {
  let t: TestVault;
  const routes: RouteOptions[] = [];

  before(async () => {
    t = await openTestVault('sqlite');
    const app = await buildApp(t.vault, { onRoute: (route) => routes.push(route) });
    await app.ready();
    await app.close();
  });
  after(async () => destroyTestVault(t));

  it('compiles every request schema', () => {
    let compiled = 0;
    for (const route of routes) {
      for (const httpPart of requestParts) {
        const schema = route.schema?.[httpPart];
        if (schema === undefined) continue;
        const validate = validatorCompiler({ schema: schema as Record<string, unknown>, httpPart, method: String(route.method), url: route.url }) as { schemaEnv?: unknown };
        assert.doesNotThrow(() => validate.schemaEnv, `${String(route.method)} ${route.url} ${httpPart}`);
        compiled += 1;
      }
    }
    assert.ok(compiled > 30, `only ${compiled} request schemas found`);
  });

  it('describes every request pattern in words', () => {
    let checked = 0;
    const undescribed = new Set<string>();
    for (const route of routes) {
      for (const httpPart of requestParts) {
        for (const pattern of patternsIn(route.schema?.[httpPart])) {
          if (patternDescriptions[pattern] === undefined) undescribed.add(`${String(route.method)} ${route.url} ${httpPart}: ${pattern}`);
          checked += 1;
        }
      }
    }
    assert.deepEqual([...undescribed], []);
    assert.ok(checked > 30, `only ${checked} patterns found`);
  });

  it('builds every response serializer', () => {
    let built = 0;
    for (const route of routes) {
      for (const { status, schema } of responseSchemas(route)) {
        assert.doesNotThrow(() => fastJsonStringify(schema as fastJsonStringify.AnySchema), `${String(route.method)} ${route.url} ${status}`);
        built += 1;
      }
    }
    assert.ok(built > 100, `only ${built} response schemas found`);
  });
});
