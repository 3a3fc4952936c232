import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/yield-between-tests.ts"],
    // Native kernels already use every core; running test files in parallel would only
    // make them fight over it. Files run one after another, each in its own fork.
    pool: "forks",
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
