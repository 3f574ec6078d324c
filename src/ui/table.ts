// Columns as `etcdctl -w table`'s plain cousin: each padded to its widest cell, two spaces apart.

/** The rows as lines; `colour` may dress a padded cell (row 0 is the header). */
export function tableLines(rows: string[][], colour: (row: number, col: number, cell: string) => string = (_r, _c, cell) => cell): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r, ri) => r.map((cell, ci) => colour(ri, ci, cell.padEnd(widths[ci]!))).join('  ').trimEnd());
}
