// Tables that dkv-cli and its REPL print alike.
import type { Member } from '../client/client.js';

export function formatMembers(members: Member[]): string {
  const rows = [
    ['ID', 'ADDRESS', 'TCP', 'STATE', 'INCARNATION', 'SINCE'],
    ...members.map((m) => [m.id, m.address, m.tcpAddress, m.state, String(m.incarnation), duration(m.sinceMs)]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export function duration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${Math.floor((ms % 60_000) / 1000)}s`;
  return `${Math.floor(ms / 3_600_000)}h${Math.floor((ms % 3_600_000) / 60_000)}m`;
}
