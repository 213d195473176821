/**
 * A small local HTTP server that speaks Lambda's Invoke API, so the real `@aws-sdk/client-lambda`
 * code path (and `LambdaInvoker`) runs against handlers in this process. A test double: the
 * integration tests run the bundled handlers behind it, since LocalStack here cannot execute
 * functions (it needs Docker). It is not part of any Lambda bundle.
 *
 *   POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=...]
 *     X-Amz-Invocation-Type: RequestResponse (default) → 200 with the JSON result
 *                            Event → 202 at once, the handler runs in the background
 *                            DryRun → 204
 *   A handler that throws (or runs past its timeout) gives 200 with `X-Amz-Function-Error: Unhandled`
 *   and the body `{errorType, errorMessage, trace}`, as Lambda's Node.js runtime does
 *   (`errorType` is the error's `name`; on timeout `Sandbox.Timedout`).
 *   An unknown function gives 404 ResourceNotFoundException; too many concurrent invocations of a
 *   function with a `concurrency` limit gives 429 TooManyRequestsException.
 *
 * Requests are not authenticated (any SigV4 signature is accepted). A handler that times out keeps
 * running in this process (nothing can stop a promise); only its answer is replaced.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { toLambdaError } from '../../aws/payload.ts';

export interface LocalLambdaContext {
  readonly functionName: string;
  readonly functionVersion: string;
  readonly invokedFunctionArn: string;
  readonly memoryLimitInMB: string;
  readonly awsRequestId: string;
  readonly logGroupName: string;
  readonly logStreamName: string;
  callbackWaitsForEmptyEventLoop: boolean;
  getRemainingTimeInMillis(): number;
}

export type LambdaHandler = (event: any, context: LocalLambdaContext) => unknown;

export interface LocalFunction {
  /** The handler itself, or ... */
  readonly handler?: LambdaHandler;
  /** ... a module to import (path or file URL) and the export to call (default `handler`). */
  readonly module?: string;
  readonly export?: string;
  /** Function timeout, as Lambda's (default 60 s). */
  readonly timeoutMs?: number;
  readonly memoryMb?: number;
  /** Reserved concurrency: more invocations at once are throttled with 429. */
  readonly concurrency?: number;
}

export type FunctionRegistry = Record<string, LambdaHandler | LocalFunction>;

export interface LocalLambdaEndpointOptions {
  readonly functions: FunctionRegistry;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: any free port. */
  readonly port?: number;
  readonly region?: string;
  readonly accountId?: string;
  /** Where to report background (Event) failures and handler logs; default: nowhere. */
  readonly log?: (line: string) => void;
}

export interface LocalLambdaEndpoint {
  /** Base URL to use as the Lambda endpoint, e.g. `http://127.0.0.1:39123`. */
  readonly url: string;
  readonly port: number;
  /** Invocations received so far, per function name. */
  readonly invocations: Readonly<Record<string, number>>;
  close(): Promise<void>;
}

const MAX_SYNC_PAYLOAD = 6 * 1024 * 1024;
const MAX_ASYNC_PAYLOAD = 1024 * 1024;
const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations\/?$/;

/** `name`, `name:qualifier`, `123:function:name`, `arn:aws:lambda:region:123:function:name[:q]` → name. */
export function functionNameOf(raw: string): { name: string; qualifier?: string } {
  const parts = raw.split(':');
  const i = parts.indexOf('function');
  if (i >= 0 && parts[i + 1]) {
    const qualifier = parts[i + 2];
    return qualifier ? { name: parts[i + 1]!, qualifier } : { name: parts[i + 1]! };
  }
  if (parts.length === 2) return { name: parts[0]!, qualifier: parts[1]! };
  return { name: raw };
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body = ''): void {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, { 'Content-Length': String(bytes.byteLength), ...headers });
  res.end(bytes);
}

function awsError(res: ServerResponse, status: number, type: string, message: string, extra = {}): void {
  send(
    res,
    status,
    {
      'Content-Type': 'application/json',
      'x-amzn-ErrorType': type,
      'x-amzn-RequestId': randomUUID(),
    },
    JSON.stringify({ Type: status >= 500 ? 'Service' : 'User', message, ...extra }),
  );
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).byteLength;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function startLocalLambdaEndpoint(
  options: LocalLambdaEndpointOptions,
): Promise<LocalLambdaEndpoint> {
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '000000000000';
  const log = options.log ?? (() => {});
  const invocations: Record<string, number> = {};
  const inFlight = new Map<string, number>();
  const loaded = new Map<string, Promise<LambdaHandler>>();

  const definitionOf = (name: string): LocalFunction | undefined => {
    if (!Object.hasOwn(options.functions, name)) return undefined;
    const entry = options.functions[name]!;
    return typeof entry === 'function' ? { handler: entry } : entry;
  };

  const handlerOf = (name: string, def: LocalFunction): Promise<LambdaHandler> => {
    if (def.handler) return Promise.resolve(def.handler);
    let p = loaded.get(name);
    if (!p) {
      const moduleRef = def.module;
      const exportName = def.export ?? 'handler';
      p = (async () => {
        if (!moduleRef)
          throw Object.assign(new Error(`function ${name} has neither handler nor module`), {
            name: 'Runtime.HandlerNotFound',
          });
        const url = moduleRef.startsWith('file:')
          ? moduleRef
          : pathToFileURL(isAbsolute(moduleRef) ? moduleRef : resolvePath(moduleRef)).href;
        let mod: Record<string, unknown>;
        try {
          mod = (await import(url)) as Record<string, unknown>;
        } catch (error) {
          throw Object.assign(new Error(`cannot import ${moduleRef}: ${(error as Error).message}`), {
            name: 'Runtime.ImportModuleError',
          });
        }
        const fn = mod[exportName] ?? (mod.default as Record<string, unknown> | undefined)?.[exportName];
        if (typeof fn !== 'function') {
          throw Object.assign(new Error(`${moduleRef} has no exported function ${exportName}`), {
            name: 'Runtime.HandlerNotFound',
          });
        }
        return fn as LambdaHandler;
      })();
      loaded.set(name, p);
    }
    return p;
  };

  /** Runs the handler; resolves to the Lambda answer (result or error body). */
  const run = async (
    name: string,
    def: LocalFunction,
    event: unknown,
    requestId: string,
  ): Promise<{ ok: true; body: string } | { ok: false; body: string }> => {
    const timeoutMs = def.timeoutMs ?? 60_000;
    const started = Date.now();
    const context: LocalLambdaContext = {
      functionName: name,
      functionVersion: '$LATEST',
      invokedFunctionArn: `arn:aws:lambda:${region}:${accountId}:function:${name}`,
      memoryLimitInMB: String(def.memoryMb ?? 1024),
      awsRequestId: requestId,
      logGroupName: `/aws/lambda/${name}`,
      logStreamName: `local/${requestId}`,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - started)),
    };
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    try {
      const work = (async () => {
        const handler = await handlerOf(name, def);
        return { value: await handler(event, context) };
      })();
      work.catch(() => {}); // still observed below; avoids an unhandled rejection after a timeout
      const outcome = await Promise.race([work, timedOut]);
      if (outcome === 'timeout') {
        const seconds = (timeoutMs / 1000).toFixed(2);
        return {
          ok: false,
          body: JSON.stringify({
            errorType: 'Sandbox.Timedout',
            errorMessage: `RequestId: ${requestId} Error: Task timed out after ${seconds} seconds`,
          }),
        };
      }
      const text = JSON.stringify(outcome.value);
      return { ok: true, body: text === undefined ? 'null' : text };
    } catch (error) {
      return { ok: false, body: JSON.stringify(toLambdaError(error)) };
    } finally {
      clearTimeout(timer);
    }
  };

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const match = INVOKE_PATH.exec(url.pathname);
      if (req.method !== 'POST' || !match) {
        awsError(
          res,
          404,
          'UnknownOperationException',
          `${req.method} ${url.pathname} is not supported here`,
        );
        return;
      }
      const { name } = functionNameOf(decodeURIComponent(match[1]!));
      const def = definitionOf(name);
      if (!def) {
        awsError(
          res,
          404,
          'ResourceNotFoundException',
          `Function not found: arn:aws:lambda:${region}:${accountId}:function:${name}`,
        );
        return;
      }
      const type = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
      const limit = type === 'Event' ? MAX_ASYNC_PAYLOAD : MAX_SYNC_PAYLOAD;
      const body = await readBody(req, limit);
      if (body === undefined) {
        awsError(res, 413, 'RequestTooLargeException', `Request must be smaller than ${limit} bytes`);
        return;
      }
      let event: unknown = {};
      if (body.byteLength > 0) {
        try {
          event = JSON.parse(body.toString('utf8'));
        } catch {
          awsError(res, 400, 'InvalidRequestContentException', 'Could not parse request body into json');
          return;
        }
      }
      if (type === 'DryRun') {
        send(res, 204, {});
        return;
      }
      const running = inFlight.get(name) ?? 0;
      if (def.concurrency !== undefined && running >= def.concurrency) {
        awsError(res, 429, 'TooManyRequestsException', 'Rate Exceeded.', {
          Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded',
        });
        return;
      }
      invocations[name] = (invocations[name] ?? 0) + 1;
      inFlight.set(name, running + 1);
      const requestId = randomUUID();
      const done = () => inFlight.set(name, (inFlight.get(name) ?? 1) - 1);
      if (type === 'Event') {
        send(res, 202, { 'x-amzn-RequestId': requestId });
        void run(name, def, event, requestId).then((answer) => {
          done();
          if (!answer.ok) log(`[${name}] ${requestId} async invocation failed: ${answer.body}`);
        });
        return;
      }
      const answer = await run(name, def, event, requestId);
      done();
      send(
        res,
        200,
        {
          'Content-Type': 'application/json',
          'X-Amz-Executed-Version': '$LATEST',
          'x-amzn-RequestId': requestId,
          ...(answer.ok ? {} : { 'X-Amz-Function-Error': 'Unhandled' }),
        },
        answer.body,
      );
    })().catch((error: unknown) => {
      log(`local lambda endpoint: ${String(error)}`);
      if (!res.headersSent) awsError(res, 500, 'ServiceException', String(error));
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    invocations,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
