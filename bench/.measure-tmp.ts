import { CountingObjectStore } from '../shared/core/counting-store.ts';
import { arraySource, BatchScheduler, InProcessInvoker, MemoryObjectStore, StreamingContext, type ObjectStore, type TaskSpec, type InvokeOptions, type Invoker } from '../shared/index.ts';

class KindStore implements ObjectStore {
  counts: Record<string, number> = {};
  constructor(readonly inner: ObjectStore) {}
  kind(key: string) {
    if (key.startsWith('lineage/')) return 'lineage(out)';
    if (key.endsWith('.lineage.json')) return 'lineage(' + key.split('/')[0] + ')';
    if (key.endsWith('_SUCCESS')) return '_SUCCESS';
    return key.split('/')[0];
  }
  add(op: string, key: string) { const k = `${op} ${this.kind(key)}`; this.counts[k] = (this.counts[k] ?? 0) + 1; }
  get(k: string, r?: any) { this.add('GET', k); return this.inner.get(k, r); }
  put(k: string, b: Uint8Array) { this.add('PUT', k); return this.inner.put(k, b); }
  putIfAbsent(k: string, b: Uint8Array) { this.add('PUT', k); return this.inner.putIfAbsent(k, b); }
  list(k: string) { this.add('LIST', k); return this.inner.list(k); }
  delete(k: string) { this.add('DEL', k); return this.inner.delete(k); }
  describe() { return 'kind'; }
}
let invocations = 0;
const ctx = new StreamingContext({ batchIntervalMs: 1000, defaultPartitions: 2 });
const counts = ctx.inputStream<string>().flatMap((l) => l.split(' ').filter(Boolean)).map((w): [string, number] => [w, 1]).reduceByKey((a, b) => a + b);
counts.print();
counts.saveAsJsonLines('wordcount');
const store = new KindStore(new MemoryObjectStore());
let s: BatchScheduler | undefined;
const inner = new InProcessInvoker({ pipeline: () => s!.pipeline, store });
const invoker: Invoker = { get concurrency() { return inner.concurrency; }, invoke(spec: TaskSpec, o: InvokeOptions) { invocations++; return inner.invoke(spec, o); }, close: () => inner.close(), describe: () => 'c' };
const batches = [['a b c a', 'd e f'], ['x y z', 'a a'], ['q w e r t y'], ['m n']];
s = new BatchScheduler(ctx, { store, invoker, sources: { [ctx.graph.inputs.values().next().value!.name]: arraySource(batches as any) as any }, clock: 'manual', tinyBatch: process.env.TINY === 'off' ? false : undefined, lease: false, log: () => {} } as any);
await s.start();
const ms = [];
for (let i = 0; i < 4; i++) {
  store.counts = {}; invocations = 0;
  const m = await s.runNextBatch();
  ms.push(m);
  console.log('batch', i, 'invocations', invocations, 'manifest requests', JSON.stringify(m.requests));
  console.log(Object.entries(store.counts).sort().map(([k, v]) => `  ${k}: ${v}`).join('\n'));
}
await s.stop();
