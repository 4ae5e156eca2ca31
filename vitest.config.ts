import { defineConfig } from 'vitest/config';

// Workspace packages export their TypeScript sources under the "source" condition; tests run on sources, while
// services started as child processes run their built output.
// The rest are Vite's default server conditions ('import'/'require' are added per call by Vite itself).
const conditions = ['source', 'module', 'node', 'development|production'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    globalSetup: ['./packages/testkit/src/global-setup.ts'],
    include: ['{packages,services,infra,test}/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60000,
    hookTimeout: 60000,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
