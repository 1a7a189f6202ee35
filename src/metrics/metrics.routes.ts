import type { FastifyInstance } from 'fastify';
import type { Vault } from '../vault.js';

/** Registers GET /metrics (Prometheus text format). */
export function registerMetricsRoutes(_app: FastifyInstance, _vault: Vault): void {}
