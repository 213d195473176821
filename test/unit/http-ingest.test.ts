/**
 * The HTTP source as a user meets it: `sluice run --source http:0` in a child process. A 202 means
 * the records are in the store: the process is killed with SIGKILL right after the 202, and the
 * records are in its input blocks, and the restarted run processes them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeBlock } from '../../shared/core/codec.ts';
import { DirectoryObjectStore } from '../../shared/local/directory-store.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/sluice.js');
const dir = mkdtempSync(path.join(tmpdir(), 'sluice-http-'));
const pipeline = path.join(dir, 'keep.mts');
writeFileSync(pipeline, `export default (ctx) => { ctx.inputStream().saveAsJsonLines('seen'); };\n`);
const storeDir = path.join(dir, 'store');

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts `sluice run` on the HTTP source; resolves with the child and its /events URL. */
function startRun(
  ...extra: string[]
): Promise<{ child: ChildProcess; url: string; done: Promise<number | null> }> {
  const env = { ...process.env };
  delete env.SLUICE_DEBUG;
  const child = spawn(
    process.execPath,
    [
      bin,
      'run',
      pipeline,
      '--source',
      'http:0',
      '--store',
      storeDir,
      '--workers',
      '0',
      '--interval',
      '300ms',
      ...extra,
    ],
    { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let stderr = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      const m = /http:\/\/127\.0\.0\.1:\d+\/events/.exec(stderr);
      if (m) resolve({ child, url: m[0], done });
    });
    done.then(() => reject(new Error(`sluice run ended before listening:\n${stderr}`)));
  });
}

async function recordsIn(prefix: string): Promise<string[]> {
  const store = new DirectoryObjectStore(storeDir);
  const out: string[] = [];
  for (const key of await store.list(prefix)) {
    const body = (await store.get(key))!;
    if (key.endsWith('.blk')) out.push(...(decodeBlock(body) as string[]));
    else if (key.endsWith('.jsonl'))
      out.push(
        ...(Buffer.from(body)
          .toString('utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)) as string[]),
      );
  }
  return out.sort();
}

describe('sluice run --source http', () => {
  it('loses nothing it answered 202 to, even killed with SIGKILL right after', async () => {
    const events = Array.from({ length: 21 }, (_, i) => `event-${String(i).padStart(2, '0')}`);
    const first = await startRun();
    const response = await fetch(first.url, { method: 'POST', body: `${events.join('\n')}\n` });
    expect(response.status).toBe(202);
    first.child.kill('SIGKILL');
    await first.done;
    expect(await response.json()).toEqual({ accepted: 21, deadLettered: 0 });
    expect(await recordsIn('inputs/')).toEqual(events);

    // the restarted run processes the stored batch (the killed driver's lease is dropped by hand:
    // taking over a dead holder's lease is not what this test is about)
    const store = new DirectoryObjectStore(storeDir);
    for (const key of await store.list('lease/')) await store.delete(key);
    const second = await startRun('--batches', '1');
    expect(await second.done).toBe(0);
    expect(await recordsIn('outputs/')).toEqual(events);
  });
});
