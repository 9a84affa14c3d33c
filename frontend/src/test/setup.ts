import '@testing-library/jest-dom/vitest';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { cleanup, configure } from '@testing-library/react';
import { server } from './server';

// findBy*/waitFor: the first render loads MUI, slow on a busy CI machine (1 s by default).
configure({ asyncUtilTimeout: 15000 });

// Any request no test answered is an error: the section asks only for what the fixtures recorded.
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => {
  cleanup();
  server.resetHandlers();
  localStorage.clear();
});
afterAll(() => server.close());
