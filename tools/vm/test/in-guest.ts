// The VM tests need the guest's real /dev/vfio: refuse loudly anywhere else.
if (process.env.VFIO_TS_VM !== '1') {
  throw new Error(
    'the VM tests run inside the VM tier guest only: use `pnpm test:vm` (tools/vm/src/cli.ts test), which boots it',
  );
}
