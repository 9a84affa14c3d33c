/**
 * The health chart (issue 14 item 3), drawn as the standalone page's chart.js draws it: the newest database
 * backups' size (bars, left axis) and duration (a line with dots, right axis), oldest on the left. Plain SVG, no
 * chart library; a viewBox and width 100% fit a phone. Its numbers are also in words: a summary under it and a
 * visually hidden table of every point, so the drawing is never the only place a number is.
 */
import React, { useId } from 'react';
import { Box, Typography } from '@mui/material';
import type { ApiBackupPoint } from './types';
import { formatBytes, formatDuration, formatLocal } from './format';

const W = 360;
const H = 190;
const PAD = { left: 46, right: 46, top: 10, bottom: 40 };
const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];
/** Read by screen readers, not drawn (MUI's visuallyHidden, without a dependency on @mui/utils). */
const visuallyHidden = { border: 0, clip: 'rect(0 0 0 0)', height: '1px', margin: '-1px', overflow: 'hidden',
  padding: 0, position: 'absolute', whiteSpace: 'nowrap', width: '1px' } as const;
const SIZE_COLOR = '#1976d2';
const DURATION_COLOR = '#ed6c02';

interface Scale {
  unit: string;
  divisor: number;
  top: number;
}

/** The axis top: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten, so the ticks read as round numbers. */
export function niceMax(value: number): number {
  if (!(value > 0)) {
    return 1;
  }
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].find((f) => value <= f * power * (1 + 1e-9)) ?? 10;
  return step * power;
}

const tick = (value: number) => String(Number(value.toPrecision(3)));

function sizeScale(points: ApiBackupPoint[]): Scale {
  const largest = Math.max(...points.map((p) => p.size_bytes ?? 0));
  let unit = 0;
  while (largest >= 1024 ** (unit + 1) && unit < UNITS.length - 1) {
    unit += 1;
  }
  return { unit: UNITS[unit], divisor: 1024 ** unit, top: niceMax(largest / 1024 ** unit) };
}

function durationScale(points: ApiBackupPoint[]): Scale {
  const longest = Math.max(...points.map((p) => p.duration_seconds ?? 0));
  const minutes = longest > 300;
  const divisor = minutes ? 60 : 1;
  return { unit: minutes ? 'min' : 's', divisor, top: niceMax(longest / divisor) };
}

function range(values: (number | null)[], format: (value: number) => string): string {
  const known = values.filter((v): v is number => v !== null && v !== undefined);
  if (!known.length) {
    return 'unknown';
  }
  const [low, high] = [Math.min(...known), Math.max(...known)];
  // Equal once written (146.8 KB and 146.8 KB): said once.
  return format(low) === format(high) ? format(low) : `${format(low)} to ${format(high)}`;
}

/** "5 backups, size 146.8 KB to 146.9 KB, duration 0.5 s to 0.7 s": the chart's text alternative. */
export function chartSummary(points: ApiBackupPoint[]): string {
  if (!points.length) {
    return 'No database backup yet.';
  }
  const count = points.length === 1 ? '1 backup' : `${points.length} backups`;
  return `${count}, size ${range(points.map((p) => p.size_bytes), formatBytes)}, `
    + `duration ${range(points.map((p) => p.duration_seconds), formatDuration)}`;
}

const pointLabel = (p: ApiBackupPoint) =>
  `${formatLocal(p.finished_at)} (${p.kind}): ${formatBytes(p.size_bytes)}, ${formatDuration(p.duration_seconds)}`;

function Drawing({ points, summary }: { points: ApiBackupPoint[]; summary: string }) {
  const id = useId();
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const bottom = PAD.top + plotH;
  const mid = PAD.top + plotH / 2;
  const size = sizeScale(points);
  const duration = durationScale(points);
  const slot = plotW / points.length;
  const x = (i: number) => PAD.left + slot * (i + 0.5);
  const y = (value: number, scale: Scale) => bottom - (plotH * value) / scale.divisor / scale.top;
  const barW = Math.max(1, Math.min(18, slot * 0.6));
  const timed = points.map((p, i) => ({ p, i })).filter(({ p }) => p.duration_seconds !== null);
  const day = (iso: string | null) => (iso ? formatLocal(iso).slice(5, 10) : '');
  return (
    <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-labelledby={`${id}-title ${id}-desc`}
      preserveAspectRatio="xMidYMid meet" style={{ maxWidth: 480, display: 'block' }} fontSize={10}>
      <title id={`${id}-title`}>Backup size and duration</title>
      <desc id={`${id}-desc`}>{summary}</desc>
      {[0, 0.5, 1].map((f) => {
        const at = bottom - plotH * f;
        return (
          <g key={f} className="tick">
            <line x1={PAD.left} x2={W - PAD.right} y1={at} y2={at} stroke="#ddd" />
            <text x={PAD.left - 4} y={at + 3} textAnchor="end">{tick(size.top * f)}</text>
            <text x={W - PAD.right + 4} y={at + 3} textAnchor="start">{tick(duration.top * f)}</text>
          </g>
        );
      })}
      {points.map((p, i) => {
        const top = y(p.size_bytes ?? 0, size);
        return (
          <rect key={p.id} data-testid="size-point" x={x(i) - barW / 2} y={top} width={barW}
            height={Math.max(0, bottom - top)} fill={SIZE_COLOR}>
            <title>{pointLabel(p)}</title>
          </rect>
        );
      })}
      <polyline fill="none" stroke={DURATION_COLOR} strokeWidth={1.5}
        points={timed.map(({ p, i }) => `${x(i).toFixed(1)},${y(p.duration_seconds as number, duration).toFixed(1)}`)
          .join(' ')} />
      {timed.map(({ p, i }) => (
        <circle key={p.id} data-testid="duration-point" cx={x(i)} cy={y(p.duration_seconds as number, duration)}
          r={2.6} fill={DURATION_COLOR}>
          <title>{pointLabel(p)}</title>
        </circle>
      ))}
      <line x1={PAD.left} x2={W - PAD.right} y1={bottom} y2={bottom} stroke="#666" />
      <text x={12} y={mid} transform={`rotate(-90 12 ${mid})`} textAnchor="middle">Size ({size.unit})</text>
      <text x={W - 8} y={mid} transform={`rotate(90 ${W - 8} ${mid})`} textAnchor="middle">
        Duration ({duration.unit})
      </text>
      <text x={PAD.left} y={bottom + 14} textAnchor="start">{day(points[0].finished_at)}</text>
      <text x={W - PAD.right} y={bottom + 14} textAnchor="end">{day(points[points.length - 1].finished_at)}</text>
      <text x={PAD.left + plotW / 2} y={H - 6} textAnchor="middle">Backups, oldest to newest</text>
    </svg>
  );
}

/** `newestFirst`: GET status's recent_backups (at most 30, newest first). */
export const HealthChart: React.FC<{ newestFirst: ApiBackupPoint[] }> = ({ newestFirst }) => {
  const points = [...newestFirst].reverse();
  const summary = chartSummary(points);
  if (!points.length) {
    return <Typography variant="body2" data-testid="chart-summary">{summary}</Typography>;
  }
  return (
    <Box component="figure" sx={{ m: 0, my: 1 }} aria-label="Backup size and duration">
      <Drawing points={points} summary={summary} />
      <Typography component="figcaption" variant="body2">
        <span data-testid="chart-summary">{summary}</span>
        {' · '}
        <span style={{ color: SIZE_COLOR }}>Size: bars, left axis</span>
        {' · '}
        <span style={{ color: DURATION_COLOR }}>Duration: line with dots, right axis</span>
      </Typography>
      <Box component="table" sx={visuallyHidden}>
        <caption>Backup size and duration, oldest first</caption>
        <thead>
          <tr>
            <th scope="col">Finished</th>
            <th scope="col">Kind</th>
            <th scope="col">Size</th>
            <th scope="col">Duration</th>
          </tr>
        </thead>
        <tbody>
          {points.map((p) => (
            <tr key={p.id}>
              <td>{formatLocal(p.finished_at)}</td>
              <td>{p.kind}</td>
              <td>{formatBytes(p.size_bytes)}</td>
              <td>{formatDuration(p.duration_seconds)}</td>
            </tr>
          ))}
        </tbody>
      </Box>
    </Box>
  );
};

export default HealthChart;
