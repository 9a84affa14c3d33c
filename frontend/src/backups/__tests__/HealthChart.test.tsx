/**
 * The health chart and the RTO table (issue 14 item 3) from the recorded GET status: one bar and one dot per
 * backup, oldest on the left; its numbers in words (the summary, the SVG's desc, a hidden table); each RTO row
 * with scenario, measurement, target and state.
 */
import { describe, expect, it } from 'vitest';
import { render, screen, within } from '@testing-library/react';
import HealthChart from '../HealthChart';
import HealthPanel from '../HealthPanel';
import RtoTable from '../RtoTable';
import { toHealth } from '../backupsView';
import { fixtures, statusBody } from '../../test/fixtures';
import type { ApiBackupPoint } from '../types';

const status = statusBody(fixtures.status);
const recent = status.recent_backups as ApiBackupPoint[];

describe('HealthChart', () => {
  it('draws one bar and one duration dot per recorded backup, with the summary in words', () => {
    const { container } = render(<HealthChart newestFirst={recent} />);
    expect(recent).toHaveLength(5);
    expect(screen.getAllByTestId('size-point')).toHaveLength(5);
    expect(screen.getAllByTestId('duration-point')).toHaveLength(5);
    expect(container.querySelector('polyline')?.getAttribute('points')?.split(' ')).toHaveLength(5);
    const summary = '5 backups, size 146.8 KB, duration 0.5 s to 1.0 s';
    expect(screen.getByTestId('chart-summary')).toHaveTextContent(summary);
    const chart = screen.getByRole('img', { name: `Backup size and duration ${summary}` });
    expect(chart.querySelector('title')).toHaveTextContent('Backup size and duration');
    expect(chart.querySelector('desc')).toHaveTextContent(summary);
    expect(within(chart).getByText('Size (KB)')).toBeInTheDocument();
    expect(within(chart).getByText('Duration (s)')).toBeInTheDocument();
    expect(within(chart).getByText('Backups, oldest to newest')).toBeInTheDocument();
  });

  it('puts the oldest on the left, in the hidden table too', () => {
    render(<HealthChart newestFirst={recent} />);
    const bars = screen.getAllByTestId('size-point');
    expect(bars[0].querySelector('title')).toHaveTextContent(/\(full\): 146\.8 KB, 1\.0 s$/); // 0.958 s, the oldest
    expect(bars[4].querySelector('title')).toHaveTextContent(/\(full\): 146\.8 KB, 0\.7 s$/); // the newest
    const table = screen.getByRole('table', { name: 'Backup size and duration, oldest first' });
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows).toHaveLength(5);
    expect(rows.map((row) => row.lastElementChild?.textContent)).toEqual(['1.0 s', '0.9 s', '0.7 s', '0.5 s', '0.7 s']);
  });

  it('scales to 30 backups: MB bars, minutes once a backup takes over 5 minutes', () => {
    const many = Array.from({ length: 30 }, (_, i) => ({ ...recent[0], id: `run-${i}`,
      size_bytes: (i + 1) * 1024 * 1024, duration_seconds: 60 * (i + 1) }));
    render(<HealthChart newestFirst={many} />);
    expect(screen.getAllByTestId('size-point')).toHaveLength(30);
    expect(screen.getByTestId('chart-summary'))
      .toHaveTextContent('30 backups, size 1.0 MB to 30.0 MB, duration 1 min 0 s to 30 min 0 s');
    expect(screen.getByText('Size (MB)')).toBeInTheDocument();
    expect(screen.getByText('Duration (min)')).toBeInTheDocument();
  });

  it('says there is no backup yet instead of an empty drawing', () => {
    render(<HealthChart newestFirst={[]} />);
    expect(screen.getByText('No database backup yet.')).toBeInTheDocument();
    expect(screen.queryByRole('img')).not.toBeInTheDocument();
  });
});

describe('RtoTable', () => {
  it('lists each recorded scenario with what was measured, its target and state', () => {
    render(<RtoTable rows={status.rto} />);
    const table = screen.getByRole('table', { name: 'Recovery time (RTO)' });
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows.map((row) => [...row.children].map((cell) => cell.textContent))).toEqual([
      ['container restart', 'stated, not measured', '< 2 min', '—', 'stated'],
      ['database corruption', 'never measured', '15-30 min', '—', 'warn'],
      ['host failure', 'never measured', '30-60 min', '—', 'warn'],
      ['volume loss', 'never measured', '15-30 min', '—', 'warn'],
    ]);
    expect(rows[1]).toHaveAttribute('title', 'database corruption: never measured (target 15-30 min)');
  });

  it('shows a measured time and why a measured row warns', () => {
    render(<RtoTable rows={[{ ...status.rto[3], state: 'warn', seconds: 2400, measured_at: '2026-11-28T04:00:00Z',
      line: 'volume loss: restored in 40 min (target 15-30 min) 3 days ago; over the 30 min target' }]} />);
    const row = screen.getAllByRole('row')[1];
    expect(row).toHaveTextContent(/^volume loss40 min 0 s15-30 min.* ago \(2026-11-28 \d\d:\d\d local\)warnover the 30 min target$/);
  });
});

describe('HealthPanel with the chart and the RTO table', () => {
  it('shows both from the recorded status', () => {
    render(<HealthPanel health={toHealth(status)} />);
    expect(screen.getByRole('img', { name: /^Backup size and duration 5 backups/ })).toBeInTheDocument();
    expect(screen.getByRole('table', { name: 'Recovery time (RTO)' })).toBeInTheDocument();
  });
});
