/**
 * Live progress against GET status answers recorded from a real backup (tests/test_page_progress.py's throttled
 * pg_dump): mid-dump, with a size estimate, and after its verify passed.
 */
import { describe, expect, it } from 'vitest';
import { render, screen, within } from '@testing-library/react';
import { http, HttpResponse } from 'msw';
import BackupsSection from '../BackupsSection';
import LiveProgress, { liveEta, livePercent } from '../LiveProgress';
import { fixtures, statusBody } from '../../test/fixtures';
import { recorded, server } from '../../test/server';
import { renderWithClient } from '../../test/renderWithClient';
import type { ApiLive } from '../types';

const dumping = statusBody(fixtures.statusLiveDumping).live as ApiLive;
const verified = statusBody(fixtures.statusLiveVerified).live as ApiLive;

describe('LiveProgress', () => {
  it('shows the percentage and the ETA from the estimate while the dump runs, and the current step', () => {
    render(<LiveProgress live={dumping} />);
    const id = dumping.run.id.slice(0, 8);
    // 753664 of 2219651 bytes at 194433 B/s: 33%, about 8 s left.
    expect(livePercent(dumping)).toBe(33);
    expect(liveEta(dumping)).toBe('about 8 s left');
    const bar = screen.getByRole('progressbar', { name: `Backup ${id} progress` });
    expect(bar).toHaveAttribute('aria-valuenow', '33');
    expect(screen.getByText('33% · about 8 s left')).toBeInTheDocument();
    const steps = within(screen.getByRole('list', { name: `Steps of full backup ${id}` })).getAllByRole('listitem');
    expect(steps.map((li) => li.textContent)).toEqual([
      'Preflight: done', 'Dump: running', 'Manifest: pending', 'Verify: pending',
      'Off-site copy: skipped (no off-site bucket)', 'Prune: skipped (only after a scheduled backup)']);
    expect(steps[1]).toHaveAttribute('aria-current', 'step');
    expect(steps.filter((li) => li.hasAttribute('aria-current'))).toHaveLength(1);
  });

  it('shows no fake percentage without an estimate', () => {
    const noEstimate: ApiLive = { ...dumping, estimate_bytes: null, estimate_from: null };
    render(<LiveProgress live={noEstimate} />);
    expect(livePercent(noEstimate)).toBeNull();
    expect(screen.getByRole('progressbar')).not.toHaveAttribute('aria-valuenow');
    expect(screen.getByText('No size estimate yet')).toBeInTheDocument();
  });

  it('shows the final states and no bar once the backup and its verify ended', () => {
    render(<LiveProgress live={verified} />);
    expect(screen.queryByRole('progressbar')).not.toBeInTheDocument();
    const steps = screen.getAllByRole('listitem');
    expect(steps.map((li) => li.textContent)).toEqual([
      'Preflight: done', 'Dump: done', 'Manifest: done', 'Verify: done',
      'Off-site copy: skipped (no off-site bucket)', 'Prune: skipped (only after a scheduled backup)']);
    expect(steps.filter((li) => li.hasAttribute('aria-current'))).toHaveLength(0);
  });

  it('is part of the section, with "Back up now" held while the backup runs', async () => {
    server.use(recorded(fixtures.statusLiveDumping), recorded(fixtures.runsSets),
      http.get('/api/system/backups/settings', () => HttpResponse.json({ allow_restore: false })), recorded(fixtures.config));
    renderWithClient(<BackupsSection />);
    expect(await screen.findByText('33% · about 8 s left')).toBeInTheDocument();
    const button = screen.getByRole('button', { name: 'Back up now' });
    expect(button).toBeDisabled();
    expect(button).toHaveAccessibleDescription('A backup is running');
  });
});
