// The examples in a package README, as the packing check runs them:
//   ```js blocks     programs for plain Node 20 (ESM); an unlabelled or ```text block
//                    right after one (at most one short line between, e.g. "prints")
//                    is the output it shows
//   ```ts blocks     type-checked against the published .d.ts (they may need hardware)
//   "$ " lines       shell commands in unlabelled/```console/```sh blocks, each followed
//                    by the output it shows, up to the next "$ " line
// Shown output may be partial: its non-empty lines must appear in order and
// together in the real output; a "..." line stands for lines left out.

/** Fenced blocks with their language and the line they start on (1-based). */
export function fencedBlocks(markdown) {
  const lines = markdown.split('\n');
  const blocks = [];
  let open = null;
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\S*)\s*$/.exec(lines[i]);
    if (!fence) {
      if (open) open.body.push(lines[i]);
      continue;
    }
    if (open) {
      blocks.push({ lang: open.lang, line: open.line, endLine: i + 1, code: open.body.join('\n') });
      open = null;
    } else {
      open = { lang: fence[1], line: i + 1, body: [] };
    }
  }
  return { blocks, lines };
}

const OUTPUT_LANGS = new Set(['', 'text']);
const SHELL_LANGS = new Set(['', 'console', 'sh', 'shell']);

export function readmeExamples(markdown) {
  const { blocks, lines } = fencedBlocks(markdown);
  const js = [];
  const ts = [];
  const shell = [];
  blocks.forEach((block, i) => {
    if (block.lang === 'js') {
      const next = blocks[i + 1];
      const between = next
        ? lines
            .slice(block.endLine, next.line - 1)
            .join('\n')
            .trim()
        : null;
      const showsOutput =
        next &&
        OUTPUT_LANGS.has(next.lang) &&
        between !== null &&
        !between.includes('\n') &&
        between.length <= 40;
      js.push({ line: block.line, code: block.code, expected: showsOutput ? next.code : null });
    } else if (block.lang === 'ts') {
      ts.push({ line: block.line, code: block.code });
    } else if (SHELL_LANGS.has(block.lang) && block.code.startsWith('$ ')) {
      let current = null;
      block.code.split('\n').forEach((text, offset) => {
        if (text.startsWith('$ ')) {
          current = { line: block.line + 1 + offset, command: text.slice(2), output: [] };
          shell.push(current);
        } else if (current) {
          current.output.push(text);
        }
      });
    }
  });
  for (const command of shell) command.expected = command.output.join('\n');
  return { js, ts, shell };
}

/**
 * Does `actual` show what `expected` shows? Non-empty lines (trailing blanks
 * ignored) must match in order and together; "..." separates parts that may
 * have lines between them. Returns null when it does, else what is missing.
 */
export function missingOutput(expected, actual) {
  const clean = (text) =>
    text
      .split('\n')
      .map((l) => l.trimEnd())
      .filter((l) => l !== '');
  const have = clean(actual);
  const parts = [[]];
  for (const line of clean(expected)) {
    if (line === '...') parts.push([]);
    else parts.at(-1).push(line);
  }
  let from = 0;
  for (const part of parts.filter((p) => p.length > 0)) {
    let found = -1;
    for (let start = from; start + part.length <= have.length && found < 0; start++) {
      if (part.every((line, k) => have[start + k] === line)) found = start;
    }
    if (found < 0) return part.join('\n');
    from = found + part.length;
  }
  return null;
}
