/**
 * CC.EN 0 -> 1: whether the controller may start, with the checks of QEMU's
 * nvme_start_ctrl in its order (each refusal traced as QEMU traces it), and
 * the admin queues' shape when it may.
 */
import { CAP_CSS, CAP_MPSMAX, CAP_MPSMIN, ccCss, ccIocqes, ccIosqes, ccMps } from './registers.js';
import {
  traceStartfailAcq,
  traceStartfailAcqZero,
  traceStartfailAsq,
  traceStartfailAsqZero,
  traceStartfailCqentLarge,
  traceStartfailCqentSmall,
  traceStartfailCss,
  traceStartfailPageLarge,
  traceStartfailPageSmall,
  traceStartfailSqentLarge,
  traceStartfailSqentSmall,
} from './trace.js';

/** Identify Controller's SQES/CQES (0x66/0x44): 64-byte and 16-byte entries only, as log2. */
const SQES_LOG2 = 6;
const CQES_LOG2 = 4;

export type EnableSetup =
  | {
      readonly pageSize: number;
      readonly asq: bigint;
      readonly acq: bigint;
      readonly asqSize: number;
      readonly acqSize: number;
    }
  | { readonly refused: string };

export function checkEnable(cc: number, aqa: number, asq: bigint, acq: bigint): EnableSetup {
  const mps = ccMps(cc);
  const page = 4096n << BigInt(mps);
  const asqs = aqa & 0xfff;
  const acqs = (aqa >>> 16) & 0xfff;
  const cqes = ccIocqes(cc);
  const sqes = ccIosqes(cc);
  const refuse = (refused: string, trace: () => void): EnableSetup => {
    trace();
    return { refused };
  };
  if (asq % page !== 0n)
    return refuse(`ASQ 0x${asq.toString(16)} not page aligned`, () => traceStartfailAsq.emit(asq));
  if (acq % page !== 0n)
    return refuse(`ACQ 0x${acq.toString(16)} not page aligned`, () => traceStartfailAcq.emit(acq));
  if ((CAP_CSS & (1 << ccCss(cc))) === 0)
    return refuse(`CC.CSS ${ccCss(cc)} not in CAP.CSS`, () => traceStartfailCss.emit(ccCss(cc)));
  if (mps < CAP_MPSMIN)
    return refuse(`CC.MPS ${mps} below CAP.MPSMIN`, () => traceStartfailPageSmall.emit(mps, CAP_MPSMIN));
  if (mps > CAP_MPSMAX)
    return refuse(`CC.MPS ${mps} above CAP.MPSMAX`, () => traceStartfailPageLarge.emit(mps, CAP_MPSMAX));
  if (cqes < CQES_LOG2)
    return refuse(`CC.IOCQES ${cqes}`, () => traceStartfailCqentSmall.emit(cqes, CQES_LOG2));
  if (cqes > CQES_LOG2)
    return refuse(`CC.IOCQES ${cqes}`, () => traceStartfailCqentLarge.emit(cqes, CQES_LOG2));
  if (sqes < SQES_LOG2)
    return refuse(`CC.IOSQES ${sqes}`, () => traceStartfailSqentSmall.emit(sqes, SQES_LOG2));
  if (sqes > SQES_LOG2)
    return refuse(`CC.IOSQES ${sqes}`, () => traceStartfailSqentLarge.emit(sqes, SQES_LOG2));
  if (asqs === 0) return refuse(`AQA 0x${aqa.toString(16)}: ASQS 0`, () => traceStartfailAsqZero.emit());
  if (acqs === 0) return refuse(`AQA 0x${aqa.toString(16)}: ACQS 0`, () => traceStartfailAcqZero.emit());
  return { pageSize: Number(page), asq, acq, asqSize: asqs + 1, acqSize: acqs + 1 };
}
