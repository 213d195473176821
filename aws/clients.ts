/**
 * AWS SDK v3 clients for the adapters, configured once.
 *
 * Endpoints: the SDK itself honours `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_S3`,
 * `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_LAMBDA` (and `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`), so
 * these factories never pass `endpoint` unless the caller gives one explicitly. They only read the
 * same variables to decide what the SDK cannot: path-style S3 addressing (LocalStack and other local
 * endpoints have no per-bucket host names), a default region, and dummy credentials for a loopback
 * endpoint that has none configured (LocalStack accepts any).
 *
 * @module
 */
import { LambdaClient, type LambdaClientConfig } from '@aws-sdk/client-lambda';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';

export type AwsService = 'S3' | 'SQS' | 'LAMBDA';

export interface ClientOptions {
  /** Explicit endpoint (wins over the environment), e.g. a local Lambda endpoint in tests. */
  readonly endpoint?: string;
  readonly region?: string;
  /** Attempts per request, including the first (the SDK's standard retry mode with backoff). */
  readonly maxAttempts?: number;
  /** Close a connection attempt after this long. */
  readonly connectionTimeoutMs?: number;
  /** Fail a request whose socket stays idle this long (0: never). */
  readonly socketTimeoutMs?: number;
  /** Keep-alive sockets per client. */
  readonly maxSockets?: number;
}

const DEFAULT_LOCAL_REGION = 'us-east-1';

function truthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes'].includes(value.trim().toLowerCase());
}

/** The endpoint the SDK will use for `service` from the environment, if any (per-service wins). */
export function configuredEndpoint(
  service: AwsService,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (truthy(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS)) return undefined;
  const specific = env[`AWS_ENDPOINT_URL_${service}`]?.trim();
  if (specific) return specific;
  const general = env.AWS_ENDPOINT_URL?.trim();
  return general || undefined;
}

/** True for http(s)://localhost, 127.x.y.z and [::1] endpoints. */
export function isLoopbackEndpoint(endpoint: string | undefined): boolean {
  if (!endpoint) return false;
  try {
    const host = new URL(endpoint).hostname;
    return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
  } catch {
    return false;
  }
}

interface CommonConfig {
  region?: string;
  endpoint?: string;
  maxAttempts: number;
  /**
   * `adaptive` for S3 and SQS: the SDK retries throttling (S3 503 SlowDown, SQS throttling) and
   * 5xx with exponential backoff and jitter, and rate-limits the client itself while it is throttled.
   */
  retryMode?: 'standard' | 'adaptive';
  credentials?: { accessKeyId: string; secretAccessKey: string };
  requestHandler: {
    connectionTimeout: number;
    socketTimeout: number;
    httpAgent: { keepAlive: boolean; maxSockets: number };
    httpsAgent: { keepAlive: boolean; maxSockets: number };
  };
}

function commonConfig(
  service: AwsService,
  options: ClientOptions,
  defaults: { maxAttempts: number; socketTimeoutMs: number; maxSockets: number },
): CommonConfig {
  const endpoint = options.endpoint ?? configuredEndpoint(service);
  const config: CommonConfig = {
    maxAttempts: options.maxAttempts ?? defaults.maxAttempts,
    requestHandler: {
      connectionTimeout: options.connectionTimeoutMs ?? 3_000,
      socketTimeout: options.socketTimeoutMs ?? defaults.socketTimeoutMs,
      httpAgent: { keepAlive: true, maxSockets: options.maxSockets ?? defaults.maxSockets },
      httpsAgent: { keepAlive: true, maxSockets: options.maxSockets ?? defaults.maxSockets },
    },
  };
  // Only an explicit endpoint is passed on: one from the environment the SDK resolves by itself.
  if (options.endpoint) config.endpoint = options.endpoint;
  const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (region) config.region = region;
  else if (endpoint) config.region = DEFAULT_LOCAL_REGION;
  if (
    isLoopbackEndpoint(endpoint) &&
    !process.env.AWS_ACCESS_KEY_ID &&
    !process.env.AWS_PROFILE &&
    !process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI &&
    !process.env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
  ) {
    config.credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
  }
  return config;
}

export function createS3Client(options: ClientOptions = {}): S3Client {
  const config: S3ClientConfig = {
    ...commonConfig('S3', options, { maxAttempts: 5, socketTimeoutMs: 30_000, maxSockets: 64 }),
    retryMode: 'adaptive',
    // Local endpoints (LocalStack, MinIO) serve buckets by path, not by virtual host.
    forcePathStyle: Boolean(options.endpoint ?? configuredEndpoint('S3')),
  };
  return new S3Client(config);
}

export function createSqsClient(options: ClientOptions = {}): SQSClient {
  // Long polls last up to 20 s with no byte on the wire: the idle timeout must be longer.
  const config: SQSClientConfig = {
    ...commonConfig('SQS', options, { maxAttempts: 5, socketTimeoutMs: 30_000, maxSockets: 32 }),
    retryMode: 'adaptive',
  };
  return new SQSClient(config);
}

/**
 * A Lambda client for RequestResponse task invocations: no idle-socket timeout (a task may run for
 * minutes without a byte; the invoker enforces the task timeout with an AbortSignal) and a single
 * attempt, because the invoker classifies failures and retries throttling itself, so every
 * invocation is counted and no hidden retry overruns the task's timeout.
 */
export function createLambdaClient(options: ClientOptions = {}): LambdaClient {
  const config: LambdaClientConfig = commonConfig('LAMBDA', options, {
    maxAttempts: 1,
    socketTimeoutMs: 0,
    maxSockets: 64,
  });
  return new LambdaClient(config);
}
