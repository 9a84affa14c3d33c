/**
 * The measured recovery time per scenario (GET status `rto`), as the standalone page's health card lists it:
 * scenario, the time measured (or why there is none), the target in force, when, and the state with the reason
 * a measured row warns (the part of its line after the last "; ").
 */
import React from 'react';
import { Chip, Table, TableBody, TableCell, TableHead, TableRow, Typography } from '@mui/material';
import type { ApiRto } from './types';
import { formatDuration, formatLocal, formatRelative } from './format';

const TONE: Record<string, 'success' | 'warning' | 'default'> = { ok: 'success', warn: 'warning' };
const NOT_MEASURED: Record<string, string> = { stated: 'stated, not measured', warn: 'never measured' };

function measured(row: ApiRto): boolean {
  return row.seconds !== null && row.seconds !== undefined;
}

/** Why a measured row warns (over the target, too old), from its line; '' otherwise. */
function warning(row: ApiRto): string {
  return measured(row) && row.state === 'warn' && row.line.includes('; ')
    ? row.line.slice(row.line.lastIndexOf('; ') + 2) : '';
}

export const RtoTable: React.FC<{ rows: ApiRto[] }> = ({ rows }) => {
  if (!rows.length) {
    return null;
  }
  return (
    <Table size="small" aria-label="Recovery time (RTO)" sx={{ mt: 1 }}>
      <TableHead>
        <TableRow>
          <TableCell component="th" scope="col">Scenario</TableCell>
          <TableCell component="th" scope="col">Measured</TableCell>
          <TableCell component="th" scope="col">Target</TableCell>
          <TableCell component="th" scope="col">When</TableCell>
          <TableCell component="th" scope="col">State</TableCell>
        </TableRow>
      </TableHead>
      <TableBody>
        {rows.map((row) => (
          <TableRow key={row.scenario} data-scenario={row.scenario} title={row.line}>
            <TableCell component="th" scope="row">{row.scenario.replace(/_/g, ' ')}</TableCell>
            <TableCell>
              {measured(row) ? formatDuration(row.seconds) : NOT_MEASURED[row.state] ?? '—'}
            </TableCell>
            <TableCell>{row.target || row.guide_rto}</TableCell>
            <TableCell>
              {row.measured_at ? `${formatRelative(row.measured_at)} (${formatLocal(row.measured_at)})` : '—'}
            </TableCell>
            <TableCell>
              <Chip size="small" label={row.state} color={TONE[row.state] ?? 'default'} />
              {warning(row) && <Typography variant="caption" sx={{ ml: 1 }}>{warning(row)}</Typography>}
            </TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
};

export default RtoTable;
