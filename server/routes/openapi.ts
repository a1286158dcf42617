import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { shared } from '../plugin.ts';

export interface OpenApiOptions extends Record<string, unknown> {
  version: string;
}

/**
 * Builds the OpenAPI document from the same TypeBox schemas the routes validate with, served at
 * `/openapi.json`. Must be registered before the route plugins so that it sees every route.
 */
export const openapiPlugin = shared<OpenApiOptions>(async function openapiPlugin(app: FastifyInstance, opts: OpenApiOptions) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'voice-density-engine control plane',
        version: opts.version,
        description:
          'Creates and controls AI voice calls for dispatch systems. Every error is `{ error: { code, message } }` ' +
          'with a stable `VE_*` code (see server/ERRORS.md).',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
  });

  app.get('/openapi.json', { schema: { hide: true }, config: { public: true } }, async () => app.swagger());
});
