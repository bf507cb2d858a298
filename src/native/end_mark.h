/* end_mark.h: how far the journal's appends got, kept for the next start on
 * the same boot (src/journal/end-mark.ts reads it).
 *
 * A truncated or deleted newest segment looks like a torn tail from the
 * segment files alone. On the boot that wrote them, though, the page cache
 * holds every byte a writev put in, kill -9 or not: a torn tail can only be
 * the part of a frame a killed writev had not copied yet. So the core keeps
 * the last sequence it appended, and the segment it appends to, in a small
 * file it maps shared and updates with plain stores: no system call on the
 * write path, and the stores outlive the process. The next start on the
 * same boot requires that segment to exist and the journal to reach that
 * sequence; anything short of it is damage, not a torn tail. After a reboot
 * the mark says nothing (it is never synced) and the older rules apply.
 *
 * Layout, 64 bytes, integers little-endian:
 *    0  "RFSEND01"
 *    8  boot id, NUL-padded (39 bytes at most: the kernel's is 36)
 *   48  u64 segment  first sequence of the segment appended to (0: none yet)
 *   56  u64 seq      last sequence appended (0: no claim) */
#ifndef REPLFS_END_MARK_H
#define REPLFS_END_MARK_H

#include <stddef.h>
#include <stdint.h>

#define END_MARK_FILE "journal.end"
#define END_MARK_BYTES 64
#define END_MARK_BOOT_MAX 39

struct end_mark;

/* Opens (creating if need be) dir/journal.end for this boot, claiming
 * (segment, seq). 0 or -errno with a message. */
int  end_mark_open(const char *dir, const char *boot_id, uint64_t segment, uint64_t seq,
                   struct end_mark **out, char *err, size_t errlen);
/* The group-lock holder: the segment now appended to (set before writing
 * into it, so that the named file always exists). NULL m: no-op. */
void end_mark_segment(struct end_mark *m, uint64_t segment);
/* The group-lock holder, after an append's writev: appended through seq. */
void end_mark_seq(struct end_mark *m, uint64_t seq);
void end_mark_close(struct end_mark *m);

#endif
