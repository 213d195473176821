/** issue 14, item 3: the driver's own work counts as a core's work when choosing the default workers. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultWorkers } from '../../shared/local/default-workers.ts';
import { runEmbedded } from '../../shared/local/embedded-runner.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'sluice-workers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('default number of workers', () => {
  it('is one worker per core but one (the driver), at least one', () => {
    expect(defaultWorkers(1)).toBe(1);
    expect(defaultWorkers(2)).toBe(1);
    expect(defaultWorkers(4)).toBe(3);
    expect(defaultWorkers(16)).toBe(15);
  });

  it('sluice run uses it when --workers is not given', async () => {
    const pipeline = path.join(dir, 'keep.mts');
    writeFileSync(pipeline, `export default (ctx) => { ctx.inputStream().count().print(); };\n`);
    const file = path.join(dir, 'in.txt');
    writeFileSync(file, 'a\nb\n');
    let described = '';
    await runEmbedded({
      pipelineModule: pipeline,
      storeDir: path.join(dir, 'store'),
      source: `file:${file}`,
      numBatches: 1,
      clock: 'manual',
      printer: () => {},
      onStart: ({ scheduler }) => {
        described = scheduler.invoker.describe();
      },
    });
    expect(described).toBe(`worker-threads(${Math.max(1, availableParallelism() - 1)})`);
  });
});
