import { defineConfig } from 'vitest/config';

// Six tiers (vitest projects), run by `npm test` (test/run.sh; integration and e2e unless
// SLUICE_SKIP_LOCALSTACK=1):
//   unit         engine, planner, driver, CLI and examples on the embedded runner
//   ui           the web UI (sluice ui, run --ui) in headless Chromium via playwright-core
//   infra        the CDK stack, synthesized offline and checked with assertions and cdk-nag
//   package      `npm pack` installed into a fresh project: `sluice run`, `import 'sluice'`, a CDK app
//   integration  real AWS adapters against LocalStack on 127.0.0.1 (started by test/run.sh)
//   e2e          the CDK app deployed to that LocalStack with cdklocal, fed with `sluice send`, its
//                functions run by the host Lambda executor (test/localstack/executor); minutes long
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 60_000 } },
      {
        test: {
          name: 'ui',
          include: ['test/ui/**/*.test.ts'],
          testTimeout: 90_000,
          hookTimeout: 90_000,
          fileParallelism: false,
        },
      },
      { test: { name: 'infra', include: ['test/infra/**/*.test.ts'], testTimeout: 180_000 } },
      // npm pack, installed into a fresh project under test/.tmp: the CLI, the API and the construct
      { test: { name: 'package', include: ['test/package/**/*.test.ts'], testTimeout: 300_000 } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
