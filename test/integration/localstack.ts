/**
 * Shared setup of the integration tests: points every AWS client at LocalStack on the loopback
 * interface (never at real AWS), and fails loudly when LocalStack is not running.
 *
 * LocalStack is started by test/run.sh through test/localstack/start.sh; by hand:
 *   bash test/localstack/start.sh && npx vitest run --project integration
 */
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { createS3Client, createSqsClient, isLoopbackEndpoint } from '../../aws/clients.ts';

export const LOCALSTACK_URL = process.env.SLUICE_LOCALSTACK_URL ?? 'http://127.0.0.1:4566';
if (!isLoopbackEndpoint(LOCALSTACK_URL)) {
  throw new Error(`integration tests only talk to a local endpoint, not ${LOCALSTACK_URL}`);
}

// Set before any client is created (no module creates one at import time).
for (const name of Object.keys(process.env)) {
  if (name.startsWith('AWS_ENDPOINT_URL_')) delete process.env[name];
}
delete process.env.AWS_PROFILE;
delete process.env.AWS_SESSION_TOKEN;
delete process.env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS;
process.env.AWS_ENDPOINT_URL = LOCALSTACK_URL;
process.env.AWS_ENDPOINT_URL_S3 = LOCALSTACK_URL;
process.env.AWS_ENDPOINT_URL_SQS = LOCALSTACK_URL;
process.env.AWS_ACCESS_KEY_ID = 'test';
process.env.AWS_SECRET_ACCESS_KEY = 'test';
process.env.AWS_REGION = 'us-east-1';
process.env.AWS_DEFAULT_REGION = 'us-east-1';

/** Throws (never skips) unless LocalStack answers with s3 and sqs available. */
export async function requireLocalStack(): Promise<void> {
  const url = `${LOCALSTACK_URL}/_localstack/health`;
  let body: { services?: Record<string, string>; version?: string };
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    body = (await res.json()) as typeof body;
  } catch (error) {
    throw new Error(
      `LocalStack is not reachable at ${LOCALSTACK_URL} (${String(error)}). ` +
        'Start it with: bash test/localstack/start.sh',
    );
  }
  for (const service of ['s3', 'sqs']) {
    const state = body.services?.[service];
    if (state !== 'available' && state !== 'running') {
      throw new Error(`LocalStack at ${LOCALSTACK_URL} reports ${service} as ${state ?? 'missing'}`);
    }
  }
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export async function createBucket(name = uniqueName('sluice-it')): Promise<string> {
  const s3 = createS3Client();
  await s3.send(new CreateBucketCommand({ Bucket: name }));
  s3.destroy();
  return name;
}

export async function createQueue(
  name = uniqueName('sluice-it'),
  attributes: Record<string, string> = {},
): Promise<string> {
  const sqs = createSqsClient();
  const res = await sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '30', ...attributes } }),
  );
  sqs.destroy();
  if (!res.QueueUrl) throw new Error(`CreateQueue ${name} returned no QueueUrl`);
  return res.QueueUrl;
}

/** Visible plus in-flight messages of a queue (LocalStack keeps these counts exact). */
export async function queueDepth(queueUrl: string): Promise<{ visible: number; inFlight: number }> {
  const sqs = createSqsClient();
  const res = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  sqs.destroy();
  return {
    visible: Number(res.Attributes?.ApproximateNumberOfMessages ?? Number.NaN),
    inFlight: Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? Number.NaN),
  };
}
