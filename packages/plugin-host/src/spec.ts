/**
 * Device spec files: a model described in JSON, without code. Validated with
 * a schema; every error names the JSON path of the bad field and what was
 * expected, e.g. `bars[1].size: expected a power of two, got 3000`.
 *
 * {
 *   "name": "my-dev", "vendor": "0x1234", "device": "0x5678", "class": "0x020000",
 *   "bars": [{ "index": 0, "type": "mem64", "size": "16K", "prefetchable": false }],
 *   "msix": { "vectors": 8, "table": { "bar": 0, "offset": "0x2000" }, "pba": { "bar": 0, "offset": "0x3000" },
 *             "mode": "mappable" },
 *   "pageSize": 4096,
 *   "registers": [{ "bar": 0, "offset": "0x0", "size": 4, "value": "0x12345678" }]
 * }
 */
import { memoryWrite } from '@vfio-ts/memory-core';
import { z } from 'zod';
import { ConfigBuilder } from './config-builder.js';
import { ModelError, quote } from './errors.js';
import type { DeviceModel, ModelBar } from './model.js';

const UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** A non-negative integer: a JSON number, or a string in hex (`0x1000`), decimal, or with K/M/G. */
const integer = z.union([z.number(), z.string()]).transform((raw, ctx) => {
  let value: number;
  if (typeof raw === 'number') value = raw;
  else {
    const m = /^(0x[0-9a-f]+|\d+)([KMG])?$/i.exec(raw.trim());
    value = m ? Number(m[1]) * (m[2] ? UNITS[m[2].toUpperCase()]! : 1) : Number.NaN;
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a non-negative integer (number, "0x..." or "16K"), got ${quote(raw)}`,
    });
    return z.NEVER;
  }
  return value;
});

const bounded = (max: number, what: string) =>
  integer.refine((v) => v <= max, { message: `expected ${what} (at most 0x${max.toString(16)})` });

/**
 * In 53-bit arithmetic: a 32-bit `v & (v - 1)` took 0x180000000 and
 * 4294967297 for powers of two. A power of two's log2 is exact.
 */
const powerOfTwo = integer.refine((v) => v > 0 && 2 ** Math.round(Math.log2(v)) === v, {
  message: 'expected a power of two',
});

const barSchema = z.strictObject({
  index: z.number().int().min(0).max(5),
  type: z.enum(['mem32', 'mem64', 'io']),
  size: powerOfTwo,
  prefetchable: z.boolean().optional(),
  mappable: z.boolean().optional(),
});

const placementSchema = z.strictObject({ bar: z.number().int().min(0).max(5), offset: integer });

const specSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'expected a name of letters, digits, ".", "_" or "-"'),
    vendor: bounded(0xffff, 'a 16-bit vendor ID'),
    device: bounded(0xffff, 'a 16-bit device ID'),
    subsystemVendor: bounded(0xffff, 'a 16-bit ID').optional(),
    subsystem: bounded(0xffff, 'a 16-bit ID').optional(),
    revision: bounded(0xff, 'an 8-bit revision').optional(),
    class: bounded(0xffffff, 'a 24-bit class code'),
    bars: z.array(barSchema).max(6),
    rom: z.strictObject({ size: powerOfTwo }).optional(),
    interruptPin: z.number().int().min(0).max(4).optional(),
    msi: z
      .strictObject({
        vectors: z.union([
          z.literal(1),
          z.literal(2),
          z.literal(4),
          z.literal(8),
          z.literal(16),
          z.literal(32),
        ]),
      })
      .optional(),
    msix: z
      .strictObject({
        vectors: z.number().int().min(1).max(2048),
        table: placementSchema,
        pba: placementSchema,
        mode: z.enum(['mappable', 'mmap-no-cap', 'sparse']).optional(),
      })
      .optional(),
    pcie: z.boolean().optional(),
    pageSize: z.union([z.literal(4096), z.literal(65536)]).optional(),
    registers: z
      .array(
        z.strictObject({
          bar: z.number().int().min(0).max(5),
          offset: integer,
          size: z.union([z.literal(1), z.literal(2), z.literal(4)]),
          value: integer,
        }),
      )
      .optional(),
  })
  .superRefine((spec, ctx) => {
    const byIndex = new Map<number, number>();
    spec.bars.forEach((bar, i) => {
      const clash = byIndex.get(bar.index);
      if (clash !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['bars', i, 'index'],
          message: `BAR ${bar.index} is already defined by bars[${clash}]`,
        });
      byIndex.set(bar.index, i);
      if (bar.type === 'mem64') {
        if (bar.index === 5)
          ctx.addIssue({
            code: 'custom',
            path: ['bars', i, 'index'],
            message: 'a 64-bit BAR takes two registers; BAR 5 has no upper half',
          });
        byIndex.set(bar.index + 1, i);
      }
      if (bar.type === 'io' && bar.size > 256)
        ctx.addIssue({
          code: 'custom',
          path: ['bars', i, 'size'],
          message: `expected an I/O BAR of at most 256 bytes, got ${bar.size}`,
        });
      if (bar.type !== 'io' && bar.size < 16)
        ctx.addIssue({
          code: 'custom',
          path: ['bars', i, 'size'],
          message: `expected a memory BAR of at least 16 bytes, got ${bar.size}`,
        });
      if (bar.type === 'mem32' && bar.size > 2 ** 31)
        ctx.addIssue({
          code: 'custom',
          path: ['bars', i, 'size'],
          message: 'expected a 32-bit BAR of at most 2G; use "mem64"',
        });
    });
    const barOf = (index: number) => spec.bars.find((b) => b.index === index);
    if (spec.msix) {
      const entries = spec.msix.vectors * 16;
      const pbaBytes = Math.ceil(spec.msix.vectors / 64) * 8;
      for (const [key, bytes, align] of [
        ['table', entries, 8],
        ['pba', pbaBytes, 8],
      ] as const) {
        const p = spec.msix[key];
        const bar = barOf(p.bar);
        if (!bar || bar.type === 'io')
          ctx.addIssue({
            code: 'custom',
            path: ['msix', key, 'bar'],
            message: `expected a memory BAR defined in "bars", got BAR ${p.bar}`,
          });
        else if (p.offset % align !== 0)
          ctx.addIssue({
            code: 'custom',
            path: ['msix', key, 'offset'],
            message: `expected an offset aligned to ${align} bytes, got 0x${p.offset.toString(16)}`,
          });
        else if (p.offset + bytes > bar.size)
          ctx.addIssue({
            code: 'custom',
            path: ['msix', key, 'offset'],
            message: `the ${key} (0x${bytes.toString(16)} bytes at 0x${p.offset.toString(16)}) does not fit in BAR ${p.bar} of 0x${bar.size.toString(16)} bytes`,
          });
      }
    }
    if (spec.msix) msixOverlapIssue(spec.msix, ctx);
    spec.registers?.forEach((r, i) => {
      const bar = barOf(r.bar);
      if (!bar)
        ctx.addIssue({
          code: 'custom',
          path: ['registers', i, 'bar'],
          message: `expected a BAR defined in "bars", got BAR ${r.bar}`,
        });
      else if (r.offset % r.size !== 0 || r.offset + r.size > bar.size)
        ctx.addIssue({
          code: 'custom',
          path: ['registers', i, 'offset'],
          message: `expected an offset aligned to ${r.size} inside BAR ${r.bar} (0x${bar.size.toString(16)} bytes), got 0x${r.offset.toString(16)}`,
        });
      if (r.value >= 2 ** (8 * r.size))
        ctx.addIssue({
          code: 'custom',
          path: ['registers', i, 'value'],
          message: `expected a value that fits ${r.size} bytes, got 0x${r.value.toString(16)}`,
        });
    });
  });

export type DeviceSpec = z.output<typeof specSchema>;

/**
 * QEMU's msix_init refuses a table and PBA that share bytes of one BAR (and
 * pci-vfio does for any backend): say so at the PBA's offset.
 */
function msixOverlapIssue(
  msix: { vectors: number; table: { bar: number; offset: number }; pba: { bar: number; offset: number } },
  ctx: z.RefinementCtx,
): void {
  const tableBytes = msix.vectors * 16;
  const pbaBytes = Math.ceil(msix.vectors / 64) * 8;
  const { table, pba } = msix;
  if (
    table.bar !== pba.bar ||
    table.offset >= pba.offset + pbaBytes ||
    pba.offset >= table.offset + tableBytes
  )
    return;
  const hex = (n: number) => `0x${n.toString(16)}`;
  ctx.addIssue({
    code: 'custom',
    path: ['msix', 'pba', 'offset'],
    message: `the PBA (${hex(pbaBytes)} bytes at ${hex(pba.offset)}) overlaps the table (${hex(tableBytes)} bytes at ${hex(table.offset)}) in BAR ${table.bar}; put it at ${hex(table.offset + tableBytes)} or beyond`,
  });
}

/** Issues listed in one error; the rest are counted (a spec of a million bad registers is not echoed). */
const MAX_LISTED_ISSUES = 20;
const MAX_ISSUE_CHARS = 300;

function pathText(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    // Keys come from the file: an unknown key of 10 MB is quoted as a short prefix.
    const key = typeof p === 'string' && p.length > 40 ? `${p.slice(0, 40)}...` : String(p);
    out += typeof p === 'number' ? `[${p}]` : out === '' ? key : `.${key}`;
  }
  return out || '(root)';
}

function issueLine(issue: { path: readonly PropertyKey[]; message: string }): string {
  const line = `${pathText(issue.path)}: ${issue.message}`;
  return line.length > MAX_ISSUE_CHARS ? `${line.slice(0, MAX_ISSUE_CHARS)}...` : line;
}

/** Validates a parsed spec; throws a ModelError listing every problem as `path: what was expected`. */
export function parseDeviceSpec(json: unknown, source = 'device spec'): DeviceSpec {
  const result = specSchema.safeParse(json);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const lines = issues.slice(0, MAX_LISTED_ISSUES).map(issueLine);
  if (issues.length > MAX_LISTED_ISSUES) lines.push(`... and ${issues.length - MAX_LISTED_ISSUES} more`);
  // One problem fits on the line; several are listed one per line.
  const listing = lines.length === 1 ? ` ${lines[0]}` : `\n  ${lines.join('\n  ')}`;
  throw new ModelError('ERR_MODEL_SPEC', `${source} is invalid:${listing}`, 'fix the fields named above');
}

/** Builds a model from a validated spec. */
export function modelFromSpec(spec: DeviceSpec): DeviceModel {
  const bars: ModelBar[] = spec.bars.map((b) => ({
    index: b.index,
    size: b.size,
    kind: b.type,
    prefetchable: b.prefetchable ?? false,
    ...(b.mappable === undefined ? {} : { mappable: b.mappable }),
  }));
  const builder = new ConfigBuilder();
  builder.pm();
  if (spec.msi) builder.msi({ vectors: spec.msi.vectors });
  if (spec.msix) {
    builder.msix({
      vectors: spec.msix.vectors,
      tableBar: spec.msix.table.bar,
      tableOffset: spec.msix.table.offset,
      pbaBar: spec.msix.pba.bar,
      pbaOffset: spec.msix.pba.offset,
    });
  }
  if (spec.pcie) builder.pcie(0);
  const ids = {
    vendor: spec.vendor,
    device: spec.device,
    classCode: spec.class,
    ...(spec.subsystemVendor === undefined ? {} : { subsystemVendor: spec.subsystemVendor }),
    ...(spec.subsystem === undefined ? {} : { subsystem: spec.subsystem }),
    ...(spec.revision === undefined ? {} : { revision: spec.revision }),
  };
  const config = builder.build(ids, bars, {
    romSize: spec.rom?.size ?? 0,
    interruptPin: spec.interruptPin ?? 1,
  });
  const registers = spec.registers ?? [];
  return {
    name: spec.name,
    config,
    bars,
    ...(spec.rom ? { rom: new Uint8Array(spec.rom.size) } : {}),
    ...(spec.msix?.mode ? { msixMode: spec.msix.mode } : {}),
    ...(spec.pageSize ? { pageSize: spec.pageSize } : {}),
    setup(ctx) {
      const load = () => {
        for (const r of registers) {
          // memoryWrite reaches any offset of a large BAR (its views are windows).
          memoryWrite(ctx.bar(r.bar).memory, r.offset, r.value, r.size);
        }
      };
      load();
      return { reset: load };
    },
  };
}
