/**
 * The recorded API answers (src/test/fixtures/*.json, made by scripts/record_fixtures.py against a running
 * demo) served by msw, which answers axios's XMLHttpRequest in jsdom as the backend would.
 */
import { http, HttpResponse, type HttpHandler } from 'msw';
import { setupServer } from 'msw/node';

export interface Recorded {
  method: string;
  path: string;
  status: number;
  body: unknown;
}

/** A handler that answers the fixture's method and path (query left out: msw matches paths) with its answer. */
export function recorded(fixture: Recorded, onCall?: (request: Request) => void): HttpHandler {
  const method = fixture.method.toLowerCase() as 'get' | 'post' | 'put';
  const path = fixture.path.split('?')[0];
  return http[method](path, ({ request }) => {
    onCall?.(request);
    return HttpResponse.json(fixture.body as Record<string, unknown>, { status: fixture.status });
  });
}

export const server = setupServer();
