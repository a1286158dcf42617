import type { FastifyError, FastifyInstance } from 'fastify';
import { ApiError, errorBody, toApiError } from '../errors.ts';
import { shared } from '../plugin.ts';

/**
 * Every error leaves as `{ error: { code, message } }` with a catalogued `VE_*` code: Fastify's own
 * validation, 404, 415, 413 and parser errors are translated, and unexpected errors become `VE_INTERNAL`
 * with a generic message (the cause is logged, never sent).
 */
export const errorsPlugin = shared(async function errorsPlugin(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError | Error, request, reply) => {
    const apiError = toApiError(err);
    if (apiError.status >= 500 && apiError.code === 'VE_INTERNAL') {
      request.log.error({ err }, 'request failed');
    } else {
      request.log.info({ code: apiError.code, cause: apiError.cause instanceof Error ? apiError.cause.message : undefined }, 'request refused');
    }
    for (const [name, value] of Object.entries(apiError.headers)) reply.header(name, value);
    return reply.status(apiError.status).send(errorBody(apiError));
  });

  app.setNotFoundHandler((_request, reply) => {
    return reply.status(404).send(errorBody(new ApiError('VE_NOT_FOUND')));
  });
});
