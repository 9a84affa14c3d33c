/**
 * A failing check's fix offers what the standalone page offers (static/health.js): the commands as code, "Details
 * of run ..." opening the section's run details, "Verify backup xxxxxxxx now" sending POST runs/{id}/verify with
 * {deep}, and "Start a backup" for a plain `openwatch-backup backup`; drill stays the CLI's (code only).
 */
import { describe, expect, it, vi } from 'vitest';
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import BackupsSection from '../BackupsSection';
import HealthPanel from '../HealthPanel';
import { toHealth } from '../backupsView';
import { fixtures, statusBody } from '../../test/fixtures';
import { recorded, server } from '../../test/server';
import { renderWithClient } from '../../test/renderWithClient';
import type { ApiCheckItem } from '../types';

const SHOWN = 'bb5c47a7-0188-4da1-83bd-56bfaef20825';
const VERIFIED = 'd5f3b5dc-7e6d-4952-9242-ea150015d7e0';

function renderPanel(change: (items: ApiCheckItem[]) => ApiCheckItem[] = (items) => items) {
  const body = statusBody(fixtures.status);
  const handlers = { onOpenRun: vi.fn(), onVerify: vi.fn(), onBackup: vi.fn() };
  render(<HealthPanel health={toHealth({ ...body, checklist: change(body.checklist) })} {...handlers} />);
  return handlers;
}

describe('CheckActions', () => {
  it('shows each command of the fix as code, with its controls', () => {
    renderPanel();
    const [verifyItem, drillItem] = within(screen.getByRole('list', { name: 'Failing checks' })).getAllByRole('listitem');
    const codes = Array.from(verifyItem.querySelectorAll('code')).map((c) => c.textContent);
    expect(codes).toEqual(['openwatch-backup show bb5c47a7', 'openwatch-backup verify d5f3b5dc']);
    expect(verifyItem).toHaveTextContent('Fix: see openwatch-backup show bb5c47a7; fix the cause');
    expect(within(verifyItem).getAllByRole('button').map((b) => b.textContent)).toEqual([
      'Details of run bb5c47a7', 'Verify backup d5f3b5dc now', 'Details of run d5f3b5dc']);
    expect(drillItem.querySelector('code')).toHaveTextContent('openwatch-backup drill');
    expect(within(drillItem).queryByRole('button')).not.toBeInTheDocument();
  });

  it('opens run details and verifies through the handlers, deep when the command says --deep', async () => {
    const user = userEvent.setup();
    const handlers = renderPanel((items) => items.map((item) => item.key !== 'verify_failures' ? item : {
      ...item, fix: 'run `openwatch-backup verify --deep d5f3b5dc`',
      actions: [{ command: 'openwatch-backup verify --deep d5f3b5dc', verb: 'verify', run_id: VERIFIED }] }));
    await user.click(screen.getByRole('button', { name: 'Details of run d5f3b5dc' }));
    expect(handlers.onOpenRun).toHaveBeenCalledWith(VERIFIED);
    await user.click(screen.getByRole('button', { name: 'Deep verify backup d5f3b5dc now' }));
    expect(handlers.onVerify).toHaveBeenCalledWith(VERIFIED, true);
  });

  it('offers "Start a backup" for a plain backup command only', async () => {
    const user = userEvent.setup();
    const handlers = renderPanel((items) => items.map((item) => item.key !== 'restore_drill' ? item : {
      ...item, fix: 'run `openwatch-backup backup` or `openwatch-backup backup --kind config`',
      actions: [{ command: 'openwatch-backup backup', verb: 'backup', run_id: null },
        { command: 'openwatch-backup backup --kind config', verb: 'backup', run_id: null }] }));
    const buttons = screen.getAllByRole('button', { name: 'Start a backup' });
    expect(buttons).toHaveLength(1);
    await user.click(buttons[0]);
    expect(handlers.onBackup).toHaveBeenCalledTimes(1);
  });

  it('in the section: Verify sends POST runs/{id}/verify with {deep: false} and reports it; Details opens the run',
    async () => {
      const sent: { method: string; path: string; body: unknown }[] = [];
      const onSuccess = vi.fn();
      server.use(recorded(fixtures.status), recorded(fixtures.runsSets), recorded(fixtures.runBackupVerifyFailed),
        http.get('/api/system/backups/settings', () => HttpResponse.json({ allow_restore: false })), recorded(fixtures.config),
        // The recorded verify answer, for this backup (the recording verified another one).
        http.post(`/api/system/backups/runs/${VERIFIED}/verify`, async ({ request }) => {
          sent.push({ method: request.method, path: new URL(request.url).pathname, body: await request.json() });
          return HttpResponse.json(fixtures.postVerify202.body, { status: 202 });
        }));
      const user = userEvent.setup();
      renderWithClient(<BackupsSection onSuccess={onSuccess} />);
      await user.click(await screen.findByRole('button', { name: 'Verify backup d5f3b5dc now' }));
      await vi.waitFor(() => expect(onSuccess).toHaveBeenCalledWith(expect.stringMatching(/ of backup d5f3b5dc queued$/)));
      expect(sent).toEqual([{ method: 'POST', path: `/api/system/backups/runs/${VERIFIED}/verify`,
        body: { deep: false } }]);
      await user.click(screen.getByRole('button', { name: 'Details of run d5f3b5dc' }));
      expect(await screen.findByRole('dialog')).toBeInTheDocument();
    });
});
