/** QEMU's trace format strings rendered as its log backend prints them. */
import type { TraceArg } from './events.js';

/**
 * printf as QEMU's trace formats use it: %s %d %i %u %x %lx %llx %" PRIx64 "-style
 * conversions, with optional `0`/width and `l`/`ll`/`z` length, and %%.
 * Negative numbers under %x print as 64-bit two's complement, as a C uint64_t would.
 */
export function formatTrace(format: string, args: readonly TraceArg[]): string {
  let i = 0;
  return format.replace(
    /%([-0]?)(\d*)(?:hh|h|ll|l|z|j)?([sdiuxXpc%])/g,
    (_m, flag: string, width: string, conv: string) => {
      if (conv === '%') return '%';
      const arg = args[i++];
      let text: string;
      switch (conv) {
        case 's':
          text = String(arg);
          break;
        case 'c':
          text = typeof arg === 'number' ? String.fromCharCode(arg) : String(arg);
          break;
        case 'd':
        case 'i':
        case 'u':
          text = typeof arg === 'boolean' ? (arg ? '1' : '0') : BigInt(arg as number | bigint).toString(10);
          break;
        default: {
          let v = typeof arg === 'boolean' ? (arg ? 1n : 0n) : BigInt(arg as number | bigint);
          if (v < 0n) v = BigInt.asUintN(64, v);
          text = v.toString(16);
          if (conv === 'X') text = text.toUpperCase();
          if (conv === 'p') text = `0x${text}`;
        }
      }
      const w = width === '' ? 0 : Number(width);
      if (text.length >= w) return text;
      if (flag === '-') return text.padEnd(w, ' ');
      return text.padStart(w, flag === '0' ? '0' : ' ');
    },
  );
}
