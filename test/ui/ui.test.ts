/**
 * The web UI in a real browser (Chromium from Debian's packages, driven by playwright-core):
 * a real `sluice run --ui` on the generator source, the page opened during the run, new batches
 * appearing without a reload, a batch page, a lineage graph down to the input blocks and a
 * lineage record; then `sluice ui` on a store that does not exist yet, then is empty, then has a
 * corrupt manifest (the page says so, the server keeps running), the token on a non-loopback
 * address, and requests that try to leave the store. Screenshots go to test/.tmp/ui-*.png.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, promises as fs, mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/sluice.js');
const tmp = path.join(root, 'test/.tmp');
const work = path.join(tmp, `ui-${process.pid}`);
const CHROMIUM = process.env.SLUICE_CHROMIUM ?? '/usr/bin/chromium';

interface Started {
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: () => string;
}

/** Spawns `sluice ...` and waits for the line with the UI's address. */
function startSluice(args: string[]): Promise<Started> {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /sluice ui: \S+ at (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]!, output: () => out });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`sluice ${args[0]} exited (${code}) before serving:\n${out}`)),
    );
  });
}

async function stop(s: Started | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await exited;
}

/** The address with 127.0.0.1 in place of the bound host (for a UI bound to 0.0.0.0). */
const local = (url: string, pathname: string) => {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.pathname = pathname;
  u.search = '';
  return u.toString();
};

// Word counts over a 20 s window: the window keeps its batches' RDD partitions and lineage
// records stored for 20 s, so the test can open a lineage graph down to the input blocks.
const PIPELINE = `
export const options = { batchIntervalMs: 500, partitions: 2 };
export default function windowedWords(ctx) {
  const counts = ctx
    .inputStream()
    .flatMap((line) => line.split(' ').filter((w) => w.length > 0))
    .map((w) => [w, 1])
    .reduceByKeyAndWindow((a, b) => a + b, { windowMs: 20000, slideMs: 500, inverse: (a, b) => a - b });
  counts.print(1);
  counts.saveAsJsonLines('counts');
}
`;

describe('sluice ui in a browser', () => {
  let browser: Browser;
  let page: Page;
  let run: Started;
  const store = path.join(work, 'store');

  beforeAll(async () => {
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (test/run.sh does)`);
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await fs.writeFile(path.join(work, 'windowed.mts'), PIPELINE);
    run = await startSluice([
      'run',
      path.join(work, 'windowed.mts'),
      '--store',
      store,
      '--interval',
      '500ms',
      '--rate',
      '2000',
      '--workers',
      '1',
      '--quiet',
      '--ui',
      '--ui-port',
      '0',
    ]);
  });

  afterAll(async () => {
    await stop(run);
    await browser?.close();
  });

  it('shows new batches as they commit, without a reload', async () => {
    expect(run.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    await page.goto(run.url);
    const rows = page.locator('#batches tbody tr');
    await rows.first().waitFor({ timeout: 30_000 });
    const first = await rows.count();
    const newestBefore = await rows.first().locator('td').first().textContent();
    // no reload: the server-sent events bring the next batches in
    await expect.poll(() => rows.count(), { timeout: 30_000 }).toBeGreaterThan(first + 1);
    expect(await rows.first().locator('td').first().textContent()).not.toBe(newestBefore);
    expect(await page.locator('.uplot').count()).toBe(4);
    await expect.poll(() => page.locator('#live').textContent()).toBe('live');
    await page.screenshot({ path: path.join(tmp, 'ui-overview.png'), fullPage: true });
  });

  it('opens a batch: stages, tasks, requests, cost and what it stored', async () => {
    await page.locator('#batches tbody tr').nth(1).click();
    await page.locator('#batch-title').waitFor();
    const text = await page.locator('main').textContent();
    expect(text).toContain('Stages and tasks');
    expect(text).toContain('reduceByKey');
    expect(text).toContain('Stored partitions');
    expect(text).toContain('cost on AWS');
    expect(await page.locator('a.lineage-link').count()).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(tmp, 'ui-batch.png'), fullPage: true });
  });

  it('draws the lineage of a stored partition down to the input blocks, and opens a record', async () => {
    // a saved output part: kept for good (RDD partitions are cleaned up as later batches commit)
    await page.locator('a.lineage-link[data-area="outputs"]').first().click();
    await page.locator('#lineage-graph').waitFor();
    const kinds = await page
      .locator('#lineage-graph g.node')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')));
    expect(kinds).toContain('partition');
    expect(kinds).toContain('input');
    expect(await page.locator('#lineage-graph path.edge').count()).toBeGreaterThan(0);
    await page.locator('#lineage-graph g.node[data-kind="partition"]').first().click();
    await page.locator('#record-json').waitFor();
    const record = JSON.parse((await page.locator('#record-json').textContent())!);
    expect(record).toMatchObject({
      rddId: expect.any(String),
      operators: expect.any(Array),
      checksum: expect.any(String),
    });
    // show the input side of the graph (the click scrolled it to the partition asked for)
    await page.locator('.graph').evaluate((el) => {
      el.scrollLeft = 0;
    });
    await page.screenshot({ path: path.join(tmp, 'ui-lineage.png'), fullPage: true });
  });

  it('serves nothing outside the store and its own assets', async () => {
    const base = run.url;
    for (const p of [
      '/assets/../../package.json',
      '/assets/..%2f..%2fpackage.json',
      '/assets/%2e%2e/cli/ui/server.ts',
    ]) {
      const res = await fetch(new URL(p, base));
      expect(res.status, p).toBe(404);
      expect(await res.text()).not.toContain('"name": "sluice"');
    }
    for (const key of [
      '../../package.json',
      'rdd/../../../package.json',
      '/etc/passwd',
      'meta/graph.json',
      'lease/1.json',
    ]) {
      const res = await fetch(new URL(`/api/record?key=${encodeURIComponent(key)}`, base));
      expect(res.status, key).toBe(400);
      expect(((await res.json()) as { error: string }).error).toContain('refused key');
    }
    const rdd = await fetch(new URL('/api/lineage?rdd=..%2F..%2Fetc&t=1&p=0', base));
    expect(rdd.status).toBe(400);
    expect((await fetch(new URL('/api/overview', base), { method: 'POST' })).status).toBe(405);
    // DNS rebinding: a page of another site resolving its name to 127.0.0.1 sends its own Host
    const rebinding = await new Promise<number>((resolve, reject) => {
      const u = new URL('/api/overview', base);
      http
        .get(
          { host: u.hostname, port: u.port, path: u.pathname, headers: { Host: 'attacker.example' } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
        .on('error', reject);
    });
    expect(rebinding).toBe(421);
  });

  it('tells of a missing store, an empty store and a corrupt manifest on the page, and keeps serving', async () => {
    const later = path.join(work, 'later');
    const ui = await startSluice(['ui', '--store', later, '--port', '0']);
    try {
      const p = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await p.goto(ui.url);
      await expect
        .poll(() => p.locator('#problem').textContent(), { timeout: 15_000 })
        .toContain('does not exist');
      expect(await p.locator('#problem').isVisible()).toBe(true);
      await p.screenshot({ path: path.join(tmp, 'ui-missing-store.png') });

      mkdirSync(later, { recursive: true });
      await expect
        .poll(() => p.locator('#problem').textContent(), { timeout: 15_000 })
        .toContain('no Sluice store');

      // a copy of the running store's pipeline and two batches, one of them corrupt
      await fs.mkdir(path.join(later, 'meta'), { recursive: true });
      await fs.mkdir(path.join(later, 'manifests'), { recursive: true });
      await fs.copyFile(path.join(store, 'meta/graph.json'), path.join(later, 'meta/graph.json'));
      const manifests = (await fs.readdir(path.join(store, 'manifests')))
        .filter((f) => f.endsWith('.json'))
        .sort();
      await fs.copyFile(
        path.join(store, 'manifests', manifests[0]!),
        path.join(later, 'manifests', manifests[0]!),
      );
      await fs.writeFile(path.join(later, 'manifests', manifests[1]!), '{"batchTimeMs": 12, trunc');
      const t0 = Number(manifests[0]!.replace('.json', ''));
      await fs.mkdir(path.join(later, `deadletter/${manifests[0]!.replace('.json', '')}`), {
        recursive: true,
      });
      await fs.writeFile(
        path.join(later, `deadletter/${manifests[0]!.replace('.json', '')}/input.jsonl`),
        `${JSON.stringify({ batchTimeMs: t0, raw: '{"user": 1,', reason: 'invalid JSON: unexpected end', origin: 'line 7' })}\n`,
      );
      await expect
        .poll(() => p.locator('#problem').textContent(), { timeout: 15_000 })
        .toContain('corrupt manifest');
      expect(await p.locator('#problem').textContent()).toContain(manifests[1]!);
      // the good batch is still shown
      await expect.poll(() => p.locator('#batches tbody tr').count(), { timeout: 15_000 }).toBe(1);
      await p.screenshot({ path: path.join(tmp, 'ui-corrupt-manifest.png'), fullPage: true });
      await p.locator('[data-nav="deadletters"]').click();
      await expect.poll(() => p.locator('main').textContent()).toContain('invalid JSON: unexpected end');
      expect(await p.locator('main').textContent()).toContain('line 7');
      expect(ui.child.exitCode).toBeNull();
      await p.close();
    } finally {
      await stop(ui);
    }
  });

  it('requires a token when bound to a non-loopback address', async () => {
    const ui = await startSluice(['ui', '--store', store, '--host', '0.0.0.0', '--port', '0']);
    try {
      const token = new URL(ui.url).searchParams.get('token');
      expect(token).toMatch(/^[\w-]{20,}$/);
      await expect.poll(() => ui.output()).toContain('every request needs the token');
      const without = await fetch(local(ui.url, '/api/overview'));
      expect(without.status).toBe(401);
      expect(((await without.json()) as { error: string }).error).toContain('token');
      expect((await fetch(local(ui.url, '/'))).status).toBe(401);
      const wrong = await fetch(local(ui.url, '/api/overview'), {
        headers: { Authorization: 'Bearer nope' },
      });
      expect(wrong.status).toBe(401);
      const bearer = await fetch(local(ui.url, '/api/overview'), {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(bearer.status).toBe(200);
      // the browser: the address with ?token= sets a cookie, then the page and its stream work
      const p = await browser.newPage();
      await p.goto(`${local(ui.url, '/')}?token=${token}`);
      await p.locator('#batches tbody tr').first().waitFor({ timeout: 30_000 });
      await p.close();
    } finally {
      await stop(ui);
    }
  });
});
