/**
 * The driver, by its old address: the rooms live in `shared/core/driver/` (see
 * docs/ARCHITECTURE.md); this re-exports what other code imports from here.
 *
 * @module
 */
export type { GraphMeta } from './driver/graph-meta.ts';
export type { BatchManifest, ReceivedEntry, StageReport } from './driver/manifest.ts';
export {
  type BatchSchedulerOptions,
  DRIVER_DEFAULTS,
  type DriverTuning,
  type LeaseOptions,
  pickTuning,
  resolveDriverOptions,
} from './driver/options.ts';
export { BatchScheduler } from './driver/scheduler.ts';
