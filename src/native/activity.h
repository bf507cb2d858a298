/* activity.h: the activity log (src/capture/activity-log.ts, same file):
 * "activity.log" in the state directory, frames of the CBOR array
 * [vol, "path"|"meta"|"region", region, path], one per part of a volume
 * that became hot. Written, never read here: the TS side reads what a
 * crashed run left and restates it before the core opens.
 *
 * Threads: every call but activity_open/activity_close runs on the thread
 * holding the capture's group lock (the table and the file are the lock
 * holder's), so there is no lock here. Releases that come from the JS
 * thread (capture_release_tracked) are queued by capture.c and applied by
 * the next lock holder. */
#ifndef REPLFS_ACTIVITY_H
#define REPLFS_ACTIVITY_H

#include <stddef.h>
#include "capture.h"

struct activity;
struct hot_entry;   /* one hot part; stays put while its in-flight count is > 0 */

int  activity_open(const char *state_dir, struct activity **out, char *err, size_t errlen);
/* truncate: a clean stop (nothing in flight): the file is emptied. */
void activity_close(struct activity *a, int truncate);

/* Marks parts hot before an op. A part not hot yet costs one write(2) (all
 * the new ones of a call in one), no fsync; a hot one a lookup. On an error
 * nothing of this call stays marked. */
int  activity_mark(struct activity *a, const struct hot *marks, int n, char *err, size_t errlen);
/* The op is journalled (or failed): its parts may cool down. Once more than
 * 1024 parts are idle the file is rewritten with the hot ones only. */
int  activity_release(struct activity *a, const struct hot *marks, int n, char *err, size_t errlen);
/* The entries of marks already marked, to release later by pointer (track
 * mode: they stay hot until the dirty set holding their records is saved).
 * Writes up to n pointers to out; returns how many. */
int  activity_hold(struct activity *a, const struct hot *marks, int n, struct hot_entry **out);
int  activity_release_entries(struct activity *a, struct hot_entry *const *e, size_t n, char *err, size_t errlen);

/* Counts for tests and status. */
size_t activity_hot(const struct activity *a);
size_t activity_idle(const struct activity *a);

#endif
