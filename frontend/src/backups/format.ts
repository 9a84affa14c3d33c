/** Sizes, durations and times as the section writes them: every time labelled UTC or local. */

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) {
    return '—';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) {
    return '—';
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes} min ${Math.round(seconds % 60)} s` : `${(minutes / 60).toFixed(1)} h`;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** "2026-12-02 02:00 UTC". */
export function formatUtc(iso: string | null | undefined): string {
  if (!iso) {
    return '—';
  }
  const d = new Date(iso);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(
    d.getUTCMinutes()
  )} UTC`;
}

/** "2026-12-02 03:00 local" (the browser's time zone). */
export function formatLocal(iso: string | null | undefined): string {
  if (!iso) {
    return '—';
  }
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(
    d.getMinutes()
  )} local`;
}

/** "in 21 h", "3 min ago". */
export function formatRelative(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) {
    return '—';
  }
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const size = Math.abs(seconds);
  let words: string;
  if (size < 60) {
    words = `${size} s`;
  } else if (size < 3600) {
    words = `${Math.round(size / 60)} min`;
  } else if (size < 172800) {
    words = `${Math.round(size / 3600)} h`;
  } else {
    words = `${Math.round(size / 86400)} days`;
  }
  return seconds >= 0 ? `in ${words}` : `${words} ago`;
}
