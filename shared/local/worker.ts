/**
 * A worker thread of the embedded runner: loads the pipeline module once (closures are never
 * sent between threads), then runs the task specs the pool posts, one at a time.
 *
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Pipeline } from '../core/context.ts';
import { runTask } from '../core/executor.ts';
import type { TaskSpec } from '../core/task.ts';
import { errorToJson } from '../errors.ts';
import { DirectoryObjectStore } from './directory-store.ts';
import { loadPipeline } from './load-pipeline.ts';
import { ReplayOverlayStore } from './overlay-store.ts';

interface WorkerData {
  readonly pipelineModule: string;
  readonly storeDir: string;
  readonly batchIntervalMs: number;
  readonly partitions: number;
  /** A replay: input is read from the original store as well (see overlay-store.ts). */
  readonly overlay?: { readonly originalDir: string; readonly fromMs: number; readonly toMs: number };
}

const data = workerData as WorkerData;
const store = data.overlay
  ? new ReplayOverlayStore({
      original: new DirectoryObjectStore(data.overlay.originalDir),
      target: new DirectoryObjectStore(data.storeDir),
      fromMs: data.overlay.fromMs,
      toMs: data.overlay.toMs,
    })
  : new DirectoryObjectStore(data.storeDir);
const loaded = loadPipeline(data.pipelineModule, {
  batchIntervalMs: data.batchIntervalMs,
  partitions: data.partitions,
});
loaded.catch(() => {});

async function getPipeline(zeroTimeMs: number): Promise<Pipeline> {
  return (await loaded).pipeline(zeroTimeMs);
}

parentPort!.on('message', async (msg: { id: number; spec: TaskSpec }) => {
  try {
    const result = await runTask(msg.spec, await getPipeline(msg.spec.graph.zeroTimeMs), store, {
      // an injected kill: this worker thread ends mid-task, as a crashed executor would
      die: () => process.exit(70),
    });
    parentPort!.postMessage({ id: msg.id, result });
  } catch (err) {
    parentPort!.postMessage({ id: msg.id, error: errorToJson(err) });
  }
});
// ready once the pipeline module is loaded, so the first batch does not pay for it
loaded.then(
  () => parentPort!.postMessage({ ready: true }),
  (err) => parentPort!.postMessage({ ready: false, error: errorToJson(err) }),
);
