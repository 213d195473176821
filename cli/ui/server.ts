/**
 * The web UI's HTTP server (`sluice ui`, `sluice run --ui`): Node's own http module, no framework.
 *
 *   GET /                      the page (assets/index.html)
 *   GET /assets/<name>         app.js, style.css, and uPlot from node_modules: a fixed list,
 *                              never a path taken from the request
 *   GET /api/overview          pipeline, batches, derived events, problems (JSON)
 *   GET /api/batch/<t>         one batch: manifest, cost, dead letters, stored partitions
 *   GET /api/deadletters       dead letters with their reasons, newest first
 *   GET /api/lineage?rdd=&t=&p=   the lineage of a stored partition as nodes and edges
 *   GET /api/record?key=       the lineage record beside a data object (rdd/, shuffle/, outputs/ only)
 *   GET /api/live              engine events of the run this server sits beside (`run --ui`)
 *   GET /api/stream            server-sent events: the overview again whenever it changes
 *
 * Safe by default: read-only (GET and HEAD only), binds 127.0.0.1, checks the Host header on a
 * loopback address (no DNS rebinding), and requires a token on any other address. Errors reading
 * the store are answered as `{ error }` JSON that the page shows; the server keeps running.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { asProblem, logEvent, type UiEvent, UiProblem, type UiStore } from './api.ts';

export interface UiServerOptions {
  readonly store: UiStore;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Required on every request when set (always set on a non-loopback host). */
  readonly token?: string;
  /** How often the live stream looks at the store for new batches. Default 1000 ms. */
  readonly pollMs?: number;
}

export interface UiServer {
  /** The page's address (with `?token=` when a token is required). */
  readonly url: string;
  readonly port: number;
  /** An engine log event of the run beside this server, shown live on the page. */
  pushEvent(event: Record<string, unknown>): void;
  close(): Promise<void>;
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

const ASSET_DIR = fileURLToPath(new URL('./assets/', import.meta.url));
const requireHere = createRequire(import.meta.url);

/** The only files the server sends: name -> [file, content type]. */
const ASSETS: Readonly<Record<string, readonly [string, string]>> = {
  'index.html': [`${ASSET_DIR}index.html`, 'text/html; charset=utf-8'],
  'app.js': [`${ASSET_DIR}app.js`, 'text/javascript; charset=utf-8'],
  'style.css': [`${ASSET_DIR}style.css`, 'text/css; charset=utf-8'],
  'uplot.js': [requireHere.resolve('uplot/dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8'],
  'uplot.css': [requireHere.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8'],
};

const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

const COOKIE = 'sluice_ui_token';
const LIVE_EVENTS = 500;

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieToken(req: http.IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

export async function startUiServer(options: UiServerOptions): Promise<UiServer> {
  const { store, token } = options;
  if (!isLoopback(options.host) && !token) {
    throw new UiProblem(500, `a UI bound to ${options.host} needs a token`);
  }
  const pollMs = options.pollMs ?? 1000;
  const live: UiEvent[] = [];
  const clients = new Set<http.ServerResponse>();
  let lastSent = '';
  let timer: NodeJS.Timeout | undefined;
  let port = options.port;

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
    });
    res.end(text);
  };
  const fail = (res: http.ServerResponse, err: unknown) => {
    const p = asProblem(err);
    json(res, p.status, { error: p.message });
  };

  /** The overview (or the problem instead), as the stream sends it. */
  const snapshot = async (): Promise<string> => {
    try {
      const overview = await store.overview();
      return JSON.stringify({ ...overview, live: live.slice(-100) });
    } catch (err) {
      const p = asProblem(err);
      return JSON.stringify({ error: p.message, live: live.slice(-100) });
    }
  };
  let polling = false;
  const poll = async () => {
    if (polling || clients.size === 0) return;
    polling = true;
    try {
      const data = await snapshot();
      if (data !== lastSent) {
        lastSent = data;
        for (const c of clients) c.write(`event: overview\ndata: ${data}\n\n`);
      }
    } finally {
      polling = false;
    }
  };

  const authorized = (req: http.IncomingMessage, url: URL, res: http.ServerResponse): boolean => {
    if (!token) return true;
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const given = url.searchParams.get('token') ?? bearer ?? cookieToken(req);
    if (given !== undefined && sameSecret(given, token)) {
      if (url.searchParams.has('token')) {
        res.setHeader(
          'Set-Cookie',
          `${COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
        );
      }
      return true;
    }
    return false;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...SECURITY_HEADERS, Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
      res.end('the Sluice UI is read-only: GET only\n');
      return;
    }
    const hostHeader = req.headers.host ?? '';
    if (isLoopback(options.host) && !isLoopback(hostHeader.replace(/:\d+$/, ''))) {
      res.writeHead(421, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain' });
      res.end(`refused: Host '${hostHeader}' is not this machine's loopback address\n`);
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://ui.invalid');
    } catch {
      res.writeHead(400, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain' });
      res.end('bad request\n');
      return;
    }
    if (!authorized(req, url, res)) {
      json(res, 401, {
        error: 'this Sluice UI needs its token: open the address sluice printed (it ends in ?token=...)',
      });
      return;
    }
    const p = url.pathname;
    if (p === '/' || p === '/index.html') return sendAsset(res, 'index.html');
    if (p.startsWith('/assets/')) return sendAsset(res, p.slice('/assets/'.length));
    try {
      if (p === '/api/overview') {
        const last = Number(url.searchParams.get('last') ?? 300);
        return json(res, 200, await store.overview(Number.isInteger(last) && last >= 0 ? last : 300));
      }
      const batch = /^\/api\/batch\/(\d{1,15})$/.exec(p);
      if (batch) return json(res, 200, await store.batch(Number(batch[1])));
      if (p === '/api/deadletters') return json(res, 200, { deadLetters: await store.deadLetters() });
      if (p === '/api/lineage') {
        const rdd = url.searchParams.get('rdd') ?? '';
        const t = Number(url.searchParams.get('t'));
        const part = Number(url.searchParams.get('p') ?? 0);
        const depth = Number(url.searchParams.get('depth') ?? 12);
        if (!Number.isSafeInteger(t) || t < 0 || !Number.isSafeInteger(part) || part < 0) {
          throw new UiProblem(400, 'lineage needs rdd=<name>, t=<batch time in ms> and p=<partition>');
        }
        if (!Number.isInteger(depth) || depth < 1 || depth > 100) {
          throw new UiProblem(400, 'depth must be a whole number of levels from 1 to 100');
        }
        return json(res, 200, await store.lineage(rdd, t, part, depth));
      }
      if (p === '/api/record') return json(res, 200, await store.record(url.searchParams.get('key') ?? ''));
      if (p === '/api/live') return json(res, 200, { events: live });
      if (p === '/api/stream') {
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          'Content-Type': 'text/event-stream; charset=utf-8',
          'Cache-Control': 'no-store',
          Connection: 'keep-alive',
        });
        res.write(`retry: ${pollMs}\n\n`);
        clients.add(res);
        req.on('close', () => clients.delete(res));
        lastSent = ''; // a new client gets the current state at once
        void poll();
        return;
      }
      json(res, 404, { error: `no such page: ${p.slice(0, 200)}` });
    } catch (err) {
      fail(res, err);
    }
  };

  const sendAsset = (res: http.ServerResponse, name: string) => {
    const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!asset) {
      json(res, 404, { error: `no such asset: ${name.slice(0, 200)}` });
      return;
    }
    let body: Buffer;
    try {
      body = readFileSync(asset[0]);
    } catch (err) {
      fail(res, err);
      return;
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': asset[1], 'Cache-Control': 'no-cache' });
    res.end(body);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) fail(res, err);
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const what = err.code === 'EADDRINUSE' ? `port ${port} is in use` : err.message;
      reject(new UiProblem(500, `the UI cannot listen on ${options.host}:${port}: ${what}`));
    });
    server.listen(port, options.host, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  timer = setInterval(() => void poll(), pollMs);
  timer.unref();
  const shownHost = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${shownHost}:${port}/${token ? `?token=${encodeURIComponent(token)}` : ''}`;

  return {
    url,
    port,
    pushEvent(event) {
      live.push(logEvent(event));
      if (live.length > LIVE_EVENTS) live.splice(0, live.length - LIVE_EVENTS);
    },
    async close() {
      if (timer) clearInterval(timer);
      for (const c of clients) c.end();
      clients.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
