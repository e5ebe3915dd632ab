import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Suites start real servers and databases; two workers suit the 2-core machines.
    maxWorkers: 2,
    fileParallelism: true,
    reporters: ['default'],
    // Every server a test starts, in-process or as a child process, checks each JSON answer
    // against its route's response schema and fails loudly on a mismatch (src/server/response-check.ts).
    env: { UPSHIFT_CHECK_RESPONSES: '1' },
  },
});
