/**
 * Config bundles, as the standalone page's card (static/config.js): whether bundles can be taken (the passphrase's
 * setting, never the passphrase; when off, the one line that says how to turn them on), the versions newest first
 * with size, key id, members, certificates (days left), verify and copies, and "Back up config now".
 * Downloads stay on the standalone page.
 */
import React, { useState } from 'react';
import {
  Alert, Box, Button, Table, TableBody, TableCell, TableHead, TableRow, Typography,
} from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { backupsAdapter, errorMessage, errorStatus } from './backupsAdapter';
import { toCopy } from './backupsView';
import { formatBytes, formatUtc } from './format';
import type { ApiConfig, ApiConfigVersion } from './types';
import { backupsQueryKeys, FAST_POLL_MS, SLOW_POLL_MS } from './useBackups';

const FILE_SETTING = 'OPENWATCH_BACKUP_PASSPHRASE_FILE';
const configKey = () => [...backupsQueryKeys.all, 'config'] as const;
const short = (id: string) => id.slice(0, 8);

interface Message {
  severity: 'success' | 'warning' | 'error';
  text: string;
}

function daysLeft(days: number | null): string {
  if (days === null) {
    return '';
  }
  return days < 0 ? ` (expired ${-days} days ago)` : ` (${days} days left)`;
}

function verifyText(version: ApiConfigVersion): string {
  const verify = version.verify;
  if (!verify) {
    return 'not verified';
  }
  const state = verify.state === 'failed' && verify.reason ? `failed: ${verify.reason}` : verify.state;
  return verify.at ? `${state} ${formatUtc(verify.at)}` : state;
}

function VersionRow({ version, warnDays }: { version: ApiConfigVersion; warnDays: number }) {
  return (
    <TableRow data-run-id={version.run_id}>
      <TableCell>
        {formatUtc(version.finished_at ?? version.created_at)} {short(version.run_id)}
        {version.present ? '' : ' (pruned)'}
      </TableCell>
      <TableCell align="right">{formatBytes(version.size_bytes)}</TableCell>
      <TableCell>{version.key_id ?? '-'}</TableCell>
      <TableCell align="right">{version.members ?? '-'}</TableCell>
      <TableCell>
        {version.certificates.length === 0 ? '-' : version.certificates.map((cert) => (
          <Box key={`${cert.member}-${cert.subject}`} data-expiring={String(cert.expiring)}
            sx={{ color: cert.expiring ? 'warning.main' : undefined }}>
            {cert.expiring ? `< ${warnDays} days: ` : ''}
            {cert.subject ?? '(no subject)'}:{' '}
            {cert.not_after ? `expires ${formatUtc(cert.not_after)}${daysLeft(cert.days_left)}` : 'no expiry'}
          </Box>
        ))}
      </TableCell>
      <TableCell title={version.verify?.message ?? undefined}>{verifyText(version)}</TableCell>
      <TableCell>
        {version.copies.map(toCopy).map((copy) => `${copy.label}: ${copy.state}`).join(', ') || '-'}
      </TableCell>
    </TableRow>
  );
}

function State({ config }: { config: ApiConfig }) {
  if (!config.passphrase_set) {
    const line = config.passphrase_problem ?? `no passphrase is set (${FILE_SETTING})`;
    return <Alert severity="warning" sx={{ my: 1 }}>Config bundles are off: {line}</Alert>;
  }
  return (
    <Typography variant="body2">
      Bundles of {config.paths.join(', ') || '-'}, encrypted with the passphrase from {config.passphrase_source}.
      Retention keeps {config.versions_kept} verified versions.
    </Typography>
  );
}

export const ConfigPanel: React.FC<{ onSuccess?: (m: string) => void; onError?: (m: string) => void }> = ({
  onSuccess, onError,
}) => {
  const queryClient = useQueryClient();
  const config = useQuery({
    queryKey: configKey(),
    queryFn: backupsAdapter.getConfig,
    refetchInterval: (query) => ((query.state.data as ApiConfig | undefined)?.active ? FAST_POLL_MS : SLOW_POLL_MS),
  });
  const backup = useMutation({
    mutationFn: backupsAdapter.backupConfig,
    onSettled: () => queryClient.invalidateQueries({ queryKey: backupsQueryKeys.all }),
  });
  const [message, setMessage] = useState<Message | null>(null);

  const backUpConfig = async () => {
    setMessage(null);
    try {
      const run = await backup.mutateAsync();
      const text = `Config backup queued: run ${short(run.id)}`;
      setMessage({ severity: 'success', text });
      onSuccess?.(text);
    } catch (error) {
      // 409: one is already queued or running (the line names it); 422: no passphrase (the line says the fix).
      setMessage({ severity: errorStatus(error) === 409 ? 'warning' : 'error', text: errorMessage(error) });
      onError?.(errorMessage(error));
    }
  };

  const data = config.data;
  return (
    <Box component="section" aria-labelledby="config-title" sx={{ mt: 3 }}>
      <Box sx={{ display: 'flex', justifyContent: 'space-between', alignItems: 'center' }}>
        <Typography variant="subtitle1" id="config-title">
          Config bundles
        </Typography>
        <Button variant="outlined" onClick={() => void backUpConfig()}
          disabled={!data?.passphrase_set || !!data?.active || backup.isPending}>
          Back up config now
        </Button>
      </Box>
      <Box role="status" aria-live="polite">
        {message && <Alert severity={message.severity} role="none" sx={{ my: 1 }}>{message.text}</Alert>}
      </Box>
      {config.error && <Alert severity="error">The config bundles could not be loaded: {errorMessage(config.error)}</Alert>}
      {data && <State config={data} />}
      {data?.active && (
        <Typography variant="body2">A config backup is {data.active.status} (run {short(data.active.id)})</Typography>
      )}
      {data && data.versions.length === 0 && <Typography variant="body2">No config bundle yet.</Typography>}
      {data && data.versions.length > 0 && (
        <Table size="small" aria-label="Config bundles">
          <TableHead>
            <TableRow>
              <TableCell>Taken</TableCell>
              <TableCell align="right">Size</TableCell>
              <TableCell>Key id</TableCell>
              <TableCell align="right">Members</TableCell>
              <TableCell>Certificates</TableCell>
              <TableCell>Verify</TableCell>
              <TableCell>Copies</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {data.versions.map((version) => (
              <VersionRow key={version.run_id} version={version} warnDays={data.cert_warn_days} />
            ))}
          </TableBody>
        </Table>
      )}
    </Box>
  );
};

export default ConfigPanel;
