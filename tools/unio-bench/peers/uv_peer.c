/* unio-bench's libuv peer: the same read workload as `unio-bench run`, through libuv's thread
 * pool (uv_fs_read with an explicit offset), DEPTH requests in flight from one uv loop, for
 * SECONDS. Started by `unio-bench run --vs libuv` with UV_THREADPOOL_SIZE set to --pool.
 *
 * usage: unio-bench-uv-peer FILE DEPTH SECONDS BS randread|read [direct]
 * prints one line of key=value pairs: version, ops, secs, cpu_user_s, cpu_sys_s, vcsw, ivcsw,
 * errors. CPU and context switches are getrusage(RUSAGE_SELF) over the measured window, so the
 * pool threads are included, as they are for unio. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

struct request {
  uv_fs_t fs;
  char *buf;
};

static struct {
  uv_loop_t *loop;
  uv_timer_t deadline;
  int fd;
  size_t bs;
  uint64_t blocks, cursor, rng;
  int random, stopping;
  uint64_t ops, errors;
} g;

static uint64_t next_block(void) {
  if (!g.random) return g.cursor++ % g.blocks;
  g.rng ^= g.rng << 13; /* xorshift64 */
  g.rng ^= g.rng >> 7;
  g.rng ^= g.rng << 17;
  return g.rng % g.blocks;
}

static void on_read(uv_fs_t *fs);

static void submit(struct request *r) {
  uv_buf_t b = uv_buf_init(r->buf, (unsigned)g.bs);
  int64_t off = (int64_t)(next_block() * g.bs);
  int rc = uv_fs_read(g.loop, &r->fs, g.fd, &b, 1, off, on_read);
  if (rc < 0) {
    fprintf(stderr, "uv-peer: uv_fs_read: %s\n", uv_strerror(rc));
    exit(1);
  }
}

static void on_read(uv_fs_t *fs) {
  struct request *r = (struct request *)fs;
  if (fs->result != (ssize_t)g.bs) g.errors++;
  uv_fs_req_cleanup(fs);
  g.ops++;
  if (!g.stopping) submit(r);
}

static void on_deadline(uv_timer_t *t) {
  g.stopping = 1;
  uv_close((uv_handle_t *)t, NULL);
}

static void on_warm(uv_fs_t *fs) { uv_fs_req_cleanup(fs); }

/* libuv starts its pool threads on the first request; start them before measuring. */
static void warm_pool(char *buf) {
  uv_fs_t fs;
  uv_buf_t b = uv_buf_init(buf, (unsigned)g.bs);
  uv_fs_read(g.loop, &fs, g.fd, &b, 1, 0, on_warm);
  uv_run(g.loop, UV_RUN_DEFAULT);
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + tv.tv_usec / 1e6; }

static int usage(const char *argv0) {
  fprintf(stderr, "usage: %s FILE DEPTH SECONDS BS randread|read [direct]\n", argv0);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 6) return usage(argv[0]);
  int depth = atoi(argv[2]);
  double secs = atof(argv[3]);
  g.bs = (size_t)strtoull(argv[4], NULL, 10);
  g.random = strcmp(argv[5], "randread") == 0;
  int direct = argc > 6 && strcmp(argv[6], "direct") == 0;
  if (depth <= 0 || secs <= 0 || g.bs == 0 || (!g.random && strcmp(argv[5], "read") != 0)) return usage(argv[0]);
  g.fd = open(argv[1], O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
  if (g.fd < 0) { perror("uv-peer: open"); return 1; }
  struct stat st;
  fstat(g.fd, &st);
  g.blocks = (uint64_t)st.st_size / g.bs;
  if (g.blocks == 0) { fprintf(stderr, "uv-peer: file smaller than BS\n"); return 1; }
  g.rng = 0x2545F4914F6CDD1DULL;
  g.loop = uv_default_loop();

  struct request *reqs = calloc((size_t)depth, sizeof *reqs);
  char *bufs = aligned_alloc(4096, ((size_t)depth * g.bs + 4095) / 4096 * 4096);
  if (reqs == NULL || bufs == NULL) { fprintf(stderr, "uv-peer: out of memory\n"); return 1; }
  for (int i = 0; i < depth; i++) reqs[i].buf = bufs + (size_t)i * g.bs;
  warm_pool(bufs);

  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  uint64_t t0 = uv_hrtime();
  uv_timer_init(g.loop, &g.deadline);
  uv_timer_start(&g.deadline, on_deadline, (uint64_t)(secs * 1000), 0);
  for (int i = 0; i < depth; i++) submit(&reqs[i]);
  uv_run(g.loop, UV_RUN_DEFAULT);
  uint64_t t1 = uv_hrtime();
  getrusage(RUSAGE_SELF, &r1);

  printf("version=%s ops=%llu secs=%.6f cpu_user_s=%.6f cpu_sys_s=%.6f vcsw=%ld ivcsw=%ld errors=%llu\n",
         uv_version_string(), (unsigned long long)g.ops, (double)(t1 - t0) / 1e9,
         tv_s(r1.ru_utime) - tv_s(r0.ru_utime), tv_s(r1.ru_stime) - tv_s(r0.ru_stime),
         r1.ru_nvcsw - r0.ru_nvcsw, r1.ru_nivcsw - r0.ru_nivcsw, (unsigned long long)g.errors);
  return g.errors ? 1 : 0;
}
