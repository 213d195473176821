/**
 * Where everything lives in the object store. One place, so the S3 and directory stores,
 * the driver, the executor and `sluice status` agree. Times are zero-padded epoch
 * milliseconds so that keys sort in time order.
 *
 *   meta/graph.json                               graph fingerprint, zero time, interval
 *   batches/<t>/received.json                     write-ahead entry: input blocks of the batch
 *   inputs/<t>/<stream>/<p>.blk                   input blocks
 *   rdd/<t>/<rdd>/<p>.blk (+ .lineage.json)       materialized RDD partitions and their lineage
 *   shuffle/<t>/<shuffle>/<map>.blk (+ .lineage.json)   one object per map task, index in lineage
 *   manifests/<t>.json                            the batch's commit record
 *   outputs/<prefix>-<t>[.<suffix>]/part-<p>      saved outputs (+ _SUCCESS)
 *   deadletter/<t>/<origin>.jsonl                 records that could not be used, with reasons
 *   lease/<epoch>.json (+ .released)              the driver lease (see lease.ts)
 *
 * @module
 */
export function timeKey(timeMs: number): string {
  return String(timeMs).padStart(15, '0');
}

export function parseTimeKey(text: string): number {
  return Number(text);
}

export const layout = {
  graph: () => 'meta/graph.json',
  received: (t: number) => `batches/${timeKey(t)}/received.json`,
  inputBlock: (t: number, stream: string, p: number) => `inputs/${timeKey(t)}/${stream}/${p}.blk`,
  rddPartition: (t: number, rdd: string, p: number) => `rdd/${timeKey(t)}/${rdd}/${p}.blk`,
  shuffleOutput: (t: number, shuffle: string, map: number) => `shuffle/${timeKey(t)}/${shuffle}/${map}.blk`,
  lineageOf: (dataKey: string) => `${dataKey}.lineage.json`,
  manifest: (t: number) => `manifests/${timeKey(t)}.json`,
  manifestsPrefix: () => 'manifests/',
  output: (dir: string, p: number, ext: string) => `outputs/${dir}/part-${String(p).padStart(5, '0')}${ext}`,
  outputSuccess: (dir: string) => `outputs/${dir}/_SUCCESS`,
  deadLetter: (t: number, origin: string) => `deadletter/${timeKey(t)}/${origin}.jsonl`,
};
