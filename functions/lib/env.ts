import { ConfigError } from '../../shared/index.ts';
import { LAMBDA_ENV } from './env-names.ts';

/** Typed access to the functions' environment; a missing or bad variable fails loudly, naming it. */
export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (value === undefined || value === '') throw new ConfigError(name, 'environment variable is not set');
  return value;
}

export function optionalEnv(name: string, fallback: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  return value === undefined || value === '' ? fallback : value;
}

export function intEnv(
  name: string,
  fallback: number | undefined,
  env: NodeJS.ProcessEnv = process.env,
): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    if (fallback === undefined) throw new ConfigError(name, 'environment variable is not set');
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new ConfigError(name, `must be a whole number, got '${raw}'`);
  return value;
}

/** What every function reads. */
export interface SluiceEnv {
  readonly bucket: string;
  readonly prefix: string;
  readonly batchIntervalMs: number;
  /** Unset: the pipeline module's `options.partitions` (else the engine's default) decides. */
  readonly partitions: number | undefined;
  /** Partitions when neither SLUICE_PARTITIONS nor the module's options say (the construct's default). */
  readonly defaultPartitions?: number;
  readonly pipelineName: string;
}

export function sluiceEnv(env: NodeJS.ProcessEnv = process.env): SluiceEnv {
  return {
    bucket: requireEnv(LAMBDA_ENV.bucket, env),
    prefix: optionalEnv(LAMBDA_ENV.prefix, '', env),
    batchIntervalMs: intEnv(LAMBDA_ENV.batchIntervalMs, 1000, env),
    partitions: env[LAMBDA_ENV.partitions] ? intEnv(LAMBDA_ENV.partitions, 0, env) : undefined,
    defaultPartitions: env[LAMBDA_ENV.defaultPartitions]
      ? intEnv(LAMBDA_ENV.defaultPartitions, 0, env)
      : undefined,
    pipelineName: optionalEnv(LAMBDA_ENV.pipelineName, 'pipeline', env),
  };
}

export function jsonEnv<T>(name: string, env: NodeJS.ProcessEnv = process.env): T | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch (err) {
    throw new ConfigError(name, `must be JSON: ${(err as Error).message}`);
  }
}
