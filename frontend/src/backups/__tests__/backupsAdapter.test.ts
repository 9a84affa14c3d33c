/**
 * The adapter against the recorded answers: the calls it makes (paths, query, bodies), the 202/409 of "Back up
 * now", and the mapping of GET status and GET runs?group=sets into the health verdict and the rows.
 */
import { describe, expect, it } from 'vitest';
import { http, HttpResponse } from 'msw';
import { backupsAdapter, errorMessage } from '../backupsAdapter';
import { toBackupRows, toHealth } from '../backupsView';
import { fixtures, pageBody, statusBody } from '../../test/fixtures';
import { recorded, server } from '../../test/server';

const SET_ID = 'ce721f92-1717-46a4-b4ad-35f4a90ca013';
const BROKEN = 'd5f3b5dc-7e6d-4952-9242-ea150015d7e0';

describe('toHealth', () => {
  it('makes the checklist part of the verdict: 2 checks failing, with their details and fixes', () => {
    const health = toHealth(statusBody(fixtures.status));
    expect(health.healthy).toBe(false);
    expect(health.headline).toBe('2 checks failing');
    expect(health.failing.map((item) => item.key)).toEqual(['verify_failures', 'restore_drill']);
    expect(health.failing[0].detail).toBe(
      'full backup d5f3b5dc: quick verify failed 0.0 h ago: verify failed (size): ' +
        'openwatch_20261201_044549.dump.zst is 150366 bytes, the manifest says 150365'
    );
    expect(health.failing[1].fix).toBe('run `openwatch-backup drill`');
    expect(health.nextRuns).toEqual([
      { name: 'backup', at: '2026-12-02T02:00:00Z' },
      { name: 'drill', at: '2026-12-06T04:00:00Z' },
    ]);
    expect(health.rto.map((row) => [row.scenario, row.state])).toEqual([
      ['container_restart', 'stated'],
      ['database_corruption', 'warn'],
      ['host_failure', 'warn'],
      ['volume_loss', 'warn'],
    ]);
    expect(health.running).toBeNull();
  });

  it('says "1 check failing" in the singular and "Healthy" only when nothing fails', () => {
    const status = statusBody(fixtures.status);
    const one = { ...status, failing_checks: ['restore_drill'],
      checklist: status.checklist.map((c) => (c.key === 'verify_failures' ? { ...c, status: 'ok' } : c)) };
    expect(toHealth(one).headline).toBe('1 check failing');
    const none = { ...one, healthy: true, failing_checks: [],
      checklist: one.checklist.map((c) => ({ ...c, status: c.status === 'fail' ? 'ok' : c.status })) };
    expect(toHealth(none)).toMatchObject({ healthy: true, headline: 'Healthy', failing: [] });
  });

  it('carries the running backup', () => {
    const health = toHealth(statusBody(fixtures.statusRunning));
    expect(health.running?.kind).toBe('full');
    expect(health.running?.status).toBe('running');
  });
});

describe('toBackupRows', () => {
  const rows = toBackupRows(pageBody(fixtures.runsSets));

  it('folds verify runs under their backups and sets over their members', () => {
    expect(rows.map((row) => row.kind)).toEqual([
      'full', 'prune', 'set', 'full', 'full', 'prune', 'set', 'prune', 'config',
    ]);
    const set = rows.find((row) => row.id === SET_ID);
    expect(set?.members.map((m) => [m.kind, m.state])).toEqual([
      ['full', 'verified'],
      ['config', 'verified'],
    ]);
    expect(set?.setOffsite).toBe(false);
    expect(set?.sizeBytes).toBe(set!.members[0].sizeBytes! + set!.members[1].sizeBytes!);
    expect(set?.members[0].verify?.history.map((run) => run.kind)).toEqual(['verify']);
  });

  it('says "verify failed" with the reason for a backup whose newest verify failed, not "succeeded"', () => {
    const broken = rows.find((row) => row.id === BROKEN)!;
    expect(broken.status).toBe('succeeded');
    expect(broken.state).toBe('verify failed');
    expect(broken.tone).toBe('error');
    expect(broken.verify).toMatchObject({ state: 'failed', deep: false });
    expect(broken.verify?.lastFailure).toMatchObject({
      reason: 'size',
      message: 'openwatch_20261201_044549.dump.zst is 150366 bytes, the manifest says 150365',
    });
    expect(broken.verify?.history.map((run) => run.status)).toEqual(['failed', 'succeeded']);
    expect(broken.copies).toEqual([{ storage: 'local', label: 'Local', state: 'failed', error: expect.any(String) }]);
    expect(broken.retention).toBe('kept: within 30 days');
  });

  it('gives each backup its copies and retention word', () => {
    const newest = rows[0];
    expect(newest.artifact).toBe('openwatch_20261201_044559.dump.zst');
    expect(newest.copies).toEqual([{ storage: 'local', label: 'Local', state: 'verified', error: null }]);
    expect(newest.verify).toMatchObject({ state: 'passed', deep: false });
    const member = rows.find((row) => row.id === SET_ID)!.members[0];
    expect(member.retention).toBe('kept: newest verified backup');
  });
});

describe('backupsAdapter', () => {
  it('asks for sets grouped, under /api/system/backups', async () => {
    let asked = '';
    server.use(recorded(fixtures.runsSets, (request) => { asked = request.url; }));
    const page = await backupsAdapter.listRuns({ kind: 'full' });
    expect(new URL(asked).pathname).toBe('/api/system/backups/runs');
    expect(Object.fromEntries(new URL(asked).searchParams)).toEqual({ group: 'sets', limit: '50', kind: 'full' });
    expect(page.items).toHaveLength(pageBody(fixtures.runsSets).items.length);
  });

  it('returns the queued run of a 202 and the running one of a 409 with its message', async () => {
    server.use(recorded(fixtures.postRuns202));
    const started = await backupsAdapter.startBackup();
    expect(started).toMatchObject({ started: true, run: { status: 'queued', kind: 'full' } });

    server.use(recorded(fixtures.postRuns409));
    const busy = await backupsAdapter.startBackup();
    expect(busy).toEqual({
      started: false,
      run: expect.objectContaining({ id: '291ba363-b420-4eeb-940d-0a3be64104b7' }),
      message: 'a backup is already running (run 291ba363-b420-4eeb-940d-0a3be64104b7)',
    });
  });

  it('sends {"deep": false} to verify and rejects other errors with the backend line', async () => {
    let body: unknown = null;
    server.use(http.post('/api/system/backups/runs/:id/verify', async ({ request }) => {
      body = await request.json();
      return HttpResponse.json(fixtures.postVerify202.body, { status: 202 });
    }));
    const run = await backupsAdapter.verify(BROKEN);
    expect(body).toEqual({ deep: false });
    expect(run.kind).toBe('verify');

    server.use(http.post('/api/system/backups/runs', () =>
      HttpResponse.json({ detail: 'the catalog is unavailable' }, { status: 503 })));
    const failure = await backupsAdapter.startBackup().catch((error: unknown) => error);
    expect(errorMessage(failure)).toBe('the catalog is unavailable');
  });
});
