/**
 * The restore wizard against answers recorded from a real stack (scripts/record_restore_fixtures.py): the checks,
 * a restore into a new database followed to its result, the 409 for a taken name, and "replace" disabled until
 * the live database's name is typed. The Restore button shows only when "allow restore" is on.
 */
import { describe, expect, it } from 'vitest';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import RestoreWizard, { RestoreButton, canRestore, nameProblem, suggestedName } from '../RestoreWizard';
import type { ApiRun } from '../types';
import checkOk from '../../test/fixtures/restore_check_ok.json';
import checkTaken from '../../test/fixtures/restore_check_taken.json';
import post202 from '../../test/fixtures/restore_post_202.json';
import post409 from '../../test/fixtures/restore_post_409.json';
import runSucceeded from '../../test/fixtures/restore_run_succeeded.json';
import runBackup from '../../test/fixtures/run_backup.json';
import { recorded, server } from '../../test/server';
import { renderWithClient } from '../../test/renderWithClient';

const BACKUP_ID = checkOk.body.backup_id;
const backup = { ...(runBackup.body as unknown as ApiRun), id: BACKUP_ID, kind: 'full', status: 'succeeded',
  pruned_at: null };
const LIVE = checkOk.body.live_database;
const NOW = new Date('2026-12-01T10:44:00Z');

function wizard() {
  return renderWithClient(<RestoreWizard backup={backup} open onClose={() => {}} now={NOW} />);
}

describe('RestoreWizard', () => {
  it('checks first, then restores into a new database with the prefilled name and shows the result', async () => {
    const bodies: unknown[] = [];
    const checked: string[] = [];
    server.use(
      recorded(checkOk, (request) => checked.push(new URL(request.url).searchParams.get('into') ?? '')),
      http.post(post202.path, async ({ request }) => {
        bodies.push(await request.json());
        return HttpResponse.json(post202.body, { status: post202.status });
      }),
      recorded(runSucceeded)
    );
    const user = userEvent.setup();
    wizard();
    expect(await screen.findByText('The checks passed. Next, choose where to restore.')).toBeInTheDocument();
    const list = screen.getByRole('list', { name: 'Compatibility checks' });
    expect(within(list).getAllByRole('listitem').map((li) => li.dataset.check)).toEqual(
      ['allowed', 'restorable', 'verified', 'file', 'compatible', 'target', 'idle']);
    expect(within(list).getByText('ok: Server version compatible')).toBeInTheDocument();
    expect(checked).toEqual(['openwatch_restore_20261201_1044']);

    await user.click(screen.getByRole('button', { name: 'Next' }));
    const name = screen.getByLabelText('New database name');
    expect(name).toHaveValue('openwatch_restore_20261201_1044');
    expect(screen.getByLabelText('Into a new database (nothing is replaced)')).toBeChecked();
    const start = screen.getByRole('button', { name: 'Restore into the new database' });
    await user.clear(name);
    await user.type(name, '1bad');
    expect(start).toBeDisabled();
    expect(screen.getByText('Use letters, digits and _ (up to 63), not starting with a digit.')).toBeInTheDocument();
    await user.clear(name);
    await user.type(name, 'openwatch_restore_be78403e');
    expect(start).toBeEnabled();
    await user.click(start);

    expect(await screen.findByText('Restored into database openwatch_restore_be78403e in 0.4 s.')).toBeInTheDocument();
    expect(bodies).toEqual([{ into: 'openwatch_restore_be78403e' }]);
  });

  it('shows the 409 when the name is taken (a taken default name does not block the checks)', async () => {
    server.use(recorded(checkTaken), recorded(post409));
    const user = userEvent.setup();
    wizard();
    expect(await screen.findByText('The checks passed. Next, choose where to restore.')).toBeInTheDocument();
    expect(screen.getByText('failing: Target database')).toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Next' }));
    await user.click(screen.getByRole('button', { name: 'Restore into the new database' }));
    expect(await screen.findByText(`Not started: ${post409.body.detail}`)).toBeInTheDocument();
  });

  it('keeps "replace" disabled until the live database name is typed; the safety backup is on', async () => {
    const posts: string[] = [];
    server.use(recorded(checkOk), http.post(post202.path, ({ request }) => {
      posts.push(request.url);
      return HttpResponse.json(post202.body, { status: 202 });
    }));
    const user = userEvent.setup();
    wizard();
    await user.click(await screen.findByRole('button', { name: 'Next' }));
    await user.click(screen.getByLabelText('Replace the live database'));
    const replace = screen.getByRole('button', { name: `Replace ${LIVE}` });
    expect(replace).toBeDisabled();
    expect(screen.getByLabelText('Take a safety backup of the live database first')).toBeChecked();
    const confirm = screen.getByLabelText(`Type the live database's name, ${LIVE}, to confirm`);
    await user.type(confirm, LIVE.slice(0, -1));
    expect(replace).toBeDisabled();
    await user.type(confirm, LIVE.slice(-1));
    expect(replace).toBeEnabled();
    expect(posts).toEqual([]);
  });

  it('shows the Restore button only when restores are allowed and the backup can be restored', async () => {
    let allowed = false;
    server.use(http.get('/api/system/backups/settings', () => HttpResponse.json({ allow_restore: allowed })));
    const first = renderWithClient(<RestoreButton backup={backup} />);
    await waitFor(() => expect(first.client.getQueryState(['backups', 'restore-allowed'])?.status).toBe('success'));
    expect(screen.queryByRole('button', { name: /^Restore full backup/ })).not.toBeInTheDocument();
    first.unmount();
    allowed = true;
    renderWithClient(<RestoreButton backup={backup} />);
    expect(await screen.findByRole('button', { name: `Restore full backup ${BACKUP_ID.slice(0, 8)}` }))
      .toBeInTheDocument();
  });

  it('judges names and backups as the API does', () => {
    expect(suggestedName(NOW)).toBe('openwatch_restore_20261201_1044');
    expect(nameProblem('', LIVE)).toBe('Enter a name for the new database.');
    expect(nameProblem(LIVE, LIVE)).toBe(`${LIVE} is the live database: choose another name, or "Replace".`);
    expect(nameProblem('owbscratch_x', LIVE)).toMatch(/^Names starting with owbscratch_/);
    expect(nameProblem('copy_1', LIVE)).toBeNull();
    expect(canRestore(backup)).toBe(true);
    expect(canRestore({ ...backup, status: 'failed' })).toBe(false);
    expect(canRestore({ ...backup, kind: 'config' })).toBe(false);
    expect(canRestore({ ...backup, pruned_at: '2026-12-01T00:00:00Z' })).toBe(false);
    expect(canRestore(backup, { state: 'failed', deep: false, at: null, runId: null, lastFailure: null,
      history: [] })).toBe(false);
  });
});
