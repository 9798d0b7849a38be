/*
 * nvme-dma-fault <bdf> <bad-address>: the guest side of the QEMU tier's NVMe
 * DMA-fault test (test/nvme-dma-fault.qemu.test.ts). With no nvme driver
 * bound, it drives the controller at <bdf> from user space, as a driver
 * would: Bus Master on through the config file, BAR0 mapped through
 * resource0, the admin queues in locked pages whose physical addresses come
 * from /proc/self/pagemap, AQA/ASQ/ACQ, CC.EN, CSTS.RDY. It then submits
 * Identify Controller with PRP1 = <bad-address> (outside the guest's RAM),
 * prints the completion's status, submits a good Identify Controller and
 * prints its status and what the controller returned, and disables the
 * controller. Output: "key: value" lines; exit 0 when every step completed
 * (whatever the statuses), 1 when a step failed or timed out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define QUEUE_ENTRIES 4u

/* Controller registers (NVMe base spec, 3.1) and the admin doorbells (stride 0). */
#define REG_CAP 0x00
#define REG_VS 0x08
#define REG_CC 0x14
#define REG_CSTS 0x1c
#define REG_AQA 0x24
#define REG_ASQ 0x28
#define REG_ACQ 0x30
#define DB_SQ0_TAIL 0x1000
#define DB_CQ0_HEAD 0x1004

#define CC_EN 1u
#define CC_IOSQES_64 (6u << 16)
#define CC_IOCQES_16 (4u << 20)
#define CSTS_RDY 1u
#define CSTS_CFS 2u

#define OPC_IDENTIFY 0x06
#define CNS_CONTROLLER 1

static volatile uint8_t *bar;

static uint32_t rd32(uint32_t off) { return *(volatile uint32_t *)(bar + off); }
static void wr32(uint32_t off, uint32_t v) {
  __sync_synchronize();
  *(volatile uint32_t *)(bar + off) = v;
}
static uint64_t rd64(uint32_t off) { return rd32(off) | ((uint64_t)rd32(off + 4) << 32); }
/* Low dword first, as Linux's lo_hi_writeq does for controllers without 64-bit MMIO. */
static void wr64(uint32_t off, uint64_t v) {
  wr32(off, (uint32_t)v);
  wr32(off + 4, (uint32_t)(v >> 32));
}

/* Prints the failure (with errno's text when a call failed) and exits 1. */
static void fail_with(const char *what, int err) {
  printf("error: %s%s%s\n", what, err ? ": " : "", err ? strerror(err) : "");
  fflush(stdout);
  exit(1);
}
static void fail(const char *what) { fail_with(what, errno); }
static void fail_state(const char *what) { fail_with(what, 0); }

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

/* The physical address of a locked, touched page of ours (root reads PFNs). */
static uint64_t physical(int pagemap, void *p) {
  uint64_t entry;
  off_t at = (off_t)((uintptr_t)p / PAGE) * 8;
  if (pread(pagemap, &entry, 8, at) != 8) fail("pread /proc/self/pagemap");
  if (!(entry >> 63)) fail_state("page not present");
  uint64_t pfn = entry & ((1ull << 55) - 1);
  if (pfn == 0) fail_state("pagemap shows PFN 0 (not root?)");
  return pfn * PAGE + ((uintptr_t)p % PAGE);
}

/* Waits until (CSTS & mask) == want; 0 on success, -1 on timeout or CFS. */
static int wait_csts(uint32_t mask, uint32_t want, double seconds) {
  double end = now() + seconds;
  for (;;) {
    uint32_t csts = rd32(REG_CSTS);
    if ((csts & mask) == want) return 0;
    if (csts == 0xffffffffu || (csts & CSTS_CFS) || now() > end) return -1;
    usleep(1000);
  }
}

struct sqe {
  uint8_t opcode, flags;
  uint16_t cid;
  uint32_t nsid, cdw2, cdw3;
  uint64_t mptr, prp1, prp2;
  uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};
struct cqe {
  uint32_t dw0, dw1;
  uint16_t sqhd, sqid, cid, status; /* status: bit 0 phase, 15:1 status field */
};

static struct sqe *sq;
static volatile struct cqe *cq;
static uint16_t sq_tail, cq_head;
static uint16_t phase = 1;

/* Submits one Identify Controller into PRP1 = prp1 and waits for its completion. */
static int identify(uint16_t cid, uint64_t prp1, struct cqe *out) {
  struct sqe *e = &sq[sq_tail];
  memset(e, 0, sizeof *e);
  e->opcode = OPC_IDENTIFY;
  e->cid = cid;
  e->prp1 = prp1;
  e->cdw10 = CNS_CONTROLLER;
  sq_tail = (sq_tail + 1) % QUEUE_ENTRIES;
  wr32(DB_SQ0_TAIL, sq_tail);
  double end = now() + 10;
  while ((cq[cq_head].status & 1) != phase) {
    if (now() > end) return -1;
    if (rd32(REG_CSTS) & CSTS_CFS) return -2;
    usleep(1000);
  }
  __sync_synchronize();
  *out = *(struct cqe *)&cq[cq_head];
  cq_head = (cq_head + 1) % QUEUE_ENTRIES;
  if (cq_head == 0) phase ^= 1;
  wr32(DB_CQ0_HEAD, cq_head);
  return 0;
}

static void print_completion(const char *key, const struct cqe *c) {
  unsigned status = c->status >> 1;
  printf("%s: cid %u status 0x%04x sct 0x%x sc 0x%02x dnr %u sqhd %u sqid %u\n", key, c->cid, status,
         (status >> 8) & 7, status & 0xff, (status >> 14) & 1, c->sqhd, c->sqid);
}

/* An Identify string field, trailing spaces dropped. */
static void print_field(const char *key, const uint8_t *p, size_t n) {
  while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == 0)) n--;
  printf("%s: %.*s\n", key, (int)n, (const char *)p);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: nvme-dma-fault <bdf> <bad-address>\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *bdf = argv[1];
  uint64_t bad = strtoull(argv[2], NULL, 0);
  char path[256];

  /* Memory decode and Bus Master on, INTx off (nothing here takes interrupts). */
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/config", bdf);
  int config = open(path, O_RDWR);
  if (config < 0) fail(path);
  uint16_t command;
  if (pread(config, &command, 2, 4) != 2) fail("read the command register");
  command |= 0x2 | 0x4 | 0x400;
  if (pwrite(config, &command, 2, 4) != 2) fail("write the command register");
  if (pread(config, &command, 2, 4) != 2) fail("read the command register back");
  printf("command: 0x%04x\n", command);
  close(config);

  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/resource0", bdf);
  int res = open(path, O_RDWR | O_SYNC);
  if (res < 0) fail(path);
  void *m = mmap(NULL, 0x2000, PROT_READ | PROT_WRITE, MAP_SHARED, res, 0);
  if (m == MAP_FAILED) fail("mmap resource0");
  bar = m;

  uint64_t cap = rd64(REG_CAP);
  printf("cap: 0x%016" PRIx64 "\n", cap);
  printf("vs: 0x%08x\n", rd32(REG_VS));
  double timeout = ((cap >> 24) & 0xff) * 0.5 + 1; /* CAP.TO, in 500 ms units */

  wr32(REG_CC, 0);
  if (wait_csts(CSTS_RDY, 0, timeout)) fail_state("the controller did not clear CSTS.RDY");

  /* Admin SQ, admin CQ and the Identify buffer: one locked page each. */
  uint8_t *pages;
  int err = posix_memalign((void **)&pages, PAGE, 3 * PAGE);
  if (err) fail_with("posix_memalign", err);
  memset(pages, 0, 3 * PAGE);
  if (mlock(pages, 3 * PAGE)) fail("mlock");
  int pagemap = open("/proc/self/pagemap", O_RDONLY);
  if (pagemap < 0) fail("/proc/self/pagemap");
  sq = (struct sqe *)pages;
  cq = (volatile struct cqe *)(pages + PAGE);
  uint8_t *data = pages + 2 * PAGE;
  uint64_t sq_pa = physical(pagemap, pages), cq_pa = physical(pagemap, pages + PAGE);
  uint64_t data_pa = physical(pagemap, data);
  close(pagemap);
  printf("asq: 0x%" PRIx64 "\nacq: 0x%" PRIx64 "\nbuffer: 0x%" PRIx64 "\n", sq_pa, cq_pa, data_pa);

  wr32(REG_AQA, ((QUEUE_ENTRIES - 1) << 16) | (QUEUE_ENTRIES - 1));
  wr64(REG_ASQ, sq_pa);
  wr64(REG_ACQ, cq_pa);
  wr32(REG_CC, CC_EN | CC_IOSQES_64 | CC_IOCQES_16);
  if (wait_csts(CSTS_RDY, CSTS_RDY, timeout)) {
    printf("csts: 0x%08x\n", rd32(REG_CSTS));
    fail_state("the controller did not set CSTS.RDY");
  }
  printf("enabled: csts 0x%08x\n", rd32(REG_CSTS));

  struct cqe c;
  printf("bad-prp1: 0x%" PRIx64 "\n", bad);
  int r = identify(1, bad, &c);
  if (r) {
    printf("csts: 0x%08x\n", rd32(REG_CSTS));
    fail_state(r == -2 ? "CSTS.CFS set after the bad Identify" : "no completion for the bad Identify");
  }
  print_completion("bad-identify", &c);
  printf("after-bad: csts 0x%08x\n", rd32(REG_CSTS));

  memset(data, 0xee, PAGE);
  r = identify(2, data_pa, &c);
  if (r) {
    printf("csts: 0x%08x\n", rd32(REG_CSTS));
    fail_state(r == -2 ? "CSTS.CFS set after the good Identify" : "no completion for the good Identify");
  }
  print_completion("good-identify", &c);
  printf("vid: 0x%04x\n", data[0] | (data[1] << 8));
  print_field("serial", data + 4, 20);
  print_field("model", data + 24, 40);
  print_field("firmware", data + 64, 8);

  wr32(REG_CC, 0);
  if (wait_csts(CSTS_RDY, 0, timeout)) fail_state("the controller did not clear CSTS.RDY at the end");
  printf("disabled: csts 0x%08x\n", rd32(REG_CSTS));
  munmap(m, 0x2000);
  close(res);
  return 0;
}
