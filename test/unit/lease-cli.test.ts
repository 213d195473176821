/**
 * One driver per store, with real processes (`node bin/sluice.js run`), as the issue's
 * reproduction does: a batch that blocks longer than the lease, a second `sluice run` on the same
 * store, a paused (SIGSTOP) driver, kill -9, and --force. Short leases (the hidden
 * --lease-duration) keep each case to seconds. Every input line must be counted exactly once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/sluice.js');
const dir = path.join(root, 'test/.tmp', `lease-${process.pid}`);
mkdirSync(dir, { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// the module: map blocks on the line `slow` (here 6 s, the lease is 1 s)
writeFileSync(
  path.join(dir, 'slow.mts'),
  `export const options = { batchIntervalMs: 500, partitions: 1 };
export default function slow(ctx) {
  ctx.inputStream().map((line) => {
    if (line === 'slow') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 6000);
    return line;
  }).saveAsTextFiles('out');
}
`,
);
const LINES = ['slow', 'a', 'b', 'c', 'd', 'e', 'f', 'g'];
writeFileSync(path.join(dir, 'slow.txt'), `${LINES.join('\n')}\n`);

interface Run {
  child: ChildProcess;
  done: Promise<{ code: number | null; stderr: string }>;
}

function sluiceRun(store: string, ...extra: string[]): Run {
  const child = spawn(
    process.execPath,
    [
      bin,
      'run',
      'slow.mts',
      '--source',
      'file:slow.txt',
      '--max-records',
      '2',
      '--workers',
      '1',
      '--store',
      store,
      '--lease-duration',
      '1s',
      '--quiet',
      ...extra,
    ],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stderr })),
  );
  return { child, done };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the first batch's write-ahead entry exists: the driver is inside the slow batch. */
async function inFirstBatch(store: string): Promise<void> {
  const batches = path.join(dir, store, 'batches');
  for (let i = 0; i < 600; i++) {
    if (existsSync(batches) && readdirSync(batches).length > 0) return;
    await sleep(50);
  }
  throw new Error('the first driver never received its first batch');
}

/** Input records over all committed manifests, and the lines in the saved outputs. */
function committed(store: string): { records: number; lines: string[] } {
  const s = path.join(dir, store);
  let records = 0;
  for (const f of readdirSync(path.join(s, 'manifests')))
    records += JSON.parse(readFileSync(path.join(s, 'manifests', f), 'utf8')).input.records;
  const lines: string[] = [];
  for (const out of readdirSync(path.join(s, 'outputs'))) {
    for (const f of readdirSync(path.join(s, 'outputs', out))) {
      if (f.startsWith('part-') && !f.endsWith('.json'))
        lines.push(...readFileSync(path.join(s, 'outputs', out, f), 'utf8').split('\n'));
    }
  }
  return { records, lines: lines.filter(Boolean).sort() };
}

describe('one driver per store, with real processes', () => {
  it('keeps the lease through a batch longer than it: a second sluice run is refused', async () => {
    const a = sluiceRun('held');
    await inFirstBatch('held');
    await sleep(1_500); // past the lease: before the fix the second driver got in here
    const b = await sluiceRun('held').done;
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/Another driver \(.+:\d+\) holds the lease on this store.*--force/);
    expect((await a.done).code).toBe(0);
    expect(committed('held')).toEqual({ records: 8, lines: [...LINES].sort() });
  });

  it('fences a paused driver: another takes over, the paused one commits nothing and exits 1', async () => {
    const a = sluiceRun('paused');
    await inFirstBatch('paused');
    a.child.kill('SIGSTOP');
    await sleep(1_500);
    const b = await sluiceRun('paused').done;
    expect(b.code).toBe(0);
    a.child.kill('SIGCONT');
    const result = await a.done;
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(
      /lost its lease on the store to .+; it stops at once and commits nothing more/,
    );
    expect(committed('paused')).toEqual({ records: 8, lines: [...LINES].sort() });
  });

  it('takes over at once after kill -9 on the same host', async () => {
    // a 60 s lease: the second driver must not wait it out (the test would time out)
    const a = sluiceRun('killed', '--lease-duration', '60s');
    await inFirstBatch('killed');
    a.child.kill('SIGKILL');
    await a.done;
    const b = await sluiceRun('killed', '--lease-duration', '60s').done;
    expect(b.stderr).toMatch(/lease holder .+ is gone \(no such process on this host\); taking over at once/);
    expect(b.code).toBe(0);
    expect(committed('killed')).toEqual({ records: 8, lines: [...LINES].sort() });
  });

  it('--force takes the lease from a live driver, which is fenced', async () => {
    const a = sluiceRun('forced');
    await inFirstBatch('forced');
    const b = await sluiceRun('forced', '--force').done;
    expect(b.stderr).toMatch(new RegExp(`warning: --force: took the lease from [^ ]+:${a.child.pid} `));
    expect(b.code).toBe(0);
    const result = await a.done;
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/lost its lease/);
    expect(committed('forced')).toEqual({ records: 8, lines: [...LINES].sort() });
  });
});
