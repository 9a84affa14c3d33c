/**
 * One row per backup: state, verification badge, copies, size, retention. A nightly set is one row with its
 * members folded under it (a button unfolds them); verify and restore runs are in the backup's details.
 */
import React, { useState } from 'react';
import { Box, Button, Chip, Table, TableBody, TableCell, TableHead, TableRow, Typography } from '@mui/material';
import type { BackupRow, VerifyView } from './backupsView';
import { formatBytes, formatRelative, formatUtc } from './format';

interface RunsTableProps {
  rows: BackupRow[];
  onOpen: (runId: string) => void;
  onVerify: (runId: string) => void;
  verifyDisabled?: boolean;
}

const KIND_LABELS: Record<string, string> = {
  set: 'Nightly set',
  full: 'Database (full)',
  config: 'Config bundle',
  redis: 'Redis snapshot',
  volume: 'Volume snapshot',
};

export function verifyWords(verify: VerifyView): string {
  const depth = verify.deep === null ? '' : verify.deep ? ' (deep)' : ' (quick)';
  switch (verify.state) {
    case 'passed':
      return `Verified${depth} ${formatRelative(verify.at)}`;
    case 'failed':
      return `Verify failed${verify.lastFailure?.reason ? `: ${verify.lastFailure.reason}` : ''}`;
    case 'running':
      return 'Verifying…';
    default:
      return 'Not verified';
  }
}

const VERIFY_TONE = { passed: 'success', failed: 'error', running: 'info', never: 'warning' } as const;
const COPY_TONE: Record<string, 'success' | 'error' | 'info' | 'default'> = {
  verified: 'success',
  failed: 'error',
  pending: 'info',
  copying: 'info',
};

function VerifyBadge({ verify }: { verify: VerifyView }) {
  const failure = verify.lastFailure;
  return (
    <Box>
      <Chip size="small" color={VERIFY_TONE[verify.state]} label={verifyWords(verify)} />
      {failure && (
        <Typography variant="caption" display="block">
          Last failure {formatRelative(failure.at)}: {failure.message ?? failure.reason}
        </Typography>
      )}
    </Box>
  );
}

function Row({ row, depth, props }: { row: BackupRow; depth: number; props: RunsTableProps }) {
  const [open, setOpen] = useState(false);
  const isSet = row.kind === 'set';
  const name = row.artifact ?? `run ${row.id.slice(0, 8)}`;
  return (
    <>
      <TableRow hover data-run-id={row.id} onClick={() => props.onOpen(row.id)} sx={{ cursor: 'pointer' }}>
        <TableCell sx={{ pl: 2 + depth * 4 }}>
          {formatUtc(row.createdAt)}
          <Typography variant="caption" display="block">
            {name}
          </Typography>
        </TableCell>
        <TableCell>
          {KIND_LABELS[row.kind] ?? row.kind}
          {isSet && row.members.length > 0 && (
            <Button
              size="small"
              aria-expanded={open}
              onClick={(event) => {
                event.stopPropagation();
                setOpen(!open);
              }}
            >
              {open ? 'Hide members' : `Show ${row.members.length} members`}
            </Button>
          )}
        </TableCell>
        <TableCell>
          <Chip size="small" color={row.tone} label={row.state} />
          {row.error && (
            <Typography variant="caption" display="block">
              {row.error}
            </Typography>
          )}
        </TableCell>
        <TableCell>{row.verify ? <VerifyBadge verify={row.verify} /> : '—'}</TableCell>
        <TableCell>
          {row.copies.map((copy) => (
            <Chip
              key={copy.storage}
              size="small"
              sx={{ mr: 0.5 }}
              color={COPY_TONE[copy.state] ?? 'default'}
              label={`${copy.label}: ${copy.state}`}
              title={copy.error ?? undefined}
            />
          ))}
          {isSet && row.setOffsite !== null && (row.setOffsite ? 'all off-site' : 'not all off-site')}
        </TableCell>
        <TableCell>{formatBytes(row.sizeBytes)}</TableCell>
        <TableCell>{row.retention ?? '—'}</TableCell>
        <TableCell onClick={(event) => event.stopPropagation()}>
          <Button size="small" onClick={() => props.onOpen(row.id)} aria-label={`Details of ${name}`}>
            Details
          </Button>
          {row.verify && row.status === 'succeeded' && (
            <Button
              size="small"
              disabled={props.verifyDisabled || row.verify.state === 'running'}
              onClick={() => props.onVerify(row.id)}
              aria-label={`Verify ${name}`}
            >
              Verify
            </Button>
          )}
        </TableCell>
      </TableRow>
      {open && row.members.map((member) => <Row key={member.id} row={member} depth={depth + 1} props={props} />)}
    </>
  );
}

export const RunsTable: React.FC<RunsTableProps> = (props) => (
  <Table size="small" aria-label="Backups">
    <TableHead>
      <TableRow>
        <TableCell>Taken (UTC)</TableCell>
        <TableCell>Kind</TableCell>
        <TableCell>State</TableCell>
        <TableCell>Verification</TableCell>
        <TableCell>Copies</TableCell>
        <TableCell>Size</TableCell>
        <TableCell>Retention</TableCell>
        <TableCell>Actions</TableCell>
      </TableRow>
    </TableHead>
    <TableBody>
      {props.rows.map((row) => (
        <Row key={row.id} row={row} depth={0} props={props} />
      ))}
    </TableBody>
  </Table>
);

export default RunsTable;
