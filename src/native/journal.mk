# journal.mk: the journal core's harness (test/journalmain), self-contained.
# Included by src/native/Makefile, or run on its own:
#   make -C src/native -f journal.mk journal-harness   build/journal/journalmain
#   make -C src/native -f journal.mk journal-asan      build/journal-asan/journalmain, and runs every
#                                                       subcommand but bench under ASan+UBSan (leaks too)
#   make -C src/native -f journal.mk journal-tsan      the same under ThreadSanitizer
#   make -C src/native -f journal.mk journal-clean
# Every name is prefixed JOURNAL_/journal- so including it clashes with nothing.

JOURNAL_DIR    := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
JOURNAL_GOAL   := $(.DEFAULT_GOAL)
JOURNAL_BUILD  := $(JOURNAL_DIR)/build/journal
JOURNAL_ABUILD := $(JOURNAL_DIR)/build/journal-asan
JOURNAL_TBUILD := $(JOURNAL_DIR)/build/journal-tsan
JOURNAL_CC     ?= gcc
JOURNAL_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread
JOURNAL_ASAN   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
JOURNAL_TSAN   := -fsanitize=thread -fno-omit-frame-pointer
JOURNAL_LIBS   := -lisal -lcbor -lxxhash -pthread
JOURNAL_SRCS   := capture.c activity.c end_mark.c errmsg.c journal.c journal_codec.c journal_scan.c test/journalmain.c test/journalmain_modes.c
JOURNAL_HDRS   := $(addprefix $(JOURNAL_DIR)/,capture.h activity.h end_mark.h errmsg.h journal.h test/journalmain.h)
JOURNAL_OBJS   := $(patsubst %.c,$(JOURNAL_BUILD)/%.o,$(notdir $(JOURNAL_SRCS)))
JOURNAL_AOBJS  := $(patsubst %.c,$(JOURNAL_ABUILD)/%.o,$(notdir $(JOURNAL_SRCS)))
JOURNAL_TOBJS  := $(patsubst %.c,$(JOURNAL_TBUILD)/%.o,$(notdir $(JOURNAL_SRCS)))
JOURNAL_BIN    := $(JOURNAL_BUILD)/journalmain
JOURNAL_ABIN   := $(JOURNAL_ABUILD)/journalmain
JOURNAL_TBIN   := $(JOURNAL_TBUILD)/journalmain
JOURNAL_TMP    ?= /tmp/nat-j

vpath %.c $(JOURNAL_DIR) $(JOURNAL_DIR)/test

.PHONY: journal-harness journal-asan journal-tsan journal-clean

journal-harness: $(JOURNAL_BIN)

$(JOURNAL_BUILD)/%.o: %.c $(JOURNAL_HDRS)
	@mkdir -p $(JOURNAL_BUILD)
	$(JOURNAL_CC) $(JOURNAL_CFLAGS) -c $< -o $@

$(JOURNAL_BIN): $(JOURNAL_OBJS)
	$(JOURNAL_CC) $(JOURNAL_CFLAGS) -o $@ $^ $(JOURNAL_LIBS)

$(JOURNAL_ABUILD)/%.o: %.c $(JOURNAL_HDRS)
	@mkdir -p $(JOURNAL_ABUILD)
	$(JOURNAL_CC) $(JOURNAL_CFLAGS) $(JOURNAL_ASAN) -c $< -o $@

$(JOURNAL_ABIN): $(JOURNAL_AOBJS)
	$(JOURNAL_CC) $(JOURNAL_CFLAGS) $(JOURNAL_ASAN) -o $@ $^ $(JOURNAL_LIBS)

$(JOURNAL_TBUILD)/%.o: %.c $(JOURNAL_HDRS)
	@mkdir -p $(JOURNAL_TBUILD)
	$(JOURNAL_CC) $(JOURNAL_CFLAGS) $(JOURNAL_TSAN) -c $< -o $@

$(JOURNAL_TBIN): $(JOURNAL_TOBJS)
	$(JOURNAL_CC) $(JOURNAL_CFLAGS) $(JOURNAL_TSAN) -o $@ $^ $(JOURNAL_LIBS)

# Every subcommand but bench, with the checks the harness makes itself:
# $(1) the binary, $(2) a scratch name, $(3) sanitizer options.
define JOURNAL_RUN_ALL
	rm -rf $(JOURNAL_TMP)/$(2) && mkdir -p $(JOURNAL_TMP)/$(2)
	export $(3); set -e; d=$(JOURNAL_TMP)/$(2); \
	$(1) selftest > /dev/null; \
	$(1) write $$d/w g > $$d/write.out; \
	end=$$(awk '/^end /{print $$2, $$3}' $$d/write.out); \
	$(1) verify $$d/w $$end g; \
	if $(1) verify $$d/w 1 00000000000000000000000000000000 g 2>/dev/null; then echo "verify accepted a wrong end"; exit 1; fi; \
	for sub in sync track full rebase stress; do $(1) $$sub $$d/$$sub g > $$d/$$sub.out; done; \
	echo "journal $(2): selftest, write, verify, sync, track, full, rebase, stress ran clean"
endef

journal-asan: $(JOURNAL_ABIN)
	$(call JOURNAL_RUN_ALL,$(JOURNAL_ABIN),asan,ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1)

journal-tsan: $(JOURNAL_TBIN)
	$(call JOURNAL_RUN_ALL,$(JOURNAL_TBIN),tsan,TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1)

journal-clean:
	rm -rf $(JOURNAL_BUILD) $(JOURNAL_ABUILD) $(JOURNAL_TBUILD)

# Included by another makefile: its own first target stays the default goal.
ifneq ($(notdir $(firstword $(MAKEFILE_LIST))),journal.mk)
.DEFAULT_GOAL := $(JOURNAL_GOAL)
endif
