/**
 * `sluice ui`: serves the web UI for a store until Ctrl-C; and `startUi`, which `sluice run --ui`
 * calls to serve the same page beside a run.
 */
import { randomBytes } from 'node:crypto';
import { UsageError } from '../errors.ts';
import type { StoreOptions } from '../store.ts';
import { UiStore } from './api.ts';
import { isLoopback, startUiServer, type UiServer } from './server.ts';

export interface UiOptions extends StoreOptions {
  readonly port: number;
  readonly host: string;
  readonly token?: string;
}

/** Starts the server; bad options (host, token, bucket) fail here, before anything is served. */
export async function startUi(options: UiOptions, say: (text: string) => void): Promise<UiServer> {
  if (!options.host.trim()) throw new UsageError('--host', 'give an address to bind to, e.g. 127.0.0.1');
  if (options.token !== undefined && !/^[\x21-\x7e]{16,200}$/.test(options.token)) {
    throw new UsageError('--token', 'use 16 to 200 printable characters without spaces');
  }
  const loopback = isLoopback(options.host);
  const token = options.token ?? (loopback ? undefined : randomBytes(18).toString('base64url'));
  const store = await UiStore.validate(options);
  const server = await startUiServer({
    store,
    host: options.host,
    port: options.port,
    ...(token ? { token } : {}),
  });
  say(`sluice ui: ${store.description} at ${server.url}\n`);
  if (!loopback) {
    say(
      `sluice ui: bound to ${options.host}, reachable from other machines; every request needs the token${options.token ? '' : ' (generated, shown above)'}\n`,
    );
  }
  return server;
}

export async function uiCommand(
  options: UiOptions,
  write: (text: string) => void,
  onInterrupt?: (handler: () => void) => () => void,
): Promise<void> {
  const server = await startUi(options, write);
  write('read-only; Ctrl-C stops it\n');
  await new Promise<void>((resolve) => {
    const remove = onInterrupt?.(() => {
      remove?.();
      resolve();
    });
  });
  await server.close();
}

/** `sluice run --ui`: the same server, on the run's store directory; undefined without --ui. */
export async function startUiBesideRun(
  storeDir: string,
  options: { ui?: boolean; uiPort?: number; uiHost?: string; uiToken?: string },
  say: (text: string) => void,
): Promise<UiServer | undefined> {
  if (!options.ui) {
    const stray =
      options.uiPort !== undefined
        ? '--ui-port'
        : options.uiHost !== undefined
          ? '--ui-host'
          : options.uiToken !== undefined
            ? '--ui-token'
            : undefined;
    if (stray) throw new UsageError(stray, 'only applies with --ui');
    return undefined;
  }
  return startUi(
    {
      store: storeDir,
      port: options.uiPort ?? 4040,
      host: options.uiHost ?? '127.0.0.1',
      ...(options.uiToken !== undefined ? { token: options.uiToken } : {}),
    },
    say,
  );
}
