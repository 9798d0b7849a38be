/**
 * The shapes the vfio-user codec decodes into and encodes from: the header,
 * every command's payload as a tagged body, and a whole message.
 */
export interface VfioUserHeader {
  /** Message id: a reply echoes its command's id. */
  readonly id: number;
  readonly command: number;
  /** Whole message size in bytes, header included. */
  readonly size: number;
  readonly flags: number;
  /** errno of an error reply (flags has VFIO_USER_F_ERROR); 0 otherwise. */
  readonly error: number;
}

export type VfioUserBody =
  | {
      readonly kind: 'version';
      readonly major: number;
      readonly minor: number;
      readonly capabilities: string | null;
    }
  | {
      readonly kind: 'dma-map';
      readonly argsz: number;
      readonly flags: number;
      readonly offset: bigint;
      readonly addr: bigint;
      readonly size: bigint;
    }
  | {
      readonly kind: 'dma-unmap';
      readonly argsz: number;
      readonly flags: number;
      readonly addr: bigint;
      readonly size: bigint;
    }
  | {
      readonly kind: 'device-info';
      readonly argsz: number;
      readonly flags: number;
      readonly numRegions: number;
      readonly numIrqs: number;
    }
  | {
      readonly kind: 'region-info';
      readonly argsz: number;
      readonly flags: number;
      readonly index: number;
      readonly capOffset: number;
      readonly size: bigint;
      readonly offset: bigint;
      /** Bytes after the 32-byte vfio_region_info (the capability chain, offsets relative to the struct). */
      readonly tail: Uint8Array;
    }
  | {
      readonly kind: 'region-io-fds';
      readonly argsz: number;
      readonly flags: number;
      readonly index: number;
      readonly count: number;
      readonly subRegions: readonly IoFdSubRegion[];
    }
  | {
      readonly kind: 'irq-info';
      readonly argsz: number;
      readonly flags: number;
      readonly index: number;
      readonly count: number;
    }
  | {
      readonly kind: 'set-irqs';
      readonly argsz: number;
      readonly flags: number;
      readonly index: number;
      readonly start: number;
      readonly count: number;
      readonly data: Uint8Array;
    }
  | {
      readonly kind: 'region-rw';
      readonly offset: bigint;
      readonly region: number;
      readonly count: number;
      readonly data: Uint8Array;
    }
  | { readonly kind: 'dma-rw'; readonly addr: bigint; readonly count: bigint; readonly data: Uint8Array }
  | { readonly kind: 'write-multi'; readonly writes: readonly MultiWrite[] }
  | {
      readonly kind: 'device-feature';
      readonly argsz: number;
      readonly flags: number;
      readonly data: Uint8Array;
    }
  | { readonly kind: 'mig-data'; readonly argsz: number; readonly size: number; readonly data: Uint8Array }
  | { readonly kind: 'empty' }
  /** Obsolete or unknown commands, and error replies: the payload as it came. */
  | { readonly kind: 'raw'; readonly bytes: Uint8Array };

export interface IoFdSubRegion {
  readonly offset: bigint;
  readonly size: bigint;
  readonly fdIndex: number;
  readonly type: number;
  readonly flags: number;
  /** datamatch (ioeventfd) or user_data (ioregionfd). */
  readonly data: bigint;
}

export interface MultiWrite {
  readonly offset: bigint;
  readonly region: number;
  readonly count: number;
  /** Always 8 bytes on the wire; the first `count` are written. */
  readonly data: Uint8Array;
}

export interface VfioUserMessage {
  readonly id: number;
  readonly command: number;
  /** Type bits (command/reply), NO_REPLY, ERROR. */
  readonly flags: number;
  readonly error: number;
  readonly body: VfioUserBody;
}

export type VfioUserBodyKind = VfioUserBody['kind'];

/** The body of one kind, e.g. `BodyOf<'dma-map'>`. */
export type BodyOf<K extends VfioUserBodyKind> = Extract<VfioUserBody, { kind: K }>;
