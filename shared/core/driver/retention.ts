/**
 * Retention and clean-up, as Spark's `DStream.clearMetadata` driven by each stream's
 * `rememberDuration`: after batch t commits, what no later batch can read is deleted. How far
 * back a batch may read is asked of the streams (`DStream.rememberMs`: a window's duration, a
 * state stream's previous RDD), never worked out here from operator kinds. Shuffle data lives
 * for its own batch; materialized RDDs fall out of the history except state at checkpoint times
 * (kept until the next checkpoint has fallen out too, so recomputing lost state never walks
 * further back); input blocks and write-ahead entries stay `retainInputsMs` and at least as long
 * as recomputation from the oldest kept checkpoint may need them.
 *
 * @module
 */
import type { ObjectStore } from '../../ports/object-store.ts';
import type { Pipeline, StreamingContext } from '../context.ts';
import { parseTimeKey, timeKey } from '../layout.ts';

export class Retention {
  private historyValue: number | undefined;

  constructor(
    private readonly ctx: StreamingContext,
    private readonly store: ObjectStore,
    private readonly o: { readonly checkpointEvery: number; readonly retainInputsMs: number },
    /** idle fast path (issue 11): batch t is in an idle span, it stored nothing to list. */
    private readonly isIdle: (t: number) => boolean = () => false,
  ) {}

  /** How far back a batch may read materialized RDDs: the longest remember duration of any stream. */
  get historyMs(): number {
    // the graph is frozen once the driver started: its streams' needs do not change
    this.historyValue ??= Math.max(
      2 * this.ctx.batchIntervalMs,
      ...this.ctx.graph.streams.map((s) => s.rememberMs),
    );
    return this.historyValue;
  }

  /** How long input blocks stay: the retention, and never less than recovery may need. */
  get inputRetentionMs(): number {
    return Math.max(
      this.o.retainInputsMs,
      this.historyMs + 2 * this.o.checkpointEvery * this.ctx.batchIntervalMs,
    );
  }

  /** Drops per-batch data no later batch than t can read, and input blocks older than the retention. */
  async cleanUp(t: number, pipeline: Pipeline): Promise<void> {
    const interval = this.ctx.batchIntervalMs;
    const history = this.historyMs;
    // idle fast path (issue 11): an idle batch stored nothing, there is nothing to list
    const idle = (prefix: string) => this.isIdle(parseTimeKey(prefix.split('/')[1]!));
    const drop = async (prefix: string) => {
      if (idle(prefix)) return;
      for (const key of await this.store.list(prefix)) await this.store.delete(key);
    };
    // shuffle data is only read within its batch (its lineage in its trailer goes with it; a
    // `.lineage.json` of a store written before issue 11 stays as long as the RDDs it fed)
    const shuffles = `shuffle/${timeKey(t - interval)}/`;
    for (const key of idle(shuffles) ? [] : await this.store.list(shuffles)) {
      if (!key.endsWith('.lineage.json')) await this.store.delete(key);
    }
    await drop(`shuffle/${timeKey(t - history - interval)}/`);
    const expired = t - history - interval;
    const every = this.o.checkpointEvery;
    const isCheckpoint = (time: number) => ((time - pipeline.zeroTimeMs) / interval) % every === 0;
    const stateNames = new Set(
      this.ctx.graph.streams.filter((s) => s.persisted && s.fixedShape).map((s) => `${s.storageName}/`),
    );
    for (const key of idle(`rdd/${timeKey(expired)}/`)
      ? []
      : await this.store.list(`rdd/${timeKey(expired)}/`)) {
      const rest = key.slice(`rdd/${timeKey(expired)}/`.length);
      const isState = [...stateNames].some((n) => rest.startsWith(n));
      if (!(isState && isCheckpoint(expired))) await this.store.delete(key);
    }
    if (isCheckpoint(expired)) {
      const previous = expired - every * interval;
      if (previous > pipeline.zeroTimeMs) await drop(`rdd/${timeKey(previous)}/`);
    }
    const old = t - this.inputRetentionMs - interval;
    if (old > pipeline.zeroTimeMs) {
      await drop(`inputs/${timeKey(old)}/`);
      await drop(`batches/${timeKey(old)}/`);
    }
  }
}
