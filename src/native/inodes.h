/* inodes.h: the inode table (nodeid <-> backing O_PATH fd, lookup counts that
 * balance with FORGET) and the open-handle table. Called from FUSE reader
 * threads; every function takes the table lock itself. */
#ifndef REPLFS_INODES_H
#define REPLFS_INODES_H

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

enum inode_kind { INODE_NORMAL = 0, INODE_VOLROOT = 1, INODE_SYNTH = 2 };

struct inode;
/* Another name of a file (a hard link): holds a ref on its parent. */
struct alias { struct inode *parent; char *name; struct alias *next; };

struct inode {
  uint64_t nodeid;             /* what the kernel calls it; never reused */
  int fd;                      /* O_PATH|O_NOFOLLOW on the backing object; -1: synthetic root */
  dev_t dev;
  ino_t ino;
  uint32_t vol;
  uint8_t kind;                /* enum inode_kind */
  uint8_t image;               /* the image volume's file */
  mode_t type;                 /* S_IFMT bits */
  /* under the table lock: */
  uint64_t nlookup;            /* kernel references (entry replies minus FORGETs) */
  uint32_t refs;               /* ours: named children, open handles, requests in flight */
  struct inode *parent;        /* with name: the most recent name (NULL: none, e.g. unlinked) */
  char *name;
  struct alias *aliases;       /* a file's other hard links the kernel has named: one takes
                                * the place of the name when that is unlinked or renamed away */
  struct inode *next_id, *next_key;
  /* fd budget: an idle named inode's fd may be closed (LRU) and reopened
   * from its parent's fd and name when next used */
  struct inode *lru_prev, *lru_next;
  uint8_t in_lru;
  uint8_t keep_fd;             /* its name is going away: never close its fd */
};

struct itable;

int  itable_new(struct itable **out);
void itable_free(struct itable *t);

/* Pinned inodes made at start: the synthetic root (nodeid 1 in a group
 * mount) and volume roots (nodeid 1 for a single mount). Consume fd. */
struct inode *itable_add_synth(struct itable *t);
struct inode *itable_add_volroot(struct itable *t, int single, uint32_t vol, int fd,
                                 const struct stat *st, int image,
                                 struct inode *synth, const char *name);

/* The inode for nodeid with one ref held (inode_put it) and its fd open, or
 * NULL (unknown, or its fd was closed and it cannot be reopened: ESTALE). */
struct inode *inode_get(struct itable *t, uint64_t nodeid);
void inode_put(struct itable *t, struct inode *i);
/* Another ref on an inode already held. */
void inode_ref(struct itable *t, struct inode *i);

/* An entry reply is about to name (fd, st) as parent/name: finds or adds the
 * inode for (parent->vol, st_dev, st_ino), counts one lookup, records the
 * name. Consumes fd. Returns the nodeid (0 on ENOMEM, fd closed). */
uint64_t inode_link(struct itable *t, struct inode *parent, const char *name, int fd,
                    const struct stat *st);
/* One more lookup on an inode already known (volume roots). */
void inode_lookup_again(struct itable *t, struct inode *i);
void inode_forget(struct itable *t, uint64_t nodeid, uint64_t n);

/* Namespace changes (call with the capture lock held, after the backing op). */
void inode_renamed(struct itable *t, uint32_t vol, dev_t dev, ino_t ino,
                   struct inode *oldparent, const char *oldname,
                   struct inode *newparent, const char *newname);
/* Before a name is removed or replaced: the inode it names (if known) gets its
 * fd back, since it cannot be reopened by name afterwards. */
void inode_keep_fd(struct itable *t, uint32_t vol, dev_t dev, ino_t ino);
void inode_unlinked(struct itable *t, uint32_t vol, dev_t dev, ino_t ino,
                    struct inode *parent, const char *name);

/* Volume-relative path into buf ("" for a volume root). Returns its length,
 * -ENOENT if it has no name any more, -ENAMETOOLONG. */
int inode_path(struct itable *t, struct inode *i, char *buf, size_t cap);
int inode_child_path(struct itable *t, struct inode *parent, const char *name,
                     char *buf, size_t cap);
/* For ops that must name a symlink through its parent: a dup of the parent's
 * fd and a copy of the name (0), or -ENOENT. */
int inode_parent_name(struct itable *t, struct inode *i, int *parent_fd, char *name, size_t cap);

/* Open handles: fh = slot | generation << 32; unknown fh -> NULL. */
struct handle {
  uint32_t gen;
  int used;
  int fd;                      /* real fd (file or directory) */
  DIR *dir;                    /* directories: fdopendir(fd) */
  off_t dir_off;               /* cookie the stream is positioned after */
  struct inode *ino;           /* one ref held */
  int synth;                   /* a handle on the synthetic root */
};
uint64_t handle_new(struct itable *t, int fd, DIR *dir, struct inode *ino, int synth);
struct handle *handle_get(struct itable *t, uint64_t fh);
/* Closes fd/dir and drops the inode ref. */
void handle_free(struct itable *t, uint64_t fh);

#endif
