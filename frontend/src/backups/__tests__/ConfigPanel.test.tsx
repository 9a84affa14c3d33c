/**
 * Config bundles as the standalone page shows them (static/config.js): versions newest first with size, key id,
 * members, certificates with days left, verify and copies; "Back up config now" sending POST config/backup; the
 * 409's and the 422's lines; without a passphrase, the line that says how to turn bundles on.
 */
import { describe, expect, it, vi } from 'vitest';
import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import ConfigPanel from '../ConfigPanel';
import { fixtures } from '../../test/fixtures';
import { recorded, server, type Recorded } from '../../test/server';
import { renderWithClient } from '../../test/renderWithClient';

function serve(config: Recorded, backup: Recorded = fixtures.configBackup202) {
  const sent: { method: string; path: string }[] = [];
  server.use(recorded(config), recorded(backup, (request) => sent.push({ method: request.method,
    path: new URL(request.url).pathname })));
  return sent;
}

async function backUpConfig(user: ReturnType<typeof userEvent.setup>) {
  await screen.findByRole('table', { name: 'Config bundles' });
  await user.click(screen.getByRole('button', { name: 'Back up config now' }));
}

describe('ConfigPanel', () => {
  it('shows the versions newest first with size, key id, members, certificates, verify and copies', async () => {
    serve(fixtures.config);
    renderWithClient(<ConfigPanel />);
    const table = await screen.findByRole('table', { name: 'Config bundles' });
    const [newest, older] = within(table).getAllByRole('row').slice(1);
    expect(newest).toHaveAttribute('data-run-id', 'f6d03c55-4268-45d5-9bd6-39a4e8c67659');
    expect(newest).toHaveTextContent('2026-12-01 04:56 UTC f6d03c55');
    expect(newest).toHaveTextContent('5.2 KB');
    expect(newest).toHaveTextContent('k1:3fa9c2d1e07b');
    expect(within(newest).getAllByRole('cell')[3]).toHaveTextContent(/^7$/);
    expect(newest).toHaveTextContent('< 30 days: CN=openwatch.example.org: expires 2026-12-21 05:00 UTC (20 days left)');
    expect(newest).toHaveTextContent('passed 2026-12-01 04:57 UTC');
    expect(newest).toHaveTextContent('Local: verified');
    expect(older).toHaveTextContent('07e14d66');
    expect(older).toHaveTextContent('failed: checksum');
    expect(screen.getByText(/encrypted with the passphrase from OPENWATCH_BACKUP_PASSPHRASE_FILE/)).toBeInTheDocument();
  });

  it('"Back up config now" sends POST config/backup and says the run queued', async () => {
    const sent = serve(fixtures.config);
    const onSuccess = vi.fn();
    const user = userEvent.setup();
    renderWithClient(<ConfigPanel onSuccess={onSuccess} />);
    await backUpConfig(user);
    expect(await screen.findByText('Config backup queued: run 18f25e77')).toBeInTheDocument();
    expect(onSuccess).toHaveBeenCalledWith('Config backup queued: run 18f25e77');
    expect(sent).toEqual([{ method: 'POST', path: '/api/system/backups/config/backup' }]);
  });

  it('shows the 409 line while one is queued', async () => {
    serve(fixtures.config, fixtures.configBackup409);
    const onError = vi.fn();
    const user = userEvent.setup();
    renderWithClient(<ConfigPanel onError={onError} />);
    await backUpConfig(user);
    const line = 'a config backup is already queued (run 18f25e77-648a-47f7-9df8-5bc6a0e8987b)';
    expect(await screen.findByText(line)).toBeInTheDocument();
    expect(onError).toHaveBeenCalledWith(line);
  });

  it('shows the 422 passphrase line (the passphrase went away since the page loaded)', async () => {
    serve(fixtures.config, fixtures.configBackup422);
    const user = userEvent.setup();
    renderWithClient(<ConfigPanel />);
    await backUpConfig(user);
    expect(await screen.findByText('no passphrase for config bundles is set: set OPENWATCH_BACKUP_PASSPHRASE_FILE '
      + 'to a file (mode 600) holding it on its first line')).toBeInTheDocument();
  });

  it('without a passphrase: says how to turn bundles on, and the button is held', async () => {
    serve(fixtures.configNoPassphrase);
    renderWithClient(<ConfigPanel />);
    expect(await screen.findByText(/^Config bundles are off: no passphrase for config bundles is set: set /))
      .toHaveTextContent('OPENWATCH_BACKUP_PASSPHRASE_FILE to a file (mode 600)');
    expect(screen.getByText('No config bundle yet.')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Back up config now' })).toBeDisabled();
  });
});
