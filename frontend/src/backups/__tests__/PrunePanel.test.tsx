/**
 * Prune as the standalone page offers it (static/panels.js): "Plan prune" sends POST prune/plan and shows keep and
 * delete with reasons; "Apply prune" is held until a plan, asks first (naming how many backups go), and only then
 * sends POST prune {"apply": true}; a 409 shows the API's line.
 */
import { describe, expect, it, vi } from 'vitest';
import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import PrunePanel from '../PrunePanel';
import { fixtures } from '../../test/fixtures';
import { recorded, server, type Recorded } from '../../test/server';
import { renderWithClient } from '../../test/renderWithClient';

interface Sent { method: string; path: string; body: unknown }

function serve(apply: Recorded = fixtures.pruneApply202) {
  const sent: Sent[] = [];
  const log = (request: Request) => {
    void request.clone().json().then((body) => sent.push({ method: request.method,
      path: new URL(request.url).pathname, body }));
  };
  server.use(recorded(fixtures.prunePlan, log), recorded(apply, log));
  return sent;
}

async function plan(user: ReturnType<typeof userEvent.setup>) {
  await user.click(screen.getByRole('button', { name: 'Plan prune' }));
  return screen.findByRole('table', { name: 'Prune plan' });
}

describe('PrunePanel', () => {
  it('plans: POST prune/plan, then keep and delete with their reasons; nothing applied', async () => {
    const sent = serve();
    const onSuccess = vi.fn();
    const user = userEvent.setup();
    renderWithClient(<PrunePanel onSuccess={onSuccess} />);
    expect(screen.getByRole('button', { name: 'Apply prune' })).toBeDisabled();
    const table = await plan(user);
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows.map((row) => row.getAttribute('data-action'))).toEqual(['keep', 'keep', 'keep', 'delete', 'delete']);
    expect(rows[0]).toHaveTextContent('full a18b8700');
    expect(rows[0]).toHaveTextContent('newest verified backup (protected)');
    expect(rows[1]).toHaveTextContent('verified floor (3) (protected)');
    expect(rows[3]).toHaveTextContent('full d4be1a33');
    expect(rows[3]).toHaveTextContent('older than 30 days');
    expect(screen.getByText(/^Planned 2026-12-01 05:00 UTC: keeps 3, deletes 2 backup\(s\) and 0 leftover/))
      .toHaveTextContent('freeing 299.8 KB');
    expect(screen.getByRole('status')).toHaveTextContent('Prune planned (run 7c1e2a90); nothing was deleted');
    expect(onSuccess).toHaveBeenCalledWith('Prune planned (run 7c1e2a90); nothing was deleted');
    await vi.waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]).toMatchObject({ method: 'POST', path: '/api/system/backups/prune/plan' });
    expect(screen.getByRole('button', { name: 'Apply prune' })).toBeEnabled();
  });

  it('applies only after the confirmation naming how many backups are deleted: POST prune {apply: true}', async () => {
    const sent = serve();
    const onSuccess = vi.fn();
    const user = userEvent.setup();
    renderWithClient(<PrunePanel onSuccess={onSuccess} />);
    await plan(user);
    await user.click(screen.getByRole('button', { name: 'Apply prune' }));
    const dialog = screen.getByRole('dialog', { name: 'Apply prune?' });
    expect(dialog).toHaveTextContent('The plan deletes 2 backup(s) and 0 leftover file(s), 299.8 KB in all.');
    await user.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    await vi.waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    expect(sent.map((s) => s.path)).toEqual(['/api/system/backups/prune/plan']);

    await user.click(screen.getByRole('button', { name: 'Apply prune' }));
    await user.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Delete 2 backup(s)' }));
    await vi.waitFor(() => expect(onSuccess).toHaveBeenCalledWith('Prune queued: run 8d2f3ba1'));
    await vi.waitFor(() => expect(sent).toHaveLength(2));
    expect(sent[1]).toEqual({ method: 'POST', path: '/api/system/backups/prune', body: { apply: true } });
    await vi.waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    expect(screen.getByRole('button', { name: 'Apply prune' })).toBeDisabled();
  });

  it('shows the 409 line when a prune is already queued', async () => {
    serve(fixtures.pruneApply409);
    const onError = vi.fn();
    const user = userEvent.setup();
    renderWithClient(<PrunePanel onError={onError} />);
    await plan(user);
    await user.click(screen.getByRole('button', { name: 'Apply prune' }));
    await user.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Delete 2 backup(s)' }));
    const line = 'a prune is already queued (run 8d2f3ba1-4c5e-4a6f-9b7c-0d1e2f3a4b5c)';
    expect(await screen.findByText(line)).toBeInTheDocument();
    expect(onError).toHaveBeenCalledWith(line);
  });
});
