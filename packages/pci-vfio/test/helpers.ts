// The same helpers as vfio-region's tests (trace capture, resource counts, mmap failure injection).
export * from '../../vfio-region/test/helpers.js';
