/**
 * Graph metadata: `meta/graph.json`, what a store was written by (zero time, interval, graph
 * fingerprint, the materialized streams), and the compatibility check a restarted driver makes
 * against it. Spark keeps the same facts in its checkpoint (`Checkpoint`: the graph and zero time).
 *
 * @module
 */
import { IncompatibleGraphError, SluiceError } from '../../errors.ts';
import type { ObjectStore } from '../../ports/object-store.ts';
import { decodeJson, encodeJson } from '../codec.ts';
import type { PersistedStreamDescription, StreamingContext } from '../context.ts';
import { layout } from '../layout.ts';

/** meta/graph.json: what the store was written by. */
export interface GraphMeta {
  readonly fingerprint: string;
  readonly zeroTimeMs: number;
  readonly batchIntervalMs: number;
  readonly partitions: number;
  readonly persisted: readonly PersistedStreamDescription[];
  readonly graph: unknown;
  readonly createdAtMs: number;
}

/**
 * Reads meta/graph.json, or writes it (put-if-absent) for a new store with `zeroTimeMs`; then
 * checks that the pipeline with `fingerprint` can carry on from it (IncompatibleGraphError if not).
 */
export async function loadGraphMeta(
  store: ObjectStore,
  ctx: StreamingContext,
  fingerprint: string,
  zeroTimeMs: () => number,
): Promise<GraphMeta> {
  const read = async () => {
    const bytes = await store.get(layout.graph());
    return bytes ? decodeJson<GraphMeta>(bytes) : undefined;
  };
  let meta = await read();
  if (!meta) {
    const fresh: GraphMeta = {
      fingerprint,
      zeroTimeMs: zeroTimeMs(),
      batchIntervalMs: ctx.batchIntervalMs,
      partitions: ctx.defaultPartitions,
      persisted: ctx.graph.persistedStreams(),
      graph: ctx.graph.describe(),
      createdAtMs: Date.now(),
    };
    meta = (await store.putIfAbsent(layout.graph(), encodeJson(fresh))) ? fresh : await read();
  }
  if (!meta) throw new SluiceError(`could not read ${layout.graph()} from ${store.describe()}`);
  checkCompatible(meta, fingerprint, ctx);
  return meta;
}

/**
 * A different fingerprint is accepted when every stateful stream is still there with the same
 * name, kind and parameters: its state can be read back as it was written.
 */
export function checkCompatible(meta: GraphMeta, fingerprint: string, ctx: StreamingContext): void {
  if (meta.batchIntervalMs !== ctx.batchIntervalMs) {
    throw new IncompatibleGraphError(
      meta.fingerprint,
      fingerprint,
      `The store was written with a batch interval of ${meta.batchIntervalMs} ms, this pipeline uses ${ctx.batchIntervalMs} ms.`,
    );
  }
  if (meta.fingerprint === fingerprint) return;
  const now = ctx.graph.persistedStreams();
  const key = (d: PersistedStreamDescription) => JSON.stringify([d.name, d.kind, d.params, d.partitions]);
  const before = new Set(meta.persisted.map(key));
  const after = new Set(now.map(key));
  const missing = meta.persisted.filter((d) => !after.has(key(d)));
  const added = now.filter((d) => !before.has(key(d)));
  if (missing.length > 0 || added.length > 0) {
    const names = (ds: PersistedStreamDescription[]) => ds.map((d) => `${d.kind} '${d.name}'`).join(', ');
    throw new IncompatibleGraphError(
      meta.fingerprint,
      fingerprint,
      `Stateful streams changed: ${missing.length ? `stored but no longer in the pipeline: ${names(missing)}; ` : ''}${
        added.length ? `new in the pipeline: ${names(added)}; ` : ''
      }give stateful operators a stable { name } so they survive unrelated changes.`,
    );
  }
}
