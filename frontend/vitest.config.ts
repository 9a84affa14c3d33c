import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

// As OpenWatch's vite.config.ts `test` block: jsdom, one setup file.
export default defineConfig({
  plugins: [react()],
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test/setup.ts'],
    include: ['src/**/__tests__/**/*.test.{ts,tsx}'],
    // MUI tables in jsdom on a busy 2-core CI machine: role queries take seconds, not milliseconds.
    testTimeout: 60000,
  },
});
