/** Human output: aligned tables; colour as FORCE_COLOR, NO_COLOR and the TTY say (see `colorEnabled`). */
import Table from 'cli-table3';
import pc from 'picocolors';

export interface Output {
  readonly json: boolean;
  readonly color: boolean;
  line(text?: string): void;
  heading(text: string): string;
  /** Text to stand out inside a line (underlined when colour is on; unchanged otherwise). */
  marked(text: string): string;
  table(head: readonly string[], rows: readonly (readonly string[])[]): void;
  document(value: unknown): void;
}

/**
 * Colour or not: FORCE_COLOR set to anything but `0`/`false` forces it on
 * (and `0`/`false` off), even into a pipe; otherwise a non-empty NO_COLOR
 * turns it off (no-color.org: an empty NO_COLOR does not count); otherwise
 * only on a TTY.
 */
export function colorEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false';
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return stream.isTTY === true;
}

export function createOutput(options: {
  json: boolean;
  stdout: NodeJS.WriteStream;
  env?: NodeJS.ProcessEnv;
}): Output {
  const color = colorEnabled(options.stdout, options.env);
  const colors = pc.createColors(color);
  const write = (text: string) => options.stdout.write(`${text}\n`);
  return {
    json: options.json,
    color,
    line: (text = '') => write(text),
    heading: (text: string) => colors.bold(text),
    marked: (text: string) => colors.underline(text),
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
