/**
 * Run details (GET runs/{id}): file and size, compression ratio, a copyable sha256, versions, row counts,
 * peak memory, copies, the verify history, and links to the parent set or member runs.
 */
import React from 'react';
import {
  Alert,
  Box,
  Button,
  CircularProgress,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  Table,
  TableBody,
  TableCell,
  TableRow,
  Typography,
} from '@mui/material';
import { errorMessage } from './backupsAdapter';
import { RestoreButton } from './RestoreWizard';
import { toCopy, type VerifyView } from './backupsView';
import { formatBytes, formatDuration, formatLocal, formatUtc } from './format';
import type { ApiRun } from './types';
import { useBackupRun } from './useBackups';

interface RunDetailsDialogProps {
  runId: string | null;
  verify?: VerifyView | null;
  onClose: () => void;
  onOpen: (runId: string) => void;
}

function detail(run: ApiRun, key: string): unknown {
  return run.details?.[key];
}

function Fact({ name, children }: { name: string; children: React.ReactNode }) {
  return (
    <TableRow>
      <TableCell component="th" scope="row">
        {name}
      </TableCell>
      <TableCell>{children}</TableCell>
    </TableRow>
  );
}

function ratio(run: ApiRun): string {
  const bytesIn = detail(run, 'bytes_in');
  const bytesOut = detail(run, 'bytes_out');
  return typeof bytesIn === 'number' && typeof bytesOut === 'number' && bytesOut > 0
    ? `${(bytesIn / bytesOut).toFixed(1)} : 1 (${formatBytes(bytesIn)} before compression)`
    : '—';
}

function RunFacts({ run, onOpen }: { run: ApiRun; onOpen: (id: string) => void }) {
  const rowCounts = (detail(run, 'row_counts') ?? {}) as Record<string, number>;
  const peak = detail(run, 'peak_rss_bytes');
  const text = (key: string) => String(detail(run, key) ?? '—');
  return (
    <Table size="small" aria-label="Run facts">
      <TableBody>
        <Fact name="State">{run.status}{run.error ? `: ${run.error}` : ''}</Fact>
        <Fact name="Started">{formatUtc(run.started_at)} ({formatLocal(run.started_at)})</Fact>
        <Fact name="Duration">{formatDuration(run.duration_seconds)}</Fact>
        <Fact name="File">{text('artifact')}</Fact>
        <Fact name="Size">{formatBytes(run.size_bytes)}</Fact>
        <Fact name="Compression">{ratio(run)}</Fact>
        <Fact name="SHA-256">
          <code>{run.sha256 ?? '—'}</code>
          {run.sha256 && (
            <Button size="small" onClick={() => void navigator.clipboard?.writeText(run.sha256 as string)}>
              Copy
            </Button>
          )}
        </Fact>
        <Fact name="Server version">{text('server_version')}</Fact>
        <Fact name="pg_dump version">{text('pg_dump_version')}</Fact>
        <Fact name="OpenWatch migration">{text('openwatch_alembic_head')}</Fact>
        <Fact name="Peak memory">{typeof peak === 'number' ? formatBytes(peak) : '—'}</Fact>
        <Fact name="Row counts">
          {Object.keys(rowCounts).length === 0
            ? '—'
            : Object.entries(rowCounts)
                .map(([table, count]) => `${table}: ${count}`)
                .join(', ')}
        </Fact>
        <Fact name="Copies">
          {run.copies.length === 0
            ? '—'
            : run.copies.map(toCopy).map((copy) => (
                <Typography key={copy.storage} variant="body2">
                  {copy.label}: {copy.state}
                  {copy.error ? ` (${copy.error})` : ''}
                </Typography>
              ))}
        </Fact>
        {run.parent_id && (
          <Fact name="Part of">
            <Button size="small" onClick={() => onOpen(run.parent_id as string)}>
              Run {run.parent_id.slice(0, 8)}
            </Button>
          </Fact>
        )}
        {run.members && run.members.length > 0 && (
          <Fact name="Members">
            {run.members.map((member) => (
              <Button key={member.id} size="small" onClick={() => onOpen(member.id)}>
                {member.kind} {member.id.slice(0, 8)}
              </Button>
            ))}
          </Fact>
        )}
      </TableBody>
    </Table>
  );
}

function VerifyHistory({ verify, onOpen }: { verify: VerifyView; onOpen: (id: string) => void }) {
  if (verify.history.length === 0) {
    return null;
  }
  return (
    <Box sx={{ mt: 2 }}>
      <Typography variant="subtitle2">Verify and restore history</Typography>
      {verify.history.map((run) => {
        const result = run.summary?.result ?? run.status;
        const why = run.summary?.message ?? run.error;
        return (
          <Typography key={run.id} variant="body2">
            <Button size="small" onClick={() => onOpen(run.id)}>
              {run.kind} {run.id.slice(0, 8)}
            </Button>
            {formatUtc(run.finished_at ?? run.created_at)}: {result}
            {run.summary?.deep ? ' (deep)' : ''}
            {why && result !== 'passed' ? `: ${why}` : ''}
          </Typography>
        );
      })}
    </Box>
  );
}

export const RunDetailsDialog: React.FC<RunDetailsDialogProps> = ({ runId, verify, onClose, onOpen }) => {
  const { data: run, error, isLoading } = useBackupRun(runId);
  return (
    <Dialog open={!!runId} onClose={onClose} maxWidth="md" fullWidth aria-labelledby="backup-run-title">
      <DialogTitle id="backup-run-title">
        {run ? `Run ${run.id.slice(0, 8)}: ${run.kind}` : 'Run details'}
      </DialogTitle>
      <DialogContent>
        {isLoading && <CircularProgress aria-label="Loading the run" />}
        {error && <Alert severity="error">{errorMessage(error)}</Alert>}
        {run && <RunFacts run={run} onOpen={onOpen} />}
        {run && verify && <VerifyHistory verify={verify} onOpen={onOpen} />}
      </DialogContent>
      <DialogActions>
        {run && <RestoreButton backup={run} verify={verify} />}
        <Button onClick={onClose}>Close</Button>
      </DialogActions>
    </Dialog>
  );
};

export default RunDetailsDialog;
