import AjvCompiler from '@fastify/ajv-compiler';
import type { Ajv, FuncKeywordDefinition, Options } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';

/**
 * Request validation as Fastify runs it, with two differences from its defaults. Bodies are JSON and
 * arrive typed, so they are checked without type coercion (`"callerName": true` is refused instead of
 * becoming `"true"`); the querystring, path and headers are text and keep Fastify's coercion (`?limit=5`).
 * And two schema keywords of our own, {@link MAX_DEPTH_KEYWORD} and {@link MAX_JSON_BYTES_KEYWORD}, which
 * the OpenAPI document carries as specification extensions.
 */

/**
 * Schema keyword: objects and arrays nest at most this many levels deep, the value itself being level 1
 * (a scalar is 0). A depth can be written in plain JSON Schema, and the schemas here do, but a value
 * nested too deep then fails with one error per alternative at every level; this says it in one line.
 * It runs before the structural keywords, and without recursion.
 */
export const MAX_DEPTH_KEYWORD = 'x-maxDepth';

/**
 * Schema keyword: the value, serialised as JSON, takes at most this many UTF-8 bytes. JSON Schema has no
 * size keyword; an `x-` name is an OpenAPI specification extension, so the document states the limit.
 */
export const MAX_JSON_BYTES_KEYWORD = 'x-maxJsonBytes';

/**
 * `Buffer.byteLength(JSON.stringify(value))` for parsed JSON, without recursion (a value nested ten
 * thousand levels deep must not overflow the stack) and stopping as soon as the count passes `limit`.
 * Returns a number above `limit` in that case.
 */
export function jsonByteLength(value: unknown, limit: number = Number.POSITIVE_INFINITY): number {
  let bytes = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0 && bytes <= limit) {
    const item = pending.pop();
    if (Array.isArray(item)) {
      bytes += 2 + Math.max(0, item.length - 1);
      for (const element of item) pending.push(element);
    } else if (item !== null && typeof item === 'object') {
      const entries = Object.entries(item);
      bytes += 2 + Math.max(0, entries.length - 1);
      for (const [key, element] of entries) {
        bytes += Buffer.byteLength(JSON.stringify(key)) + 1;
        pending.push(element);
      }
    } else {
      bytes += Buffer.byteLength(JSON.stringify(item) ?? 'null');
    }
  }
  return bytes;
}

/** Nesting depth of parsed JSON, without recursion; stops counting once it passes `limit`. */
export function jsonDepth(value: unknown, limit: number = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const pending: [unknown, number][] = [[value, 1]];
  while (pending.length > 0 && deepest <= limit) {
    const [item, depth] = pending.pop()!;
    if (item === null || typeof item !== 'object') continue;
    deepest = Math.max(deepest, depth);
    for (const child of Array.isArray(item) ? item : Object.values(item)) pending.push([child, depth + 1]);
  }
  return deepest;
}

/** A keyword that fails with one plain message, for a value `measure` finds over the schema's limit. */
function limitKeyword(keyword: string, measure: (data: unknown, limit: number) => number, message: (limit: number) => string): FuncKeywordDefinition {
  return {
    keyword,
    schemaType: 'number',
    errors: true,
    validate: function validate(limit: number, data: unknown): boolean {
      if (measure(data, limit) <= limit) return true;
      (validate as unknown as { errors: unknown[] }).errors = [{ keyword, message: message(limit), params: { limit } }];
      return false;
    },
  };
}

const maxDepth = limitKeyword(MAX_DEPTH_KEYWORD, jsonDepth, (limit) => `must not nest objects and arrays more than ${limit} levels deep`);
const maxJsonBytes = limitKeyword(MAX_JSON_BYTES_KEYWORD, jsonByteLength, (limit) => `must take at most ${limit} bytes as JSON`);

/** Ajv plugin adding this project's keywords; pass it in Fastify's `ajv.plugins`. */
export function veKeywords(ajv: Ajv): Ajv {
  // Untyped keywords run before the type-specific ones, in the order added: depth, then size, then the
  // structure, so a hostile value gets the plain message.
  for (const definition of [maxDepth, maxJsonBytes]) if (ajv.getKeyword(definition.keyword as string) === false) ajv.addKeyword(definition);
  return ajv;
}

type ValidatorFromPool = AjvCompiler.BuildCompilerFromPool;
type RouteValidatorCompiler = FastifySchemaCompiler<unknown>;

/**
 * `schemaController.compilersFactory.buildValidator` for Fastify: its own Ajv compiler, once with its
 * default options for the querystring, params and headers, once without coercion for bodies.
 */
export function buildValidator(): ValidatorFromPool {
  const fromPool = AjvCompiler();
  return (externalSchemas, options = {}) => {
    const customOptions = (options.customOptions ?? {}) as Options;
    // The pool hands out the function Fastify calls with a route definition, whatever its declared type.
    const textual = fromPool(externalSchemas, { ...options, mode: undefined, customOptions }) as unknown as RouteValidatorCompiler;
    const body = fromPool(externalSchemas, { ...options, mode: undefined, customOptions: { ...customOptions, coerceTypes: false } }) as unknown as RouteValidatorCompiler;
    const compile: RouteValidatorCompiler = (route) => (route.httpPart === 'body' ? body(route) : textual(route));
    return compile as unknown as ReturnType<ValidatorFromPool>;
  };
}
