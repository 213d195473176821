// One Lambda execution environment as a host process, for LocalStack's `host` runtime executor
// (executor.py beside this file). It plays the parts of LocalStack's Go init and of the Node.js
// runtime interface client:
//
//   init    import the handler (`_HANDLER` = <file>.<export>, from LAMBDA_TASK_ROOT; .js, .mjs or
//           .cjs, ES module or CommonJS), listen on 127.0.0.1:<free port>, then POST
//           <LOCALSTACK_RUNTIME_ENDPOINT>/status/<id>/ready {"port"} (or /status/<id>/error)
//   invoke  POST /invoke {invoke-id, invoked-function-arn, payload, trace-id} is answered at once;
//           the handler runs with a Lambda context; its output is captured; then POST
//           .../invocations/<req>/logs {"logs"} and .../response (the JSON result) or .../error
//           ({errorType, errorMessage, trace})
//   timeout an invocation that outlives AWS_LAMBDA_FUNCTION_TIMEOUT ends the process with status
//           124 (the executor reports Sandbox.Timedout and LocalStack discards the environment)
//
// Fault injection (tests only): an /invoke body with "sluice-fault": {"kill": true, "afterMs": n}
// runs the handler for n ms (or until it finishes) and then SIGKILLs this process without answering.
import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const TIMEOUT_EXIT_CODE = 124;

const runtimeEndpoint = process.env.LOCALSTACK_RUNTIME_ENDPOINT;
const runtimeId = process.env.LOCALSTACK_RUNTIME_ID;
// The init takes these for itself; the function never sees them.
delete process.env.LOCALSTACK_RUNTIME_ENDPOINT;
delete process.env.LOCALSTACK_RUNTIME_ID;

const taskRoot = process.env.LAMBDA_TASK_ROOT ?? process.cwd();
const handlerSpec = process.env._HANDLER ?? '';
const timeoutMs = Math.round(Number(process.env.AWS_LAMBDA_FUNCTION_TIMEOUT ?? '3') * 1000);
const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME ?? '';
const functionVersion = process.env.AWS_LAMBDA_FUNCTION_VERSION ?? '$LATEST';
const memorySize = process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '128';

// ---- output capture: what the function writes during an invocation goes to its logs too -------
let captured = null;
for (const stream of [process.stdout, process.stderr]) {
  const write = stream.write.bind(stream);
  stream.write = (chunk, encoding, callback) => {
    if (captured !== null) {
      captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    }
    return write(chunk, encoding, callback);
  };
}

async function post(suffix, body, contentType = 'application/json') {
  const res = await fetch(`${runtimeEndpoint}${suffix}`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
  if (!res.ok) throw new Error(`POST ${suffix}: HTTP ${res.status}`);
}

function errorPayload(error) {
  if (error instanceof Error) {
    return {
      errorType: error.name || 'Error',
      errorMessage: error.message,
      trace: typeof error.stack === 'string' ? error.stack.split('\n') : [],
    };
  }
  return { errorType: typeof error, errorMessage: String(error), trace: [] };
}

class HandlerError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

// ---- init: load the handler as the Node.js runtime does ---------------------------------------
async function loadHandler() {
  // "dir/file.export.nested": the module is everything up to the first dot after the last slash.
  const slash = handlerSpec.lastIndexOf('/');
  const dot = handlerSpec.indexOf('.', slash + 1);
  if (dot < 0) throw new HandlerError('Runtime.MalformedHandlerName', `Bad handler ${handlerSpec}`);
  const moduleName = handlerSpec.slice(0, dot);
  const exportPath = handlerSpec.slice(dot + 1).split('.');
  const base = path.resolve(taskRoot, moduleName);
  const file = ['.js', '.mjs', '.cjs'].map((ext) => base + ext).find((f) => existsSync(f));
  if (!file) {
    throw new HandlerError('Runtime.ImportModuleError', `Error: Cannot find module '${moduleName}'`);
  }
  let mod;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (error) {
    const e = new HandlerError(
      error instanceof SyntaxError ? 'Runtime.UserCodeSyntaxError' : 'Runtime.ImportModuleError',
      `${error?.name ?? 'Error'}: ${error?.message ?? String(error)}`,
    );
    e.stack = error?.stack ?? e.stack;
    throw e;
  }
  const resolve = (root) => exportPath.reduce((obj, key) => (obj == null ? undefined : obj[key]), root);
  // An ES module's export, or a CommonJS module's exports (the default export of its namespace).
  const handler = resolve(mod) ?? resolve(mod.default);
  if (typeof handler !== 'function') {
    throw new HandlerError(
      'Runtime.HandlerNotFound',
      `${moduleName}.${exportPath.join('.')} is undefined or not exported`,
    );
  }
  return handler;
}

// ---- one invocation ----------------------------------------------------------------------------
function contextFor(invocation, deadlineMs) {
  return {
    awsRequestId: invocation['invoke-id'],
    invokedFunctionArn: invocation['invoked-function-arn'],
    functionName,
    functionVersion,
    memoryLimitInMB: memorySize,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    identity: undefined,
    clientContext: undefined,
    getRemainingTimeInMillis: () => Math.max(0, deadlineMs - Date.now()),
  };
}

function callHandler(handler, event, context) {
  return new Promise((resolve, reject) => {
    const callback = (error, result) => (error ? reject(error) : resolve(result));
    Object.assign(context, {
      done: callback,
      succeed: (result) => resolve(result),
      fail: (error) => reject(error ?? new Error('handled')),
    });
    try {
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === 'function') returned.then(resolve, reject);
      else if (handler.length < 3) resolve(returned);
    } catch (error) {
      reject(error);
    }
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let busy = false;

async function invoke(handler, invocation) {
  const requestId = invocation['invoke-id'];
  const started = Date.now();
  const deadlineMs = started + timeoutMs;
  captured = [];
  process.stdout.write(`START RequestId: ${requestId} Version: ${functionVersion}\n`);

  const timer = setTimeout(() => {
    process.stdout.write(
      `${new Date().toISOString()} ${requestId} Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds\n`,
    );
    process.exit(TIMEOUT_EXIT_CODE);
  }, timeoutMs);

  let outcome;
  const run = (async () => {
    const event = invocation.payload ? JSON.parse(invocation.payload) : {};
    return callHandler(handler, event, contextFor(invocation, deadlineMs));
  })().then(
    (result) => ({ ok: true, result }),
    (error) => ({ ok: false, error }),
  );

  const fault = invocation['sluice-fault'];
  if (fault?.kill) {
    await Promise.race([run, sleep(Number(fault.afterMs ?? 0))]);
    process.stdout.write(`[sluice-fault] killing the runtime (SIGKILL) in invocation ${requestId}\n`);
    process.kill(process.pid, 'SIGKILL');
    return;
  }

  outcome = await run;
  clearTimeout(timer);
  const durationMs = Date.now() - started;
  if (!outcome.ok) {
    const payload = errorPayload(outcome.error);
    process.stderr.write(
      `${new Date().toISOString()}\t${requestId}\tERROR\tInvoke Error \t${JSON.stringify(payload)}\n`,
    );
  }
  process.stdout.write(`END RequestId: ${requestId}\n`);
  process.stdout.write(
    `REPORT RequestId: ${requestId}\tDuration: ${durationMs.toFixed(2)} ms\tBilled Duration: ${Math.max(1, Math.ceil(durationMs))} ms\t` +
      `Memory Size: ${memorySize} MB\tMax Memory Used: ${Math.round(process.memoryUsage.rss() / 1048576)} MB\t\n`,
  );
  const logs = captured.join('');
  captured = null;

  let body;
  let kind;
  if (outcome.ok) {
    kind = 'response';
    try {
      body = JSON.stringify(outcome.result === undefined ? null : outcome.result);
    } catch (error) {
      kind = 'error';
      body = JSON.stringify(errorPayload(error));
    }
  } else {
    kind = 'error';
    body = JSON.stringify(errorPayload(outcome.error));
  }
  await post(`/invocations/${requestId}/logs`, JSON.stringify({ logs }));
  await post(`/invocations/${requestId}/${kind}`, body);
}

// ---- main --------------------------------------------------------------------------------------
process.on('uncaughtException', (error) => {
  process.stderr.write(`Uncaught exception in the runtime: ${error?.stack ?? error}\n`);
  process.exit(129);
});
process.on('unhandledRejection', (reason) => {
  process.stderr.write(`Unhandled promise rejection in the runtime: ${reason?.stack ?? reason}\n`);
  process.exit(128);
});

let handler;
try {
  handler = await loadHandler();
} catch (error) {
  const payload = errorPayload(error);
  process.stderr.write(`INIT error: ${JSON.stringify(payload)}\n`);
  await post(`/status/${runtimeId}/error`, JSON.stringify(payload)).catch(() => {});
  process.exit(1);
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/invoke') {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let invocation;
    try {
      invocation = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400).end('bad invocation');
      return;
    }
    if (busy) {
      // LocalStack gives an environment one invocation at a time; anything else is a bug.
      res.writeHead(409).end('busy');
      return;
    }
    busy = true;
    res.writeHead(200).end('OK');
    invoke(handler, invocation)
      .catch((error) => {
        process.stderr.write(
          `runtime: cannot report invocation ${invocation['invoke-id']}: ${error?.stack ?? error}\n`,
        );
        process.exit(1);
      })
      .finally(() => {
        busy = false;
      });
  });
});
server.keepAliveTimeout = 0;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  // On AWS the function would run on its runtime's Node.js; here it runs on the host's.
  process.stdout.write(
    `[host executor] ${functionName}: ${process.env.AWS_EXECUTION_ENV ?? 'a Node.js function'} runs on ` +
      `node ${process.version} (pid ${process.pid}), handler ${handlerSpec}, listening on 127.0.0.1:${port}\n`,
  );
  post(`/status/${runtimeId}/ready`, JSON.stringify({ port })).catch((error) => {
    process.stderr.write(`runtime: cannot report ready: ${error?.stack ?? error}\n`);
    process.exit(1);
  });
});
