import { createRequire } from 'node:module';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Typed access to the `ws` package, which ships no types (and `@types/ws` is not installed). Loading
 * it through `require` with local interfaces, instead of an ambient `declare module 'ws'`, keeps these
 * declarations from leaking into other code that imports `ws` types (e.g. @fastify/websocket).
 */

export type RawData = Buffer | ArrayBuffer | Buffer[];

export interface WsSocket {
  readonly readyState: number;
  readonly OPEN: number;
  send(data: string | Buffer | ArrayBufferView | ArrayBuffer, cb?: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'message', listener: (data: RawData, isBinary: boolean) => void): this;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'open', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'unexpected-response', listener: (req: unknown, res: IncomingMessage) => void): this;
}

export interface WsServer {
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WsSocket) => void): void;
  close(cb?: () => void): void;
}

interface WsModule {
  WebSocket: new (url: string, options?: { headers?: Record<string, string> }) => WsSocket;
  WebSocketServer: new (options: { noServer: true }) => WsServer;
}

const ws = createRequire(import.meta.url)('ws') as WsModule;

export const WebSocket = ws.WebSocket;
export const WebSocketServer = ws.WebSocketServer;
