import { runReadBenchmark } from './read-load.js';

/** B1: GET /credentials/{name}, audited, on SQLite; throughput >= 0.5 x bare Fastify and p99 <= 5 ms. */
await runReadBenchmark({ id: 'B1', dialect: 'sqlite', minRatio: 0.5, maxP99Ms: 5 });
