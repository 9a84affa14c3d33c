/**
 * The section as the admin sees it, against the recorded answers: health with its failing checks, the runs with
 * a nightly set folded, "Back up now" (disabled while a backup runs; the 409's message), run details on click.
 */
import { describe, expect, it, vi } from 'vitest';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import BackupsSection from '../BackupsSection';
import { fixtures, pageBody, runBody, statusBody } from '../../test/fixtures';
import { recorded, server, type Recorded } from '../../test/server';
import { renderWithClient } from '../../test/renderWithClient';

const BUSY = 'a backup is already running (run 291ba363-b420-4eeb-940d-0a3be64104b7)';

function serve(status: Recorded = fixtures.status, runs: Recorded = fixtures.runsSets) {
  // Run details ask whether restores are allowed (the Restore button, RestoreWizard.test.tsx): here they are not.
  server.use(recorded(status), recorded(runs),
    http.get('/api/system/backups/settings', () => HttpResponse.json({ allow_restore: false })), recorded(fixtures.config));
}

async function backUpNowButton() {
  await screen.findByRole('region', { name: 'Backup health' });
  return screen.getByRole('button', { name: 'Back up now' });
}

describe('BackupsSection', () => {
  it('shows health as one verdict with the failing checks, their details and fixes', async () => {
    serve();
    renderWithClient(<BackupsSection />);
    const health = await screen.findByRole('region', { name: 'Backup health' });
    expect(within(health).getByText('Unhealthy: 2 checks failing (3 warnings)')).toBeInTheDocument();
    const failing = within(health).getByRole('list', { name: 'Failing checks' });
    expect(within(failing).getAllByRole('listitem')).toHaveLength(2);
    expect(within(failing).getByText(/^No stored backup failed its last verify: full backup d5f3b5dc/)).toBeInTheDocument();
    expect(within(failing).getAllByRole('listitem')[1]).toHaveTextContent('Fix: run openwatch-backup drill');
    expect(screen.getByText(/^Next backup:/)).toHaveTextContent(
      /^Next backup: .* · 2026-12-02 02:00 UTC · 2026-12-0\d \d\d:\d\d local \(.+\)$/);
    const rto = screen.getByRole('table', { name: 'Recovery time (RTO)' });
    expect(within(rto).getByRole('row', { name: /^database corruption never measured 15-30 min/ }))
      .toHaveAttribute('title', 'database corruption: never measured (target 15-30 min)');
  });

  it('holds the prune, off-site and config panels, as the standalone page does', async () => {
    serve();
    renderWithClient(<BackupsSection />);
    expect(await screen.findByRole('region', { name: 'Prune' })).toBeInTheDocument();
    expect(screen.getByRole('region', { name: 'Off-site storage' })).toBeInTheDocument();
    expect(screen.getByRole('region', { name: 'Config bundles' })).toBeInTheDocument();
    expect(await screen.findByRole('table', { name: 'Config bundles' })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Apply prune' })).toBeDisabled();
  });

  it('folds a nightly set: one row, its members shown on demand', async () => {
    serve();
    const user = userEvent.setup();
    renderWithClient(<BackupsSection />);
    const table = await screen.findByRole('table', { name: 'Backups' });
    const body = within(table).getAllByRole('rowgroup')[1];
    expect(within(body).getAllByRole('row')).toHaveLength(9); // the top-level rows; no verify run of its own
    expect(screen.queryByText('openwatch_20261201_044554.dump.zst')).not.toBeInTheDocument();
    const [unfold] = screen.getAllByRole('button', { name: 'Show 2 members' });
    expect(unfold).toHaveAttribute('aria-expanded', 'false');
    await user.click(unfold);
    expect(screen.getByText('openwatch_20261201_044554.dump.zst')).toBeInTheDocument();
    expect(screen.getByText('config_20261201_044556.tar.gz.enc')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Hide members' })).toHaveAttribute('aria-expanded', 'true');
    expect(within(body).getAllByRole('row')).toHaveLength(11);
  });

  it('marks the backup whose verify failed as "verify failed", with the reason', async () => {
    serve();
    renderWithClient(<BackupsSection />);
    const name = await screen.findByText('openwatch_20261201_044549.dump.zst');
    const row = name.closest('tr') as HTMLElement;
    expect(within(row).getByText('verify failed')).toBeInTheDocument();
    expect(within(row).getByText('Verify failed: size')).toBeInTheDocument();
    expect(within(row).getByText('Local: failed')).toBeInTheDocument();
    expect(within(row).queryByText('succeeded')).not.toBeInTheDocument();
  });

  it('disables "Back up now" while a backup runs', async () => {
    serve(fixtures.statusRunning, fixtures.runsSetsRunning);
    renderWithClient(<BackupsSection />);
    expect(await backUpNowButton()).toBeDisabled();
    expect(screen.getByText('A backup is running')).toBeInTheDocument();
    expect(screen.getByRole('progressbar', { name: 'A full backup is running (dumping)' })).toBeInTheDocument();
  });

  it('enables it when none runs, and shows the 409 answer as the message', async () => {
    let posted = 0;
    const running = statusBody(fixtures.statusRunning).running!; // the backup the 409 names, still running
    const page = pageBody(fixtures.runsSets);
    server.use(
      http.get('/api/system/backups/status', () =>
        HttpResponse.json(posted ? fixtures.statusRunning.body : fixtures.status.body)),
      http.get('/api/system/backups/runs', () =>
        HttpResponse.json({ ...page, items: page.items.map((run) => (run.id === running.id ? running : run)) })),
      recorded(fixtures.postRuns409, () => { posted += 1; }),
      // The settings form below the table (BackupsSectionSettings.test.tsx): an answer with no schedule to preview.
      http.get('/api/system/backups/settings', () => HttpResponse.json({ allow_restore: false })), recorded(fixtures.config)
    );
    const onError = vi.fn();
    const user = userEvent.setup();
    renderWithClient(<BackupsSection onError={onError} />);
    const button = await backUpNowButton();
    expect(button).toBeEnabled();
    await user.click(button);
    const live = screen.getAllByRole('status').find((el) => el.getAttribute('aria-live') === 'polite')!;
    await waitFor(() => expect(live).toHaveTextContent(BUSY));
    expect(onError).toHaveBeenCalledWith(BUSY);
    expect(posted).toBe(1);
    await waitFor(() => expect(button).toBeDisabled()); // the status asked again shows the running backup
  });

  it('replaces "queued" by the outcome once the started backup has ended', async () => {
    const queued = runBody(fixtures.postRuns202);
    const before = pageBody(fixtures.runsSets);
    const whileQueued = { ...before, items: before.items.map((run) => (run.id === queued.id ? queued : run)) };
    let posted = false;
    server.use(
      recorded(fixtures.status),
      http.get('/api/system/backups/runs', () => HttpResponse.json(posted ? before : whileQueued)),
      recorded(fixtures.postRuns202, () => { posted = true; }),
      // The settings form below the table (BackupsSectionSettings.test.tsx): an answer with no schedule to preview.
      http.get('/api/system/backups/settings', () => HttpResponse.json({ allow_restore: false })), recorded(fixtures.config)
    );
    const onSuccess = vi.fn();
    const user = userEvent.setup();
    renderWithClient(<BackupsSection onSuccess={onSuccess} />);
    await user.click(await backUpNowButton());
    await waitFor(() => expect(onSuccess).toHaveBeenCalledWith('Backup 291ba363 succeeded'));
    expect(onSuccess.mock.calls.map((call) => call[0])).toEqual(['Backup 291ba363 queued', 'Backup 291ba363 succeeded']);
    expect(screen.getByText('Backup 291ba363 succeeded')).toBeInTheDocument();
    expect(screen.queryByText('Backup 291ba363 queued')).not.toBeInTheDocument();
  });

  it('opens run details on click: file, sha256, versions, row counts, verify history', async () => {
    serve();
    server.use(recorded(fixtures.runBackupVerifyFailed));
    const user = userEvent.setup();
    renderWithClient(<BackupsSection />);
    await user.click(await screen.findByText('openwatch_20261201_044549.dump.zst'));
    const dialog = await screen.findByRole('dialog');
    const run = runBody(fixtures.runBackupVerifyFailed);
    expect(await within(dialog).findByText(run.sha256 as string)).toBeInTheDocument();
    expect(within(dialog).getByText('Run d5f3b5dc: full')).toBeInTheDocument();
    expect(within(dialog).getByRole('row', { name: /pg_dump version 15\.20/ })).toBeInTheDocument();
    expect(within(dialog).getByRole('row', { name: /OpenWatch migration 035_merge_alerts/ })).toBeInTheDocument();
    expect(within(dialog).getByText('hosts: 5, scans: 4, users: 8, scan_findings: 1012')).toBeInTheDocument();
    expect(within(dialog).getByText(/: failed: openwatch_20261201_044549\.dump\.zst is 150366 bytes, the manifest says 150365$/))
      .toBeInTheDocument();
    await user.keyboard('{Escape}');
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
  });
});
