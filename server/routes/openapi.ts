import swagger from '@fastify/swagger';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { READ_METHODS } from '../access.ts';
import { shared } from '../plugin.ts';
import { MAX_METADATA_BYTES, MAX_METADATA_DEPTH } from '../schemas.ts';
import { MAX_DEPTH_KEYWORD, MAX_JSON_BYTES_KEYWORD } from '../validation.ts';

export interface OpenApiOptions extends Record<string, unknown> {
  version: string;
  /** `BODY_LIMIT_BYTES`, stated in the document. */
  bodyLimitBytes: number;
}

/** Name of the bearer security scheme in the document. */
const SCHEME = 'apiKey';

/**
 * What a route needs, as OpenAPI 3.1 security requirements (alternatives; the roles in one must all be
 * held). These are the checks `auth.ts` makes: any key reads (`read` or `calls`), changing anything needs
 * `calls`, the console's fleet needs `calls` and `admin`, and public routes need nothing.
 */
export function securityOf(route: Pick<RouteOptions, 'method' | 'config'>): Record<string, string[]>[] {
  const config = (route.config ?? {}) as { public?: boolean; admin?: boolean };
  if (config.public === true) return [];
  if (config.admin === true) return [{ [SCHEME]: ['calls', 'admin'] }];
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  if (methods.every((m) => READ_METHODS.has(m))) return [{ [SCHEME]: ['read'] }, { [SCHEME]: ['calls'] }];
  return [{ [SCHEME]: ['calls'] }];
}

/**
 * Builds the OpenAPI document from the same TypeBox schemas the routes validate with, served at
 * `/openapi.json`. Must be registered before the route plugins so that it sees every route. OpenAPI 3.1,
 * because its schemas are JSON Schema (`propertyNames`, `null`) and its security requirements may name
 * the roles (scopes) a bearer key needs.
 */
export const openapiPlugin = shared<OpenApiOptions>(async function openapiPlugin(app: FastifyInstance, opts: OpenApiOptions) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'voice-density-engine control plane',
        version: opts.version,
        description: [
          'Creates and controls AI voice calls for dispatch systems. Every error is `{ error: { code, message } }` ' +
            'with a stable `VE_*` code (see server/ERRORS.md).',
          'Request bodies are validated exactly as these schemas say, without type coercion; unknown fields are refused ' +
            '(400 `VE_VALIDATION`). Two schema keywords are specification extensions: `' + MAX_DEPTH_KEYWORD + '` (objects ' +
            'and arrays nest at most this deep, the value itself being level 1) and `' + MAX_JSON_BYTES_KEYWORD + '` ' +
            `(the value takes at most this many bytes as JSON); call metadata has ${MAX_METADATA_DEPTH} and ${MAX_METADATA_BYTES}. ` +
            `A body larger than ${opts.bodyLimitBytes} bytes (\`BODY_LIMIT_BYTES\`) answers 413 \`VE_BODY_TOO_LARGE\`.`,
          'A method a path does not list answers 405 `VE_METHOD_NOT_ALLOWED` with an `Allow` header naming the methods it ' +
            'does list (see `components.responses.MethodNotAllowed`).',
          'Security roles are API key scopes (`API_KEYS`): `read` and `calls` read, `calls` changes, `admin` reaches every ' +
            "key's calls. A key without `admin` sees only the calls it created; another key's call answers 404 " +
            '`VE_CALL_NOT_FOUND`. A key without `calls` gets 403 `VE_FORBIDDEN` on every method but GET.',
        ].join('\n\n'),
      },
      components: {
        securitySchemes: {
          [SCHEME]: {
            type: 'http',
            scheme: 'bearer',
            description: 'One of `API_KEYS`. Scopes: `calls` (default), `read`, `admin`; `read+admin` reads every call.',
          },
        },
        responses: {
          MethodNotAllowed: {
            description: 'The path does not accept this method (`VE_METHOD_NOT_ALLOWED`)',
            headers: { Allow: { description: 'The methods the path accepts, e.g. `GET, HEAD, POST`', schema: { type: 'string' } } },
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  properties: { error: { type: 'object', properties: { code: { const: 'VE_METHOD_NOT_ALLOWED' }, message: { type: 'string' } } } },
                },
              },
            },
          },
        },
      },
      security: [{ [SCHEME]: [] }],
    },
    transform: ({ schema, url, route }) => ({ schema: { ...schema, security: securityOf(route) } as typeof schema, url }),
  });

  app.get('/openapi.json', { schema: { hide: true }, config: { public: true } }, async () => app.swagger());
});
