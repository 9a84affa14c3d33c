/**
 * The Backups section of OpenWatch's Settings page (System Settings tab), beside ComplianceSchedulerSettings,
 * AdaptiveSchedulerSettings and OSDiscoverySettings, with their props: `onSuccess` / `onError` feed the page's
 * snackbars. Its own messages are announced to screen readers and replaced when the run they speak of ends.
 */
import React, { useEffect, useMemo, useState } from 'react';
import { Alert, Box, Button, Card, CardContent, CircularProgress, MenuItem, TextField, Typography } from '@mui/material';
import { errorMessage } from './backupsAdapter';
import { BACKUP_KINDS, findRun, toBackupRows, toHealth, type BackupRow } from './backupsView';
import ConfigPanel from './ConfigPanel';
import HealthPanel from './HealthPanel';
import LiveProgress from './LiveProgress';
import OffsitePanel from './OffsitePanel';
import PrunePanel from './PrunePanel';
import RunDetailsDialog from './RunDetailsDialog';
import RunsTable from './RunsTable';
import SettingsForm from './SettingsForm';
import { useBackupRuns, useBackupStatus, useStartBackup, useVerifyBackup } from './useBackups';

export interface BackupsSectionProps {
  onSuccess?: (message: string) => void;
  onError?: (message: string) => void;
}

interface Message {
  severity: 'success' | 'info' | 'warning' | 'error';
  text: string;
}

const KIND_FILTERS = ['', 'set', ...BACKUP_KINDS, 'verify', 'prune', 'restore', 'drill'];
const STATUS_FILTERS = ['', 'queued', 'running', 'succeeded', 'failed', 'abandoned', 'cancelled'];
const DONE = ['succeeded', 'failed', 'abandoned', 'cancelled'];

function flatten(rows: BackupRow[]): BackupRow[] {
  return rows.flatMap((row) => [row, ...flatten(row.members)]);
}

export const BackupsSection: React.FC<BackupsSectionProps> = ({ onSuccess, onError }) => {
  const [kind, setKind] = useState('');
  const [status, setStatus] = useState('');
  const [openRun, setOpenRun] = useState<string | null>(null);
  const [message, setMessage] = useState<Message | null>(null);
  const [watching, setWatching] = useState<string | null>(null);
  const statusQuery = useBackupStatus();
  const runsQuery = useBackupRuns({ kind: kind || undefined, status: status || undefined });
  const startBackup = useStartBackup();
  const verify = useVerifyBackup();

  const health = useMemo(() => (statusQuery.data ? toHealth(statusQuery.data) : null), [statusQuery.data]);
  const rows = useMemo(() => (runsQuery.data ? toBackupRows(runsQuery.data) : []), [runsQuery.data]);
  const running = statusQuery.data?.running ?? null;
  const live = statusQuery.data?.live ?? null;
  // Held while a backup is queued too (the API would answer 409), not only while one runs.
  const backupRunning = (!!running && (running.kind === 'set' || BACKUP_KINDS.includes(running.kind)))
    || (!!live && (live.run.status === 'queued' || live.run.status === 'running'));

  // A started backup is followed until it ends; then its end replaces "queued" (no stale message).
  useEffect(() => {
    const run = watching ? findRun(runsQuery.data, watching) : undefined;
    if (!run || !DONE.includes(run.status)) {
      return;
    }
    const ok = run.status === 'succeeded';
    const text = ok
      ? `Backup ${run.id.slice(0, 8)} succeeded`
      : `Backup ${run.id.slice(0, 8)} ${run.status}${run.error ? `: ${run.error}` : ''}`;
    setMessage({ severity: ok ? 'success' : 'error', text });
    setWatching(null);
    (ok ? onSuccess : onError)?.(text);
  }, [runsQuery.data, watching, onSuccess, onError]);

  const backUpNow = async () => {
    try {
      const result = await startBackup.mutateAsync();
      if (result.started) {
        const text = `Backup ${result.run.id.slice(0, 8)} queued`;
        setMessage({ severity: 'info', text });
        setWatching(result.run.id);
        onSuccess?.(text);
      } else {
        setMessage({ severity: 'warning', text: result.message });
        setWatching(result.run?.id ?? null);
        onError?.(result.message);
      }
    } catch (error) {
      setMessage({ severity: 'error', text: errorMessage(error) });
      onError?.(errorMessage(error));
    }
  };

  const verifyNow = async (runId: string, deep = false) => {
    try {
      const run = await verify.mutateAsync({ runId, deep });
      const text = `Verify ${run.id.slice(0, 8)} of backup ${runId.slice(0, 8)} queued`;
      setMessage({ severity: 'info', text });
      onSuccess?.(text);
    } catch (error) {
      setMessage({ severity: 'error', text: errorMessage(error) });
      onError?.(errorMessage(error));
    }
  };

  const openRow = openRun ? flatten(rows).find((row) => row.id === openRun) : undefined;
  const loadError = statusQuery.error ?? runsQuery.error;

  return (
    <Card sx={{ mb: 3 }} component="section" aria-labelledby="backups-section-title">
      <CardContent>
        <Box sx={{ display: 'flex', justifyContent: 'space-between', alignItems: 'center', mb: 2 }}>
          <Typography variant="h6" id="backups-section-title">
            Backups
          </Typography>
          <Box sx={{ display: 'flex', alignItems: 'center', gap: 1 }}>
            {backupRunning && (
              <Typography variant="body2" id="backup-now-reason">
                A backup is {live?.run.status === 'queued' ? 'queued' : 'running'}
              </Typography>
            )}
            <Button
              variant="contained"
              onClick={() => void backUpNow()}
              disabled={backupRunning || startBackup.isPending || !statusQuery.data}
              aria-describedby={backupRunning ? 'backup-now-reason' : undefined}
            >
              Back up now
            </Button>
          </Box>
        </Box>
        <Box role="status" aria-live="polite" sx={{ mb: message ? 2 : 0 }}>
          {message && (
            <Alert severity={message.severity} role="none" onClose={() => setMessage(null)}>
              {message.text}
            </Alert>
          )}
        </Box>
        {loadError && (
          <Alert severity="error" sx={{ mb: 2 }}>
            {errorMessage(loadError)}
          </Alert>
        )}
        {statusQuery.isLoading && <CircularProgress aria-label="Loading backup health" />}
        {health && (
          <HealthPanel health={health} onOpenRun={setOpenRun} onVerify={(id, deep) => void verifyNow(id, deep)}
            onBackup={backupRunning ? undefined : () => void backUpNow()} />
        )}
        <LiveProgress live={live} />
        <Box sx={{ display: 'flex', gap: 2, mb: 1 }}>
          <TextField select size="small" label="Kind" value={kind} onChange={(e) => setKind(e.target.value)}
            sx={{ minWidth: 160 }}>
            {KIND_FILTERS.map((k) => (
              <MenuItem key={k || 'all'} value={k}>
                {k || 'All kinds'}
              </MenuItem>
            ))}
          </TextField>
          <TextField select size="small" label="Status" value={status} onChange={(e) => setStatus(e.target.value)}
            sx={{ minWidth: 160 }}>
            {STATUS_FILTERS.map((s) => (
              <MenuItem key={s || 'all'} value={s}>
                {s || 'All statuses'}
              </MenuItem>
            ))}
          </TextField>
        </Box>
        {runsQuery.isLoading && <CircularProgress aria-label="Loading backups" />}
        {runsQuery.data && rows.length === 0 && <Typography variant="body2">No runs yet.</Typography>}
        {rows.length > 0 && (
          <RunsTable rows={rows} onOpen={setOpenRun} onVerify={(id) => void verifyNow(id)}
            verifyDisabled={verify.isPending} />
        )}
        <RunDetailsDialog runId={openRun} verify={openRow?.verify} onClose={() => setOpenRun(null)}
          onOpen={setOpenRun} />
        <PrunePanel onSuccess={onSuccess} onError={onError} />
        <OffsitePanel onError={onError} />
        <ConfigPanel onSuccess={onSuccess} onError={onError} />
        <SettingsForm onSuccess={onSuccess} onError={onError} />
      </CardContent>
    </Card>
  );
};

export default BackupsSection;
