/**
 * The stand-in client holds the login as OpenWatch's frontend does: Bearer `auth_token` from localStorage; on a
 * 401 one POST /api/auth/refresh with the `refresh_token`, the new token stored, the request retried once.
 */
import { describe, expect, it } from 'vitest';
import { http, HttpResponse } from 'msw';
import { api } from '../api';
import { fixtures } from '../../test/fixtures';
import { server } from '../../test/server';

const STATUS = '/api/system/backups/status';

/** GET status: the recorded 401 unless the request carries `Bearer <valid>`, then the recorded status. */
function statusNeeding(valid: string, seen: string[]) {
  return http.get(STATUS, ({ request }) => {
    const auth = request.headers.get('Authorization') ?? '';
    seen.push(auth);
    return auth === `Bearer ${valid}`
      ? HttpResponse.json(fixtures.status.body)
      : HttpResponse.json(fixtures.status401.body, { status: 401 });
  });
}

function refreshGiving(token: string | null, bodies: unknown[]) {
  return http.post('/api/auth/refresh', async ({ request }) => {
    bodies.push(await request.json());
    return token
      ? HttpResponse.json({ access_token: token, expires_in: 1800 }) // OpenWatch's answer (tokenService.ts)
      : HttpResponse.json({ detail: 'Invalid refresh token' }, { status: 401 });
  });
}

describe('api (OpenWatch login)', () => {
  it('sends the access token from localStorage auth_token', async () => {
    localStorage.setItem('auth_token', 'access-1');
    const seen: string[] = [];
    server.use(statusNeeding('access-1', seen));
    const status = await api.get<{ healthy: boolean }>(STATUS);
    expect(status.healthy).toBe(false);
    expect(seen).toEqual(['Bearer access-1']);
  });

  it('on a 401 refreshes once, stores the new token and retries', async () => {
    localStorage.setItem('auth_token', 'expired');
    localStorage.setItem('refresh_token', 'refresh-1');
    const seen: string[] = [];
    const refreshes: unknown[] = [];
    server.use(statusNeeding('access-2', seen), refreshGiving('access-2', refreshes));
    const status = await api.get<{ failing_checks: string[] }>(STATUS);
    expect(status.failing_checks).toEqual(['verify_failures', 'restore_drill']);
    expect(refreshes).toEqual([{ refresh_token: 'refresh-1' }]);
    expect(seen).toEqual(['Bearer expired', 'Bearer access-2']);
    expect(localStorage.getItem('auth_token')).toBe('access-2');
  });

  it('refreshes once for several requests failing together', async () => {
    localStorage.setItem('auth_token', 'expired');
    localStorage.setItem('refresh_token', 'refresh-1');
    const seen: string[] = [];
    const refreshes: unknown[] = [];
    server.use(statusNeeding('access-3', seen), refreshGiving('access-3', refreshes));
    await Promise.all([api.get(STATUS), api.get(STATUS), api.get(STATUS)]);
    expect(refreshes).toHaveLength(1);
    expect(seen.filter((auth) => auth === 'Bearer access-3')).toHaveLength(3);
  });

  it('gives up after one refresh: a refused refresh rejects with the 401 and its detail', async () => {
    localStorage.setItem('auth_token', 'expired');
    localStorage.setItem('refresh_token', 'revoked');
    const seen: string[] = [];
    const refreshes: unknown[] = [];
    server.use(statusNeeding('never', seen), refreshGiving(null, refreshes));
    const error = (await api.get(STATUS).catch((e: unknown) => e)) as {
      status: number;
      response: { data: { detail: string } };
    };
    expect(error.status).toBe(401);
    expect(error.response.data.detail).toBe('invalid token');
    expect(refreshes).toHaveLength(1);
    expect(seen).toEqual(['Bearer expired']);
    expect(localStorage.getItem('auth_token')).toBeNull();
  });

  it('retries only once when the new token is refused too', async () => {
    localStorage.setItem('auth_token', 'expired');
    localStorage.setItem('refresh_token', 'refresh-1');
    const seen: string[] = [];
    const refreshes: unknown[] = [];
    server.use(statusNeeding('never', seen), refreshGiving('also-bad', refreshes));
    const error = (await api.get(STATUS).catch((e: unknown) => e)) as { status: number };
    expect(error.status).toBe(401);
    expect(refreshes).toHaveLength(1);
    expect(seen).toEqual(['Bearer expired', 'Bearer also-bad']);
  });
});
