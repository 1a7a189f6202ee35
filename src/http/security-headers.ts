import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';

/**
 * The Content-Security-Policy of API responses. They are JSON, never pages, so nothing may load or
 * frame them. The dashboard sets its own policy for its pages, which this one does not replace.
 */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/** Browser features no AEGIS response needs. */
export const PERMISSIONS_POLICY = 'accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()';

/** One year, in seconds: how long a browser that saw HTTPS keeps using HTTPS for this host. */
const HSTS_MAX_AGE_SECONDS = 31_536_000;

/**
 * Returns the headers every response carries, API, errors and dashboard alike. Responses contain credential
 * values and tokens, so no cache may store them, and no other site may frame, embed or open them.
 */
export function securityHeaders(config: Pick<Config, 'tls'>): Record<string, string> {
  return {
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'permissions-policy': PERMISSIONS_POLICY,
    // Browsers ignore this header over plain HTTP, so it is sent only when AEGIS serves HTTPS itself.
    ...(config.tls ? { 'strict-transport-security': `max-age=${HSTS_MAX_AGE_SECONDS}` } : {}),
  };
}

/** Adds the security headers to every response, and the API policy unless a route set its own CSP. */
export function registerSecurityHeaders(app: FastifyInstance, config: Config): void {
  const headers = securityHeaders(config);
  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.headers(headers);
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', API_CSP);
    done(null, payload);
  });
}
