/** Health: one verdict that includes the checklist, the running backup, next runs, storage and the RTO rows. */
import React from 'react';
import { Alert, AlertTitle, Box, Chip, LinearProgress, List, ListItem, ListItemText, Typography } from '@mui/material';
import type { HealthView } from './backupsView';
import { formatBytes, formatLocal, formatRelative, formatUtc } from './format';

const RTO_TONE: Record<string, 'success' | 'warning' | 'default'> = { ok: 'success', warn: 'warning' };

function RunningBar({ health }: { health: HealthView }) {
  const run = health.running;
  if (!run) {
    return null;
  }
  const estimate = run.summary?.estimate_bytes ?? (run.details?.estimate_bytes as number | undefined) ?? null;
  const percent = estimate ? Math.min(99, Math.round((run.bytes_done / estimate) * 100)) : null;
  const label = `A ${run.kind} backup is ${run.status}${run.phase ? ` (${run.phase})` : ''}`;
  return (
    <Box sx={{ my: 1 }}>
      <Typography variant="body2">
        {label}
        {percent !== null ? `: ${percent}%` : ''}
      </Typography>
      <LinearProgress
        aria-label={label}
        variant={percent !== null ? 'determinate' : 'indeterminate'}
        value={percent ?? undefined}
      />
    </Box>
  );
}

export const HealthPanel: React.FC<{ health: HealthView }> = ({ health }) => (
  <Box sx={{ mb: 2 }}>
    <Alert severity={health.healthy ? 'success' : 'error'} role="region" aria-label="Backup health">
      <AlertTitle>Health: {health.headline}</AlertTitle>
      {health.newestVerifiedAt ? (
        <Typography variant="body2">
          Newest verified backup: {formatRelative(health.newestVerifiedAt)} ({formatUtc(health.newestVerifiedAt)}),
          threshold {health.thresholdHours} h
        </Typography>
      ) : (
        <Typography variant="body2">No verified backup yet (threshold {health.thresholdHours} h)</Typography>
      )}
      {health.failing.length > 0 && (
        <List dense aria-label="Failing checks">
          {health.failing.map((item) => (
            <ListItem key={item.key} disableGutters>
              <ListItemText
                primary={`${item.title}: ${item.detail}`}
                secondary={item.fix ? `Fix: ${item.fix}` : undefined}
              />
            </ListItem>
          ))}
        </List>
      )}
    </Alert>
    <RunningBar health={health} />
    <Box sx={{ mt: 1 }}>
      {health.nextRuns.map((next) => (
        <Typography key={next.name} variant="body2">
          Next {next.name}: {formatRelative(next.at)} ({formatUtc(next.at)}, {formatLocal(next.at)})
        </Typography>
      ))}
      <Typography variant="body2">
        Storage: {formatBytes(health.storageUsedBytes)} used
        {health.storageFreeBytes !== null ? `, ${formatBytes(health.storageFreeBytes)} free` : ''}
      </Typography>
    </Box>
    {health.rto.length > 0 && (
      <List dense aria-label="Recovery time (RTO)">
        {health.rto.map((row) => (
          <ListItem key={row.scenario} disableGutters>
            <Chip size="small" label={row.state} color={RTO_TONE[row.state] ?? 'default'} sx={{ mr: 1 }} />
            <ListItemText primary={row.line} />
          </ListItem>
        ))}
      </List>
    )}
  </Box>
);

export default HealthPanel;
