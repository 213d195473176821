import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { Node } from 'constructs';
import { SluicePipelinePropsError } from './errors.ts';
import type { SluicePipelineProps } from './sluice-pipeline.ts';

/** The pipeline and stack the CDK app deploys when no context says otherwise. */
export const DEFAULT_PIPELINE = 'examples/wordcount.ts';
export const DEFAULT_STACK_NAME = 'SluiceWordCount';

/** The context keys the app reads (`cdk synth -c key=value`, or `context` in cdk.json). */
export const CONTEXT_KEYS = [
  'pipeline',
  'stackName',
  'pipelineName',
  'partitions',
  'batchIntervalMs',
  'prefix',
  'removalPolicy',
  'scheduleEnabled',
  'dashboard',
  'metricsViaApi',
  'pipelineEnv',
  'tinyBatch',
] as const;

/** What the CDK app builds: one stack with one pipeline. */
export interface SluiceAppConfig {
  readonly stackName: string;
  readonly pipeline: SluicePipelineProps;
}

/**
 * Reads the app's configuration from CDK context, e.g.
 * `npx cdk deploy -c pipeline=examples/grep.ts -c partitions=8 -c batchIntervalMs=1000 -c stackName=SluiceGrep`.
 * Values from `-c` arrive as strings, values from cdk.json may be numbers or booleans; both are accepted.
 * A bad value fails with a {@link SluicePipelinePropsError} naming the context key.
 *
 * Without `stackName`, the stack is `SluiceWordCount` for the default pipeline and
 * `Sluice<FileName>` (e.g. `SluiceGrep`) for another one, so two pipelines never share a stack.
 */
export function configFromContext(node: Pick<Node, 'tryGetContext'>): SluiceAppConfig {
  const where = 'CDK context';
  const fail = (key: string, message: string): never => {
    throw new SluicePipelinePropsError(where, key, message);
  };
  const str = (key: string): string | undefined => {
    const v: unknown = node.tryGetContext(key);
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      return fail(key, `expected a string, got ${JSON.stringify(v)}`);
    }
    return String(v);
  };
  const int = (key: string): number | undefined => {
    const v = str(key);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v.trim())) return fail(key, `expected a whole number, got '${v}'`);
    return Number(v);
  };
  const bool = (key: string): boolean | undefined => {
    const v = str(key);
    if (v === undefined) return undefined;
    if (v === 'true' || v === 'false') return v === 'true';
    return fail(key, `expected true or false, got '${v}'`);
  };

  const pipelineGiven = str('pipeline');
  const pipeline = pipelineGiven ?? DEFAULT_PIPELINE;
  const stackName = str('stackName') ?? (pipelineGiven ? defaultStackName(pipeline) : DEFAULT_STACK_NAME);
  if (!/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(stackName)) {
    fail('stackName', `'${stackName}' must start with a letter and hold only letters, digits and '-'`);
  }

  const removal = str('removalPolicy');
  let removalPolicy: RemovalPolicy | undefined;
  if (removal !== undefined) {
    if (removal !== 'retain' && removal !== 'destroy')
      fail('removalPolicy', `expected retain or destroy, got '${removal}'`);
    removalPolicy = removal === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
  }

  const batchIntervalMs = int('batchIntervalMs');
  return {
    stackName,
    pipeline: {
      pipeline,
      pipelineName: str('pipelineName'),
      partitions: int('partitions'),
      batchInterval: batchIntervalMs === undefined ? undefined : Duration.millis(batchIntervalMs),
      prefix: str('prefix'),
      removalPolicy,
      scheduleEnabled: bool('scheduleEnabled'),
      dashboard: bool('dashboard'),
      metricsViaApi: bool('metricsViaApi'),
      environment: pipelineEnv(node.tryGetContext('pipelineEnv'), fail),
      ...tinyBatchOf(node.tryGetContext('tinyBatch'), fail),
    },
  };
}

/** `-c tinyBatch=false` or `-c tinyBatch='{"maxRecords":1000}'` (the construct checks the fields). */
function tinyBatchOf(
  raw: unknown,
  fail: (key: string, message: string) => never,
): Pick<SluicePipelineProps, 'tinyBatch'> {
  if (raw === undefined || raw === null || raw === '') return {};
  if (raw === false || raw === 'false') return { tinyBatch: false };
  let value: unknown = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      return fail('tinyBatch', `expected false or a JSON object { maxRecords, maxBytes }, got '${raw}'`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(
      'tinyBatch',
      `expected false or a JSON object { maxRecords, maxBytes }, got ${JSON.stringify(value)}`,
    );
  }
  return { tinyBatch: value as { maxRecords?: number; maxBytes?: number } };
}

/** `examples/page-views.ts` → `SluicePageViews`. */
export function defaultStackName(pipeline: string): string {
  const base = path.basename(pipeline).replace(/\.[^.]*$/, '');
  const words = base.split(/[^A-Za-z0-9]+/).filter((w) => w.length > 0);
  return `Sluice${words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('')}`;
}

/** `-c pipelineEnv='{"SLUICE_GREP_PATTERN":"timeout"}'`, or an object in cdk.json. */
function pipelineEnv(
  raw: unknown,
  fail: (key: string, message: string) => never,
): Record<string, string> | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  let value: unknown = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      return fail('pipelineEnv', `expected a JSON object of strings, got '${raw}'`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail('pipelineEnv', `expected a JSON object of strings, got ${JSON.stringify(value)}`);
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string')
      fail('pipelineEnv', `value of ${k} must be a string, got ${JSON.stringify(v)}`);
    env[k] = v as string;
  }
  return env;
}
