import { defineConfig } from 'vitest/config';

// Unit tests of the pure modules (`npm test`): node environment, no browser,
// no server, no network.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
});
