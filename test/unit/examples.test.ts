/**
 * The example pipelines (examples/*.ts), run on the embedded runner with input from their own
 * `generate()` functions, and checked against results computed here with plain loops.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import * as grep from '../../examples/grep.ts';
import * as joinStatic from '../../examples/join-static.ts';
import * as pageviews from '../../examples/pageviews.ts';
import * as sessions from '../../examples/sessions.ts';
import * as topk from '../../examples/topk.ts';
import * as wordcount from '../../examples/wordcount.ts';
import { layout, parseOutputKey } from '../../shared/core/layout.ts';
import { MemoryObjectStore, runPipeline } from '../../shared/index.ts';

// ---- helpers ---------------------------------------------------------------------------------

/** `batches` batches of `perBatch` records: batch b holds generate(b * perBatch + j). */
function batchesOf(generate: (seq: number) => string, batches: number, perBatch: number): string[][] {
  return Array.from({ length: batches }, (_, b) =>
    Array.from({ length: perBatch }, (_, j) => generate(b * perBatch + j)),
  );
}

/** Everything saveAsJsonLines(prefix) wrote, by batch time. */
async function savedOutputs<T>(store: MemoryObjectStore, prefix: string): Promise<Map<number, T[]>> {
  const out = new Map<number, T[]>();
  for (const key of await store.list(layout.outputsOf(prefix))) {
    const o = parseOutputKey(key);
    if (!o || o.name !== prefix || !o.file.endsWith('.jsonl')) continue;
    const time = o.batchTimeMs;
    const records = out.get(time) ?? [];
    const text = Buffer.from((await store.get(key))!).toString('utf8');
    for (const line of text.split('\n')) if (line) records.push(JSON.parse(line) as T);
    out.set(time, records);
  }
  return out;
}

/** The blocks print() wrote: the batch time and the record lines of each. */
function printedBlocks(printed: string): { time: number; lines: string[] }[] {
  const blocks: { time: number; lines: string[] }[] = [];
  for (const line of printed.split('\n')) {
    const m = /^Time: (\d+) ms$/.exec(line);
    if (m) blocks.push({ time: Number(m[1]), lines: [] });
    else if (line && !/^-+$/.test(line)) blocks.at(-1)!.lines.push(line);
  }
  return blocks;
}

/** `(key,value)` lines of print() as pairs. */
function printedPairs(lines: string[]): [string, number][] {
  return lines.map((l) => {
    const m = /^\((.*),(-?\d+)\)$/.exec(l);
    if (!m) throw new Error(`not a pair: ${l}`);
    return [m[1]!, Number(m[2])];
  });
}

const byKey = <V>(pairs: [string, V][]) =>
  [...pairs].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

function countWords(lines: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines) {
    for (const w of line.split(' ')) if (w !== '') counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  return counts;
}

const times = (n: number, every = 1000) => Array.from({ length: n }, (_, i) => (i + 1) * every);

// ---- the examples ----------------------------------------------------------------------------

describe('examples/wordcount.ts', () => {
  it('counts the words of each batch (saved JSON lines and print)', async () => {
    const input = batchesOf(wordcount.generate, 4, 20);
    const { store, printed } = await runPipeline(wordcount.default, { input }, wordcount.options);

    const saved = await savedOutputs<[string, number]>(store, 'wordcount');
    expect([...saved.keys()].sort((a, b) => a - b)).toEqual(times(4));
    const blocks = printedBlocks(printed);
    expect(blocks.map((b) => b.time)).toEqual(times(4));
    for (const [b, lines] of input.entries()) {
      const expected = countWords(lines);
      expect(byKey(saved.get((b + 1) * 1000)!)).toEqual(byKey([...expected]));
      // print() shows 10 of the counts, then '...'
      const block = blocks[b]!;
      expect(block.lines).toHaveLength(11);
      expect(block.lines[10]).toBe('...');
      for (const [w, n] of printedPairs(block.lines.slice(0, 10))) expect(n).toBe(expected.get(w));
    }
  });

  it('generate() is deterministic and about 100 bytes a line', () => {
    expect(wordcount.generate(42)).toBe(wordcount.generate(42));
    expect(wordcount.generate(42)).not.toBe(wordcount.generate(43));
    for (let i = 0; i < 200; i++) expect(wordcount.generate(i).length).toBeGreaterThanOrEqual(90);
    for (let i = 0; i < 200; i++) expect(wordcount.generate(i).length).toBeLessThanOrEqual(110);
  });
});

describe('examples/grep.ts', () => {
  const saved = process.env.SLUICE_GREP_PATTERN;
  afterEach(() => {
    if (saved === undefined) delete process.env.SLUICE_GREP_PATTERN;
    else process.env.SLUICE_GREP_PATTERN = saved;
  });

  const expectCounts = async (pattern: string) => {
    const input = batchesOf(grep.generate, 5, 60);
    // one more batch than the input: count() gives 0 for an empty batch
    const { store, printed } = await runPipeline(grep.default, { input }, { ...grep.options, numBatches: 6 });
    const expected = [...input, []].map((lines) => {
      let n = 0;
      for (const line of lines) if (line.indexOf(pattern) >= 0) n++;
      return n;
    });
    const out = await savedOutputs<number>(store, 'grep');
    expect(times(6).map((t) => out.get(t))).toEqual(expected.map((n) => [n]));
    expect(printedBlocks(printed).map((b) => b.lines)).toEqual(expected.map((n) => [String(n)]));
    return expected;
  };

  it('counts the lines matching the default pattern (ERROR, in a few % of lines) per batch', async () => {
    delete process.env.SLUICE_GREP_PATTERN;
    const counts = await expectCounts(grep.DEFAULT_PATTERN);
    const total = counts.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(0.01 * 300);
    expect(total).toBeLessThan(0.05 * 300);
  });

  it('takes the pattern from SLUICE_GREP_PATTERN', async () => {
    process.env.SLUICE_GREP_PATTERN = '[checkout]';
    const counts = await expectCounts('[checkout]');
    expect(counts.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });
});

describe('examples/topk.ts', () => {
  /** The top 10 of a window, by count then word, computed by hand. */
  const handTopK = (lines: string[]) =>
    [...countWords(lines)]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, topk.K)
      .map(([w, n]) => `(${w},${n})`);

  it('prints the top 10 words of the last 30 s every second, also once batches leave the window', async () => {
    const batches = 36; // windows at 31 s .. 36 s have dropped the first batches (the inverse path)
    const input = batchesOf(topk.generate, batches, 6);
    const { printed } = await runPipeline(topk.default, { input }, topk.options);
    const blocks = printedBlocks(printed);
    expect(blocks.map((b) => b.time)).toEqual(times(batches));
    const windowBatches = topk.WINDOW_MS / topk.options.batchIntervalMs;
    for (const [j, block] of blocks.entries()) {
      const inWindow = input.slice(Math.max(0, j + 1 - windowBatches), j + 1).flat();
      const expected = handTopK(inWindow);
      expect(expected).toHaveLength(10);
      expect(block.lines, `window at ${block.time} ms`).toEqual(expected);
    }
  });

  it('drops words whose window count fell to zero', async () => {
    // 'gone' appears only in the first batch: after 30 s it has left the window
    const input = [['gone gone gone stay'], ...Array.from({ length: 30 }, () => ['stay'])];
    const { printed } = await runPipeline(topk.default, { input }, topk.options);
    const blocks = printedBlocks(printed);
    expect(blocks[0]!.lines).toEqual(['(gone,3)', '(stay,1)']);
    expect(blocks[29]!.lines).toEqual(['(stay,30)', '(gone,3)']);
    expect(blocks[30]!.lines).toEqual(['(stay,30)']);
  });
});

describe('examples/pageviews.ts', () => {
  it('counts views per URL over 10 s every 2 s, skipping malformed lines', async () => {
    const inputBatches = 14;
    const input = batchesOf(pageviews.generate, inputBatches, 25);
    const numBatches = 26; // the last windows are empty again
    const { store, printed } = await runPipeline(
      pageviews.default,
      { input },
      { ...pageviews.options, numBatches },
    );

    const urls: string[][] = input.map((lines) =>
      lines.flatMap((line) => {
        try {
          return [(JSON.parse(line) as { url: string }).url];
        } catch {
          return [];
        }
      }),
    );
    const malformed = input.flat().length - urls.flat().length;
    expect(malformed).toBeGreaterThan(0); // the demo input has some, and they did not fail the batch

    const saved = await savedOutputs<[string, number]>(store, 'pageviews');
    const slides = times(numBatches / 2, pageviews.SLIDE_MS);
    expect([...saved.keys()].sort((a, b) => a - b)).toEqual(slides);
    expect(printedBlocks(printed).map((b) => b.time)).toEqual(slides);
    for (const t of slides) {
      // the window at t holds the batches at (t - 10 s, t]: batch i is at (i + 1) s
      const counts = new Map<string, number>();
      for (let i = 0; i < inputBatches; i++) {
        const bt = (i + 1) * 1000;
        if (bt <= t - pageviews.WINDOW_MS || bt > t) continue;
        for (const url of urls[i]!) counts.set(url, (counts.get(url) ?? 0) + 1);
      }
      expect(byKey(saved.get(t)!), `window at ${t} ms`).toEqual(byKey([...counts]));
    }
    expect(saved.get(24_000)).toEqual([]); // URLs whose count fell to 0 are dropped
  });
});

describe('examples/sessions.ts', () => {
  const event = (user: string, page: string) => JSON.stringify({ user, page });

  it('closes a session at the first batch more than the timeout after its last event', async () => {
    expect(sessions.TIMEOUT_MS).toBe(3000);
    const input = [
      [event('alice', '/'), event('bob', '/')], // 1 s
      [event('alice', '/a'), event('alice', '/b')], // 2 s: alice's last event
      [],
      [event('bob', '/c'), 'not json'], // 4 s: bob, idle exactly 3 s, is still in his session
      [],
      [], // 6 s: alice has been idle more than 3 s
      [],
      [], // 8 s: bob too
      [],
    ];
    const { store, printed } = await runPipeline(sessions.default, { input }, sessions.options);
    const saved = await savedOutputs<sessions.SessionSummary>(store, 'sessions');
    expect(times(9).map((t) => saved.get(t))).toEqual([
      [],
      [],
      [],
      [],
      [],
      [{ user: 'alice', pages: 3, closedAt: 6000 }],
      [],
      [{ user: 'bob', pages: 2, closedAt: 8000 }],
      [],
    ]);
    const open = printedBlocks(printed).filter((b) => b.lines.length === 1 && /^\d+$/.test(b.lines[0]!));
    expect(open.map((b) => [b.time, Number(b.lines[0])])).toEqual(
      [2, 2, 2, 2, 2, 1, 1, 0, 0].map((n, i) => [(i + 1) * 1000, n]),
    );
  });

  it('on generated events, emits the sessions a hand simulation closes, when it closes them', async () => {
    const input = batchesOf(sessions.generate, 10, 30);
    const numBatches = 16; // every session has timed out by the end
    const { store, printed } = await runPipeline(
      sessions.default,
      { input },
      { ...sessions.options, numBatches },
    );

    // simulate: per user, pages and the time of the last event
    const open = new Map<string, { pages: number; last: number }>();
    const expectedClosed = new Map<number, sessions.SessionSummary[]>();
    const expectedOpen: number[] = [];
    for (let b = 0; b < numBatches; b++) {
      const t = (b + 1) * 1000;
      for (const line of input[b] ?? []) {
        const { user } = JSON.parse(line) as { user: string };
        const s = open.get(user) ?? { pages: 0, last: t };
        open.set(user, { pages: s.pages + 1, last: t });
      }
      const closed: sessions.SessionSummary[] = [];
      for (const [user, s] of open) {
        if (t - s.last > sessions.TIMEOUT_MS) {
          closed.push({ user, pages: s.pages, closedAt: t });
          open.delete(user);
        }
      }
      expectedClosed.set(
        t,
        closed.sort((a, b) => (a.user < b.user ? -1 : 1)),
      );
      expectedOpen.push(open.size);
    }
    expect(expectedOpen.at(-1)).toBe(0);

    const saved = await savedOutputs<sessions.SessionSummary>(store, 'sessions');
    for (const t of times(numBatches)) {
      const got = [...(saved.get(t) ?? [])].sort((a, b) => (a.user < b.user ? -1 : 1));
      expect(got, `sessions closed at ${t} ms`).toEqual(expectedClosed.get(t));
    }
    const total = [...expectedClosed.values()].reduce((n, c) => n + c.length, 0);
    expect(total).toBeGreaterThan(20);
    const openPrinted = printedBlocks(printed)
      .filter((b) => b.lines.length === 1 && /^\d+$/.test(b.lines[0]!))
      .map((b) => Number(b.lines[0]));
    expect(openPrinted).toEqual(expectedOpen);
  });
});

describe('examples/join-static.ts', () => {
  const datasetText = readFileSync(new URL('../../examples/datasets/pages.jsonl', import.meta.url), 'utf8');
  const categoryOf = new Map(
    datasetText
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as [string, string]),
  );

  it('the dataset gives a category to every page the demo clicks on (except the promos)', () => {
    for (const url of joinStatic.PAGE_URLS) expect(categoryOf.has(url), url).toBe(true);
    expect(categoryOf.size).toBe(joinStatic.PAGE_URLS.length);
  });

  it('counts clicks per category per batch, joined with the dataset from the store', async () => {
    const store = new MemoryObjectStore();
    await store.put(joinStatic.DATASET_KEY, new TextEncoder().encode(datasetText));
    const input = batchesOf(joinStatic.generate, 4, 40);
    const { printed } = await runPipeline(joinStatic.default, { input }, { ...joinStatic.options, store });

    const saved = await savedOutputs<[string, number]>(store, 'clicks-by-category');
    const blocks = printedBlocks(printed);
    let dropped = 0;
    for (const [b, lines] of input.entries()) {
      const expected = new Map<string, number>();
      for (const line of lines) {
        const { url } = JSON.parse(line) as { url: string };
        const category = categoryOf.get(url);
        if (category === undefined) dropped++;
        else expected.set(category, (expected.get(category) ?? 0) + 1);
      }
      const t = (b + 1) * 1000;
      expect(byKey(saved.get(t)!), `batch at ${t} ms`).toEqual(byKey([...expected]));
      expect(byKey(printedPairs(blocks[b]!.lines))).toEqual(byKey([...expected]));
    }
    expect(dropped).toBeGreaterThan(0); // clicks on /promo/... pages are not in the dataset
  });

  it('fails clearly when the dataset is not in the store', async () => {
    const input = batchesOf(joinStatic.generate, 1, 5);
    await expect(runPipeline(joinStatic.default, { input }, joinStatic.options)).rejects.toThrow(
      /datasets\/pages\.jsonl/,
    );
  });
});
