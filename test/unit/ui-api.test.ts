/**
 * The web UI's JSON API without a browser: a store made by a real pipeline (three batches, one
 * record that makes user code throw), copied into a directory, then served by the UI server and
 * read over HTTP. Checks what the page is given (batches, a batch page, dead letters with their
 * reasons, a lineage graph down to the input blocks, lineage records), and the safety rules:
 * keys outside the data areas refused, a token when asked for, a missing or corrupt store told as
 * a message while the server keeps answering, and bad options failing at start-up.
 */
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../cli/errors.ts';
import { main } from '../../cli/program.ts';
import { checkKey, UiProblem, UiStore } from '../../cli/ui/api.ts';
import { startUi, startUiBesideRun } from '../../cli/ui/command.ts';
import { isLoopback, startUiServer, type UiServer } from '../../cli/ui/server.ts';
import type { BatchManifest } from '../../shared/core/driver.ts';
import { layout } from '../../shared/core/layout.ts';
import { DirectoryObjectStore } from '../../shared/local/directory-store.ts';
import { runPipeline } from '../../shared/testing.ts';

let dir: string;
let storeDir: string;
let manifests: BatchManifest[];
let server: UiServer;

const get = async (pathname: string, init?: RequestInit) => {
  const res = await fetch(new URL(pathname, server.url), init);
  return { status: res.status, body: (await res.json()) as any };
};

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sluice-ui-'));
  storeDir = path.join(dir, 'store');
  const run = await runPipeline(
    (ctx) => {
      ctx
        .inputStream<string>()
        .map((s) => {
          if (s === 'boom') throw new RangeError('no booms here');
          return [s, 1] as [string, number];
        })
        .reduceByKey((a, b) => a + b)
        .saveAsJsonLines('counts');
    },
    { input: [['a', 'b', 'a'], ['b', 'boom', 'c'], ['a']] },
  );
  manifests = run.manifests;
  // the same store as a directory, as `sluice run` leaves it
  const dirStore = new DirectoryObjectStore(storeDir);
  for (const key of await run.store.list('')) await dirStore.put(key, (await run.store.get(key))!);
  server = await startUiServer({ store: new UiStore({ store: storeDir }), host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('UI API on a store', () => {
  it('gives the overview: pipeline, batches as committed, derived events', async () => {
    const { status, body } = await get('/api/overview');
    expect(status).toBe(200);
    expect(body.committed).toBe(3);
    expect(body.batchIntervalMs).toBe(1000);
    expect(body.problems).toEqual([]);
    expect(body.batches.map((b: any) => b.batchTimeMs)).toEqual(manifests.map((m) => m.batchTimeMs));
    expect(body.batches.map((b: any) => b.records)).toEqual([3, 3, 1]);
    expect(body.batches[1].deadLetters).toBe(1);
    expect(body.batches[1].costUsd).toBeGreaterThan(0);
    expect(body.events).toContainEqual(
      expect.objectContaining({ kind: 'deadletter', batchTimeMs: manifests[1]!.batchTimeMs }),
    );
    expect((await get('/api/overview?last=1')).body.batches).toHaveLength(1);
  });

  it('gives one batch: manifest, cost, dead letters with their reasons, stored outputs', async () => {
    const t = manifests[1]!.batchTimeMs;
    const { status, body } = await get(`/api/batch/${t}`);
    expect(status).toBe(200);
    expect(body.manifest.stages.length).toBe(manifests[1]!.stages.length);
    expect(body.cost.totalUsd).toBeCloseTo(body.cost.s3Usd + body.cost.lambdaUsd, 12);
    expect(body.deadLetters).toHaveLength(1);
    expect(body.deadLetters[0]).toMatchObject({ batchTimeMs: t, raw: 'boom' });
    expect(body.deadLetters[0].reason).toContain('no booms here');
    expect(body.stored).toContainEqual(expect.objectContaining({ area: 'outputs', partitions: [0, 1] }));
    const missing = await get('/api/batch/12345');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toContain('not committed');
    const all = await get('/api/deadletters');
    expect(all.body.deadLetters.map((d: any) => d.raw)).toEqual(['boom']);
  });

  it('gives the lineage of a saved output part as a graph down to the input blocks', async () => {
    const t = manifests[2]!.batchTimeMs;
    const out = (await get(`/api/batch/${t}`)).body.stored.find((s: any) => s.area === 'outputs');
    const { status, body } = await get(`/api/lineage?rdd=${encodeURIComponent(out.name)}&t=${t}&p=0`);
    expect(status).toBe(200);
    const root = body.nodes.find((n: any) => n.id === body.root);
    expect(root).toMatchObject({ kind: 'partition', layer: 0 });
    const inputs = body.nodes.filter((n: any) => n.kind === 'input');
    expect(inputs.length).toBeGreaterThan(0);
    for (const n of inputs) expect(n.key).toMatch(/^inputs\//);
    // every edge joins two nodes, parent one layer or more further from the root
    const byId = new Map(body.nodes.map((n: any) => [n.id, n]));
    for (const [parent, child] of body.edges) {
      expect((byId.get(parent) as any).layer).toBeGreaterThan((byId.get(child) as any).layer);
    }
    const record = await get(`/api/record?key=${encodeURIComponent(root.key)}`);
    expect(record.status).toBe(200);
    expect(record.body).toMatchObject({ key: root.key, partition: 0, operators: expect.any(Array) });
    const none = await get(`/api/lineage?rdd=nothing&t=${t}&p=0`);
    expect(none.status).toBe(404);
    expect(none.body.error).toContain('no lineage record');
    expect((await get(`/api/lineage?rdd=x&t=${t}&p=0&depth=0`)).status).toBe(400);
  });

  it('refuses keys outside the data areas and names outside the store', async () => {
    for (const key of [
      '../x',
      'rdd/../../etc/passwd',
      '/etc/passwd',
      'rdd\\..\\x',
      'meta/graph.json',
      'rdd//x',
    ]) {
      expect(() => checkKey(key), key).toThrow(UiProblem);
      const res = await get(`/api/record?key=${encodeURIComponent(key)}`);
      expect(res.status, key).toBe(400);
    }
    expect(checkKey('rdd/000000000001000/ds3/0.blk')).toBe('rdd/000000000001000/ds3/0.blk');
    expect((await get('/api/lineage?rdd=..%2F..%2Fx&t=1000&p=0')).status).toBe(400);
    expect((await get('/assets/..%2F..%2Fpackage.json')).status).toBe(404);
    expect((await get('/api/overview', { method: 'DELETE' }).catch(() => ({ status: 405 }))).status).toBe(
      405,
    );
  });

  it('tells of a corrupt manifest and still lists the other batches', async () => {
    const copy = path.join(dir, 'corrupt');
    await fs.cp(storeDir, copy, { recursive: true });
    await fs.writeFile(path.join(copy, layout.manifest(manifests[1]!.batchTimeMs)), '{ not json');
    const ui = new UiStore({ store: copy });
    const o = await ui.overview();
    expect(o.batches.map((b) => b.batchTimeMs)).toEqual([
      manifests[0]!.batchTimeMs,
      manifests[2]!.batchTimeMs,
    ]);
    expect(o.problems).toHaveLength(1);
    expect(o.problems[0]).toContain('corrupt manifest');
    expect(o.problems[0]).toContain(layout.manifest(manifests[1]!.batchTimeMs));
    await expect(ui.batch(manifests[1]!.batchTimeMs)).rejects.toThrow(/corrupt manifest/);
  });

  it('tells of a missing store, then an empty one, while the server keeps answering', async () => {
    const later = path.join(dir, 'later');
    const s = await startUiServer({ store: new UiStore({ store: later }), host: '127.0.0.1', port: 0 });
    try {
      const ask = async () => {
        const res = await fetch(new URL('/api/overview', s.url));
        return { status: res.status, error: ((await res.json()) as any).error as string | undefined };
      };
      expect(await ask()).toEqual({ status: 404, error: expect.stringContaining('does not exist') });
      await fs.mkdir(later);
      expect(await ask()).toEqual({ status: 404, error: expect.stringContaining('no Sluice store') });
      await fs.cp(storeDir, later, { recursive: true });
      expect((await ask()).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});

describe('UI safety and options', () => {
  it('requires the token when one is set', async () => {
    const token = 'a-long-enough-token-123';
    const s = await startUiServer({
      store: new UiStore({ store: storeDir }),
      host: '127.0.0.1',
      port: 0,
      token,
    });
    try {
      const base = new URL(s.url);
      expect(base.searchParams.get('token')).toBe(token);
      const url = (p: string) => new URL(p, `http://127.0.0.1:${s.port}`);
      expect((await fetch(url('/api/overview'))).status).toBe(401);
      expect((await fetch(url('/'))).status).toBe(401);
      expect((await fetch(url('/api/overview'), { headers: { Authorization: 'Bearer wrong' } })).status).toBe(
        401,
      );
      expect(
        (await fetch(url('/api/overview'), { headers: { Authorization: `Bearer ${token}` } })).status,
      ).toBe(200);
      const first = await fetch(url(`/?token=${token}`));
      expect(first.status).toBe(200);
      const cookie = first.headers.get('set-cookie')!;
      expect(cookie).toContain('HttpOnly');
      expect((await fetch(url('/api/overview'), { headers: { Cookie: cookie.split(';')[0]! } })).status).toBe(
        200,
      );
    } finally {
      await s.close();
    }
  });

  it('never listens on a non-loopback address without a token', async () => {
    expect(isLoopback('127.0.0.1')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('localhost')).toBe(true);
    expect(isLoopback('0.0.0.0')).toBe(false);
    expect(isLoopback('192.168.1.4')).toBe(false);
    await expect(
      startUiServer({ store: new UiStore({ store: storeDir }), host: '0.0.0.0', port: 0 }),
    ).rejects.toThrow(/needs a token/);
  });

  it('fails at start-up on bad options, naming them', async () => {
    const say = () => {};
    await expect(
      startUi({ store: storeDir, host: '127.0.0.1', port: 0, token: 'short' }, say),
    ).rejects.toThrow(UsageError);
    await expect(startUi({ bucket: 'Not_A_Bucket', host: '127.0.0.1', port: 0 }, say)).rejects.toThrow(
      /--bucket/,
    );
    await expect(startUiBesideRun(storeDir, { uiPort: 4041 }, say)).rejects.toThrow(
      /--ui-port.*only applies with --ui/,
    );
    let err = '';
    const code = await main(['node', 'sluice', 'ui', '--store', storeDir, '--port', '70000'], {
      stdout: () => {},
      stderr: (t) => {
        err += t;
      },
    });
    expect(code).toBe(2);
    expect(err).toContain('--port');
    const taken = await startUi({ store: storeDir, host: '127.0.0.1', port: 0 }, say);
    try {
      await expect(startUi({ store: storeDir, host: '127.0.0.1', port: taken.port }, say)).rejects.toThrow(
        /in use/,
      );
    } finally {
      await taken.close();
    }
  });
});
