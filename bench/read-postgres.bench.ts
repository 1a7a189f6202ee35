import { runReadBenchmark } from './read-load.js';

/** B2: GET /credentials/{name}, audited, on PostgreSQL in a schema of its own; throughput >= 0.25 x bare Fastify. */
await runReadBenchmark({ id: 'B2', dialect: 'postgres', minRatio: 0.25, maxP99Ms: undefined });
