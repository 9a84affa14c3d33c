/**
 * The newest backup's live progress (issue 14 item 4), as the standalone page's "Current run" card shows it: a bar
 * with a percentage (capped at 99% until the backup ends) and an ETA from the size estimate, then the steps
 * preflight → dump → manifest → verify → off-site → prune with their states in words. GET status `live` says it
 * all: the API decides which verify, off-site and prune runs belong to the backup.
 */
import React from 'react';
import { Box, LinearProgress, Typography } from '@mui/material';
import type { ApiLive, ApiStep } from './types';
import { formatDuration } from './format';

const STEP_NAMES: Record<ApiStep['name'], string> = {
  preflight: 'Preflight', dump: 'Dump', manifest: 'Manifest', verify: 'Verify', offsite: 'Off-site copy',
  prune: 'Prune',
};
const CAP = 99;

/** bytes_done against the estimate, 0-99; null without an estimate (no fake percentage) or once it ended. */
export function livePercent(live: ApiLive): number | null {
  const run = live.run;
  if (run.status !== 'running' || !live.estimate_bytes) {
    return null;
  }
  if (run.phase === 'committing' || run.phase === 'manifest') {
    return CAP;
  }
  return Math.min(CAP, Math.floor((run.bytes_done / live.estimate_bytes) * 100));
}

/** "about 8 s left" from the recorded rate; empty while there is no rate yet. */
export function liveEta(live: ApiLive): string {
  const rate = live.run.summary?.rate_bytes_per_s;
  if (!rate || !live.estimate_bytes || livePercent(live) === null) {
    return '';
  }
  const left = live.estimate_bytes - live.run.bytes_done;
  if (left <= 0) {
    return 'past the estimate, still dumping';
  }
  const seconds = Math.max(1, Math.ceil(left / rate));
  return `about ${seconds < 60 ? `${seconds} s` : formatDuration(seconds)} left`;
}

export function stepText(step: ApiStep): string {
  if (step.state === 'failed') {
    return step.note ? `failed: ${step.note}` : 'failed';
  }
  return step.note ? `${step.state} (${step.note})` : step.state;
}

const STATE_COLOR: Record<ApiStep['state'], string> = {
  pending: 'text.secondary', running: 'info.main', done: 'success.main', failed: 'error.main',
  skipped: 'text.secondary',
};

export const LiveProgress: React.FC<{ live: ApiLive | null | undefined }> = ({ live }) => {
  if (!live) {
    return null;
  }
  const run = live.run;
  const id = run.id.slice(0, 8);
  const percent = livePercent(live);
  const eta = liveEta(live);
  const titleId = `live-progress-${id}`;
  return (
    <Box component="section" aria-labelledby={titleId} sx={{ my: 2 }}>
      <Typography variant="subtitle2" component="h3" id={titleId}>
        Steps of {run.kind} backup {id}
      </Typography>
      {run.status === 'running' && (
        <Box sx={{ my: 1 }}>
          <LinearProgress
            aria-label={`Backup ${id} progress`}
            variant={percent !== null ? 'determinate' : 'indeterminate'}
            value={percent ?? undefined}
          />
          <Typography variant="body2">
            {percent !== null ? `${percent}%${eta ? ` · ${eta}` : ''}` : 'No size estimate yet'}
          </Typography>
        </Box>
      )}
      <Box component="ol" aria-labelledby={titleId} sx={{ my: 0, pl: 3 }}>
        {live.steps.map((step) => (
          <Box component="li" key={step.name} aria-current={step.state === 'running' ? 'step' : undefined}
            data-state={step.state} sx={{ fontWeight: step.state === 'running' ? 600 : undefined }}>
            <strong>{STEP_NAMES[step.name]}</strong>:{' '}
            <Box component="span" sx={{ color: STATE_COLOR[step.state] }}>{stepText(step)}</Box>
          </Box>
        ))}
      </Box>
    </Box>
  );
};

export default LiveProgress;
