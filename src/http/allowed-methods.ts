import FindMyWay, { type HTTPMethod } from 'find-my-way';
import type { FastifyInstance, RouteOptions } from 'fastify';

const methods: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/**
 * Keeps a router of its own with every route's path and method, so that a request for a known path
 * with another method gets 405 and the methods that path takes, instead of 404 "No route". Fastify's
 * router reports only whether a method and path match, so the not-found handler looks the path up
 * here. This router uses Fastify's settings that change matching (`maxParamLength`).
 */
export function trackAllowedMethods(app: FastifyInstance, routerOptions: { maxParamLength: number }): (path: string) => HTTPMethod[] {
  const router = FindMyWay({ maxParamLength: routerOptions.maxParamLength });
  app.addHook('onRoute', (route: RouteOptions) => {
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
      const known = method.toUpperCase() as HTTPMethod;
      if (!router.hasRoute(known, route.url)) router.on(known, route.url, () => undefined);
    }
  });
  // A parameter matches an empty segment (`/credentials/` for `/credentials/:name`), which no route means.
  const takes = (method: HTTPMethod, path: string) => {
    const found = router.find(method, path);
    return found !== null && Object.values(found.params).every((value) => value !== '');
  };
  return (path) => methods.filter((method) => takes(method, path));
}
