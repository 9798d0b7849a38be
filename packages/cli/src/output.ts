/** Human output: aligned tables, colour only on a TTY and never with NO_COLOR. */
import Table from 'cli-table3';
import pc from 'picocolors';

export interface Output {
  readonly json: boolean;
  readonly color: boolean;
  line(text?: string): void;
  heading(text: string): string;
  table(head: readonly string[], rows: readonly (readonly string[])[]): void;
  document(value: unknown): void;
}

export function createOutput(options: { json: boolean; stdout: NodeJS.WriteStream }): Output {
  const color = options.stdout.isTTY === true && !('NO_COLOR' in process.env);
  const colors = pc.createColors(color);
  const write = (text: string) => options.stdout.write(`${text}\n`);
  return {
    json: options.json,
    color,
    line: (text = '') => write(text),
    heading: (text: string) => colors.bold(text),
    table(head, rows) {
      const table = new Table({
        head: head.map((h) => colors.bold(h)),
        chars: {
          top: '',
          'top-mid': '',
          'top-left': '',
          'top-right': '',
          bottom: '',
          'bottom-mid': '',
          'bottom-left': '',
          'bottom-right': '',
          left: '',
          'left-mid': '',
          mid: '',
          'mid-mid': '',
          right: '',
          'right-mid': '',
          middle: '  ',
        },
        style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
      });
      for (const r of rows) table.push([...r]);
      write(
        table
          .toString()
          .split('\n')
          .map((l) => l.trimEnd())
          .join('\n'),
      );
    },
    document(value) {
      write(JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2));
    },
  };
}
