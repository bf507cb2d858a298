/* journalmain.h: what the harness's files share (test only). */
#ifndef JOURNALMAIN_H
#define JOURNALMAIN_H
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include "../capture.h"

extern int failures;
extern atomic_int wakes;
#define CHECK(cond, ...)                                                        \
  do {                                                                          \
    if (!(cond)) {                                                              \
      failures++;                                                               \
      fprintf(stderr, "CHECK failed (%s:%d): %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                             \
      fputc('\n', stderr);                                                      \
    }                                                                           \
  } while (0)
#define R(k, ...) ((struct rec){ .kind = (k), __VA_ARGS__ })
#define S(s) s, sizeof(s) - 1

double now_s(void);
void hexs(const uint8_t *h, size_t n, char *out);
struct capture *open_or_die(const char *dir, const char *group, uint64_t segbytes, int sync_mode, uint32_t timeout_ms);
int cmd_sync(const char *dir, const char *group);
int cmd_track(const char *dir, const char *group);
int cmd_bench(const char *dir);
int cmd_full(const char *dir, const char *group);
int cmd_rebase(const char *dir, const char *group);
int cmd_stress(const char *dir, const char *group);
int cmd_selftest(void);
#endif
