/**
 * Off-site storage as the standalone page shows it (static/offsite.js): where copies go from GET settings, and
 * "Test connection" sending POST offsite/test and listing its steps with the summary; not configured, it says
 * which setting to set, and the test's 422 line is shown.
 */
import { describe, expect, it, vi } from 'vitest';
import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import OffsitePanel from '../OffsitePanel';
import { fixtures } from '../../test/fixtures';
import { recorded, server, type Recorded } from '../../test/server';
import { renderWithClient } from '../../test/renderWithClient';

function serve(settings: Recorded, test: Recorded) {
  const sent: { method: string; path: string }[] = [];
  server.use(recorded(settings), recorded(test, (request) => sent.push({ method: request.method,
    path: new URL(request.url).pathname })));
  return sent;
}

describe('OffsitePanel', () => {
  it('shows where copies go, and a passed test as its four steps with the summary', async () => {
    const sent = serve(fixtures.settingsOffsite, fixtures.offsiteTestOk);
    const user = userEvent.setup();
    renderWithClient(<OffsitePanel />);
    expect(await screen.findByText(
      'Bucket openwatch-backups, prefix prod/, region eu-central-1, endpoint AWS S3')).toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Test connection' }));
    const steps = await screen.findByRole('list', { name: 'Connection test steps' });
    expect(within(steps).getAllByRole('listitem').map((item) => item.textContent)).toEqual([
      'put: ok (121 ms)', 'head: ok (40 ms)', 'get: ok (52 ms)', 'delete: ok (63 ms)']);
    expect(screen.getByText(/^s3:\/\/openwatch-backups\/prod\/\.probe\/5f0c3a9e1b2d4c6f: put, head, get and delete work/))
      .toBeInTheDocument();
    expect(sent).toEqual([{ method: 'POST', path: '/api/system/backups/offsite/test' }]);
  });

  it('shows the failed step with its code and its line', async () => {
    serve(fixtures.settingsOffsite, fixtures.offsiteTestFailed);
    const user = userEvent.setup();
    renderWithClient(<OffsitePanel />);
    await user.click(await screen.findByRole('button', { name: 'Test connection' }));
    const steps = await screen.findByRole('list', { name: 'Connection test steps' });
    const [put] = within(steps).getAllByRole('listitem');
    expect(put).toHaveTextContent('put: failed (205 ms)');
    expect(put).toHaveTextContent('[storage_access_denied] cannot write s3://openwatch-backups/prod/.probe/');
    expect(screen.getByText(/: put failed \[storage_access_denied\]: cannot write/)).toBeInTheDocument();
  });

  it('not configured: names the setting, and shows the 422 line of a test', async () => {
    const sent = serve(fixtures.settings, fixtures.offsiteTest422);
    const onError = vi.fn();
    const user = userEvent.setup();
    renderWithClient(<OffsitePanel onError={onError} />);
    expect(await screen.findByText(/^Off-site storage is not configured: set OPENWATCH_BACKUP_S3_BUCKET/))
      .toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Test connection' }));
    const line = 'off-site storage is not configured: set OPENWATCH_BACKUP_S3_BUCKET (and '
      + 'OPENWATCH_BACKUP_S3_ENDPOINT_URL for a store other than AWS S3)';
    expect(await screen.findByText(line)).toBeInTheDocument();
    expect(onError).toHaveBeenCalledWith(line);
    expect(sent).toEqual([{ method: 'POST', path: '/api/system/backups/offsite/test' }]);
  });
});
