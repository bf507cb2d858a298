/* end_mark.c: the journal's end mark (see end_mark.h for why). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "end_mark.h"
#include "errmsg.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char magic[8] = { 'R', 'F', 'S', 'E', 'N', 'D', '0', '1' };

struct end_mark {
  uint8_t *map;   /* END_MARK_BYTES of the shared mapping */
};

static uint64_t *field(struct end_mark *m, size_t off) {
  return (uint64_t *)(void *)(m->map + off);
}

int end_mark_open(const char *dir, const char *boot_id, uint64_t segment, uint64_t seq,
                  struct end_mark **out, char *err, size_t errlen) {
  size_t blen = strlen(boot_id);
  if (blen == 0 || blen > END_MARK_BOOT_MAX) return fail(err, errlen, -EINVAL, "boot id of %zu bytes (1..%d)", blen, END_MARK_BOOT_MAX);
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/" END_MARK_FILE, dir) >= (int)sizeof path) return fail(err, errlen, -ENAMETOOLONG, "state directory path too long");
  /* An existing file is rewritten in place: no block to allocate, so a
   * start on a full state directory keeps its mark. */
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return fail(err, errlen, -errno, "cannot open %s: %s", path, strerror(errno));
  uint8_t head[END_MARK_BYTES] = { 0 };
  memcpy(head, magic, sizeof magic);
  memcpy(head + 8, boot_id, blen);
  uint64_t le = htole64(segment);
  memcpy(head + 48, &le, 8);
  le = htole64(seq);
  memcpy(head + 56, &le, 8);
  ssize_t w = pwrite(fd, head, sizeof head, 0);
  if (w != (ssize_t)sizeof head) {
    int rc = w < 0 ? -errno : -ENOSPC;
    close(fd);
    return fail(err, errlen, rc, "cannot write %s: %s", path, strerror(-rc));
  }
  void *map = mmap(NULL, END_MARK_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int rc = map == MAP_FAILED ? -errno : 0;
  close(fd);   /* the mapping keeps the file */
  if (rc < 0) return fail(err, errlen, rc, "cannot map %s: %s", path, strerror(-rc));
  struct end_mark *m = malloc(sizeof *m);
  if (!m) { munmap(map, END_MARK_BYTES); return fail(err, errlen, -ENOMEM, "out of memory"); }
  m->map = map;
  *out = m;
  return 0;
}

/* Aligned 8-byte stores: a reader after a kill -9 sees each whole. */
void end_mark_segment(struct end_mark *m, uint64_t segment) {
  if (m) __atomic_store_n(field(m, 48), htole64(segment), __ATOMIC_RELEASE);
}

void end_mark_seq(struct end_mark *m, uint64_t seq) {
  if (m) __atomic_store_n(field(m, 56), htole64(seq), __ATOMIC_RELEASE);
}

void end_mark_close(struct end_mark *m) {
  if (!m) return;
  munmap(m->map, END_MARK_BYTES);
  free(m);
}
