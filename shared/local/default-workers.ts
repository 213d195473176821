/**
 * The default number of worker threads of `sluice run` (issue 14, item 3): the driver's own work
 * counts as a core's work. The driver thread receives and encodes input during the interval
 * (shared/core/receiver/), plans, runs outputs and commits, so a worker per core makes the workers
 * and the driver fight for the cores. Measured on a 2-core machine (bench/README.md, "Default
 * workers"): one worker sustains as much or more than two for Grep and WordCount at 1 s; on more
 * cores the driver still needs one core, so the default is one worker per core but one.
 *
 * @module
 */
import { availableParallelism } from 'node:os';

/** One worker per core, minus one core for the driver; at least one. */
export function defaultWorkers(cores: number = availableParallelism()): number {
  return Math.max(1, Math.floor(cores) - 1);
}
