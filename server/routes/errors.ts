import type { FastifyError, FastifyInstance } from 'fastify';
import { ApiError, errorBody, toApiError } from '../errors.ts';
import { shared } from '../plugin.ts';

/** Declared routes by path pattern, to tell "no such path" (404) from "not with this method" (405). */
class DeclaredMethods {
  readonly #byUrl = new Map<string, { pattern: RegExp; methods: Set<string> }>();

  add(url: string, methods: readonly string[]): void {
    let entry = this.#byUrl.get(url);
    if (entry === undefined) {
      // `:name` matches one path segment, `*` the rest, as in Fastify's router (no regex parameters here).
      const source = url
        .split('/')
        .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment === '*' ? '.*' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('/');
      entry = { pattern: new RegExp(`^${source}$`), methods: new Set() };
      this.#byUrl.set(url, entry);
    }
    for (const method of methods) {
      entry.methods.add(method);
      // Fastify answers HEAD for every GET route.
      if (method === 'GET') entry.methods.add('HEAD');
    }
  }

  /** The methods some route declares for this path, sorted; empty when no route has the path. */
  for(path: string): string[] {
    const allowed = new Set<string>();
    for (const { pattern, methods } of this.#byUrl.values()) if (pattern.test(path)) for (const m of methods) allowed.add(m);
    return [...allowed].sort();
  }
}

/**
 * Every error leaves as `{ error: { code, message } }` with a catalogued `VE_*` code: Fastify's own
 * validation, 404, 415, 413 and parser errors are translated, and unexpected errors become `VE_INTERNAL`
 * with a generic message (the cause is logged, never sent). A method a declared path does not accept
 * answers 405 `VE_METHOD_NOT_ALLOWED` with `Allow`, not 404. Register before the routes.
 */
export const errorsPlugin = shared(async function errorsPlugin(app: FastifyInstance) {
  const declared = new DeclaredMethods();
  app.addHook('onRoute', (route) => declared.add(route.url, Array.isArray(route.method) ? route.method : [route.method]));

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

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0];
    const allowed = declared.for(path);
    if (allowed.length === 0) return reply.status(404).send(errorBody(new ApiError('VE_NOT_FOUND')));
    const error = new ApiError('VE_METHOD_NOT_ALLOWED', `${request.method} is not allowed here; allowed: ${allowed.join(', ')}`);
    return reply.status(405).header('allow', allowed.join(', ')).send(errorBody(error));
  });
});
