import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { SqsSource } from '../../aws/sqs-source.ts';
import { createQueue, LOCALSTACK_URL, requireLocalStack } from './localstack.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const env = {
  ...process.env,
  AWS_ENDPOINT_URL: LOCALSTACK_URL,
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_REGION: 'us-east-1',
};

async function drain(queueUrl: string): Promise<unknown[]> {
  const source = new SqsSource({ queueUrl });
  const batch = await source.receive({ batchTimeMs: Date.now(), intervalMs: 1500 });
  await source.ack(batch.ackToken);
  return batch.records;
}

beforeAll(requireLocalStack);

describe('sluice send', () => {
  it('sends the JSON lines of a file as events, many per message, and refuses bad lines', async () => {
    const queueUrl = await createQueue();
    const file = path.join(root, 'test/.tmp/send-events.jsonl');
    writeFileSync(
      file,
      `${Array.from({ length: 250 }, (_, i) => JSON.stringify({ url: `/p/${i % 7}`, i })).join('\n')}\n{oops\n`,
    );
    const result = await run(
      'node',
      ['bin/sluice.js', 'send', '--queue', queueUrl, '--file', file, '--format', 'json'],
      {
        cwd: root,
        env,
      },
    ).catch((e: { code: number; stdout: string; stderr: string }) => e);
    expect((result as { code?: number }).code).toBe(1);
    expect(result.stdout).toMatch(/sent 250 events in 3 messages/);
    expect(result.stderr).toMatch(/line 251: not valid JSON/);
    const events = await drain(queueUrl);
    expect(events).toHaveLength(250);
    expect(events).toContainEqual({ url: '/p/3', i: 3 });
  });

  it("sends a pipeline module's demo events", async () => {
    const queueUrl = await createQueue();
    const { stdout } = await run(
      'node',
      [
        'bin/sluice.js',
        'send',
        '--queue',
        queueUrl,
        '--generate',
        '40',
        '--pipeline',
        'examples/wordcount.ts',
      ],
      { cwd: root, env },
    );
    expect(stdout).toMatch(/sent 40 events/);
    const events = await drain(queueUrl);
    expect(events).toHaveLength(40);
    expect(typeof events[0]).toBe('string');
  });
});
