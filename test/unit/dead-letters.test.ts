import { describe, expect, it } from 'vitest';
import { BatchFailedError, runBatches, runPipeline } from '../../shared/index.ts';

describe('records that make user code throw', () => {
  it('go to the dead-letter area with the reason, and the batch commits without them', async () => {
    const build = (ctx: import('../../shared/index.ts').StreamingContext) => {
      ctx
        .inputStream<string>()
        .map((s) => {
          const n = JSON.parse(s) as number;
          if (n === 13) throw new RangeError('unlucky number');
          return [n % 2 === 0 ? 'even' : 'odd', n] as [string, number];
        })
        .reduceByKey((a, b) => a + b)
        .saveAsJsonLines('sums');
    };
    const { store, manifests } = await runPipeline(build, { input: [['1', '2', 'x', '13', '4']] });
    const out = (await store.list('outputs/')).filter((k) => k.endsWith('.jsonl'));
    const lines = (await Promise.all(out.map(async (k) => Buffer.from((await store.get(k))!).toString())))
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(lines.sort()).toEqual([
      ['even', 6],
      ['odd', 1],
    ]);
    expect(manifests[0]!.deadLettered).toBe(2);
    const letters = (await store.list('deadletter/')).map((k) => k);
    expect(letters).toHaveLength(1);
    const text = Buffer.from((await store.get(letters[0]!))!).toString();
    expect(text).toContain('unlucky number');
    expect(text).toContain('SyntaxError');
    expect(text).toContain('"raw":"13"');
  });

  it('fail the batch when the pipeline asks to stop on errors', async () => {
    const run = runPipeline(
      (ctx) => {
        ctx
          .inputStream<number>()
          .map((n) => {
            if (n === 2) throw new Error('boom');
            return n;
          })
          .print();
      },
      { input: [[1, 2, 3]] },
      { onRecordError: 'fail' },
    );
    await expect(run).rejects.toThrow(BatchFailedError);
  });

  it('are dead-lettered in filter and flatMap too', async () => {
    const out = await runBatches([[1, 2, 3, 4]], (s) =>
      s
        .filter((n) => {
          if (n === 1) throw new Error('no ones');
          return true;
        })
        .flatMap((n) => {
          if (n === 3) throw new Error('no threes');
          return [n, n];
        }),
    );
    expect(out).toEqual([[2, 2, 4, 4]]);
  });
});
