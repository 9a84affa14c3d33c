/**
 * A failing check's fix as the standalone page shows it (static/health.js fixWithActions): each `openwatch-backup`
 * command as code, and next to it what the section can do about it: open the run's details, verify that backup
 * now, or start a backup. Drill, prune and the rest stay the CLI's (no control, the command only).
 */
import React from 'react';
import { Box, Button } from '@mui/material';
import type { ApiCheckAction, ApiCheckItem } from './types';

export interface CheckActionHandlers {
  onOpenRun?: (runId: string) => void;
  onVerify?: (runId: string, deep: boolean) => void;
  onBackup?: () => void;
}

const short = (id: string) => id.slice(0, 8);

function controlsOf(action: ApiCheckAction, handlers: CheckActionHandlers): React.ReactNode[] {
  const id = action.run_id;
  const options = action.command.split(/\s+/).slice(2);
  const details = (runId: string) =>
    handlers.onOpenRun ? (
      <Button key={`details-${runId}`} size="small" onClick={() => handlers.onOpenRun?.(runId)}>
        Details of run {short(runId)}
      </Button>
    ) : null;
  if ((action.verb === 'show' || action.verb === 'offsite') && id) {
    return [details(id)];
  }
  if (action.verb === 'verify' && id) {
    if (options.includes('--copy') || !handlers.onVerify) {
      return [details(id)]; // the API verifies the local file only
    }
    const deep = options.includes('--deep');
    return [
      <Button key={`verify-${id}`} size="small" variant="outlined" onClick={() => handlers.onVerify?.(id, deep)}>
        {deep ? 'Deep verify' : 'Verify'} backup {short(id)} now
      </Button>,
      details(id),
    ];
  }
  if (action.verb === 'backup' && options.length === 0 && handlers.onBackup) {
    return [
      <Button key="backup" size="small" variant="outlined" onClick={handlers.onBackup}>
        Start a backup
      </Button>,
    ];
  }
  return [];
}

/** The fix's words with its commands as code; the controls of every action follow, each run's details once. */
export const CheckFix: React.FC<{ item: ApiCheckItem } & CheckActionHandlers> = ({ item, ...handlers }) => {
  const parts = item.fix.split(/`([^`]*)`/);
  const seen = new Set<string>();
  const controls = (item.actions ?? [])
    .flatMap((action) => controlsOf(action, handlers))
    .filter((node): node is React.ReactElement => {
      if (!React.isValidElement(node) || seen.has(String(node.key))) {
        return false;
      }
      seen.add(String(node.key));
      return true;
    });
  return (
    <Box component="span" sx={{ display: 'block' }}>
      <span>
        Fix:{' '}
        {parts.map((part, index) => (index % 2 === 0 ? part : <code key={index}>{part}</code>))}
      </span>
      {controls.length > 0 && (
        <Box component="span" sx={{ display: 'flex', flexWrap: 'wrap', gap: 1, mt: 0.5 }}>
          {controls}
        </Box>
      )}
    </Box>
  );
};

export default CheckFix;
