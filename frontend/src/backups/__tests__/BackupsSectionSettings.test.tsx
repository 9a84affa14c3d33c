/**
 * The section wires in the health chart and the settings form: from the recorded status and settings answers,
 * the chart's summary and the form's saved schedule in words; a save is reported through the page's onSuccess.
 */
import { describe, expect, it, vi } from 'vitest';
import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import BackupsSection from '../BackupsSection';
import { fixtures } from '../../test/fixtures';
import { recorded, server } from '../../test/server';
import { renderWithClient } from '../../test/renderWithClient';

describe('BackupsSection with the chart and the settings form', () => {
  it('shows the chart summary, the saved schedule in words, and saves through onSuccess', async () => {
    const sent: unknown[] = [];
    server.use(recorded(fixtures.status), recorded(fixtures.runsSets), recorded(fixtures.settings), recorded(fixtures.config),
      http.get('/api/system/backups/settings/cron-preview', ({ request }) => {
        const daily = new URL(request.url).searchParams.get('expr') === '0 2 * * *';
        return HttpResponse.json((daily ? fixtures.cronPreviewDaily : fixtures.cronPreviewSunday).body);
      }),
      http.put('/api/system/backups/settings', async ({ request }) => {
        sent.push(await request.json());
        return HttpResponse.json(fixtures.settingsPut200.body);
      }));
    const onSuccess = vi.fn();
    const user = userEvent.setup();
    renderWithClient(<BackupsSection onSuccess={onSuccess} />);
    expect(await screen.findByTestId('chart-summary')).toHaveTextContent(
      '5 backups, size 146.8 KB, duration 0.5 s to 1.0 s');
    expect(await screen.findByTestId('cron-backup-preview')).toHaveTextContent('daily at 02:00 UTC');
    const days = screen.getByLabelText('Keep database backups (days)');
    await user.clear(days);
    await user.type(days, '60');
    await user.click(screen.getByRole('button', { name: 'Save settings' }));
    await waitFor(() => expect(onSuccess).toHaveBeenCalledWith('Settings saved'));
    expect(sent).toEqual([{ retention: { days: 60 } }]);
  });
});
