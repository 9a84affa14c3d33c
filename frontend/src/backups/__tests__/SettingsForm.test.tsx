/**
 * The schedule and retention form against the settings answers: each cron in the server's words as typed (the
 * mock server answers the preview per expression, as GET settings/cron-preview does), with its next runs in local
 * time; the inputs carry the server's bounds; only changed values are sent; a 422's words under their field; the
 * allow-restore checkbox asks before it turns on.
 */
import { describe, expect, it, vi } from 'vitest';
import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import SettingsForm from '../SettingsForm';
import { fixtures, previewBody } from '../../test/fixtures';
import { recorded, server, type Recorded } from '../../test/server';
import { renderWithClient } from '../../test/renderWithClient';
import { formatLocal } from '../format';

const PREVIEWS: Recorded[] = [fixtures.cronPreviewDaily, fixtures.cronPreviewSunday, fixtures.cronPreviewWeekdays,
  fixtures.cronPreview400];

/** GET settings, the previews by expression (each asked expression noted), and PUT settings answering `put`. */
function serve(put: Recorded = fixtures.settingsPut200) {
  const asked: string[] = [];
  const sent: unknown[] = [];
  server.use(
    recorded(fixtures.settings),
    http.get('/api/system/backups/settings/cron-preview', ({ request }) => {
      const expr = new URL(request.url).searchParams.get('expr') ?? '';
      asked.push(expr);
      const found = PREVIEWS.find((f) => decodeURIComponent(f.path.split('expr=')[1]) === expr);
      return found
        ? HttpResponse.json(found.body as Record<string, unknown>, { status: found.status })
        : HttpResponse.json({ detail: `no recorded preview for ${expr}` }, { status: 500 });
    }),
    http.put('/api/system/backups/settings', async ({ request }) => {
      sent.push(await request.json());
      return HttpResponse.json(put.body as Record<string, unknown>, { status: put.status });
    }),
  );
  return { asked, sent };
}

const localTimes = (f: Recorded) => previewBody(f).next_runs.map((at) => formatLocal(at).replace(' local', ''));

describe('SettingsForm', () => {
  it('shows each saved cron in words with its next runs in local time', async () => {
    serve();
    renderWithClient(<SettingsForm />);
    const backup = await screen.findByTestId('cron-backup-preview');
    expect(backup).toHaveTextContent('daily at 02:00 UTC');
    expect(backup).toHaveTextContent(`Next, local time (${Intl.DateTimeFormat().resolvedOptions().timeZone}): `
      + `${localTimes(fixtures.cronPreviewDaily).join(', ')} (set in the environment)`);
    expect(backup.querySelector('time')).toHaveAttribute('datetime', '2026-12-02T02:00:00Z');
    expect(await screen.findByTestId('cron-drill-preview')).toHaveTextContent('every Sunday at 04:00 UTC');
  });

  it('previews a typed cron once typing stops, in the server words', async () => {
    const { asked } = serve();
    const user = userEvent.setup();
    renderWithClient(<SettingsForm />);
    const input = await screen.findByLabelText('Backup schedule (cron, UTC)');
    await screen.findByTestId('cron-backup-preview');
    await user.clear(input);
    await user.type(input, '30 1 * * 1-5');
    const preview = await screen.findByText('every Monday to Friday at 01:30 UTC');
    expect(preview.parentElement).toHaveTextContent(`${localTimes(fixtures.cronPreviewWeekdays).join(', ')} (not saved yet)`);
    expect(asked).toContain('30 1 * * 1-5');
  });

  it('asks only for the text typing stopped at (debounced)', async () => {
    const { asked } = serve();
    renderWithClient(<SettingsForm />);
    const input = await screen.findByLabelText('Backup schedule (cron, UTC)');
    await screen.findByTestId('cron-backup-preview');
    fireEvent.change(input, { target: { value: '30 1' } });
    fireEvent.change(input, { target: { value: '30 1 * *' } });
    fireEvent.change(input, { target: { value: '30 1 * * 1-5' } });
    expect(await screen.findByText('every Monday to Friday at 01:30 UTC')).toBeInTheDocument();
    expect(asked.filter((expr) => expr !== '0 2 * * *' && expr !== '0 4 * * 0')).toEqual(['30 1 * * 1-5']);
  });

  it('shows why a typed cron is refused under its field', async () => {
    serve();
    const user = userEvent.setup();
    renderWithClient(<SettingsForm />);
    const input = await screen.findByLabelText('Backup schedule (cron, UTC)');
    await user.clear(input);
    await user.type(input, '61 * * * *');
    await waitFor(() => expect(input).toHaveAccessibleDescription(
      "the minute '61' is not valid (61 is more than 59); it takes 0-59, e.g. 30, */15 or 0,30"));
    expect(input).toHaveAttribute('aria-invalid', 'true');
  });

  it('gives each retention input the server bounds', async () => {
    serve();
    renderWithClient(<SettingsForm />);
    const days = await screen.findByLabelText('Keep database backups (days)');
    expect(days).toHaveValue(30);
    expect(days).toHaveAttribute('min', '1');
    expect(days).toHaveAttribute('max', '36500');
    expect(days).toHaveAttribute('step', '1');
    const budget = screen.getByLabelText('Size budget (GiB, 0: none)');
    expect(budget).toHaveAttribute('max', '1048576');
    expect(budget).toHaveAttribute('step', 'any');
    expect(screen.getAllByRole('spinbutton')).toHaveLength(10);
  });

  it('sends only the changed value and says it saved', async () => {
    const { sent } = serve();
    const onSuccess = vi.fn();
    const user = userEvent.setup();
    renderWithClient(<SettingsForm onSuccess={onSuccess} />);
    const days = await screen.findByLabelText('Keep database backups (days)');
    await user.clear(days);
    await user.type(days, '60');
    await user.click(screen.getByRole('button', { name: 'Save settings' }));
    await waitFor(() => expect(onSuccess).toHaveBeenCalledWith('Settings saved'));
    expect(sent).toEqual([{ retention: { days: 60 } }]);
    expect(screen.getByRole('status')).toHaveTextContent('Settings saved');
    expect(days).toHaveValue(60);
  });

  it('shows a 422 under the field it names', async () => {
    const { sent } = serve(fixtures.settingsPut422);
    const onSuccess = vi.fn();
    const user = userEvent.setup();
    renderWithClient(<SettingsForm onSuccess={onSuccess} />);
    const days = await screen.findByLabelText('Keep database backups (days)');
    await user.clear(days);
    await user.type(days, '99999');
    await user.click(screen.getByRole('button', { name: 'Save settings' }));
    await waitFor(() => expect(days).toHaveAccessibleDescription('must be at most 36,500'));
    expect(days).toHaveAttribute('aria-invalid', 'true');
    expect(sent).toEqual([{ retention: { days: 99999 } }]);
    expect(screen.getByRole('status')).toHaveTextContent('Not saved: retention.days: must be at most 36,500');
    expect(onSuccess).not.toHaveBeenCalled();
  });

  it('asks before allowing restores; cancelling leaves them off', async () => {
    const { sent } = serve();
    const user = userEvent.setup();
    const { client } = renderWithClient(<SettingsForm />);
    client.setQueryData(['backups', 'restore-allowed'], false); // as RestoreWizard's Restore button has it
    const allow = await screen.findByRole('checkbox', { name: 'Allow restore from this page' });
    await user.click(allow);
    let dialog = await screen.findByRole('dialog', { name: 'Allow restore?' });
    expect(allow).not.toBeChecked();
    await user.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    expect(allow).not.toBeChecked();
    await user.click(screen.getByRole('button', { name: 'Save settings' }));
    expect(await screen.findByText('No changes to save.')).toBeInTheDocument();

    await user.click(allow);
    dialog = await screen.findByRole('dialog', { name: 'Allow restore?' });
    await user.click(within(dialog).getByRole('button', { name: 'Allow restore' }));
    expect(allow).toBeChecked();
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    await user.click(screen.getByRole('button', { name: 'Save settings' }));
    await waitFor(() => expect(sent).toEqual([{ allow_restore: true }]));
    // The Restore button asks again whether restores are allowed.
    await waitFor(() => expect(client.getQueryState(['backups', 'restore-allowed'])?.isInvalidated).toBe(true));
  });
});
