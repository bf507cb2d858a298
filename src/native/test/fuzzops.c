/* fuzzops: feeds the op table random and malformed requests (bad nodeids and
 * fhs, truncated bodies, names without NUL or too long) without a mount:
 * replies go to /dev/null. Every request must get an errno or a reply, never
 * a crash (build with ASan: make fuzz). Replies are written to a memfd, so
 * handles that were opened are reused by later requests.
 *   fuzzops DIR [ITERATIONS] [SEED]     DIR: a scratch directory (changed!) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../inodes.h"
#include "../session.h"

static uint64_t rnd_state;
static uint64_t rnd(void) {
  rnd_state ^= rnd_state << 13; rnd_state ^= rnd_state >> 7; rnd_state ^= rnd_state << 17;
  return rnd_state;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: fuzzops DIR [ITERATIONS] [SEED]\n"); return 2; }
  long iters = argc > 2 ? atol(argv[2]) : 200000;
  rnd_state = argc > 3 ? strtoull(argv[3], NULL, 0) : 88172645463325252ull;
  if (!rnd_state) rnd_state = 1;
  struct core_volume vol = { .num = 0, .name = "v", .kind = VOL_DIR, .path = argv[1] };
  struct session s;
  memset(&s, 0, sizeof s);
  s.cfg.mountpoint = "/nonexistent";
  s.cfg.single = 1;
  s.cfg.volumes = &vol;
  s.cfg.nvolumes = 1;
  s.cfg.attr_timeout = s.cfg.entry_timeout = 1;
  s.vols = &vol;
  s.max_write = 262144;
  s.bufsize = 262144 + 65536 + 8192;
  if (itable_new(&s.it)) return 1;
  int fd = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) { perror(argv[1]); return 1; }
  struct inode *root = itable_add_volroot(s.it, 1, 0, fd, &st, 0, NULL, NULL);
  s.roots = &root;
  s.fd = memfd_create("replies", MFD_CLOEXEC);
  char *in = malloc(s.bufsize), *out = malloc(s.bufsize);
  static const char *names[] = { "a", "b", "c", "d", ".", "..", "sub", "x/y", "" };
  uint64_t fhs[64] = { 0 };
  int nfh = 0;
  for (long k = 0; k < iters; k++) {
    uint32_t op = (uint32_t)(rnd() % (uint64_t)(op_table_len + 3));
    if (op >= (uint32_t)op_table_len || !op_table[op].fn || op == FUSE_DESTROY) continue;
    struct fuse_in_header *h = (void *)in;
    memset(h, 0, sizeof *h);
    h->opcode = op;
    h->unique = (uint64_t)k + 1;
    uint64_t pick = rnd() % 8;
    h->nodeid = pick < 4 ? 1 : pick < 7 ? 2 + rnd() % 40 : rnd();
    h->uid = rnd() % 3 ? 0 : 1000;
    h->gid = h->uid;
    /* body: a plausible struct with random fields, then names */
    size_t len = op_table[op].min_in;
    char *b = in + sizeof *h;
    for (size_t i = 0; i < 64; i++) b[i] = (char)rnd();
    if (rnd() % 4 == 0 && nfh) { uint64_t fh = fhs[rnd() % (uint64_t)nfh]; memcpy(b, &fh, 8); }
    if (op == FUSE_READ || op == FUSE_READDIR) ((struct fuse_read_in *)b)->size = (uint32_t)(rnd() % 70000);
    if (op == FUSE_LINK) ((struct fuse_link_in *)b)->oldnodeid = 1 + rnd() % 40;
    if (op == FUSE_RENAME || op == FUSE_RENAME2) ((struct fuse_rename_in *)b)->newdir = 1 + rnd() % 40;
    if (op == FUSE_RENAME2) ((struct fuse_rename2_in *)b)->flags = (uint32_t)(rnd() % 3);
    if (op == FUSE_MKNOD) ((struct fuse_mknod_in *)b)->mode = (rnd() % 2 ? S_IFIFO : S_IFREG) | 0644;
    if (op == FUSE_SETATTR) ((struct fuse_setattr_in *)b)->size = rnd() % 100000;
    if (op == FUSE_WRITE) { struct fuse_write_in *w = (void *)b; w->offset = rnd() % 100000; w->size = (uint32_t)(rnd() % 5000); len += w->size; }
    if (op == FUSE_SETXATTR) { ((uint32_t *)b)[0] = (uint32_t)(rnd() % 200); ((uint32_t *)b)[1] = (uint32_t)(rnd() % 4); }
    if (op == FUSE_GETXATTR || op == FUSE_LISTXATTR) ((struct fuse_getxattr_in *)b)->size = (uint32_t)(rnd() % 3 ? rnd() % 300 : 0);
    int nnames = op == FUSE_RENAME || op == FUSE_RENAME2 || op == FUSE_SYMLINK ? 2 : 1;
    for (int n = 0; n < nnames; n++) {
      uint64_t kind = rnd() % 10;
      if (kind < 7) { const char *nm = names[rnd() % 9]; if (op == FUSE_SETXATTR || op == FUSE_GETXATTR || op == FUSE_REMOVEXATTR) nm = kind < 4 ? "user.k" : "trusted.t"; size_t l = strlen(nm) + 1; memcpy(b + len, nm, l); len += l; }
      else if (kind < 9) { size_t l = 200 + rnd() % 400; memset(b + len, 'n', l); b[len + l] = 0; len += l + 1; }
      else { size_t l = rnd() % 20; memset(b + len, 'q', l); len += l; }   /* no NUL */
    }
    if (op == FUSE_SETXATTR) { size_t l = rnd() % 200; memset(b + len, 'v', l); len += l; }
    if (rnd() % 10 == 0) len = rnd() % (len + 1);                              /* truncated */
    h->len = (uint32_t)(sizeof *h + len);
    struct req r = { .s = &s, .fd = s.fd, .h = h, .in = b, .inlen = len, .out = out };
    if (len < op_table[op].min_in) continue;                                   /* dispatch refuses these */
    lseek(s.fd, 0, SEEK_SET);
    op_table[op].fn(&r);
    if (!r.replied) { fprintf(stderr, "fuzzops: op %u got no reply\n", op); return 1; }
    /* keep handles that were opened so later requests use them */
    struct { struct fuse_out_header oh; char body[sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out)]; } rep;
    if ((op == FUSE_OPEN || op == FUSE_OPENDIR || op == FUSE_CREATE) &&
        pread(s.fd, &rep, sizeof rep, 0) >= (ssize_t)(sizeof rep.oh + sizeof(struct fuse_open_out)) && rep.oh.error == 0) {
      const struct fuse_open_out *o = (const void *)(rep.body + (op == FUSE_CREATE ? sizeof(struct fuse_entry_out) : 0));
      fhs[nfh < 64 ? nfh++ : (int)(rnd() % 64)] = o->fh;
    }
  }
  printf("fuzzops: %ld requests, no crash\n", iters);
  itable_free(s.it);
  close(s.fd);
  free(in);
  free(out);
  return 0;
}
