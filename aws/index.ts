/** The AWS runner's adapters: S3 as the object store, SQS as the source, Lambda as the invoker. */
export * from './asleep-marker.ts';
export * from './clients.ts';
export * from './errors.ts';
export * from './lambda-invoker.ts';
export * from './nudge.ts';
export * from './payload.ts';
export * from './producer.ts';
export * from './s3-object-store.ts';
export * from './sqs-source.ts';
