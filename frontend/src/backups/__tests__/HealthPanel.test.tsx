/**
 * The health panel says what the standalone page says (issue 14 item 3): the API's verdict with the checklist in
 * it, the last backup's size and duration, each next run relative with UTC and local time (its zone named), and
 * storage against the size budget (a bar with an accessible label) or "no size budget".
 */
import { describe, expect, it } from 'vitest';
import { render, screen } from '@testing-library/react';
import HealthPanel from '../HealthPanel';
import { toHealth } from '../backupsView';
import { fixtures, statusBody } from '../../test/fixtures';
import type { ApiStatus } from '../types';

const GIB = 1024 ** 3;
const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

function renderStatus(change: Partial<ApiStatus> = {}) {
  render(<HealthPanel health={toHealth({ ...statusBody(fixtures.status), ...change })} />);
}

describe('HealthPanel', () => {
  it('shows the verdict as the API words it, the checklist included', () => {
    renderStatus();
    const region = screen.getByRole('region', { name: 'Backup health' });
    expect(region).toHaveTextContent(/^Unhealthy: 2 checks failing \(3 warnings\)/);
    expect(screen.getByRole('list', { name: 'Failing checks' }).children).toHaveLength(2);
  });

  it('falls back to the same words from a server without a verdict', () => {
    renderStatus({ verdict: undefined });
    expect(screen.getByText('Unhealthy: 2 checks failing')).toBeInTheDocument();
  });

  it('shows the last backup and the next runs with UTC and local time, each labelled', () => {
    renderStatus();
    expect(screen.getByText('Last backup: 146.8 KB in 0.7 s (full, ', { exact: false })).toBeInTheDocument();
    const backup = screen.getByText(/^Next backup:/);
    expect(backup).toHaveTextContent(
      new RegExp(`^Next backup: (in|.* ago).* · 2026-12-02 02:00 UTC · 2026-12-0\\d \\d\\d:\\d\\d local \\(${ZONE}\\)$`)
    );
    expect(backup.querySelector('time')).toHaveAttribute('datetime', '2026-12-02T02:00:00Z');
    expect(screen.getByText(/^Next restore drill:/)).toHaveTextContent('2026-12-06 04:00 UTC · ');
  });

  it('says "no size budget" when there is none, and no bar', () => {
    renderStatus();
    expect(screen.getByText('Storage: 745.2 KB used, no size budget, 77.6 GB free')).toBeInTheDocument();
    expect(screen.queryByRole('progressbar')).not.toBeInTheDocument();
  });

  it('shows storage against the size budget in words and as a labelled bar', () => {
    renderStatus({ size_budget_bytes: GIB / 2, storage_used_bytes: GIB / 8 });
    expect(screen.getByText('Storage: 128.0 MB used, 25% of the 512.0 MB size budget, 77.6 GB free'))
      .toBeInTheDocument();
    const bar = screen.getByRole('progressbar', { name: 'Storage used: 25% of the 512.0 MB size budget' });
    expect(bar).toHaveAttribute('aria-valuenow', '25');
  });

  it('says by how much storage is over the budget', () => {
    renderStatus({ size_budget_bytes: GIB, storage_used_bytes: 1.5 * GIB });
    expect(screen.getByText(/^Storage: 1\.5 GB used, 150% of the 1\.0 GB size budget: over by 512\.0 MB, /))
      .toBeInTheDocument();
    expect(screen.getByRole('progressbar')).toHaveAttribute('aria-valuenow', '100');
  });
});
