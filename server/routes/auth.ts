import { createHash } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { READ_METHODS, accessOf, type Access } from '../access.ts';
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import { shared } from '../plugin.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Name of the API key that authenticated the request (never the secret). */
    apiKeyName: string | undefined;
    /** What that key may do; set together with `apiKeyName`. */
    access: Access | undefined;
  }
  interface FastifyContextConfig {
    /** Reachable without an API key and outside the per-key rate limit (probes, metrics, webhooks). */
    public?: boolean;
    /** Needs a key with the `admin` scope (process-wide tools rather than one caller's calls). */
    admin?: boolean;
  }
}

export interface AuthOptions extends Record<string, unknown> {
  config: Config;
}

function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/**
 * `Authorization: Bearer <key>` on every route not marked `config.public`, then a per-key rate limit
 * (`RATE_LIMIT_MAX` per `RATE_LIMIT_WINDOW_MS`, overridable per key name). Requests without a valid key
 * are limited per client address before they are refused, so a flood of bad keys is throttled too.
 * Then the key's scopes: a read-only key may only GET, and routes marked `config.admin` need `admin`
 * (403 `VE_FORBIDDEN`). Which calls a key sees is decided where the call is loaded (`call-view.ts`).
 */
export const authPlugin = shared<AuthOptions>(async function authPlugin(app: FastifyInstance, { config }: AuthOptions) {
  // Keys are looked up by their SHA-256 so that the comparison time says nothing about the secret.
  const keys = new Map(config.auth.apiKeys.map((k) => [digest(k.key), accessOf(k)]));
  const { max, windowMs, overrides } = config.rateLimit;

  await app.register(rateLimit, {
    global: false,
    max: (_request: FastifyRequest, key: string) => (key.startsWith('key:') ? (overrides[key.slice(4)] ?? max) : max),
    timeWindow: windowMs,
    keyGenerator: (request: FastifyRequest) => (request.apiKeyName === undefined ? `ip:${request.ip}` : `key:${request.apiKeyName}`),
    errorResponseBuilder: (_request, context) =>
      new ApiError('VE_RATE_LIMITED', `Rate limit exceeded, retry in ${context.after}`),
  });
  const limit = app.rateLimit();

  app.decorateRequest('apiKeyName', undefined);
  app.decorateRequest('access', undefined);
  app.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config;
    if (config.public === true) return;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer +([\x21-\x7e]{1,512}) *$/i.exec(header) : null;
    const access = match === null ? undefined : keys.get(digest(match[1]));
    request.access = access;
    request.apiKeyName = access?.name;
    await limit.call(app, request, reply);
    if (access === undefined) throw new ApiError('VE_UNAUTHORIZED');
    // No route matched: the 404/405 answer says nothing a scope could protect.
    if (request.is404) return;
    if (!access.write && !READ_METHODS.has(request.method)) {
      throw new ApiError('VE_FORBIDDEN', `API key ${access.name} is read-only (scope read): ${request.method} is not allowed`);
    }
    if (config.admin === true && !access.admin) throw new ApiError('VE_FORBIDDEN', `API key ${access.name} lacks the admin scope this route needs`);
  });
});
