import { describe, expect, it } from 'vitest';
import { BatchPlan, Pipeline, StreamingContext, type Target } from '../../shared/engine.ts';

function plan(build: (ctx: StreamingContext) => void, batchTimeMs = 1000, partitions = 2): BatchPlan {
  const ctx = new StreamingContext({ batchIntervalMs: 1000, partitions });
  build(ctx);
  const pipeline = new Pipeline(ctx, 0);
  const gen = pipeline.generate(batchTimeMs);
  const targets: Target[] = pipeline.targetStreams().flatMap((s) => {
    const rdd = gen.rddOf(s, batchTimeMs);
    return rdd ? [{ rdd, name: s.storageName, kind: 'rdd' as const, reason: 'output' }] : [];
  });
  return new BatchPlan(batchTimeMs, targets);
}

describe('BatchPlan', () => {
  it('pipelines narrow operators into one stage', () => {
    const p = plan((ctx) =>
      ctx
        .inputStream<string>()
        .flatMap((l) => l.split(' '))
        .filter((w) => w.length > 0)
        .map((w) => w.toUpperCase())
        .print(),
    );
    expect(p.stages).toHaveLength(1);
    const [stage] = p.stages;
    expect(stage!.kind).toBe('result');
    expect(stage!.numTasks).toBe(2);
    expect(stage!.operators).toEqual(['input(input)', 'flatMap', 'filter', 'map']);
  });

  it('splits at reduceByKey with a shuffle map stage before the result stage', () => {
    const p = plan(
      (ctx) =>
        ctx
          .inputStream<string>()
          .flatMap((l) => l.split(' '))
          .map((w) => [w, 1] as [string, number])
          .reduceByKey((a, b) => a + b, 3)
          .print(),
      1000,
      4,
    );
    expect(p.stages.map((s) => s.kind)).toEqual(['shuffle', 'result']);
    const [map, reduce] = p.stages;
    expect(map!.numTasks).toBe(4);
    expect(map!.operators.at(-1)).toMatch(/^shuffleWrite/);
    expect(reduce!.numTasks).toBe(3);
    expect(reduce!.parents).toEqual([map]);
    expect(reduce!.operators[0]).toMatch(/^shuffleRead/);
  });

  it('gives a join two shuffle stages feeding one result stage', () => {
    const p = plan((ctx) => {
      const a = ctx.inputStream<[string, number]>('a');
      const b = ctx.inputStream<[string, string]>('b');
      a.join(b).print();
    });
    const shuffles = p.stages.filter((s) => s.kind === 'shuffle');
    expect(shuffles).toHaveLength(2);
    const result = p.stages.find((s) => s.kind === 'result')!;
    expect(result.parents.sort((x, y) => x.id - y.id)).toEqual(shuffles);
    expect(result.operators).toContain('cogroup');
  });

  it('does not shuffle again when the data is already partitioned by key', () => {
    const p = plan((ctx) =>
      ctx
        .inputStream<string>()
        .map((w) => [w, 1] as [string, number])
        .reduceByKey((a, b) => a + b)
        .reduceByKey((a, b) => a + b)
        .print(),
    );
    expect(p.stages.filter((s) => s.kind === 'shuffle')).toHaveLength(1);
  });

  it('reads the previous state from the store and shuffles only the new data', () => {
    const p = plan(
      (ctx) =>
        ctx
          .inputStream<string>()
          .map((w) => [w, 1] as [string, number])
          .updateStateByKey<string, number, number>((vs, s) => (s ?? 0) + vs.length)
          .print(),
      3000,
    );
    expect(p.stages.map((s) => s.kind)).toEqual(['shuffle', 'result']);
    const inputs = p.inputsOf(p.stages[1]!, 0, () => []);
    expect(inputs).toContainEqual({ kind: 'block', key: 'rdd/000000000002000/ds2/0.blk' });
  });

  it('reads a materialized RDD instead of recomputing it', () => {
    const p = plan((ctx) => {
      const counts = ctx
        .inputStream<string>()
        .map((w) => [w, 1] as [string, number])
        .reduceByKey((a, b) => a + b);
      counts.window(2000, 1000).print();
    }, 2000);
    // the windowed stream's parent is materialized (later batches read it), and the window reads it back
    const windowStage = p.stages.find(
      (s) => s.kind === 'result' && s.operators.some((o) => o.startsWith('read(')),
    );
    expect(windowStage).toBeDefined();
    expect(windowStage!.operators).toContain('union');
    const inputs = p.inputsOf(windowStage!, 0, () => []);
    expect(inputs.some((i) => i.kind === 'block' && i.key.startsWith('rdd/000000000001000/'))).toBe(true);
    expect(inputs.some((i) => i.kind === 'materialized')).toBe(true);
  });

  it('explains itself', () => {
    const p = plan((ctx) => ctx.inputStream<string>().countByValue(1).print());
    expect(p.explain()).toMatch(/stage 0 \(shuffle .*\nstage 1 \(rdd ds\d+, 1 tasks after 0\)/);
  });

  it('plans count() as one stage of per-partition counts the driver sums (no shuffle)', () => {
    const p = plan((ctx) => ctx.inputStream<string>().count().print());
    expect(p.explain()).toMatch(/^stage 0 \(rdd ds\d+\.\d+\.partials, 2 tasks\): input\(input\) > count$/);
  });
});
