/**
 * The VERSION capabilities JSON: parsed and checked (it comes from the
 * peer), and built for what we advertise. Unknown keys are ignored, as
 * libvfio-user does; a known key of the wrong type or out of range is an
 * error, since acting on it would be guesswork.
 */
import { VfioUserProtocolError } from './errors.js';
import { DEFAULT_MAX_DATA_XFER, DEFAULT_MAX_MSG_FDS, DEFAULT_PGSIZES, MAX_VERSION_JSON } from './protocol.js';

export interface VfioUserCapabilities {
  readonly maxMsgFds: number;
  readonly maxDataXferSize: number;
  /** null when the peer did not say (the spec then leaves it to the server). */
  readonly maxDmaMaps: number | null;
  readonly pgsizes: number;
  readonly migration: { readonly pgsize: number; readonly maxBitmapSize: number | null } | null;
  readonly writeMultiple: boolean;
  readonly twinSocket: { readonly supported: boolean; readonly fdIndex: number | null } | null;
}

function fail(what: string): never {
  throw new VfioUserProtocolError(`VERSION capabilities: ${what}`);
}

function int(value: unknown, key: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max)
    fail(`"${key}" must be an integer in ${min}..${max}, not ${JSON.stringify(value)}`);
  return value;
}

function object(value: unknown, key: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`"${key}" must be an object`);
  return value as Record<string, unknown>;
}

/** Parses the JSON of a VERSION message (null: the peer sent none, so every default applies). */
export function parseCapabilities(json: string | null): VfioUserCapabilities {
  if (json === null || json === '') return defaults();
  if (json.length > MAX_VERSION_JSON) fail(`JSON of ${json.length} characters (at most ${MAX_VERSION_JSON})`);
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    fail(`not JSON (${(err as Error).message})`);
  }
  const top = object(doc, 'top level');
  if (top.capabilities === undefined) return defaults();
  const c = object(top.capabilities, 'capabilities');
  const migration =
    c.migration === undefined
      ? null
      : (() => {
          const m = object(c.migration, 'migration');
          return {
            pgsize: m.pgsize === undefined ? 4096 : int(m.pgsize, 'migration.pgsize', 1, 2 ** 40),
            maxBitmapSize:
              m.max_bitmap_size === undefined
                ? null
                : int(m.max_bitmap_size, 'migration.max_bitmap_size', 0, 2 ** 53),
          };
        })();
  const twin =
    c.twin_socket === undefined
      ? null
      : (() => {
          const t = object(c.twin_socket, 'twin_socket');
          if (t.supported !== undefined && typeof t.supported !== 'boolean')
            fail('"twin_socket.supported" must be a boolean');
          return {
            supported: t.supported === true,
            fdIndex: t.fd_index === undefined ? null : int(t.fd_index, 'twin_socket.fd_index', 0, 252),
          };
        })();
  if (c.write_multiple !== undefined && typeof c.write_multiple !== 'boolean')
    fail('"write_multiple" must be a boolean');
  return {
    maxMsgFds: c.max_msg_fds === undefined ? DEFAULT_MAX_MSG_FDS : int(c.max_msg_fds, 'max_msg_fds', 0, 253),
    maxDataXferSize:
      c.max_data_xfer_size === undefined
        ? DEFAULT_MAX_DATA_XFER
        : int(c.max_data_xfer_size, 'max_data_xfer_size', 1, 2 ** 31),
    maxDmaMaps: c.max_dma_maps === undefined ? null : int(c.max_dma_maps, 'max_dma_maps', 0, 2 ** 32),
    pgsizes: c.pgsizes === undefined ? DEFAULT_PGSIZES : int(c.pgsizes, 'pgsizes', 1, 2 ** 53),
    migration,
    writeMultiple: c.write_multiple === true,
    twinSocket: twin,
  };
}

function defaults(): VfioUserCapabilities {
  return {
    maxMsgFds: DEFAULT_MAX_MSG_FDS,
    maxDataXferSize: DEFAULT_MAX_DATA_XFER,
    maxDmaMaps: null,
    pgsizes: DEFAULT_PGSIZES,
    migration: null,
    writeMultiple: false,
    twinSocket: null,
  };
}

/** The JSON we send: only what we implement (no migration, no write_multiple, no twin socket). */
export function formatCapabilities(caps: {
  maxMsgFds: number;
  maxDataXferSize: number;
  maxDmaMaps?: number;
  pgsizes?: number;
}): string {
  const c: Record<string, number> = { max_msg_fds: caps.maxMsgFds, max_data_xfer_size: caps.maxDataXferSize };
  if (caps.maxDmaMaps !== undefined) c.max_dma_maps = caps.maxDmaMaps;
  if (caps.pgsizes !== undefined) c.pgsizes = caps.pgsizes;
  return JSON.stringify({ capabilities: c });
}
