import fastJsonStringify from 'fast-json-stringify';
import type { FastifySerializerCompiler } from 'fastify/types/schema.js';

/**
 * Builds a response schema's serializer on the first response that uses it, where Fastify's default
 * builds every serializer at start-up. Like the validators (validation.ts), this keeps the code of
 * routes a deployment does not call out of memory.
 */
export const serializerCompiler: FastifySerializerCompiler<unknown> = ({ schema }) => {
  let serialize: ((data: unknown) => string) | undefined;
  return (data) => {
    serialize ??= fastJsonStringify(schema as fastJsonStringify.AnySchema);
    return serialize(data);
  };
};
