/**
 * Health: the API's verdict (the checklist included, as the standalone page words it), the running backup, the last
 * backup's size and duration, next runs (relative, UTC and local with its zone), storage against the size budget, the
 * size and duration chart of the last 30 backups and the RTO table.
 */
import React from 'react';
import { Alert, AlertTitle, Box, LinearProgress, List, ListItem, ListItemText, Typography } from '@mui/material';
import type { HealthView } from './backupsView';
import CheckFix, { type CheckActionHandlers } from './CheckActions';
import { formatBytes, formatDuration, formatLocal, formatRelative, formatUtc } from './format';
import HealthChart from './HealthChart';
import RtoTable from './RtoTable';

const NEXT_LABELS: Record<string, string> = { backup: 'backup', drill: 'restore drill', drill_volume: 'volume drill',
  drill_host: 'host drill' };
const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'your time zone';

/** "in 21 h · 2026-12-02 02:00 UTC · 2026-12-02 03:00 local (Europe/Berlin)", as the standalone page labels it. */
function NextRun({ name, at }: { name: string; at: string }) {
  return (
    <Typography variant="body2" data-next={name}>
      Next {NEXT_LABELS[name] ?? name.replace(/_/g, ' ')}: {formatRelative(at)} ·{' '}
      <time dateTime={at}>
        {formatUtc(at)} · {formatLocal(at)} ({LOCAL_ZONE})
      </time>
    </Typography>
  );
}

function percentOf(used: number, budget: number): string {
  const share = (100 * used) / budget;
  return share < 10 ? share.toFixed(1) : String(Math.round(share));
}

/** Storage used against retention's size budget, in words and as a bar; "no size budget" when there is none. */
function Storage({ health }: { health: HealthView }) {
  const used = health.storageUsedBytes;
  const budget = health.sizeBudgetBytes;
  const free = health.storageFreeBytes !== null ? `, ${formatBytes(health.storageFreeBytes)} free` : '';
  if (!budget) {
    return <Typography variant="body2">Storage: {formatBytes(used)} used, no size budget{free}</Typography>;
  }
  const share = `${percentOf(used, budget)}% of the ${formatBytes(budget)} size budget`;
  const over = used > budget ? `: over by ${formatBytes(used - budget)}` : '';
  return (
    <Box>
      <Typography variant="body2">
        Storage: {formatBytes(used)} used, {share}
        {over}
        {free}
      </Typography>
      <LinearProgress
        variant="determinate"
        value={Math.min(100, (100 * used) / budget)}
        aria-label={`Storage used: ${share}`}
        color={used > budget ? 'error' : 'primary'}
        sx={{ maxWidth: 320, my: 0.5 }}
      />
    </Box>
  );
}

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

export const HealthPanel: React.FC<{ health: HealthView } & CheckActionHandlers> = ({ health, ...handlers }) => (
  <Box sx={{ mb: 2 }}>
    <Alert severity={health.healthy ? 'success' : 'error'} role="region" aria-label="Backup health">
      <AlertTitle>{health.verdict}</AlertTitle>
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
                secondary={item.fix ? <CheckFix item={item} {...handlers} /> : undefined}
              />
            </ListItem>
          ))}
        </List>
      )}
    </Alert>
    <RunningBar health={health} />
    <Box sx={{ mt: 1 }}>
      {health.lastBackup && (
        <Typography variant="body2">
          Last backup: {formatBytes(health.lastBackup.size_bytes)} in{' '}
          {formatDuration(health.lastBackup.duration_seconds)} ({health.lastBackup.kind}
          {health.lastBackup.finished_at ? `, ${formatRelative(health.lastBackup.finished_at)}` : ''})
        </Typography>
      )}
      {health.nextRuns.map((next) => (
        <NextRun key={next.name} name={next.name} at={next.at} />
      ))}
      <Storage health={health} />
    </Box>
    <HealthChart newestFirst={health.recentBackups} />
    <RtoTable rows={health.rto} />
  </Box>
);

export default HealthPanel;
