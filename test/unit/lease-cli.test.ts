/**
 * One driver per store, with real processes (`node bin/sluice.js run`), as the issue's
 * reproduction does: a batch that blocks longer than the lease, a second `sluice run` on the same
 * store, a paused (SIGSTOP) driver, kill -9, and --force. Every input line must be counted exactly
 * once. Built for a loaded 2-core machine: the slow batch blocks until the test releases it (a
 * file), not for a fixed time, so no step depends on how fast a process starts; the test waits
 * until the driver is inside that batch (a marker file its task writes); the lease is 4 s (the
 * hidden --lease-duration), renewed every 1.3 s, so a busy event loop does not lose it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { layout } from '../../shared/core/layout.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/sluice.js');
const dir = path.join(root, 'test/.tmp', `lease-${process.pid}`);
mkdirSync(dir, { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LEASE_MS = 4_000;
/** Past the lease and its allowed clock skew (a tenth of it): another driver may take over. */
const PAST_LEASE_MS = LEASE_MS + LEASE_MS / 10 + 500;

// the issue's module: map blocks on the line `slow` (with SLOW_RELEASE set) until that file exists,
// after writing `<SLOW_RELEASE>.entered`: the driver is inside the slow batch
writeFileSync(
  path.join(dir, 'slow.mts'),
  `import { existsSync, writeFileSync } from 'node:fs';
export const options = { batchIntervalMs: 500, partitions: 1 };
const release = process.env.SLOW_RELEASE;
export default function slow(ctx) {
  ctx.inputStream().map((line) => {
    if (line === 'slow' && release) {
      writeFileSync(release + '.entered', '');
      const cell = new Int32Array(new SharedArrayBuffer(4));
      for (let i = 0; i < 1200 && !existsSync(release); i++) Atomics.wait(cell, 0, 0, 50);
    }
    return line;
  }).saveAsTextFiles('out');
}
`,
);
const LINES = ['slow', 'a', 'b', 'c', 'd', 'e', 'f', 'g'];
writeFileSync(path.join(dir, 'slow.txt'), `${LINES.join('\n')}\n`);

interface Run {
  child: ChildProcess;
  /** Touch it to end the slow batch. */
  release: () => void;
  entered: string;
  stderr: () => string;
  exited: () => boolean;
  done: Promise<{ code: number | null; stderr: string }>;
}

let runs = 0;
function sluiceRun(store: string, ...extra: string[]): Run {
  const release = path.join(dir, `release-${store}-${++runs}`);
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
      `${LEASE_MS}ms`,
      '--quiet',
      ...extra,
    ],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SLOW_RELEASE: release } },
  );
  let stderr = '';
  let exited = false;
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('exit', (code) => {
      exited = true;
      resolve({ code, stderr });
    }),
  );
  return {
    child,
    release: () => writeFileSync(release, ''),
    entered: `${release}.entered`,
    stderr: () => stderr,
    exited: () => exited,
    done,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the driver's task is inside the slow batch (its write-ahead entry is stored). */
async function inSlowBatch(run: Run): Promise<void> {
  for (let i = 0; i < 900; i++) {
    if (existsSync(run.entered)) return;
    if (run.exited()) break;
    await sleep(50);
  }
  throw new Error(
    `the driver never entered its slow batch (${run.exited() ? `it exited with ${run.child.exitCode}` : 'still running after 45 s'}); its stderr:\n${run.stderr()}`,
  );
}

/**
 * What a reader sees: the input records of the committed manifests and the lines of the outputs
 * those manifests name (a batch exists for readers once its manifest exists). Also every file in
 * the output directories named like a part (`part-*`): all must be complete parts or their lineage,
 * whatever a fenced or killed driver left behind mid-write.
 */
function committed(store: string): { records: number; lines: string[]; partNames: string[] } {
  const s = path.join(dir, store);
  let records = 0;
  const lines: string[] = [];
  for (const f of readdirSync(path.join(s, 'manifests'))) {
    const m = JSON.parse(readFileSync(path.join(s, 'manifests', f), 'utf8'));
    records += m.input.records;
    for (const out of m.outputs as { name: string; kind: string; partitions: number }[]) {
      if (out.kind !== 'file') continue;
      for (let p = 0; p < out.partitions; p++) {
        const part = path.join(s, layout.output(out.name, m.batchTimeMs, p, ''));
        lines.push(...readFileSync(part, 'utf8').split('\n'));
      }
    }
  }
  const partNames = new Set<string>();
  for (const f of readdirSync(path.join(s, 'outputs'), { recursive: true, withFileTypes: true }))
    if (f.isFile() && f.name.startsWith('part-')) partNames.add(f.name);
  return { records, lines: lines.filter(Boolean).sort(), partNames: [...partNames].sort() };
}

const EXPECTED = {
  records: 8,
  lines: [...LINES].sort(),
  partNames: ['part-00000'],
};

describe('one driver per store, with real processes', () => {
  it('keeps the lease through a batch longer than it: a second sluice run is refused', async () => {
    const a = sluiceRun('held');
    await inSlowBatch(a);
    await sleep(PAST_LEASE_MS); // past the lease: before the renewal timer the second driver got in here
    const b = await sluiceRun('held').done;
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/Another driver \(.+:\d+\) holds the lease on this store.*--force/);
    a.release();
    const result = await a.done;
    expect(result.code, result.stderr).toBe(0);
    expect(committed('held')).toEqual(EXPECTED);
  });

  it('fences a paused driver: another takes over, the paused one commits nothing and exits 1', async () => {
    const a = sluiceRun('paused');
    await inSlowBatch(a);
    a.child.kill('SIGSTOP');
    await sleep(PAST_LEASE_MS);
    const second = sluiceRun('paused');
    second.release(); // the second driver re-runs the slow batch without blocking
    const b = await second.done;
    expect(b.code, b.stderr).toBe(0);
    a.release();
    a.child.kill('SIGCONT');
    const result = await a.done;
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(
      /lost its lease on the store to .+; it stops at once and commits nothing more/,
    );
    expect(committed('paused')).toEqual(EXPECTED);
  });

  it('takes over at once after kill -9 on the same host', async () => {
    // a 60 s lease: the second driver must not wait it out (the test would time out)
    const a = sluiceRun('killed', '--lease-duration', '60s');
    await inSlowBatch(a);
    a.child.kill('SIGKILL');
    await a.done;
    const second = sluiceRun('killed', '--lease-duration', '60s');
    second.release();
    const b = await second.done;
    expect(b.stderr).toMatch(/lease holder .+ is gone \(no such process on this host\); taking over at once/);
    expect(b.code, b.stderr).toBe(0);
    expect(committed('killed')).toEqual(EXPECTED);
  });

  it('--force takes the lease from a live driver, which is fenced', async () => {
    const a = sluiceRun('forced');
    await inSlowBatch(a);
    const second = sluiceRun('forced', '--force');
    second.release();
    const b = await second.done;
    expect(b.stderr).toMatch(new RegExp(`warning: --force: took the lease from [^ ]+:${a.child.pid} `));
    expect(b.code, b.stderr).toBe(0);
    a.release();
    const result = await a.done;
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(/lost its lease/);
    expect(committed('forced')).toEqual(EXPECTED);
  });
});
