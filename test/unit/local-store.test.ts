/**
 * The embedded runner's store and `sluice run` options around it: temporary files left by a kill
 * are removed at start, the store's size by prefix, `--retain-inputs`, and a store that read one
 * file refusing another until `--fresh`.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeBlock } from '../../shared/core/codec.ts';
import { DirectoryObjectStore } from '../../shared/local/directory-store.ts';
import { runEmbedded } from '../../shared/local/embedded-runner.ts';
import { sluice } from '../sluice-cli.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'sluice-store-'));
const pipeline = path.join(dir, 'keep.mts');
writeFileSync(pipeline, `export default (ctx) => { ctx.inputStream().saveAsJsonLines('seen'); };\n`);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function inputRecords(storeDir: string): Promise<unknown[]> {
  const store = new DirectoryObjectStore(storeDir);
  const out: unknown[] = [];
  for (const key of await store.list('inputs/')) out.push(...decodeBlock((await store.get(key))!));
  return out;
}

describe('DirectoryObjectStore', () => {
  it('removes temporary files a killed writer left, but not fresh ones, and sluice run does so at start', async () => {
    const storeDir = path.join(dir, 'tmpfiles');
    const store = new DirectoryObjectStore(storeDir);
    await store.put('rdd/a/0.blk', new Uint8Array([1]));
    mkdirSync(path.join(storeDir, 'inputs/x'), { recursive: true });
    const stale = path.join(storeDir, 'inputs/x/0.blk.0a1b2c3d4e5f.tmp');
    const fresh = path.join(storeDir, 'rdd/a/1.blk.aaaaaaaaaaaa.tmp');
    writeFileSync(stale, 'half a block');
    writeFileSync(fresh, 'a write in flight');
    const old = (Date.now() - 3_600_000) / 1000;
    utimesSync(stale, old, old);
    expect(await store.removeStaleTempFiles()).toBe(1);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    expect(await store.list('rdd/')).toEqual(['rdd/a/0.blk']);

    utimesSync(fresh, old, old);
    const file = path.join(dir, 'one.txt');
    writeFileSync(file, 'x\n');
    await runEmbedded({
      pipelineModule: pipeline,
      storeDir,
      workers: 0,
      source: `file:${file}`,
      numBatches: 1,
    });
    expect(existsSync(fresh)).toBe(false);
  });

  it('writes through hidden temporary files: a writer killed mid-write leaves no part-* file', async () => {
    // a fenced driver's worker is terminated mid-write: what it leaves must not read as output
    const storeDir = path.join(dir, 'inflight');
    const store = new DirectoryObjectStore(storeDir);
    const out = path.join(storeDir, 'outputs/out-1000');
    mkdirSync(out, { recursive: true });
    const seen = new Set<string>();
    const watcher = watch(out, (_event, name) => {
      if (name) seen.add(String(name));
    });
    try {
      await store.put('outputs/out-1000/part-00000', new TextEncoder().encode('slow\na\n'));
      await store.putIfAbsent('outputs/out-1000/part-00000.lineage.json', new TextEncoder().encode('{}'));
      await store.put('outputs/out-1000/_SUCCESS', new Uint8Array(0));
      // inotify reports in order: once _SUCCESS is seen, every earlier file was
      for (let i = 0; i < 200 && !seen.has('_SUCCESS'); i++) await new Promise((r) => setTimeout(r, 10));
    } finally {
      watcher.close();
    }
    const temps = [...seen].filter((n) => n.endsWith('.tmp'));
    expect(temps).toHaveLength(3);
    for (const name of temps)
      expect(name).toMatch(/^\.(part-00000|part-00000\.lineage\.json|_SUCCESS)\.[0-9a-f]{12}\.tmp$/);
    expect([...seen].filter((n) => n.startsWith('part-')).sort()).toEqual([
      'part-00000',
      'part-00000.lineage.json',
    ]);
    // such a file left behind is no key, and is removed once stale
    const left = path.join(out, '.part-00001.0123456789ab.tmp');
    writeFileSync(left, 'b\n');
    expect(await store.list('outputs/')).toEqual([
      'outputs/out-1000/_SUCCESS',
      'outputs/out-1000/part-00000',
      'outputs/out-1000/part-00000.lineage.json',
    ]);
    const old = (Date.now() - 3_600_000) / 1000;
    utimesSync(left, old, old);
    expect(await store.removeStaleTempFiles()).toBe(1);
    expect(existsSync(left)).toBe(false);
  });

  it('tells its size in bytes and objects by top-level prefix', async () => {
    const store = new DirectoryObjectStore(path.join(dir, 'usage'));
    await store.put('inputs/a/0.blk', new Uint8Array(10));
    await store.put('inputs/a/1.blk', new Uint8Array(5));
    await store.put('meta/graph.json', new Uint8Array(3));
    expect(await store.usage()).toEqual({
      bytes: 18,
      objects: 3,
      byPrefix: { 'inputs/': { bytes: 15, objects: 2 }, 'meta/': { bytes: 3, objects: 1 } },
    });
  });
});

describe('sluice run with a file source and a reused store', () => {
  it('refuses another file in a store that read one, says what to do, and --fresh starts over', async () => {
    const a = path.join(dir, 'A.txt');
    const b = path.join(dir, 'B.txt');
    writeFileSync(a, 'a1\na2\na3\n');
    writeFileSync(b, 'b1\nb2\n');
    const storeDir = path.join(dir, 'reused');
    const common = ['--store', storeDir, '--workers', '0', '--interval', '200ms', '--quiet'];
    expect(
      sluice('run', pipeline, '--source', `file:${a}`, '--max-records', '2', '--batches', '1', ...common)
        .code,
    ).toBe(0);
    const refused = sluice('run', pipeline, '--source', `file:${b}`, ...common);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/already read 2 lines .*A\.txt; this run reads another file/);
    expect(refused.stderr).toMatch(/--fresh .* --store/);
    expect(await inputRecords(storeDir)).toEqual(['a1', 'a2']);
    const fresh = sluice('run', pipeline, '--source', `file:${b}`, '--fresh', ...common);
    expect(fresh.code).toBe(0);
    expect(await inputRecords(storeDir)).toEqual(['b1', 'b2']);
  });

  it('--retain-inputs takes a duration; a bad one fails at start naming the option', () => {
    for (const bad of ['5', 'soon', '-1h']) {
      const r = sluice('run', pipeline, '--retain-inputs', bad, '--batches', '1');
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--retain-inputs/);
    }
    const ok = sluice(
      'run',
      pipeline,
      '--retain-inputs',
      '10m',
      '--batches',
      '1',
      '--workers',
      '0',
      '--quiet',
      '--store',
      path.join(dir, 'retain'),
    );
    expect(ok.code).toBe(0);
  });
});
